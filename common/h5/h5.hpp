// lpi::h5: a typed layer over the HDF5 C API (serial, or parallel through
// MPI-IO with the caller's communicator). Every C call goes through one
// checked wrapper that throws a typed h5::Error carrying HDF5's own error
// stack and naming the file and the object; every hid_t lives in a
// move-only handle whose destructor never throws (it logs).
//
//   auto f = h5::File::create("x.h5");
//   f.set_attribute("format", "my format");
//   auto ds = f.create_dataset("a", h5::dtype<float>::file(), {{4, 3}});
//   ds.select({1, 0}, {2, 3}).write(std::vector<float>(6, 1.0f));
//   std::vector<float> all = ds.read<float>();
#pragma once

#include <hdf5.h>
#include <mpi.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace lpi::h5 {

// ---- errors ---------------------------------------------------------------

// What went wrong, on which object of which file, and HDF5's error stack.
class Error : public std::runtime_error {
 public:
  Error(const std::string& message, std::string file, std::string object, std::string stack = "");
  const std::string& file() const { return file_; }
  const std::string& object() const { return object_; }
  const std::string& stack() const { return stack_; }

 private:
  std::string file_, object_, stack_;
};
struct OpenError : Error {  // a file missing, not HDF5, locked or not creatable
  using Error::Error;
};
struct ReadError : Error {
  using Error::Error;
};
struct WriteError : Error {  // creating or writing an object
  using Error::Error;
};
struct UsageError : Error {  // wrong use: a buffer of the wrong size, a type that does not fit
  using Error::Error;
};

// Quiets HDF5's own printing (once per process): errors reach the user as h5::Error.
void silence_errors();

// ---- handles and types ----------------------------------------------------

// Owns one hid_t; closing failures are logged, never thrown.
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
  bool valid() const { return id_ >= 0; }

 private:
  void close() noexcept;
  hid_t id_ = H5I_INVALID_HID;
  herr_t (*close_)(hid_t) = nullptr;
};

// A datatype: a predefined one (borrowed) or a string type (owned).
class Type {
 public:
  static Type predefined(hid_t id) { return Type(id); }
  static Type owned(Handle h) { return Type(std::move(h)); }  // from H5Dget_type and the like
  static Type fixed_string(std::size_t width);                // UTF-8, null-padded, width >= 1
  static Type variable_string();                              // UTF-8
  // 16-bit floats, little-endian: IEEE half (h5py and numpy read it as
  // float16) and bfloat16 (float32's sign and exponent, 7 mantissa bits).
  // float32 data written to or read from either is converted by this layer
  // (rounded to nearest even; half_float.hpp), not by HDF5.
  static Type float16();
  static Type bfloat16();
  hid_t id() const { return owned_.valid() ? owned_.id() : id_; }
  bool is_string() const;
  bool is_variable_string() const;
  std::size_t size() const;  // bytes per element

 private:
  explicit Type(hid_t id) : id_(id) {}
  explicit Type(Handle owned) : owned_(std::move(owned)) {}
  hid_t id_ = H5I_INVALID_HID;
  Handle owned_;
};

// The file (little-endian) and memory (native) types of a C++ element type.
template <class T>
struct dtype;
template <>
struct dtype<float> {
  static Type file() { return Type::predefined(H5T_IEEE_F32LE); }
  static hid_t memory() { return H5T_NATIVE_FLOAT; }
};
template <>
struct dtype<double> {
  static Type file() { return Type::predefined(H5T_IEEE_F64LE); }
  static hid_t memory() { return H5T_NATIVE_DOUBLE; }
};
template <>
struct dtype<int32_t> {
  static Type file() { return Type::predefined(H5T_STD_I32LE); }
  static hid_t memory() { return H5T_NATIVE_INT32; }
};
template <>
struct dtype<int64_t> {
  static Type file() { return Type::predefined(H5T_STD_I64LE); }
  static hid_t memory() { return H5T_NATIVE_INT64; }
};
template <>
struct dtype<uint8_t> {
  static Type file() { return Type::predefined(H5T_STD_U8LE); }
  static hid_t memory() { return H5T_NATIVE_UINT8; }
};

