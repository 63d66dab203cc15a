// lpi::h5: errors, handles, types, files, groups and attributes.
#include "common/h5/h5.hpp"

#include <cstdio>
#include <filesystem>

#include "common/h5/detail.hpp"

namespace lpi::h5 {

using detail::check;

Error::Error(const std::string& message, std::string file, std::string object, std::string stack)
    : std::runtime_error(message),
      file_(std::move(file)),
      object_(std::move(object)),
      stack_(std::move(stack)) {}

namespace detail {

namespace {

herr_t collect(unsigned n, const H5E_error2_t* e, void* out) {
  auto* text = static_cast<std::string*>(out);
  if (n < 4) {
    *text +=
        "\n  " + std::string(e->func_name ? e->func_name : "?") + ": " + (e->desc ? e->desc : "");
  }
  return 0;
}

}  // namespace

std::string error_stack() {
  std::string stack;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, collect, &stack);
  H5Eclear2(H5E_DEFAULT);
  return stack;
}

Handle space(const std::vector<int64_t>& dims, const Location& at, const std::string& object) {
  std::vector<hsize_t> d(dims.begin(), dims.end());
  return Handle(static_cast<hid_t>(
                    check<Error>(H5Screate_simple(static_cast<int>(d.size()), d.data(), nullptr),
                                 "create the dataspace of", at.file, object)),
                H5Sclose);
}

}  // namespace detail

void silence_errors() {
  static const bool done = [] {
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
    return true;
  }();
  (void)done;
}

// ---- Handle, Type, Location -----------------------------------------------

Handle& Handle::operator=(Handle&& o) noexcept {
  if (this != &o) {
    close();
    id_ = o.id_;
    close_ = o.close_;
    o.id_ = H5I_INVALID_HID;
  }
  return *this;
}

Handle::~Handle() {
  close();
}

void Handle::close() noexcept {
  if (id_ >= 0 && close_ && close_(id_) < 0) {
    std::fprintf(stderr, "lpi-h5: warning: closing an HDF5 object failed%s\n",
                 detail::error_stack().c_str());
  }
  id_ = H5I_INVALID_HID;
}

namespace {

Handle string_type(std::size_t size, bool fixed) {
  Handle t(static_cast<hid_t>(check<Error>(H5Tcopy(H5T_C_S1), "copy the string type", "", "")),
           H5Tclose);
  check<Error>(H5Tset_size(t.id(), fixed ? std::max<std::size_t>(1, size) : H5T_VARIABLE),
               "size the string type", "", "");
  if (fixed) check<Error>(H5Tset_strpad(t.id(), H5T_STR_NULLPAD), "pad the string type", "", "");
  check<Error>(H5Tset_cset(t.id(), H5T_CSET_UTF8), "set UTF-8 on the string type", "", "");
  return t;
}

// A 16-bit little-endian float: sign at bit 15, `esize` exponent bits
// above `msize` mantissa bits, exponent bias `bias`.
Handle half_type(std::size_t esize, std::size_t msize, std::size_t bias) {
  Handle t(static_cast<hid_t>(check<Error>(H5Tcopy(H5T_IEEE_F32LE), "copy the float type", "", "")),
           H5Tclose);
  check<Error>(H5Tset_fields(t.id(), 15, msize, esize, 0, msize), "set a 16-bit float's fields", "",
               "");
  check<Error>(H5Tset_precision(t.id(), 16), "set a 16-bit float's precision", "", "");
  check<Error>(H5Tset_size(t.id(), 2), "size a 16-bit float", "", "");
  check<Error>(H5Tset_ebias(t.id(), bias), "set a 16-bit float's exponent bias", "", "");
  return t;
}

}  // namespace

Type Type::float16() {
  return Type(half_type(5, 10, 15));
}
Type Type::bfloat16() {
  return Type(half_type(8, 7, 127));
}

Type Type::fixed_string(std::size_t width) {
  return Type(string_type(width, true));
}
Type Type::variable_string() {
  return Type(string_type(0, false));
}
bool Type::is_string() const {
  return H5Tget_class(id()) == H5T_STRING;
}
bool Type::is_variable_string() const {
  return is_string() && H5Tis_variable_str(id()) > 0;
}
std::size_t Type::size() const {
  return H5Tget_size(id());
}

std::string Location::child(const std::string& name) const {
  if (path.empty() || path == "/") return name;
  return path + "/" + name;
}

