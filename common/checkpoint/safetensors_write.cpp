// Safetensors writer (atomic: temp file in the same folder, fsync, rename) and
// the bf16/f16 <-> f32 conversions.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <limits>
#include <utility>

#include <nlohmann/json.hpp>

#include "common/checkpoint/detail.hpp"
#include "common/checkpoint/safetensors.hpp"

namespace lpi::checkpoint {

namespace fs = std::filesystem;

// --- conversions --------------------------------------------------------------

namespace {

uint32_t float_bits(float value) {
  uint32_t bits = 0;
  std::memcpy(&bits, &value, sizeof bits);
  return bits;
}

float bits_float(uint32_t bits) {
  float value = 0;
  std::memcpy(&value, &bits, sizeof value);
  return value;
}

// Shift `value` right by `shift` bits (1..31), rounding to nearest, ties to even.
uint32_t shift_round_even(uint32_t value, int shift) {
  const uint32_t kept = value >> shift;
  const uint32_t rest = value & ((1u << shift) - 1);
  const uint32_t half = 1u << (shift - 1);
  return kept + ((rest > half || (rest == half && (kept & 1u))) ? 1u : 0u);
}

}  // namespace

float bf16_to_float(uint16_t bits) {
  return bits_float(static_cast<uint32_t>(bits) << 16);
}

uint16_t float_to_bf16(float value) {
  const uint32_t bits = float_bits(value);
  if ((bits & 0x7FFFFFFFu) > 0x7F800000u)  // NaN: keep sign and top payload, force quiet
    return static_cast<uint16_t>((bits >> 16) | 0x0040u);
  // Rounding may carry into the exponent, which is exactly right (up to inf).
  return static_cast<uint16_t>(shift_round_even(bits, 16));
}

float f16_to_float(uint16_t bits) {
  const uint32_t sign = static_cast<uint32_t>(bits & 0x8000u) << 16;
  const uint32_t exponent = (bits >> 10) & 0x1Fu;
  uint32_t mantissa = bits & 0x3FFu;
  if (exponent == 0x1F) return bits_float(sign | 0x7F800000u | (mantissa << 13));  // inf, NaN
  if (exponent != 0) return bits_float(sign | ((exponent + 112) << 23) | (mantissa << 13));
  if (mantissa == 0) return bits_float(sign);  // +-0
  int e = -14;                                 // subnormal: mantissa * 2^-24, normalise
  while ((mantissa & 0x400u) == 0) {
    mantissa <<= 1;
    --e;
  }
  return bits_float(sign | (static_cast<uint32_t>(e + 127) << 23) | ((mantissa & 0x3FFu) << 13));
}

uint16_t float_to_f16(float value) {
  const uint32_t bits = float_bits(value);
  const uint32_t sign = (bits >> 16) & 0x8000u;
  const uint32_t exponent = (bits >> 23) & 0xFFu;
  const uint32_t mantissa = bits & 0x7FFFFFu;
  if (exponent == 0xFF) {
    if (mantissa == 0) return static_cast<uint16_t>(sign | 0x7C00u);
    return static_cast<uint16_t>(sign | 0x7E00u | (mantissa >> 13));  // quiet NaN, payload kept
  }
  const int e = static_cast<int>(exponent) - 127;
  if (e > 15) return static_cast<uint16_t>(sign | 0x7C00u);  // overflow to inf
  if (e >= -14) {                                            // normal half (may round up to inf)
    const uint32_t combined = (static_cast<uint32_t>(e + 15) << 23) | mantissa;
    return static_cast<uint16_t>(sign | shift_round_even(combined, 13));
  }
  if (e < -25) return static_cast<uint16_t>(sign);  // below half the smallest subnormal
  // Subnormal half: value = m * 2^(e-23), in units of 2^-24 that is m >> (-e - 1).
  const uint32_t m = mantissa | 0x800000u;
  return static_cast<uint16_t>(sign | shift_round_even(m, -e - 1));
}

std::vector<float> to_float32(const TensorView& view) {
  const TensorInfo& info = *view.info;
  const std::size_t n = info.nbytes / dtype_size(info.dtype);
  std::vector<float> out(n);
  if (info.dtype == DType::F32) {
    if (n != 0) std::memcpy(out.data(), view.data, n * sizeof(float));
    return out;
  }
  const auto* bytes = reinterpret_cast<const unsigned char*>(view.data);
  for (std::size_t i = 0; i < n; ++i) {
    const auto bits = static_cast<uint16_t>(bytes[2 * i] | (bytes[2 * i + 1] << 8));
    out[i] = info.dtype == DType::BF16 ? bf16_to_float(bits) : f16_to_float(bits);
  }
  return out;
}

// --- writer -------------------------------------------------------------------

namespace {

// Owns the temporary file until it has been renamed into place.
class TempFile {
 public:
  explicit TempFile(const fs::path& target) : target_(target) {
    const fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
    std::string name = (dir / ("." + target.filename().string() + ".tmp.XXXXXX")).string();
    fd_ = ::mkstemp(name.data());
    if (fd_ < 0) fail("cannot create a temporary file in " + dir.string());
    path_ = name;
    if (::fchmod(fd_, 0644) != 0) {
      const int err = errno;
      ::close(fd_);
      ::unlink(path_.c_str());
      errno = err;
      fail("cannot set permissions on " + path_.string());
    }
  }
  ~TempFile() {
    if (fd_ >= 0) ::close(fd_);
    if (!path_.empty()) ::unlink(path_.c_str());
  }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;