// How a new dataset is laid out. The defaults are HDF5's own (contiguous,
// late allocation, library fill); `chunk` empty means contiguous.
enum class FillTime { library_default, alloc, never };
struct DatasetSpec {
  std::vector<int64_t> dims;
  std::vector<int64_t> chunk;
  bool early_allocation = false;
  FillTime fill_time = FillTime::library_default;
  std::optional<int64_t> fill_value;  // converted to the dataset's type
  static DatasetSpec plain(std::vector<int64_t> dims) {
    DatasetSpec s;
    s.dims = std::move(dims);
    return s;
  }
};

// Where an object lives, for messages and for children: the file's name,
// the object's path and the transfer list of its file.
struct Location {
  std::string file, path;
  std::shared_ptr<const Handle> transfer;  // H5P_DEFAULT when empty
  hid_t xfer() const { return transfer ? transfer->id() : H5P_DEFAULT; }
  std::string child(const std::string& name) const;
};

// ---- attributes -----------------------------------------------------------

class Attribute {
 public:
  Attribute(Handle h, Location at) : h_(std::move(h)), at_(std::move(at)) {}
  // T: int64_t, double or std::string (fixed or variable length).
  template <class T>
  T read() const;
  Type type() const;
  const Location& location() const { return at_; }

 private:
  Handle h_;
  Location at_;
};

enum class Str { variable, fixed };

class Dataset;

// A file or a group: children, datasets and attributes by name (a name may be a path).
class Node {
 public:
  hid_t id() const { return h_.id(); }
  const Location& location() const { return at_; }
  bool exists(const std::string& name) const;

  class Group create_group(const std::string& name) const;
  class Group group(const std::string& name) const;

  Dataset create_dataset(const std::string& name, const Type& type, const DatasetSpec& spec) const;
  // Opens a dataset; `chunk_cache` false: no raw-data chunk cache, so that a
  // write is handed to the file when it returns.
  Dataset dataset(const std::string& name, bool chunk_cache = true) const;
  // Creates a dataset with HDF5's default layout and writes it whole.
  template <class T>
  Dataset write_dataset(const std::string& name, const std::vector<int64_t>& dims, const T* data,
                        std::size_t n) const;
  template <class T>
  Dataset write_dataset(const std::string& name, const std::vector<int64_t>& dims,
                        const std::vector<T>& data) const;
  // A 1-d dataset of variable-length UTF-8 strings.
  Dataset write_dataset(const std::string& name, const std::vector<std::string>& values) const;

  // Scalar attributes, replaced if present: int64, float64, UTF-8 strings.
  void set_attribute(const std::string& name, int64_t value) const;
  void set_attribute(const std::string& name, double value) const;
  void set_attribute(const std::string& name, const std::string& value,
                     Str kind = Str::variable) const;
  void set_attribute(const std::string& name, const char* value, Str kind = Str::variable) const {
    set_attribute(name, std::string(value), kind);
  }
  // Links: an external link's (file, object), if `name` is one; a new
  // external link; removing a link.
  std::optional<std::pair<std::string, std::string>> external_link(const std::string& name) const;
  void create_external_link(const std::string& name, const std::string& file,
                            const std::string& object) const;
  void remove(const std::string& name) const;

  Attribute attribute(const std::string& name) const;
  bool has_attribute(const std::string& name) const;
  std::vector<std::string> attribute_names() const;

 protected:
  Node() = default;
  Node(Handle h, Location at) : h_(std::move(h)), at_(std::move(at)) {}
  Handle h_;
  Location at_;
};

class Group : public Node {
 public:
  Group(Handle h, Location at) : Node(std::move(h), std::move(at)) {}
};

// Parallel access: the caller's communicator and MPI-IO hints. Transfers
// of such a file are independent MPI-IO.
struct Parallel {
  MPI_Comm comm = MPI_COMM_NULL;
  std::vector<std::pair<std::string, std::string>> hints;
};

enum class Mode { read, read_write };
enum class Create { truncate, exclusive };

