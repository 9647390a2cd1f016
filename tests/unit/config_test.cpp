#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "common/config.hpp"

using namespace prism;

namespace {
struct Args {
  explicit Args(std::vector<std::string> a) : storage(std::move(a)) {
    for (auto& s : storage) ptrs.push_back(s.data());
    ptrs.push_back(nullptr);
    argc = static_cast<int>(storage.size());
  }
  std::vector<std::string> storage;
  std::vector<char*> ptrs;
  int argc;
};
auto env_of(std::map<std::string, std::string> m) {
  return [m = std::move(m)](const char* name) -> const char* {
    auto it = m.find(name);
    return it == m.end() ? nullptr : it->second.c_str();
  };
}
}  // namespace

TEST(Config, FlagsAreParsedAndRemovedFromArgv) {
  Args a({"app", "--prism-gcs-ranks=3", "user-arg", "--prism-num-cpus=4", "--other"});
  auto cfg = parse_config(a.argc, a.ptrs.data(), env_of({}));
  ASSERT_TRUE(cfg.has_value()) << cfg.status().to_string();
  EXPECT_EQ(cfg->gcs_ranks, 3);
  EXPECT_EQ(cfg->num_cpus, 4);
  ASSERT_EQ(a.argc, 3);
  EXPECT_STREQ(a.ptrs[1], "user-arg");
  EXPECT_STREQ(a.ptrs[2], "--other");
}

TEST(Config, EnvironmentTwinAppliesAndFlagsWin) {
  Args a({"app", "--prism-gcs-ranks=2"});
  auto cfg = parse_config(a.argc, a.ptrs.data(),
                          env_of({{"PRISM_GCS_RANKS", "5"}, {"PRISM_INLINE_THRESHOLD", "1K"}}));
  ASSERT_TRUE(cfg.has_value());
  EXPECT_EQ(cfg->gcs_ranks, 2);
  EXPECT_EQ(cfg->inline_threshold, 1024u);
}

TEST(Config, UnknownOptionNamesItself) {
  Args a({"app", "--prism-gsc-ranks=2"});
  auto cfg = parse_config(a.argc, a.ptrs.data(), env_of({}));
  ASSERT_FALSE(cfg.has_value());
  EXPECT_NE(cfg.status().message().find("--prism-gsc-ranks"), std::string::npos);
  EXPECT_NE(cfg.status().message().find("gcs-ranks"), std::string::npos);  // the known list
}

TEST(Config, BadValuesAreRejectedWithTheirSource) {
  Args a({"app"});
  auto cfg = parse_config(a.argc, a.ptrs.data(), env_of({{"PRISM_GCS_RANKS", "zero"}}));
  ASSERT_FALSE(cfg.has_value());
  EXPECT_NE(cfg.status().message().find("PRISM_GCS_RANKS"), std::string::npos);
}

TEST(Config, BooleansAndResources) {
  Args a({"app", "--prism-log-to-files", "--prism-resources=fpga=2,ssd=0.5"});
  auto cfg = parse_config(a.argc, a.ptrs.data(), env_of({}));
  ASSERT_TRUE(cfg.has_value()) << cfg.status().to_string();
  EXPECT_TRUE(cfg->log_to_files);
  EXPECT_EQ(cfg->resources.at("fpga"), 2);
  EXPECT_EQ(cfg->resources.at("ssd"), 0.5);
  EXPECT_FALSE(parse_resources("fpga").has_value());
}

TEST(Config, ByteSizes) {
  EXPECT_EQ(*parse_bytes("64K"), 65536u);
  EXPECT_EQ(*parse_bytes("2GiB"), 2ull << 30);
  EXPECT_EQ(*parse_bytes("100"), 100u);
  EXPECT_FALSE(parse_bytes("12 parsecs").has_value());
}

TEST(Config, GcsOptionsAndTheHiddenFaultHook) {
  Args a({"app", "--prism-gcs-snapshot=/tmp/x", "--prism-gcs-lineage=false",
          "--prism-gcs-fault=5:1500"});
  auto cfg = parse_config(a.argc, a.ptrs.data(), env_of({}));
  ASSERT_TRUE(cfg) << cfg.status().to_string();
  EXPECT_EQ(cfg->gcs_snapshot, "/tmp/x");
  EXPECT_FALSE(cfg->gcs_lineage);
  EXPECT_EQ(cfg->gcs_fault_rank, 5);
  EXPECT_EQ(cfg->gcs_fault_after_ms, 1500u);
  EXPECT_EQ(a.argc, 1);
  // From the environment too; malformed values are refused.
  Args b({"app"});
  cfg = parse_config(b.argc, b.ptrs.data(), env_of({{"PRISM_GCS_FAULT", "3:0"}}));
  ASSERT_TRUE(cfg);
  EXPECT_EQ(cfg->gcs_fault_rank, 3);
  for (const char* bad : {"3", "x:1", "3:-1", ":5"}) {
    Args c({"app", std::string("--prism-gcs-fault=") + bad});
    EXPECT_FALSE(parse_config(c.argc, c.ptrs.data(), env_of({}))) << bad;
  }
  // Hidden: not listed for --prism-help or the docs.
  for (const auto& o : config_options()) EXPECT_NE(o.name, "gcs-fault");
}