  void write(const void* data, std::size_t size) {
    const char* p = static_cast<const char*>(data);
    while (size > 0) {
      const std::size_t chunk = std::min<std::size_t>(size, std::size_t{1} << 26);
      const ssize_t written = ::write(fd_, p, chunk);
      if (written < 0 && errno == EINTR) continue;
      if (written <= 0) fail("write to " + path_.string() + " failed");
      p += written;
      size -= static_cast<std::size_t>(written);
    }
  }

  // fsync, close, rename over the target, fsync the folder.
  void commit() {
    if (::fsync(fd_) != 0) fail("fsync of " + path_.string() + " failed");
    const int fd = std::exchange(fd_, -1);
    if (::close(fd) != 0) fail("close of " + path_.string() + " failed");
    if (::rename(path_.c_str(), target_.c_str()) != 0)
      fail("rename of " + path_.string() + " to " + target_.string() + " failed");
    path_.clear();
    const fs::path dir = target_.has_parent_path() ? target_.parent_path() : fs::path(".");
    const int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir_fd < 0) fail("cannot open folder " + dir.string() + " to fsync it");
    const int rc = ::fsync(dir_fd);
    const int err = errno;
    ::close(dir_fd);
    errno = err;
    if (rc != 0) fail("fsync of folder " + dir.string() + " failed");
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw CheckpointError(target_.string() + ": " + what + ": " + std::strerror(errno));
  }

  fs::path target_;
  fs::path path_;
  int fd_ = -1;
};

}  // namespace

void write_safetensors(const fs::path& path, const std::vector<TensorToWrite>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  std::vector<const TensorToWrite*> sorted;
  for (const TensorToWrite& t : tensors) sorted.push_back(&t);
  std::sort(sorted.begin(), sorted.end(),
            [](const TensorToWrite* a, const TensorToWrite* b) { return a->name < b->name; });

  // Header: {"__metadata__":{...},"name":{"dtype":..,"shape":[..],"data_offsets":[b,e]},...}
  using nlohmann::json;
  std::string header = "{";
  // nlohmann refuses to dump invalid UTF-8; say which file and string.
  auto quoted = [&path](const std::string& text, const char* what) {
    try {
      return json(text).dump();
    } catch (const json::exception&) {
      throw CheckpointError(path.string() + ": " + what + " '" + text +
                            "' is not valid UTF-8 (safetensors headers are JSON)");
    }
  };
  if (!metadata.empty()) {
    header += "\"__metadata__\":{";
    for (auto it = metadata.begin(); it != metadata.end(); ++it)
      header += (it == metadata.begin() ? "" : ",") + quoted(it->first, "metadata key") + ":" +
                quoted(it->second, "metadata value");
    header += "},";
  }
  uint64_t offset = 0;
  for (std::size_t i = 0; i < sorted.size(); ++i) {
    const TensorToWrite& t = *sorted[i];
    const std::string where = path.string() + ": tensor '" + t.name + "': ";
    if (t.name.empty() || t.name == "__metadata__")
      throw CheckpointError(path.string() + ": invalid tensor name '" + t.name + "'");
    if (i > 0 && sorted[i - 1]->name == t.name) throw CheckpointError(where + "given twice");
    int64_t numel = 0;
    if (!detail::checked_numel(t.shape, &numel) ||
        static_cast<uint64_t>(numel) > std::numeric_limits<uint64_t>::max() / dtype_size(t.dtype))
      throw CheckpointError(where + "invalid shape " + detail::shape_string(t.shape));
    const uint64_t expected = static_cast<uint64_t>(numel) * dtype_size(t.dtype);
    if (t.nbytes != expected)
      throw CheckpointError(where + std::to_string(t.nbytes) + " bytes given, expected " +
                            std::to_string(expected) + " for " + dtype_name(t.dtype) + " " +
                            detail::shape_string(t.shape));
    if (t.data == nullptr && t.nbytes != 0) throw CheckpointError(where + "data is null");
    header += quoted(t.name, "tensor name") + ":{\"dtype\":\"" + dtype_name(t.dtype) +
              "\",\"shape\":" + json(t.shape).dump() + ",\"data_offsets\":[" +
              std::to_string(offset) + "," + std::to_string(offset + expected) + "]}";
    header += i + 1 < sorted.size() ? "," : "";
    offset += expected;
  }
  header += "}";
  header.append((8 - header.size() % 8) % 8, ' ');  // data starts 8-byte aligned

  unsigned char length[8];
  uint64_t n = header.size();
  for (unsigned char& byte : length) {
    byte = static_cast<unsigned char>(n & 0xFF);
    n >>= 8;
  }
  TempFile file(path);
  file.write(length, sizeof length);
  file.write(header.data(), header.size());
  for (const TensorToWrite* t : sorted) file.write(t->data, t->nbytes);
  file.commit();
}

}  // namespace lpi::checkpoint
