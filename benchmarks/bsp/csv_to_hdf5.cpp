// Writes CSV files into one HDF5 file, a group per CSV and a 1-D dataset per
// column (float64 when every value parses as a number, strings otherwise),
// so that the sweep's results open in h5py, h5dump or HDFView without a
// CSV parser. Usage: csv_to_hdf5 OUT.h5 GROUP=FILE.csv [GROUP=FILE.csv ...]
#include <hdf5.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace {

std::vector<std::string> split(const std::string& line) {
  std::vector<std::string> out;
  std::stringstream ss(line);
  for (std::string cell; std::getline(ss, cell, ',');) out.push_back(cell);
  if (!line.empty() && line.back() == ',') out.emplace_back();
  return out;
}

bool as_number(const std::string& s, double& v) {
  if (s.empty()) return false;
  char* end = nullptr;
  v = std::strtod(s.c_str(), &end);
  return end == s.c_str() + s.size();
}

bool write_group(hid_t file, const std::string& group, const std::string& path) {
  std::ifstream in(path);
  std::string line;
  if (!std::getline(in, line)) {
    std::fprintf(stderr, "csv_to_hdf5: %s is empty or missing\n", path.c_str());
    return false;
  }
  const std::vector<std::string> header = split(line);
  std::vector<std::vector<std::string>> columns(header.size());
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    auto cells = split(line);
    cells.resize(header.size());
    for (size_t c = 0; c < header.size(); ++c) columns[c].push_back(cells[c]);
  }
  const hid_t g = H5Gcreate2(file, group.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  if (g < 0) return false;
  bool ok = true;
  for (size_t c = 0; c < header.size(); ++c) {
    const hsize_t n = columns[c].size();
    const hid_t space = H5Screate_simple(1, &n, nullptr);
    std::vector<double> numbers(n);
    bool numeric = n > 0;
    for (hsize_t i = 0; i < n && numeric; ++i) numeric = as_number(columns[c][i], numbers[i]);
    hid_t type = H5T_NATIVE_DOUBLE, owned = -1;
    std::vector<const char*> strings;
    if (!numeric) {
      owned = type = H5Tcopy(H5T_C_S1);
      H5Tset_size(type, H5T_VARIABLE);
      for (const auto& s : columns[c]) strings.push_back(s.c_str());
    }
    const hid_t d =
        H5Dcreate2(g, header[c].c_str(), type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    ok = ok && d >= 0 &&
         H5Dwrite(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT,
                  numeric ? static_cast<const void*>(numbers.data()) : strings.data()) >= 0;
    if (d >= 0) H5Dclose(d);
    if (owned >= 0) H5Tclose(owned);
    H5Sclose(space);
  }
  H5Gclose(g);
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s OUT.h5 GROUP=FILE.csv [GROUP=FILE.csv ...]\n", argv[0]);
    return 2;
  }
  const hid_t file = H5Fcreate(argv[1], H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  if (file < 0) return 1;
  bool ok = true;
  for (int a = 2; a < argc; ++a) {
    const std::string arg = argv[a];
    const size_t eq = arg.find('=');
    if (eq == std::string::npos) {
      std::fprintf(stderr, "csv_to_hdf5: expected GROUP=FILE.csv, got %s\n", arg.c_str());
      ok = false;
      continue;
    }
    ok = write_group(file, "/" + arg.substr(0, eq), arg.substr(eq + 1)) && ok;
  }
  H5Fclose(file);
  return ok ? 0 : 1;
}
