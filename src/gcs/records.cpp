#include "gcs/records.hpp"

namespace prism::gcs {

ActorId actor_name_key(std::string_view name) noexcept {
  uint64_t h = 1469598103934665603ull;  // FNV-1a
  for (char c : name) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ull;
  return ActorId{kActorNameOwner, 0, h == 0 ? 1 : h};
}

Status validate_task_run(const TaskId& first, const TaskRecord& rec) {
  if (first.is_nil()) return {Errc::kInvalidArgument, "task row for the nil task id"};
  if (rec.run == 0 || first.seq % kTaskBlock + rec.run > kTaskBlock)
    return {Errc::kInvalidArgument, "task run of " + std::to_string(rec.run) + " from " +
                                        first.to_string() + " crosses its block of " +
                                        std::to_string(kTaskBlock)};
  return Status::ok();
}

bool follows_task_run(const TaskId& first, uint32_t run, const TaskId& next) {
  return next.owner_rank == first.owner_rank && next.index == first.index &&
         next.seq == first.seq + run && task_block(next) == task_block(first);
}

bool joins_task_run(const TaskId& first, const TaskRecord& first_rec, uint32_t run,
                    const TaskId& next, const TaskRecord& next_rec) {
  return follows_task_run(first, run, next) && next_rec == first_rec;
}

const char* table_name(TableId t) noexcept {
  return visit_table(
      t, [](auto tag) { return decltype(tag)::name; }, [] { return "unknown"; });
}

namespace {
// Ok if `decoded(tag)` (a key or a record read as one of `table`'s) holds a
// value: kNotFound for an unknown table, kInvalidArgument for bad bytes.
template <class Decode>
Status validate_as(TableId table, Decode decoded) {
  return visit_table(
      table,
      [&](auto tag) -> Status {
        auto v = decoded(tag);
        return v ? Status::ok() : Status{Errc::kInvalidArgument, v.status().message()};
      },
      [&] {
        return Status{Errc::kNotFound, "unknown table " + std::to_string(static_cast<int>(table))};
      });
}
}  // namespace

Status validate_key(TableId table, std::span<const std::byte> key) {
  return validate_as(table, [&](auto tag) { return decode_key<decltype(tag)>(key); });
}

Status validate_record(TableId table, std::span<const std::byte> record) {
  return validate_as(table, [&](auto tag) { return decode_record<decltype(tag)>(record); });
}

}  // namespace prism::gcs
