// A .safetensors file from arbitrary bytes: SafetensorsFile (header length,
// JSON header, every entry's dtype, shape and offsets, overlaps), every view
// it hands out read whole, and the same file as a model folder (Checkpoint).
#include <cstddef>
#include <cstdint>

#include "common/checkpoint/safetensors.hpp"
#include "fuzz_support.hpp"

namespace ck = lpi::checkpoint;
namespace fs = std::filesystem;

namespace {

// Every tensor lies inside the file, its byte count matches dtype and shape,
// and its data converts (reading each byte: a view past the mapping crashes).
void check_tensors(const ck::SafetensorsFile& file, std::size_t file_size) {
  LPI_FUZZ_CHECK(8 + file.header_size() <= file_size);
  LPI_FUZZ_CHECK(file.header_bytes().size() == file.header_size());
  for (const auto& [name, info] : file.tensors()) {
    LPI_FUZZ_CHECK(info.offset >= 8 + file.header_size());
    LPI_FUZZ_CHECK(info.offset <= file_size && info.nbytes <= file_size - info.offset);
    LPI_FUZZ_CHECK(info.nbytes ==
                   static_cast<std::size_t>(info.numel()) * ck::dtype_size(info.dtype));
    const ck::TensorView view = file.view(name);
    LPI_FUZZ_CHECK(view.info == &info);
    const std::vector<float> values = ck::to_float32(view);
    LPI_FUZZ_CHECK(values.size() == static_cast<std::size_t>(info.numel()));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  static const fs::path folder = [] {
    const fs::path f = lpi::fuzz::scratch() / "single";
    fs::create_directories(f);
    return f;
  }();
  const fs::path file = folder / "model.safetensors";
  lpi::fuzz::write_file(file, lpi::fuzz::as_text(data, size));
  try {
    const ck::SafetensorsFile st(file);
    check_tensors(st, size);
  } catch (const ck::CheckpointError&) {
    return 0;  // a bad file, named (the target only looks for crashes)
  }
  // A readable file is a readable model folder, with the same tensors.
  const ck::Checkpoint checkpoint(folder);
  LPI_FUZZ_CHECK(checkpoint.files().size() == 1);
  for (const std::string& name : checkpoint.names()) {
    LPI_FUZZ_CHECK(checkpoint.contains(name));
    LPI_FUZZ_CHECK(checkpoint.view(name).info == &checkpoint.info(name));
  }
  return 0;
}
