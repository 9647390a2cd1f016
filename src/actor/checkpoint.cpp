// prism::Checkpoint (include/prism/checkpoint.hpp) over the HDF5 C API, and
// the in-memory file images checkpoints travel as (checkpoint_image.hpp).
#include <hdf5.h>

#include <atomic>
#include <mutex>
#include <string>
#include <utility>

#include "actor/checkpoint_image.hpp"
#include "common/hdf5_lock.hpp"

namespace prism {
namespace {

hid_t native(CheckpointType t) {
  switch (t) {
    case CheckpointType::kI8:
      return H5T_NATIVE_INT8;
    case CheckpointType::kU8:
      return H5T_NATIVE_UINT8;
    case CheckpointType::kI16:
      return H5T_NATIVE_INT16;
    case CheckpointType::kU16:
      return H5T_NATIVE_UINT16;
    case CheckpointType::kI32:
      return H5T_NATIVE_INT32;
    case CheckpointType::kU32:
      return H5T_NATIVE_UINT32;
    case CheckpointType::kI64:
      return H5T_NATIVE_INT64;
    case CheckpointType::kU64:
      return H5T_NATIVE_UINT64;
    case CheckpointType::kF32:
      return H5T_NATIVE_FLOAT;
    case CheckpointType::kF64:
      return H5T_NATIVE_DOUBLE;
  }
  return H5T_NATIVE_UINT8;
}

// Closes an HDF5 id when it goes out of scope.
class Id {
 public:
  Id(hid_t id, herr_t (*close)(hid_t)) : id_(id), close_(close) {}
  ~Id() {
    if (id_ >= 0) close_(id_);
  }
  Id(const Id&) = delete;
  Id& operator=(const Id&) = delete;
  hid_t get() const noexcept { return id_; }
  bool ok() const noexcept { return id_ >= 0; }

