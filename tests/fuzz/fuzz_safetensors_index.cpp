// model.safetensors.index.json from arbitrary bytes, in a folder of two real
// shards (written once by the project's writer): the index's JSON, its
// weight_map (shard names that escape the folder, missing shards, tensors in
// two shards or not where the index says), then every tensor read.
#include <cstddef>
#include <cstdint>

#include "common/checkpoint/safetensors.hpp"
#include "fuzz_support.hpp"

namespace ck = lpi::checkpoint;
namespace fs = std::filesystem;

namespace {

const fs::path& folder() {
  static const fs::path f = [] {
    const fs::path dir = lpi::fuzz::scratch() / "sharded";
    fs::create_directories(dir);
    const std::vector<float> a = {1, 2, 3, 4, 5, 6};
    const std::vector<uint16_t> b = {0x3F80, 0x4000};
    const std::vector<float> c = {7};
    ck::write_safetensors(dir / "model-00001-of-00002.safetensors",
                          {{"model.embed_tokens.weight", ck::DType::F32, {2, 3}, a.data(), 24},
                           {"model.norm.weight", ck::DType::BF16, {2}, b.data(), 4}},
                          {{"format", "pt"}});
    ck::write_safetensors(dir / "model-00002-of-00002.safetensors",
                          {{"lm_head.weight", ck::DType::F32, {1, 1}, c.data(), 4}});
    return dir;
  }();
  return f;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  lpi::fuzz::write_file(folder() / "model.safetensors.index.json", lpi::fuzz::as_text(data, size));
  try {
    const ck::Checkpoint checkpoint(folder());
    LPI_FUZZ_CHECK(!checkpoint.files().empty() && checkpoint.files().size() <= 2);
    for (const std::string& name : checkpoint.names()) {
      const ck::TensorView view = checkpoint.view(name);
      LPI_FUZZ_CHECK(view.info == &checkpoint.info(name));
      LPI_FUZZ_CHECK(ck::to_float32(view).size() == static_cast<std::size_t>(view.info->numel()));
    }
  } catch (const ck::CheckpointError&) {
  }
  return 0;
}
