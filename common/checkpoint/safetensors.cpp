// Safetensors reader: one memory-mapped file (SafetensorsFile) and a model
// folder of one or more such files (Checkpoint). Every header field, offset and
// size is validated before a byte of tensor data is handed out.
#include "common/checkpoint/safetensors.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
#include <set>
#include <utility>

#include <nlohmann/json.hpp>

#include "common/checkpoint/detail.hpp"
#include "common/json/json_text.hpp"

namespace lpi::checkpoint {

namespace fs = std::filesystem;
using nlohmann::json;

// --- dtypes -----------------------------------------------------------------

std::size_t dtype_size(DType dtype) {
  switch (dtype) {
    case DType::BF16:
    case DType::F16:
      return 2;
    case DType::F32:
      return 4;
  }
  return 0;
}

const char* dtype_name(DType dtype) {
  switch (dtype) {
    case DType::BF16:
      return "BF16";
    case DType::F16:
      return "F16";
    case DType::F32:
      return "F32";
  }
  return "?";
}

DType parse_dtype(const std::string& name, const fs::path& file, const std::string& tensor) {
  if (name == "BF16") return DType::BF16;
  if (name == "F16") return DType::F16;
  if (name == "F32") return DType::F32;
  throw CheckpointError(file.string() + ": tensor '" + tensor + "' has dtype '" + name +
                        "', which is not supported (expected BF16, F16 or F32)");
}

int64_t TensorInfo::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

namespace detail {

std::string pickle_refusal(const fs::path& path) {
  return path.string() +
         ": refusing to load a PyTorch pickle (.bin/.pt/.pth/.pkl/.ckpt): unpickling can run "
         "arbitrary code hidden in the file. Convert it to safetensors instead, in a trusted "
         "environment (a sandbox or a machine with nothing to lose), e.g. with\n"
         "  python -c \"import torch; from safetensors.torch import save_file; "
         "sd = torch.load('" +
         path.filename().string() +
         "', map_location='cpu', weights_only=True); "
         "save_file({k: v.contiguous().clone() for k, v in sd.items()}, 'model.safetensors', "
         "metadata={'format': 'pt'})\"\n"
         "(for a sharded pytorch_model-*.bin, convert each shard and write a "
         "model.safetensors.index.json), then put the .safetensors file(s) in the folder "
         "in place of the pickle";
}

bool is_pickle_path(const fs::path& path) {
  const std::string ext = path.extension().string();
  return ext == ".bin" || ext == ".pt" || ext == ".pth" || ext == ".pkl" || ext == ".ckpt";
}

bool checked_numel(const std::vector<int64_t>& shape, int64_t* out) {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) return false;
    if (d != 0 && n > std::numeric_limits<int64_t>::max() / d) return false;
    n *= d;
  }
  *out = n;
  return true;
}

std::string shape_string(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

std::string closest_name(const std::vector<std::string>& names, const std::string& wanted) {
  // Levenshtein distance; only used on the error path.
  std::string best;
  std::size_t best_distance = std::numeric_limits<std::size_t>::max();
  std::vector<std::size_t> prev(wanted.size() + 1), cur(wanted.size() + 1);
  for (const std::string& name : names) {
    for (std::size_t j = 0; j <= wanted.size(); ++j) prev[j] = j;
    for (std::size_t i = 1; i <= name.size(); ++i) {
      cur[0] = i;
      for (std::size_t j = 1; j <= wanted.size(); ++j) {
        const std::size_t sub = prev[j - 1] + (name[i - 1] == wanted[j - 1] ? 0 : 1);
        cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, sub});
      }
      std::swap(prev, cur);
    }
    if (prev[wanted.size()] < best_distance) {
      best_distance = prev[wanted.size()];
      best = name;
    }
  }
  // A hint only when the names are plausibly the same thing.
  if (best.empty() || best_distance > std::max<std::size_t>(3, wanted.size() / 4)) return {};
  return best;
}

}  // namespace detail

// --- SafetensorsFile ----------------------------------------------------------

