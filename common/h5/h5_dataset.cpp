// lpi::h5: datasets and hyperslab selections, typed reads and writes.
#include <cstring>
#include <functional>
#include <numeric>
#include <optional>

#include "common/h5/detail.hpp"
#include "common/h5/h5.hpp"
#include "common/h5/half_float.hpp"

namespace lpi::h5 {

using detail::check;

namespace {

int64_t product(const std::vector<int64_t>& v) {
  return std::accumulate(v.begin(), v.end(), int64_t{1}, std::multiplies<>());
}

// The file and memory spaces of a transfer: the whole dataset (count
// empty) or the hyperslab [offset, offset + count).
struct Spaces {
  Handle file, memory;
  int64_t n = 0;
  hid_t file_id() const { return file.valid() ? file.id() : H5S_ALL; }
  hid_t memory_id() const { return memory.valid() ? memory.id() : H5S_ALL; }
};

Spaces spaces(const Dataset& ds, const std::vector<int64_t>& offset,
              const std::vector<int64_t>& count) {
  const auto& at = ds.location();
  Spaces s;
  if (count.empty()) {
    s.n = ds.size();
    return s;
  }
  const auto rank = ds.shape().size();
  if (offset.size() != rank || count.size() != rank)
    throw UsageError("a selection of rank " + std::to_string(count.size()) + " on dataset " +
                         at.path + " of rank " + std::to_string(rank) + " in " + at.file,
                     at.file, at.path);
  std::vector<hsize_t> o(offset.begin(), offset.end()), c(count.begin(), count.end());
  s.file = Handle(static_cast<hid_t>(check<ReadError>(H5Dget_space(ds.id()), "the dataspace of",
                                                      at.file, at.path)),
                  H5Sclose);
  check<UsageError>(
      H5Sselect_hyperslab(s.file.id(), H5S_SELECT_SET, o.data(), nullptr, c.data(), nullptr),
      "select a hyperslab of", at.file, at.path);
  s.memory = detail::space(count, at, at.path);
  s.n = product(count);
  return s;
}

void expect_size(const Dataset& ds, int64_t selected, std::size_t n) {
  if (static_cast<int64_t>(n) == selected) return;
  const auto& at = ds.location();
  throw UsageError("a buffer of " + std::to_string(n) + " values for a selection of " +
                       std::to_string(selected) + " in dataset " + at.path + " of " + at.file,
                   at.file, at.path);
}

}  // namespace

std::vector<int64_t> Dataset::shape() const {
  const Handle sp(static_cast<hid_t>(
                      check<ReadError>(H5Dget_space(id()), "the dataspace of", at_.file, at_.path)),
                  H5Sclose);
  const int rank = static_cast<int>(
      check<ReadError>(H5Sget_simple_extent_ndims(sp.id()), "the rank of", at_.file, at_.path));
  std::vector<hsize_t> dims(static_cast<std::size_t>(rank));
  check<ReadError>(H5Sget_simple_extent_dims(sp.id(), dims.data(), nullptr), "the shape of",
                   at_.file, at_.path);
  return {dims.begin(), dims.end()};
}

int64_t Dataset::size() const {
  return product(shape());
}

Type Dataset::type() const {
  return Type::owned(Handle(
      static_cast<hid_t>(check<ReadError>(H5Dget_type(id()), "the type of", at_.file, at_.path)),
      H5Tclose));
}

Selection Dataset::select(std::vector<int64_t> offset, std::vector<int64_t> count) const {
  return Selection(*this, std::move(offset), std::move(count));
}

namespace {

// The 16-bit float format of a dataset of ours (Type::float16, bfloat16),
// when float32 data goes to or comes from it: converted here, not by HDF5
// (half_float.hpp says why).
std::optional<Half> half_of(const Dataset& ds, hid_t mem_type) {
  if (H5Tequal(mem_type, H5T_NATIVE_FLOAT) <= 0) return std::nullopt;
  const auto t = ds.type();
  if (H5Tget_class(t.id()) != H5T_FLOAT || t.size() != 2 || H5Tget_order(t.id()) != H5T_ORDER_LE)
    return std::nullopt;
  size_t spos = 0, epos = 0, esize = 0, mpos = 0, msize = 0;
  if (H5Tget_fields(t.id(), &spos, &epos, &esize, &mpos, &msize) < 0) return std::nullopt;
  if (spos == 15 && epos == 10 && esize == 5 && mpos == 0 && msize == 10 &&
      H5Tget_ebias(t.id()) == 15)
    return Half::ieee;
  if (spos == 15 && epos == 7 && esize == 8 && mpos == 0 && msize == 7 &&
      H5Tget_ebias(t.id()) == 127)
    return Half::bfloat;
  return std::nullopt;
}

}  // namespace

void Dataset::read_raw(hid_t mem_type, const std::vector<int64_t>& offset,
                       const std::vector<int64_t>& count, void* out, std::size_t n) const {
  const auto s = spaces(*this, offset, count);
  expect_size(*this, s.n, n);
  if (s.n == 0) return;
  if (const auto half = half_of(*this, mem_type)) {
    std::vector<uint16_t> bits(n);
    check<ReadError>(
        H5Dread(id(), type().id(), s.memory_id(), s.file_id(), at_.xfer(), bits.data()),
        "read dataset", at_.file, at_.path);
    from_half(bits.data(), n, *half, static_cast<float*>(out));
    return;
  }
  check<ReadError>(H5Dread(id(), mem_type, s.memory_id(), s.file_id(), at_.xfer(), out),
                   "read dataset", at_.file, at_.path);
}

void Dataset::write_raw(hid_t mem_type, const std::vector<int64_t>& offset,
                        const std::vector<int64_t>& count, const void* data, std::size_t n) const {
  const auto s = spaces(*this, offset, count);
  expect_size(*this, s.n, n);
  if (s.n == 0) return;
  if (const auto half = half_of(*this, mem_type)) {
    std::vector<uint16_t> bits(n);
    to_half(static_cast<const float*>(data), n, *half, bits.data());
    check<WriteError>(
        H5Dwrite(id(), type().id(), s.memory_id(), s.file_id(), at_.xfer(), bits.data()),
        "write dataset", at_.file, at_.path);
    return;
  }
  check<WriteError>(H5Dwrite(id(), mem_type, s.memory_id(), s.file_id(), at_.xfer(), data),
                    "write dataset", at_.file, at_.path);
}

// Strings of either kind: variable length through pointers, fixed length
// packed at the dataset's width (null-padded, cut to width).
std::vector<std::string> Dataset::read_strings(const std::vector<int64_t>& offset,
                                               const std::vector<int64_t>& count) const {
  const auto t = type();
  if (!t.is_string())
    throw UsageError("dataset " + at_.path + " in " + at_.file + " does not hold strings", at_.file,
                     at_.path);
  const auto s = spaces(*this, offset, count);
  std::vector<std::string> out;
  if (s.n == 0) return out;
  if (t.is_variable_string()) {
    const auto mem = Type::variable_string();
    std::vector<char*> ptrs(static_cast<std::size_t>(s.n), nullptr);
    check<ReadError>(H5Dread(id(), mem.id(), s.memory_id(), s.file_id(), at_.xfer(), ptrs.data()),
                     "read dataset", at_.file, at_.path);
    for (char* p : ptrs) {
      out.emplace_back(p ? p : "");
      H5free_memory(p);
    }
    return out;
  }
  const std::size_t width = t.size();
  std::string buf(static_cast<std::size_t>(s.n) * width, '\0');
  check<ReadError>(H5Dread(id(), t.id(), s.memory_id(), s.file_id(), at_.xfer(), buf.data()),
                   "read dataset", at_.file, at_.path);
  for (int64_t i = 0; i < s.n; ++i) {
    std::string e = buf.substr(static_cast<std::size_t>(i) * width, width);
    out.push_back(e.substr(0, e.find('\0')));
  }
  return out;
}

void Dataset::write_strings(const std::vector<int64_t>& offset, const std::vector<int64_t>& count,
                            const std::vector<std::string>& values) const {
  const auto t = type();
  if (!t.is_string())
    throw UsageError("dataset " + at_.path + " in " + at_.file + " does not hold strings", at_.file,
                     at_.path);
  const auto s = spaces(*this, offset, count);
  expect_size(*this, s.n, values.size());
  if (s.n == 0) return;
  if (t.is_variable_string()) {
    const auto mem = Type::variable_string();
    std::vector<const char*> ptrs;
    for (const auto& v : values) ptrs.push_back(v.c_str());
    check<WriteError>(H5Dwrite(id(), mem.id(), s.memory_id(), s.file_id(), at_.xfer(), ptrs.data()),
                      "write dataset", at_.file, at_.path);
    return;
  }
  const std::size_t width = t.size();
  std::vector<char> buf(values.size() * width, '\0');
  for (std::size_t i = 0; i < values.size(); ++i)
    std::memcpy(&buf[i * width], values[i].data(), std::min(width, values[i].size()));
  check<WriteError>(H5Dwrite(id(), t.id(), s.memory_id(), s.file_id(), at_.xfer(), buf.data()),
                    "write dataset", at_.file, at_.path);
}

template <>
std::vector<std::string> Dataset::read<std::string>() const {
  return read_strings({}, {});
}

template <>
void Dataset::write<std::string>(const std::vector<std::string>& values) const {
  write_strings({}, {}, values);
}

int64_t Selection::size() const {
  return product(count_);
}

template <>
std::vector<std::string> Selection::read<std::string>() const {
  return ds_->read_strings(offset_, count_);
}

template <>
void Selection::write<std::string>(const std::vector<std::string>& values) const {
  ds_->write_strings(offset_, count_, values);
}

}  // namespace lpi::h5
