// Checkpoint files: memory-mapped safetensors (single file or sharded through
// model.safetensors.index.json) and a safetensors writer. Every offset and size
// is checked against the file; failures are CheckpointError naming the file and
// the tensor. PyTorch pickles are refused (loading one can run code).
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace lpi::checkpoint {

// A bad or unsupported checkpoint file; what() names the file and the tensor.
class CheckpointError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

enum class DType { BF16, F16, F32 };

std::size_t dtype_size(DType dtype);
const char* dtype_name(DType dtype);  // "BF16", "F16", "F32" as safetensors spells them
DType parse_dtype(const std::string& name, const std::filesystem::path& file,
                  const std::string& tensor);  // throws CheckpointError naming both

struct TensorInfo {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  std::filesystem::path file;  // the .safetensors file that holds it
  std::size_t offset = 0;      // absolute byte offset of the data in that file
  std::size_t nbytes = 0;
  int64_t numel() const;
};

// A read-only view of one tensor's bytes inside a mapped file.
struct TensorView {
  const TensorInfo* info = nullptr;
  const std::byte* data = nullptr;
};

// One memory-mapped .safetensors file.
class SafetensorsFile {
 public:
  explicit SafetensorsFile(const std::filesystem::path& path);
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;
  SafetensorsFile(SafetensorsFile&&) noexcept;
  SafetensorsFile& operator=(SafetensorsFile&&) noexcept;

  const std::filesystem::path& path() const { return path_; }
  const std::map<std::string, TensorInfo>& tensors() const { return tensors_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  std::size_t header_size() const { return header_size_; }
  // The raw JSON header bytes (for hashing a checkpoint's identity).
  std::string header_bytes() const;
  bool contains(const std::string& name) const { return tensors_.count(name) != 0; }
  TensorView view(const std::string& name) const;  // throws CheckpointError if missing

 private:
  std::filesystem::path path_;
  const std::byte* map_ = nullptr;
  std::size_t map_size_ = 0;
  std::size_t header_size_ = 0;
  std::map<std::string, TensorInfo> tensors_;
  std::map<std::string, std::string> metadata_;
};

// A model folder's weights: model.safetensors, or the shards listed by
// model.safetensors.index.json. Refuses pytorch_model.bin / *.pt / *.bin pickles.
class Checkpoint {
 public:
  explicit Checkpoint(const std::filesystem::path& folder);

  const std::filesystem::path& folder() const { return folder_; }
  std::vector<std::string> names() const;  // sorted
  bool contains(const std::string& name) const;
  const TensorInfo& info(const std::string& name) const;  // throws naming folder and tensor
  TensorView view(const std::string& name) const;
  const std::vector<std::unique_ptr<SafetensorsFile>>& files() const { return files_; }

 private:
  std::filesystem::path folder_;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, const SafetensorsFile*> index_;
};

// Converts one tensor's bytes to float32 (for tests and tools without libtorch).
std::vector<float> to_float32(const TensorView& view);

// bf16/f16 <-> f32 scalar conversions (round to nearest even on the way down).
float bf16_to_float(uint16_t bits);
uint16_t float_to_bf16(float value);
float f16_to_float(uint16_t bits);
uint16_t float_to_f16(float value);

struct TensorToWrite {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  const void* data = nullptr;  // numel * dtype_size bytes, little-endian
  std::size_t nbytes = 0;
};

// Writes a .safetensors file (tensors sorted by name, 8-byte aligned header),
// atomically: to a temporary name in the same folder, then renamed.
void write_safetensors(const std::filesystem::path& path, const std::vector<TensorToWrite>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

}  // namespace lpi::checkpoint