 private:
  hid_t id_;
  herr_t (*close_)(hid_t);
};

std::string dataset(std::string_view name) {
  return "checkpoint dataset '" + std::string(name) + "'";
}

// HDF5 prints its error stack on failure; a missing dataset is an error we
// report ourselves, so silence it while checking.
bool exists(hid_t group, const std::string& name) {
  return H5Lexists(group, name.c_str(), H5P_DEFAULT) > 0;
}

// A fresh name per in-memory file: HDF5 refuses to create a file whose name
// is open already, even with no backing store.
std::string image_name() {
  static std::atomic<uint64_t> n{0};
  return "prism-checkpoint-" + std::to_string(n.fetch_add(1));
}

}  // namespace

void Checkpoint::write_array(std::string_view name, CheckpointType type, const void* data, size_t n,
                             bool scalar) {
  const std::string key(name);
  if (key.empty()) throw Error("a checkpoint dataset needs a name");
  if (exists(group_, key)) throw Error(dataset(name) + " is written twice");
  const hsize_t dims[1] = {n};
  Id space(scalar ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, dims, nullptr), H5Sclose);
  Id set(H5Dcreate2(group_, key.c_str(), native(type), space.get(), H5P_DEFAULT, H5P_DEFAULT,
                    H5P_DEFAULT),
         H5Dclose);
  if (!space.ok() || !set.ok()) throw Error("could not create " + dataset(name));
  if (n > 0 && H5Dwrite(set.get(), native(type), H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0)
    throw Error("could not write " + dataset(name));
}

void Checkpoint::write_string(std::string_view name, std::string_view text) {
  write_array(name, CheckpointType::kU8, text.data(), text.size(), false);
}

void Checkpoint::read_array(std::string_view name, CheckpointType type, void* data, size_t n,
                            bool scalar) const {
  const std::string key(name);
  if (!exists(group_, key)) throw Error(dataset(name) + " is missing");
  Id set(H5Dopen2(group_, key.c_str(), H5P_DEFAULT), H5Dclose);
  if (!set.ok()) throw Error("could not open " + dataset(name));
  Id space(H5Dget_space(set.get()), H5Sclose);
  const bool is_scalar = H5Sget_simple_extent_type(space.get()) == H5S_SCALAR;
  const auto points = static_cast<size_t>(H5Sget_simple_extent_npoints(space.get()));
  if (is_scalar != scalar || points != n)
    throw Error(dataset(name) + " holds " +
                (is_scalar ? std::string("one value") : std::to_string(points) + " values") +
                ", not what is read");
  Id stored(H5Dget_type(set.get()), H5Tclose);
  if (H5Tequal(stored.get(), native(type)) <= 0)
    throw Error(dataset(name) + " was written with another element type");
  if (n > 0 && H5Dread(set.get(), native(type), H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0)
    throw Error("could not read " + dataset(name));
}

std::string Checkpoint::read_string(std::string_view name) const {
  std::string s(size(name), '\0');
  read_array(name, CheckpointType::kU8, s.data(), s.size(), false);
  return s;
}

bool Checkpoint::contains(std::string_view name) const {
  return exists(group_, std::string(name));
}

size_t Checkpoint::size(std::string_view name) const {
  const std::string key(name);
  if (!exists(group_, key)) throw Error(dataset(name) + " is missing");
  Id set(H5Dopen2(group_, key.c_str(), H5P_DEFAULT), H5Dclose);
  if (!set.ok()) throw Error("could not open " + dataset(name));
  Id space(H5Dget_space(set.get()), H5Sclose);
  return static_cast<size_t>(H5Sget_simple_extent_npoints(space.get()));
}

}  // namespace prism

namespace prism::actors {

std::vector<std::byte> save_checkpoint(detail::CheckpointSaver save, const void* instance) {
  std::lock_guard lk(hdf5_mutex());
  Id fapl(H5Pcreate(H5P_FILE_ACCESS), H5Pclose);
  if (!fapl.ok() || H5Pset_fapl_core(fapl.get(), 64 * 1024, /*backing_store=*/0) < 0)
    throw Error("checkpoint: could not set up an in-memory HDF5 file");
  std::vector<std::byte> image;
  {
    Id file(H5Fcreate(image_name().c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl.get()), H5Fclose);
    if (!file.ok()) throw Error("checkpoint: could not create an in-memory HDF5 file");
    {
      Id group(H5Gcreate2(file.get(), "actor", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose);
      if (!group.ok()) throw Error("checkpoint: could not create its group");
      Checkpoint cp(group.get());
      save(instance, cp);
    }
    if (H5Fflush(file.get(), H5F_SCOPE_GLOBAL) < 0) throw Error("checkpoint: flush failed");
    const ssize_t n = H5Fget_file_image(file.get(), nullptr, 0);
    if (n <= 0) throw Error("checkpoint: could not take the file image");
    image.resize(static_cast<size_t>(n));
    if (H5Fget_file_image(file.get(), image.data(), image.size()) != n)
      throw Error("checkpoint: could not copy the file image");
  }
  return image;
}

void load_checkpoint(std::span<const std::byte> image, detail::CheckpointLoader load,
                     void* instance) {
  std::lock_guard lk(hdf5_mutex());
  Id fapl(H5Pcreate(H5P_FILE_ACCESS), H5Pclose);
  // HDF5 takes a copy of the image (no H5LT flags): `image` may go after open.
  if (!fapl.ok() || H5Pset_fapl_core(fapl.get(), 64 * 1024, 0) < 0 ||
      H5Pset_file_image(fapl.get(), const_cast<std::byte*>(image.data()), image.size()) < 0)
    throw Error("checkpoint: could not set up an in-memory HDF5 file");
  // Not an HDF5 image: fail with our message, without HDF5's error stack.
  H5E_auto2_t handler = nullptr;
  void* data = nullptr;
  H5Eget_auto2(H5E_DEFAULT, &handler, &data);
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  Id file(H5Fopen(image_name().c_str(), H5F_ACC_RDONLY, fapl.get()), H5Fclose);
  Id group(file.ok() ? H5Gopen2(file.get(), "actor", H5P_DEFAULT) : -1, H5Gclose);
  H5Eset_auto2(H5E_DEFAULT, handler, data);
  if (!file.ok() || !group.ok())
    throw Error("checkpoint: " + std::to_string(image.size()) +
                " bytes that are not an actor checkpoint (HDF5 image with group 'actor')");
  const Checkpoint cp(group.get());
  load(instance, cp);
}

}  // namespace prism::actors