// ---- attributes -----------------------------------------------------------

Type Attribute::type() const {
  return Type::owned(Handle(static_cast<hid_t>(check<ReadError>(
                                H5Aget_type(h_.id()), "the type of attribute", at_.file, at_.path)),
                            H5Tclose));
}

template <>
int64_t Attribute::read<int64_t>() const {
  int64_t v = 0;
  check<ReadError>(H5Aread(h_.id(), H5T_NATIVE_INT64, &v), "read attribute", at_.file, at_.path);
  return v;
}

template <>
double Attribute::read<double>() const {
  double v = 0;
  check<ReadError>(H5Aread(h_.id(), H5T_NATIVE_DOUBLE, &v), "read attribute", at_.file, at_.path);
  return v;
}

// A string attribute, fixed or variable length.
template <>
std::string Attribute::read<std::string>() const {
  const auto t = type();
  if (!t.is_string())
    throw UsageError("attribute " + at_.path + " in " + at_.file + " is not a string", at_.file,
                     at_.path);
  if (t.is_variable_string()) {
    const auto mem = Type::variable_string();
    char* p = nullptr;
    check<ReadError>(H5Aread(h_.id(), mem.id(), &p), "read attribute", at_.file, at_.path);
    std::string out = p ? p : "";
    H5free_memory(p);
    return out;
  }
  std::string buf(t.size(), '\0');
  check<ReadError>(H5Aread(h_.id(), t.id(), buf.data()), "read attribute", at_.file, at_.path);
  return buf.substr(0, buf.find('\0'));
}

// ---- Node -----------------------------------------------------------------

bool Node::exists(const std::string& name) const {
  return H5Lexists(id(), name.c_str(), H5P_DEFAULT) > 0;
}

