// A thin checked layer over the HDF5 C API: every call goes through check(),
// which turns a failure into H5Error carrying what was being done and the
// library's own error stack; every hid_t lives in a move-only Handle whose
// destructor closes it and never throws. Serial use here; the sweep store
// opens the same files with the MPI-IO driver.
#pragma once

#include <hdf5.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace lpi::store {

class H5Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Quiet HDF5's own printing (once per process): errors reach the user through H5Error.
void silence_hdf5_errors();

// Throws H5Error("what: <HDF5 error stack>") when rc < 0; returns rc.
int64_t check(int64_t rc, const std::string& what);

class Handle {
 public:
  Handle() = default;
  Handle(hid_t id, herr_t (*close)(hid_t)) : id_(id), close_(close) {}
  Handle(Handle&& o) noexcept : id_(o.id_), close_(o.close_) { o.id_ = H5I_INVALID_HID; }
  Handle& operator=(Handle&& o) noexcept;
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  ~Handle();
  hid_t id() const { return id_; }

 private:
  hid_t id_ = H5I_INVALID_HID;
  herr_t (*close_)(hid_t) = nullptr;
};

Handle create_file(const std::string& path);   // truncates
Handle open_file(const std::string& path);     // read-only
Handle open_file_rw(const std::string& path);  // read-write
Handle create_group(hid_t parent, const std::string& name);
Handle open_group(hid_t parent, const std::string& name);

// Datasets of float32, int32 or int64 with the given shape (row-major data).
void write_f32(hid_t parent, const std::string& name, const std::vector<int64_t>& shape,
               const float* data);
void write_i32(hid_t parent, const std::string& name, const std::vector<int64_t>& shape,
               const int32_t* data);
void write_i64(hid_t parent, const std::string& name, const std::vector<int64_t>& shape,
               const int64_t* data);
void write_f64(hid_t parent, const std::string& name, const std::vector<int64_t>& shape,
               const double* data);
// A 1-d dataset of variable-length UTF-8 strings.
void write_strings(hid_t parent, const std::string& name, const std::vector<std::string>& values);

void set_attr(hid_t object, const std::string& name, const std::string& value);
void set_attr(hid_t object, const std::string& name, int64_t value);
void set_attr(hid_t object, const std::string& name, double value);

// Reading back (tools and tests).
std::vector<int64_t> dataset_shape(hid_t parent, const std::string& name);
std::vector<float> read_f32(hid_t parent, const std::string& name);
std::vector<double> read_f64(hid_t parent, const std::string& name);
std::vector<int32_t> read_i32(hid_t parent, const std::string& name);
std::vector<int64_t> read_i64(hid_t parent, const std::string& name);
std::vector<std::string> read_strings(hid_t parent, const std::string& name);
std::string attr_string(hid_t object, const std::string& name);
int64_t attr_int(hid_t object, const std::string& name);

}  // namespace lpi::store
