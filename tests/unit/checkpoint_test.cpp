// Actor checkpoints alone (src/actor/checkpoint.cpp): what a class's save
// hook writes comes back through the HDF5 file image, and misuse fails
// with an error naming the dataset.
#include <gtest/gtest.h>

#include <cstdint>
#include <prism/checkpoint.hpp>
#include <string>
#include <vector>

#include "actor/checkpoint_image.hpp"

namespace prism {
namespace {

struct State {
  int32_t step = 0;
  double loss = 0;
  std::vector<float> weights;
  std::vector<uint64_t> empty;
  std::string label;
};

void save(const void* self, Checkpoint& cp) {
  const auto& s = *static_cast<const State*>(self);
  cp.write("step", s.step);
  cp.write("loss", s.loss);
  cp.write("weights", s.weights);
  cp.write("empty", s.empty);
  cp.write("label", s.label);
}

void load(void* self, const Checkpoint& cp) {
  auto& s = *static_cast<State*>(self);
  s.step = cp.read<int32_t>("step");
  s.loss = cp.read<double>("loss");
  s.weights = cp.read_vector<float>("weights");
  s.empty = cp.read_vector<uint64_t>("empty");
  s.label = cp.read_string("label");
}

TEST(Checkpoint, WhatASaveHookWritesComesBackThroughTheImage) {
  State a{42, 0.125, {1.5f, -2.0f, 3.25f}, {}, "policy v3"};
  a.weights.resize(100'000, 0.5f);  // larger than the in-memory file's first block
  const auto image = actors::save_checkpoint(&save, &a);
  EXPECT_GT(image.size(), a.weights.size() * sizeof(float));
  State b;
  actors::load_checkpoint(image, &load, &b);
  EXPECT_EQ(b.step, 42);
  EXPECT_EQ(b.loss, 0.125);
  EXPECT_EQ(b.weights, a.weights);
  EXPECT_TRUE(b.empty.empty());
  EXPECT_EQ(b.label, "policy v3");
}

TEST(Checkpoint, MisuseFailsNamingTheDataset) {
  State a{1, 2, {3}, {}, "x"};
  const auto image = actors::save_checkpoint(&save, &a);
  auto expect_error = [&](void (*hook)(void*, const Checkpoint&), const std::string& words) {
    State b;
    try {
      actors::load_checkpoint(image, hook, &b);
      ADD_FAILURE() << "no error for: " << words;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(words), std::string::npos) << e.what();
    }
  };
  expect_error([](void*, const Checkpoint& cp) { cp.read<int32_t>("nope"); },
               "checkpoint dataset 'nope' is missing");
  expect_error([](void*, const Checkpoint& cp) { cp.read<int64_t>("step"); },
               "'step' was written with another element type");
  expect_error([](void*, const Checkpoint& cp) { cp.read<int32_t>("weights"); }, "'weights' holds");
  State c;
  EXPECT_THROW(actors::save_checkpoint(
                   [](const void*, Checkpoint& cp) {
                     cp.write("twice", 1);
                     cp.write("twice", 2);
                   },
                   &c),
               Error);
  const std::vector<std::byte> junk(100, std::byte{7});
  try {
    actors::load_checkpoint(junk, &load, &c);
    ADD_FAILURE() << "junk loaded";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("not an actor checkpoint"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace prism
