#include "common/store/h5.hpp"

#include <cstdio>

namespace lpi::store {

namespace {

herr_t collect(unsigned n, const H5E_error2_t* e, void* out) {
  auto* text = static_cast<std::string*>(out);
  if (n < 4) {
    *text +=
        "\n  " + std::string(e->func_name ? e->func_name : "?") + ": " + (e->desc ? e->desc : "");
  }
  return 0;
}

Handle dataspace(const std::vector<int64_t>& shape) {
  std::vector<hsize_t> dims(shape.begin(), shape.end());
  return Handle(static_cast<hid_t>(
                    check(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr),
                          "create dataspace")),
                H5Sclose);
}

void write(hid_t parent, const std::string& name, const std::vector<int64_t>& shape,
           hid_t file_type, hid_t mem_type, const void* data) {
  const auto space = dataspace(shape);
  const Handle ds(static_cast<hid_t>(check(H5Dcreate2(parent, name.c_str(), file_type, space.id(),
                                                      H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
                                           "create dataset '" + name + "'")),
                  H5Dclose);
  check(H5Dwrite(ds.id(), mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data),
        "write dataset '" + name + "'");
}

template <class T>
std::vector<T> read(hid_t parent, const std::string& name, hid_t mem_type) {
  const auto shape = dataset_shape(parent, name);
  int64_t n = 1;
  for (auto d : shape) n *= d;
  std::vector<T> out(static_cast<std::size_t>(n));
  const Handle ds(static_cast<hid_t>(check(H5Dopen2(parent, name.c_str(), H5P_DEFAULT),
                                           "open dataset '" + name + "'")),
                  H5Dclose);
  if (n > 0)
    check(H5Dread(ds.id(), mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data()),
          "read '" + name + "'");
  return out;
}

Handle string_type() {
  Handle t(static_cast<hid_t>(check(H5Tcopy(H5T_C_S1), "copy string type")), H5Tclose);
  check(H5Tset_size(t.id(), H5T_VARIABLE), "variable-length string type");
  check(H5Tset_cset(t.id(), H5T_CSET_UTF8), "UTF-8 string type");
  return t;
}

Handle open_attr(hid_t object, const std::string& name) {
  return Handle(static_cast<hid_t>(check(H5Aopen(object, name.c_str(), H5P_DEFAULT),
                                         "open attribute '" + name + "'")),
                H5Aclose);
}

Handle create_attr(hid_t object, const std::string& name, hid_t type) {
  const Handle space(static_cast<hid_t>(check(H5Screate(H5S_SCALAR), "scalar dataspace")),
                     H5Sclose);
  if (H5Aexists(object, name.c_str()) > 0)
    check(H5Adelete(object, name.c_str()), "replace attribute '" + name + "'");
  return Handle(static_cast<hid_t>(check(
                    H5Acreate2(object, name.c_str(), type, space.id(), H5P_DEFAULT, H5P_DEFAULT),
                    "create attribute '" + name + "'")),
                H5Aclose);
}

}  // namespace

void silence_hdf5_errors() {
  static const bool done = [] {
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
    return true;
  }();
  (void)done;
}

int64_t check(int64_t rc, const std::string& what) {
  if (rc >= 0) return rc;
  std::string stack;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, collect, &stack);
  H5Eclear2(H5E_DEFAULT);
  throw H5Error("HDF5: " + what + " failed" + stack);
}

Handle& Handle::operator=(Handle&& o) noexcept {
  if (this != &o) {
    this->~Handle();
    id_ = o.id_;
    close_ = o.close_;
    o.id_ = H5I_INVALID_HID;
  }
  return *this;
}

Handle::~Handle() {
  if (id_ >= 0 && close_ && close_(id_) < 0) {
    std::fprintf(stderr, "lpi-store: warning: closing an HDF5 object failed\n");
  }
  id_ = H5I_INVALID_HID;
}

Handle create_file(const std::string& path) {
  silence_hdf5_errors();
  return Handle(
      static_cast<hid_t>(check(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT),
                               "create file " + path)),
      H5Fclose);
}

Handle open_file(const std::string& path) {
  silence_hdf5_errors();
  return Handle(static_cast<hid_t>(
                    check(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), "open file " + path)),
                H5Fclose);
}

Handle open_file_rw(const std::string& path) {
  silence_hdf5_errors();
  return Handle(static_cast<hid_t>(check(H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT),
                                         "open file " + path + " for writing")),
                H5Fclose);
}