Group Node::create_group(const std::string& name) const {
  Location at = at_;
  at.path = at_.child(name);
  return Group(Handle(static_cast<hid_t>(check<WriteError>(
                          H5Gcreate2(id(), name.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
                          "create group", at.file, at.path)),
                      H5Gclose),
               at);
}

Group Node::group(const std::string& name) const {
  Location at = at_;
  at.path = at_.child(name);
  return Group(Handle(static_cast<hid_t>(check<ReadError>(H5Gopen2(id(), name.c_str(), H5P_DEFAULT),
                                                          "open group", at.file, at.path)),
                      H5Gclose),
               at);
}

Dataset Node::create_dataset(const std::string& name, const Type& type,
                             const DatasetSpec& spec) const {
  Location at = at_;
  at.path = at_.child(name);
  const auto ck = [&](int64_t rc, const char* what) {
    return check<WriteError>(rc, what, at.file, at.path);
  };
  const bool defaults = spec.chunk.empty() && !spec.early_allocation &&
                        spec.fill_time == FillTime::library_default && !spec.fill_value;
  Handle dcpl;
  if (!defaults) {
    dcpl = Handle(static_cast<hid_t>(ck(H5Pcreate(H5P_DATASET_CREATE), "the creation list of")),
                  H5Pclose);
    if (spec.early_allocation)
      ck(H5Pset_alloc_time(dcpl.id(), H5D_ALLOC_TIME_EARLY), "early allocation of");
    if (!spec.chunk.empty()) {
      std::vector<hsize_t> c(spec.chunk.begin(), spec.chunk.end());
      ck(H5Pset_chunk(dcpl.id(), static_cast<int>(c.size()), c.data()), "chunks of");
    }
    if (spec.fill_time != FillTime::library_default)
      ck(H5Pset_fill_time(dcpl.id(), spec.fill_time == FillTime::never ? H5D_FILL_TIME_NEVER
                                                                       : H5D_FILL_TIME_ALLOC),
         "the fill time of");
    if (spec.fill_value)
      ck(H5Pset_fill_value(dcpl.id(), H5T_NATIVE_INT64, &*spec.fill_value), "the fill value of");
  }
  const auto sp = detail::space(spec.dims, at, at.path);
  return Dataset(
      Handle(static_cast<hid_t>(ck(H5Dcreate2(id(), name.c_str(), type.id(), sp.id(), H5P_DEFAULT,
                                              defaults ? H5P_DEFAULT : dcpl.id(), H5P_DEFAULT),
                                   "create dataset")),
             H5Dclose),
      at);
}

Dataset Node::dataset(const std::string& name, bool chunk_cache) const {
  Location at = at_;
  at.path = at_.child(name);
  Handle dapl;
  if (!chunk_cache) {
    dapl = Handle(static_cast<hid_t>(check<ReadError>(H5Pcreate(H5P_DATASET_ACCESS),
                                                      "the access list of", at.file, at.path)),
                  H5Pclose);
    check<ReadError>(H5Pset_chunk_cache(dapl.id(), 0, 0, 1.0), "turn off the chunk cache of",
                     at.file, at.path);
  }
  return Dataset(Handle(static_cast<hid_t>(check<ReadError>(
                            H5Dopen2(id(), name.c_str(), chunk_cache ? H5P_DEFAULT : dapl.id()),
                            "open dataset", at.file, at.path)),
                        H5Dclose),
                 at);
}

Dataset Node::write_dataset(const std::string& name, const std::vector<std::string>& values) const {
  auto ds = create_dataset(name, Type::variable_string(),
                           DatasetSpec::plain({static_cast<int64_t>(values.size())}));
  ds.write(values);
  return ds;
}

namespace {

void write_attribute(const Node& n, const std::string& name, const Type& type, hid_t mem,
                     const void* data) {
  const auto& at = n.location();
  const auto object = at.child("@" + name);
  const Handle scalar(static_cast<hid_t>(check<WriteError>(
                          H5Screate(H5S_SCALAR), "a scalar dataspace for", at.file, object)),
                      H5Sclose);
  if (H5Aexists(n.id(), name.c_str()) > 0)
    check<WriteError>(H5Adelete(n.id(), name.c_str()), "replace attribute", at.file, object);
  const Handle a(
      static_cast<hid_t>(check<WriteError>(
          H5Acreate2(n.id(), name.c_str(), type.id(), scalar.id(), H5P_DEFAULT, H5P_DEFAULT),
          "create attribute", at.file, object)),
      H5Aclose);
  check<WriteError>(H5Awrite(a.id(), mem, data), "write attribute", at.file, object);
}

}  // namespace

void Node::set_attribute(const std::string& name, int64_t value) const {
  write_attribute(*this, name, dtype<int64_t>::file(), dtype<int64_t>::memory(), &value);
}

void Node::set_attribute(const std::string& name, double value) const {
  write_attribute(*this, name, dtype<double>::file(), dtype<double>::memory(), &value);
}

void Node::set_attribute(const std::string& name, const std::string& value, Str kind) const {
  if (kind == Str::variable) {
    const auto t = Type::variable_string();
    const char* p = value.c_str();
    write_attribute(*this, name, t, t.id(), &p);
    return;
  }
  const auto t = Type::fixed_string(value.size());
  const std::string padded = value.empty() ? std::string(1, '\0') : value;
  write_attribute(*this, name, t, t.id(), padded.data());
}

Attribute Node::attribute(const std::string& name) const {
  Location at = at_;
  at.path = at_.child("@" + name);
  return Attribute(
      Handle(static_cast<hid_t>(check<ReadError>(H5Aopen(id(), name.c_str(), H5P_DEFAULT),
                                                 "open attribute", at.file, at.path)),
             H5Aclose),
      at);
}

bool Node::has_attribute(const std::string& name) const {
  return H5Aexists(id(), name.c_str()) > 0;
}

namespace {

herr_t collect_name(hid_t, const char* name, const H5A_info_t*, void* out) {
  static_cast<std::vector<std::string>*>(out)->push_back(name);
  return 0;
}

}  // namespace

std::vector<std::string> Node::attribute_names() const {
  std::vector<std::string> names;
  hsize_t at = 0;
  check<ReadError>(H5Aiterate2(id(), H5_INDEX_NAME, H5_ITER_INC, &at, collect_name, &names),
                   "list the attributes of", at_.file, at_.path.empty() ? "/" : at_.path);
  return names;
}

std::optional<std::pair<std::string, std::string>> Node::external_link(
    const std::string& name) const {
  if (!exists(name)) return std::nullopt;
  const auto object = at_.child(name);
  H5L_info_t info;
  check<ReadError>(H5Lget_info(id(), name.c_str(), &info, H5P_DEFAULT), "the link", at_.file,
                   object);
  if (info.type != H5L_TYPE_EXTERNAL) return std::nullopt;
  std::string value(info.u.val_size, '\0');
  check<ReadError>(H5Lget_val(id(), name.c_str(), value.data(), value.size(), H5P_DEFAULT),
                   "the value of link", at_.file, object);
  const char *file = nullptr, *target = nullptr;
  unsigned flags = 0;
  check<ReadError>(H5Lunpack_elink_val(value.data(), value.size(), &flags, &file, &target),
                   "the external link", at_.file, object);
  return std::pair<std::string, std::string>(file, target);
}

void Node::create_external_link(const std::string& name, const std::string& file,
                                const std::string& object) const {
  check<WriteError>(H5Lcreate_external(file.c_str(), object.c_str(), id(), name.c_str(),
                                       H5P_DEFAULT, H5P_DEFAULT),
                    "link to " + file + ":" + object + " from", at_.file, at_.child(name));
}

void Node::remove(const std::string& name) const {
  check<WriteError>(H5Ldelete(id(), name.c_str(), H5P_DEFAULT), "remove", at_.file,
                    at_.child(name));
}

// ---- File -----------------------------------------------------------------

namespace {

Handle access_list(const std::optional<Parallel>& parallel, const std::string& path) {
  if (!parallel) return Handle();
  Handle fapl(static_cast<hid_t>(
                  check<OpenError>(H5Pcreate(H5P_FILE_ACCESS), "a file access list for", path, "")),
              H5Pclose);
  MPI_Info info = MPI_INFO_NULL;
  if (!parallel->hints.empty()) {
    MPI_Info_create(&info);
    for (const auto& [k, v] : parallel->hints) MPI_Info_set(info, k.c_str(), v.c_str());
  }
  const auto rc = H5Pset_fapl_mpio(fapl.id(), parallel->comm, info);
  if (info != MPI_INFO_NULL) MPI_Info_free(&info);
  check<OpenError>(rc, "MPI-IO access to", path, "");
  return fapl;
}

Location file_location(const std::string& path, const std::optional<Parallel>& parallel) {
  Location at{path, "", nullptr};
  if (parallel) {
    auto dxpl =
        std::make_shared<Handle>(static_cast<hid_t>(check<OpenError>(
                                     H5Pcreate(H5P_DATASET_XFER), "a transfer list for", path, "")),
                                 H5Pclose);
    check<OpenError>(H5Pset_dxpl_mpio(dxpl->id(), H5FD_MPIO_INDEPENDENT),
                     "independent transfers for", path, "");
    at.transfer = std::move(dxpl);
  }
  return at;
}

}  // namespace

File File::create(const std::string& path, Create how, const std::optional<Parallel>& parallel) {
  silence_errors();
  const auto fapl = access_list(parallel, path);
  const unsigned flags = how == Create::exclusive ? H5F_ACC_EXCL : H5F_ACC_TRUNC;
  Handle h(static_cast<hid_t>(check<OpenError>(
               H5Fcreate(path.c_str(), flags, H5P_DEFAULT, fapl.valid() ? fapl.id() : H5P_DEFAULT),
               "create file", path, "")),
           H5Fclose);
  return File(std::move(h), file_location(path, parallel));
}

File File::open(const std::string& path, Mode mode, const std::optional<Parallel>& parallel) {
  silence_errors();
  if (!std::filesystem::exists(path))
    throw OpenError("HDF5 file " + path + " does not exist", path, "");
  const auto fapl = access_list(parallel, path);
  const hid_t id = H5Fopen(path.c_str(), mode == Mode::read ? H5F_ACC_RDONLY : H5F_ACC_RDWR,
                           fapl.valid() ? fapl.id() : H5P_DEFAULT);
  if (id < 0) {
    const auto stack = detail::error_stack();  // before H5Fis_hdf5 replaces it
    if (!is_hdf5(path)) throw OpenError(path + " is not an HDF5 file", path, "", stack);
    throw OpenError(std::string("HDF5: ") + (mode == Mode::read ? "open" : "open for writing") +
                        " file " + path + " failed" + stack,
                    path, "", stack);
  }
  Handle h(id, H5Fclose);
  return File(std::move(h), file_location(path, parallel));
}

bool File::is_hdf5(const std::string& path) {
  silence_errors();
  const auto rc = H5Fis_hdf5(path.c_str());
  if (rc < 0) detail::error_stack();
  return rc > 0;
}

void File::flush() const {
  check<WriteError>(H5Fflush(id(), H5F_SCOPE_GLOBAL), "flush file", at_.file, "");
}

}  // namespace lpi::h5
