// prism-gcs-dump: prints a GCS snapshot (tasks by state, objects, actors,
// nodes). Several files (one per GCS rank) are merged shard by shard.
//
//   prism-gcs-dump prism-run-42/gcs.h5
//   prism-gcs-dump prism-run-42/gcs-*.h5 --table tasks --state failed
#include <CLI/CLI.hpp>

#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "gcs/snapshot.hpp"

namespace {

using namespace prism;
using namespace prism::gcs;

std::string ids(const std::vector<ObjectId>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? " " : "") + v[i].to_string();
  return s + "]";
}

std::string ranks(const std::vector<int32_t>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? " " : "") + std::to_string(v[i]);
  return s + "]";
}

std::string resources(const std::map<std::string, double>& total,
                      const std::map<std::string, double>& avail) {
  std::string s;
  for (const auto& [k, v] : total) {
    auto it = avail.find(k);
    char buf[128];
    std::snprintf(buf, sizeof buf, "%s%s %g/%g", s.empty() ? "" : ", ", k.c_str(),
                  it == avail.end() ? 0.0 : it->second, v);
    s += buf;
  }
  return s.empty() ? "-" : s;
}

bool limited(size_t shown, size_t limit) {
  return limit != 0 && shown >= limit;
}

void print_tasks(const SnapshotData& d, const std::string& state_filter, size_t limit) {
  std::map<TaskState, std::vector<const std::pair<TaskId, TaskRecord>*>> by_state;
  for (const auto& row : d.tasks) by_state[row.second.state].push_back(&row);
  std::printf("tasks: %zu", d.tasks.size());
  for (TaskState s :
       {TaskState::kPending, TaskState::kRunning, TaskState::kFinished, TaskState::kFailed})
    std::printf("  %s %zu", task_state_name(s), by_state[s].size());
  std::printf("\n");
  for (const auto& [state, rows] : by_state) {
    if (rows.empty() || (!state_filter.empty() && state_filter != task_state_name(state))) continue;
    std::printf("  %s:\n", task_state_name(state));
    size_t shown = 0;
    for (const auto* row : rows) {
      if (limited(shown++, limit)) {
        std::printf("    ... %zu more\n", rows.size() - limit);
        break;
      }
      const TaskRecord& t = row->second;
      std::printf("    %-20s %-24s node %-4d args %s parent %s\n", row->first.to_string().c_str(),
                  t.function_name.c_str(), t.node, ids(t.args).c_str(),
                  t.parent.is_nil() ? "-" : t.parent.to_string().c_str());
    }
  }
}

void print_objects(const SnapshotData& d, size_t limit) {
  std::printf("objects: %zu\n", d.objects.size());
  size_t shown = 0;
  for (const auto& [id, o] : d.objects) {
    if (limited(shown++, limit)) {
      std::printf("  ... %zu more\n", d.objects.size() - limit);
      break;
    }
    std::printf("  %-20s size %-10llu owner %-4d locations %s\n", id.to_string().c_str(),
                static_cast<unsigned long long>(o.size), o.owner, ranks(o.locations).c_str());
  }
}

void print_actors(const SnapshotData& d, size_t limit) {
  std::printf("actors: %zu\n", d.actors.size());
  size_t shown = 0;
  for (const auto& [id, a] : d.actors) {
    if (limited(shown++, limit)) {
      std::printf("  ... %zu more\n", d.actors.size() - limit);
      break;
    }
    if (is_actor_name_key(id)) {  // a name row: the name and the actor it names
      std::printf("  name %-15s -> %s\n", ("'" + a.name + "'").c_str(), a.actor.to_string().c_str());
      continue;
    }
    std::printf("  %-20s %-24s node %-4d %-10s restarts %u%s\n", id.to_string().c_str(),
                a.class_name.c_str(), a.node, actor_state_name(a.state), a.restarts,
                a.name.empty() ? "" : ("  name '" + a.name + "'").c_str());
  }
}

void print_nodes(const SnapshotData& d, size_t limit) {
  std::printf("nodes: %zu\n", d.nodes.size());
  size_t shown = 0;
  for (const auto& [r, n] : d.nodes) {
    if (limited(shown++, limit)) {
      std::printf("  ... %zu more\n", d.nodes.size() - limit);
      break;
    }
    std::printf("  rank %-4d %-5s queue %-5u heartbeat %llu us  free/total: %s\n", r,
                n.alive ? "alive" : "dead", n.queue_length,
                static_cast<unsigned long long>(n.last_heartbeat_us),
                resources(n.resources, n.available).c_str());
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Print a Prism GCS snapshot (HDF5)"};
  std::vector<std::string> files;
  std::vector<std::string> tables;
  std::string state;
  size_t limit = 0;
  app.add_option("files", files, "snapshot files; several are merged shard by shard")
      ->required()
      ->check(CLI::ExistingFile);
  app.add_option("-t,--table", tables, "only these tables: tasks, objects, actors, nodes")
      ->check(CLI::IsMember({"tasks", "objects", "actors", "nodes"}));
  app.add_option("-s,--state", state, "only tasks in this state")
      ->check(CLI::IsMember({"pending", "running", "finished", "failed"}));
  app.add_option("-n,--limit", limit, "rows per section (0 = all)");
  CLI11_PARSE(app, argc, argv);

  std::vector<SnapshotData> parts;
  for (const auto& f : files) {
    auto d = read_snapshot(f);
    if (!d) {
      std::fprintf(stderr, "prism-gcs-dump: %s\n", d.status().to_string().c_str());
      return 1;
    }
    parts.push_back(std::move(*d));
  }
  auto merged = merge_snapshots(std::move(parts));
  if (!merged) {
    std::fprintf(stderr, "prism-gcs-dump: %s\n", merged.status().to_string().c_str());
    return 1;
  }
  const SnapshotData& d = *merged;
  auto want = [&](const char* t) {
    if (tables.empty()) return true;
    for (const auto& x : tables)
      if (x == t) return true;
    return false;
  };

  std::printf("GCS snapshot: %d shard(s), %d replica(s) each, GCS ranks %s\n", d.shards, d.replicas,
              ranks(d.gcs_ranks).c_str());
  for (const auto& s : d.shard_info)
    std::printf("  shard %d: epoch %llu chain %s, copy of rank %d (applied %llu, committed %llu)\n",
                s.shard, static_cast<unsigned long long>(s.epoch), ranks(s.chain).c_str(),
                s.source_rank, static_cast<unsigned long long>(s.applied),
                static_cast<unsigned long long>(s.committed));
  if (!d.shard_info.empty() && d.shard_info.size() < static_cast<size_t>(d.shards))
    std::printf("  warning: %zu of %d shards missing\n",
                static_cast<size_t>(d.shards) - d.shard_info.size(), d.shards);
  if (want("tasks")) print_tasks(d, state, limit);
  if (want("objects")) print_objects(d, limit);
  if (want("actors")) print_actors(d, limit);
  if (want("nodes")) print_nodes(d, limit);
  return 0;
}
