#include "object_store/spill_file.hpp"

#include <hdf5.h>

#include <filesystem>
#include <mutex>

#include "common/hdf5_lock.hpp"

namespace prism::object_store {

Status write_spill_file(const std::string& path, std::span<const std::byte> bytes) {
  std::lock_guard lk(hdf5_mutex());
  hid_t file = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  if (file < 0) return {Errc::kInternal, "cannot create spill file " + path};
  hsize_t dims[1] = {bytes.size()};
  hid_t space = H5Screate_simple(1, dims, nullptr);
  hid_t dset =
      H5Dcreate2(file, "data", H5T_NATIVE_UINT8, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  herr_t w = dset >= 0 && !bytes.empty()
                 ? H5Dwrite(dset, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, bytes.data())
                 : (dset >= 0 ? 0 : -1);
  if (dset >= 0) H5Dclose(dset);
  H5Sclose(space);
  herr_t c = H5Fclose(file);
  if (w < 0 || c < 0)
    return {Errc::kInternal, "writing spill file " + path + " failed (disk full?)"};
  return Status::ok();
}

Status read_spill_file(const std::string& path, std::span<std::byte> into) {
  const uint64_t expected_size = into.size();
  // Checked first: HDF5 would print its error stack for a missing file.
  if (std::error_code ec; !std::filesystem::exists(path, ec))
    return Status{Errc::kNotFound, "spill file " + path + " is missing"};
  std::lock_guard lk(hdf5_mutex());
  hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  if (file < 0) return Status{Errc::kNotFound, "spill file " + path + " is missing"};
  hid_t dset = H5Dopen2(file, "data", H5P_DEFAULT);
  Status st;
  if (dset < 0) {
    st = {Errc::kMalformedMessage, "spill file " + path + " has no dataset 'data'"};
  } else {
    hid_t space = H5Dget_space(dset);
    hsize_t n = static_cast<hsize_t>(H5Sget_simple_extent_npoints(space));
    H5Sclose(space);
    if (n != expected_size) {
      st = {Errc::kMalformedMessage, "spill file " + path + " holds " + std::to_string(n) +
                                         " bytes, expected " + std::to_string(expected_size)};
    } else {
      if (n && H5Dread(dset, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, into.data()) < 0)
        st = {Errc::kInternal, "reading spill file " + path + " failed"};
    }
    H5Dclose(dset);
  }
  H5Fclose(file);
  return st;
}

}  // namespace prism::object_store