Handle create_group(hid_t parent, const std::string& name) {
  return Handle(static_cast<hid_t>(
                    check(H5Gcreate2(parent, name.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
                          "create group '" + name + "'")),
                H5Gclose);
}

Handle open_group(hid_t parent, const std::string& name) {
  return Handle(static_cast<hid_t>(check(H5Gopen2(parent, name.c_str(), H5P_DEFAULT),
                                         "open group '" + name + "'")),
                H5Gclose);
}

void write_f32(hid_t p, const std::string& n, const std::vector<int64_t>& s, const float* d) {
  write(p, n, s, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, d);
}
void write_i32(hid_t p, const std::string& n, const std::vector<int64_t>& s, const int32_t* d) {
  write(p, n, s, H5T_STD_I32LE, H5T_NATIVE_INT32, d);
}
void write_i64(hid_t p, const std::string& n, const std::vector<int64_t>& s, const int64_t* d) {
  write(p, n, s, H5T_STD_I64LE, H5T_NATIVE_INT64, d);
}
void write_f64(hid_t p, const std::string& n, const std::vector<int64_t>& s, const double* d) {
  write(p, n, s, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, d);
}

void write_strings(hid_t parent, const std::string& name, const std::vector<std::string>& values) {
  std::vector<const char*> ptrs;
  for (const auto& v : values) ptrs.push_back(v.c_str());
  const auto type = string_type();
  write(parent, name, {static_cast<int64_t>(values.size())}, type.id(), type.id(), ptrs.data());
}

void set_attr(hid_t object, const std::string& name, const std::string& value) {
  const auto type = string_type();
  const auto attr = create_attr(object, name, type.id());
  const char* p = value.c_str();
  check(H5Awrite(attr.id(), type.id(), &p), "write attribute '" + name + "'");
}

void set_attr(hid_t object, const std::string& name, int64_t value) {
  const auto attr = create_attr(object, name, H5T_STD_I64LE);
  check(H5Awrite(attr.id(), H5T_NATIVE_INT64, &value), "write attribute '" + name + "'");
}

void set_attr(hid_t object, const std::string& name, double value) {
  const auto attr = create_attr(object, name, H5T_IEEE_F64LE);
  check(H5Awrite(attr.id(), H5T_NATIVE_DOUBLE, &value), "write attribute '" + name + "'");
}

std::vector<int64_t> dataset_shape(hid_t parent, const std::string& name) {
  const Handle ds(static_cast<hid_t>(check(H5Dopen2(parent, name.c_str(), H5P_DEFAULT),
                                           "open dataset '" + name + "'")),
                  H5Dclose);
  const Handle space(
      static_cast<hid_t>(check(H5Dget_space(ds.id()), "dataspace of '" + name + "'")), H5Sclose);
  const int rank =
      static_cast<int>(check(H5Sget_simple_extent_ndims(space.id()), "rank of '" + name + "'"));
  std::vector<hsize_t> dims(static_cast<std::size_t>(rank));
  check(H5Sget_simple_extent_dims(space.id(), dims.data(), nullptr), "shape of '" + name + "'");
  return {dims.begin(), dims.end()};
}

std::vector<float> read_f32(hid_t p, const std::string& n) {
  return read<float>(p, n, H5T_NATIVE_FLOAT);
}
std::vector<double> read_f64(hid_t p, const std::string& n) {
  return read<double>(p, n, H5T_NATIVE_DOUBLE);
}
std::vector<int32_t> read_i32(hid_t p, const std::string& n) {
  return read<int32_t>(p, n, H5T_NATIVE_INT32);
}
std::vector<int64_t> read_i64(hid_t p, const std::string& n) {
  return read<int64_t>(p, n, H5T_NATIVE_INT64);
}

std::vector<std::string> read_strings(hid_t parent, const std::string& name) {
  const auto n = dataset_shape(parent, name).at(0);
  std::vector<char*> ptrs(static_cast<std::size_t>(n), nullptr);
  const auto type = string_type();
  const Handle ds(static_cast<hid_t>(check(H5Dopen2(parent, name.c_str(), H5P_DEFAULT),
                                           "open dataset '" + name + "'")),
                  H5Dclose);
  if (n > 0)
    check(H5Dread(ds.id(), type.id(), H5S_ALL, H5S_ALL, H5P_DEFAULT, ptrs.data()),
          "read '" + name + "'");
  std::vector<std::string> out;
  for (char* p : ptrs) {
    out.emplace_back(p ? p : "");
    H5free_memory(p);
  }
  return out;
}

std::string attr_string(hid_t object, const std::string& name) {
  const auto attr = open_attr(object, name);
  const auto type = string_type();
  char* p = nullptr;
  check(H5Aread(attr.id(), type.id(), &p), "read attribute '" + name + "'");
  std::string out = p ? p : "";
  H5free_memory(p);
  return out;
}

int64_t attr_int(hid_t object, const std::string& name) {
  const auto attr = open_attr(object, name);
  int64_t v = 0;
  check(H5Aread(attr.id(), H5T_NATIVE_INT64, &v), "read attribute '" + name + "'");
  return v;
}

}  // namespace lpi::store