class File : public Node {
 public:
  static File create(const std::string& path, Create how = Create::truncate,
                     const std::optional<Parallel>& parallel = std::nullopt);
  static File open(const std::string& path, Mode mode = Mode::read,
                   const std::optional<Parallel>& parallel = std::nullopt);
  static bool is_hdf5(const std::string& path);
  File() = default;
  void flush() const;
  void close() { *this = File(); }
  const std::string& path() const { return at_.file; }

 private:
  File(Handle h, Location at) : Node(std::move(h), std::move(at)) {}
};

// ---- datasets and selections ----------------------------------------------

class Selection;

class Dataset {
 public:
  Dataset() = default;
  Dataset(Handle h, Location at) : h_(std::move(h)), at_(std::move(at)) {}
  hid_t id() const { return h_.id(); }
  const Location& location() const { return at_; }
  std::vector<int64_t> shape() const;
  int64_t size() const;  // elements
  Type type() const;

  // The hyperslab [offset, offset + count).
  Selection select(std::vector<int64_t> offset, std::vector<int64_t> count) const;

  // Whole dataset. T: float, double, int32_t, int64_t, uint8_t, std::string.
  template <class T>
  std::vector<T> read() const;
  template <class T>
  void write(const std::vector<T>& values) const;

  // Raw access for the typed wrappers (`count` empty: the whole dataset).
  void read_raw(hid_t mem_type, const std::vector<int64_t>& offset,
                const std::vector<int64_t>& count, void* out, std::size_t n) const;
  void write_raw(hid_t mem_type, const std::vector<int64_t>& offset,
                 const std::vector<int64_t>& count, const void* data, std::size_t n) const;
  std::vector<std::string> read_strings(const std::vector<int64_t>& offset,
                                        const std::vector<int64_t>& count) const;
  void write_strings(const std::vector<int64_t>& offset, const std::vector<int64_t>& count,
                     const std::vector<std::string>& values) const;

 private:
  Handle h_;
  Location at_;
};

class Selection {
 public:
  Selection(const Dataset& ds, std::vector<int64_t> offset, std::vector<int64_t> count)
      : ds_(&ds), offset_(std::move(offset)), count_(std::move(count)) {}
  int64_t size() const;  // elements selected
  template <class T>
  std::vector<T> read() const {
    std::vector<T> out(static_cast<std::size_t>(size()));
    read(out.data(), out.size());
    return out;
  }
  template <class T>
  void read(T* out, std::size_t n) const {
    ds_->read_raw(dtype<T>::memory(), offset_, count_, out, n);
  }
  template <class T>
  void write(const T* data, std::size_t n) const {
    ds_->write_raw(dtype<T>::memory(), offset_, count_, data, n);
  }
  template <class T>
  void write(const std::vector<T>& values) const {
    write(values.data(), values.size());
  }

 private:
  const Dataset* ds_;
  std::vector<int64_t> offset_, count_;
};
template <>
std::vector<std::string> Selection::read<std::string>() const;
template <>
void Selection::write<std::string>(const std::vector<std::string>& values) const;

template <class T>
std::vector<T> Dataset::read() const {
  std::vector<T> out(static_cast<std::size_t>(size()));
  read_raw(dtype<T>::memory(), {}, {}, out.data(), out.size());
  return out;
}
template <>
std::vector<std::string> Dataset::read<std::string>() const;

template <class T>
void Dataset::write(const std::vector<T>& values) const {
  write_raw(dtype<T>::memory(), {}, {}, values.data(), values.size());
}
template <>
void Dataset::write<std::string>(const std::vector<std::string>& values) const;

template <class T>
Dataset Node::write_dataset(const std::string& name, const std::vector<int64_t>& dims,
                            const T* data, std::size_t n) const {
  auto ds = create_dataset(name, dtype<T>::file(), DatasetSpec::plain(dims));
  ds.write_raw(dtype<T>::memory(), {}, {}, data, n);
  return ds;
}

template <class T>
Dataset Node::write_dataset(const std::string& name, const std::vector<int64_t>& dims,
                            const std::vector<T>& data) const {
  return write_dataset(name, dims, data.data(), data.size());
}

}  // namespace lpi::h5