namespace {

// The reference implementation refuses headers above 100 MB; so do we.
constexpr uint64_t kMaxHeaderSize = 100'000'000;

[[noreturn]] void fail(const fs::path& path, const std::string& what) {
  throw CheckpointError(path.string() + ": " + what);
}

[[noreturn]] void fail_tensor(const fs::path& path, const std::string& tensor,
                              const std::string& what) {
  throw CheckpointError(path.string() + ": tensor '" + tensor + "': " + what);
}

// A non-negative JSON integer (JSON numbers with a fraction or a sign are refused).
bool as_size(const json& value, uint64_t* out) {
  if (value.is_number_unsigned()) {
    *out = value.get<uint64_t>();
    return true;
  }
  if (value.is_number_integer() && value.get<int64_t>() >= 0) {
    *out = static_cast<uint64_t>(value.get<int64_t>());
    return true;
  }
  return false;
}

std::string json_type(const json& value) {
  if (value.is_number_float()) return "a non-integer number " + value.dump();
  if (value.is_number_integer() && value.get<int64_t>() < 0)
    return "a negative number " + value.dump();
  return std::string("a JSON ") + value.type_name();
}

TensorInfo parse_entry(const fs::path& path, const std::string& name, const json& entry,
                       std::size_t data_start, std::size_t data_size) {
  if (!entry.is_object())
    fail_tensor(path, name, "header entry is " + json_type(entry) + ", expected an object");
  for (const char* key : {"dtype", "shape", "data_offsets"})
    if (!entry.contains(key))
      fail_tensor(path, name, std::string("header entry has no '") + key + "'");

  TensorInfo info;
  info.name = name;
  info.file = path;
  const json& dtype = entry.at("dtype");
  if (!dtype.is_string())
    fail_tensor(path, name, "'dtype' is " + json_type(dtype) + ", expected a string");
  info.dtype = parse_dtype(dtype.get<std::string>(), path, name);

  const json& shape = entry.at("shape");
  if (!shape.is_array())
    fail_tensor(path, name, "'shape' is " + json_type(shape) + ", expected an array of integers");
  for (const json& dim : shape) {
    uint64_t d = 0;
    if (!as_size(dim, &d) || d > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      fail_tensor(path, name,
                  "'shape' " + json_text::brief(shape) + " has a dimension that is " +
                      json_type(dim) + ", expected non-negative integers");
    info.shape.push_back(static_cast<int64_t>(d));
  }

  const json& offsets = entry.at("data_offsets");
  uint64_t begin = 0, end = 0;
  if (!offsets.is_array() || offsets.size() != 2 || !as_size(offsets[0], &begin) ||
      !as_size(offsets[1], &end))
    fail_tensor(path, name,
                "'data_offsets' is " + json_text::brief(offsets) +
                    ", expected [begin, end] with non-negative integers");
  if (begin > end)
    fail_tensor(path, name, "'data_offsets' " + json_text::brief(offsets) + " has begin > end");
  if (end > data_size)
    fail_tensor(path, name,
                "'data_offsets' " + json_text::brief(offsets) + " end past the end of the data (" +
                    std::to_string(data_size) + " bytes; the file is truncated?)");

  int64_t numel = 0;
  const std::size_t item = dtype_size(info.dtype);
  if (!detail::checked_numel(info.shape, &numel) ||
      static_cast<uint64_t>(numel) > std::numeric_limits<uint64_t>::max() / item)
    fail_tensor(path, name, "shape " + detail::shape_string(info.shape) + " overflows");
  const uint64_t expected = static_cast<uint64_t>(numel) * item;
  if (end - begin != expected)
    fail_tensor(path, name,
                "'data_offsets' " + json_text::brief(offsets) + " span " +
                    std::to_string(end - begin) + " bytes, expected " + std::to_string(expected) +
                    " for " + dtype_name(info.dtype) + " " + detail::shape_string(info.shape));
  info.offset = data_start + static_cast<std::size_t>(begin);
  info.nbytes = static_cast<std::size_t>(expected);
  return info;
}

}  // namespace

SafetensorsFile::SafetensorsFile(const fs::path& path) : path_(path) {
  if (detail::is_pickle_path(path)) throw CheckpointError(detail::pickle_refusal(path));

  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail(path, std::string("cannot open: ") + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    fail(path, std::string("cannot stat: ") + std::strerror(err));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    fail(path, "not a regular file");
  }
  const auto file_size = static_cast<std::size_t>(st.st_size);
  if (file_size < 8) {
    ::close(fd);
    fail(path, "file is " + std::to_string(file_size) +
                   " bytes, shorter than the 8-byte safetensors header length");
  }
  void* map = ::mmap(nullptr, file_size, PROT_READ, MAP_PRIVATE, fd, 0);
  const int map_errno = errno;
  ::close(fd);  // the mapping keeps the file alive
  if (map == MAP_FAILED) fail(path, std::string("mmap failed: ") + std::strerror(map_errno));
  map_ = static_cast<const std::byte*>(map);
  map_size_ = file_size;

  // From here on the destructor will not run if we throw: unmap by hand.
  try {
    uint64_t header_len = 0;
    for (int i = 7; i >= 0; --i)
      header_len = (header_len << 8) | std::to_integer<uint64_t>(map_[i]);
    if (header_len > kMaxHeaderSize)
      fail(path, "header length " + std::to_string(header_len) + " is absurd (the limit is " +
                     std::to_string(kMaxHeaderSize) +
                     " bytes); this is not a safetensors file or its first 8 bytes are damaged");
    if (header_len > file_size - 8) {
      const unsigned char* b = reinterpret_cast<const unsigned char*>(map_);
      std::string hint;
      if (b[0] == 'P' && b[1] == 'K')
        hint = " (this looks like a PyTorch zip pickle, not safetensors)";
      if (b[0] == 0x80) hint = " (this looks like a Python pickle, not safetensors)";
      fail(path, "header length " + std::to_string(header_len) + " is larger than the file (" +
                     std::to_string(file_size) + " bytes)" + hint);
    }
    header_size_ = static_cast<std::size_t>(header_len);
    const char* header = reinterpret_cast<const char*>(map_ + 8);

    std::set<std::string> seen;
    std::string duplicate;
    auto on_event = [&](int depth, json::parse_event_t event, json& parsed) {
      if (event == json::parse_event_t::key && depth == 1 && duplicate.empty() &&
          !seen.insert(parsed.get<std::string>()).second)
        duplicate = parsed.get<std::string>();
      return true;
    };
    json root;
    try {
      root = json::parse(header, header + header_size_, on_event);
    } catch (const json::exception& e) {
      fail(path, std::string("header is not valid JSON: ") + e.what());
    }
    if (!root.is_object()) fail(path, "header is " + json_type(root) + ", expected a JSON object");
    if (!duplicate.empty()) fail_tensor(path, duplicate, "appears twice in the header");

    const std::size_t data_start = 8 + header_size_;
    const std::size_t data_size = file_size - data_start;
    for (const auto& [name, entry] : root.items()) {
      if (name == "__metadata__") {
        if (!entry.is_object())
          fail(path, "'__metadata__' is " + json_type(entry) + ", expected an object of strings");
        for (const auto& [key, value] : entry.items()) {
          if (!value.is_string())
            fail(path, "'__metadata__' entry '" + key + "' is " + json_type(value) +
                           ", expected a string");
          metadata_[key] = value.get<std::string>();
        }
        continue;
      }
      tensors_.emplace(name, parse_entry(path, name, entry, data_start, data_size));
    }

    // Overlap check: sort by begin, each tensor must end before the next begins.
    std::vector<const TensorInfo*> by_offset;
    for (const auto& [name, info] : tensors_) by_offset.push_back(&info);
    std::sort(by_offset.begin(), by_offset.end(), [](const TensorInfo* a, const TensorInfo* b) {
      return a->offset != b->offset ? a->offset < b->offset : a->nbytes < b->nbytes;
    });
    for (std::size_t i = 1; i < by_offset.size(); ++i) {
      const TensorInfo* a = by_offset[i - 1];
      const TensorInfo* b = by_offset[i];
      if (a->nbytes != 0 && b->nbytes != 0 && a->offset + a->nbytes > b->offset)
        fail(path, "tensors '" + a->name + "' and '" + b->name + "' overlap (data bytes [" +
                       std::to_string(a->offset - data_start) + ", " +
                       std::to_string(a->offset - data_start + a->nbytes) + ") and [" +
                       std::to_string(b->offset - data_start) + ", " +
                       std::to_string(b->offset - data_start + b->nbytes) + "))");
    }
  } catch (...) {
    ::munmap(const_cast<std::byte*>(map_), map_size_);
    map_ = nullptr;
    throw;
  }
}

SafetensorsFile::~SafetensorsFile() {
  if (map_ != nullptr) ::munmap(const_cast<std::byte*>(map_), map_size_);  // cannot fail usefully
}

SafetensorsFile::SafetensorsFile(SafetensorsFile&& other) noexcept
    : path_(std::move(other.path_)),
      map_(std::exchange(other.map_, nullptr)),
      map_size_(std::exchange(other.map_size_, 0)),
      header_size_(std::exchange(other.header_size_, 0)),
      tensors_(std::move(other.tensors_)),
      metadata_(std::move(other.metadata_)) {}

SafetensorsFile& SafetensorsFile::operator=(SafetensorsFile&& other) noexcept {
  if (this != &other) {
    if (map_ != nullptr) ::munmap(const_cast<std::byte*>(map_), map_size_);
    path_ = std::move(other.path_);
    map_ = std::exchange(other.map_, nullptr);
    map_size_ = std::exchange(other.map_size_, 0);
    header_size_ = std::exchange(other.header_size_, 0);
    tensors_ = std::move(other.tensors_);
    metadata_ = std::move(other.metadata_);
  }
  return *this;
}

std::string SafetensorsFile::header_bytes() const {
  if (map_ == nullptr) return {};
  return std::string(reinterpret_cast<const char*>(map_ + 8), header_size_);
}

TensorView SafetensorsFile::view(const std::string& name) const {
  const auto it = tensors_.find(name);
  if (it == tensors_.end()) {
    std::vector<std::string> names;
    for (const auto& [n, info] : tensors_) names.push_back(n);
    const std::string hint = detail::closest_name(names, name);
    fail_tensor(
        path_, name,
        "no such tensor in this file" + (hint.empty() ? "" : " (did you mean '" + hint + "'?)"));
  }
  return TensorView{&it->second, map_ + it->second.offset};
}

}  // namespace lpi::checkpoint
