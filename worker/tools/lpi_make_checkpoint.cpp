// lpi-make-checkpoint: a random checkpoint of a named shape as a HuggingFace
// folder: config.json, bf16 (or float32) safetensors cut into shards with
// their model.safetensors.index.json, as the hub has them, and a copy of a
// tokenizer.json. For benchmarks at the real widths (deploy/bench-real-shape.sh).
//   lpi-make-checkpoint --shape olmoe-1b-7b --layers 2 --out DIR/step1000-tokens4B
//     --tokenizer tokenizer.json [--shard-mb 4096] [--seed 1]
#include <boost/program_options.hpp>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "common/checkpoint/model_config.hpp"
#include "common/checkpoint/safetensors.hpp"

#include "worker/engine/model.hpp"
#include "worker/tools/shapes.hpp"
#include "worker/tools/tool_main.hpp"

namespace po = boost::program_options;
namespace fs = std::filesystem;
namespace en = lpi::engine;
namespace ck = lpi::checkpoint;

int main(int argc, char** argv) {
  return lpi::tools::run_tool("lpi-make-checkpoint", [&] {
    std::string shape, out, tokenizer, dtype;
    int64_t layers = 0, shard_mb = 4096;
    uint64_t seed = 1;
    double stddev = 0.02;
    bool config_only = false;
    po::options_description opts("lpi-make-checkpoint: a random checkpoint of a named shape");
    // clang-format off
    opts.add_options()
        ("help,h", "show this help")
        ("shape", po::value(&shape)->required(), (std::string("the shape: ") + lpi::tools::shape_names()).c_str())
        ("layers", po::value(&layers)->default_value(0), "layers (0: the shape's own)")
        ("out", po::value(&out)->required(), "the checkpoint folder to write")
        ("tokenizer", po::value(&tokenizer), "a tokenizer.json to copy beside the weights")
        ("dtype", po::value(&dtype)->default_value("bfloat16"), "the weights in the files: bfloat16 or float32")
        ("shard-mb", po::value(&shard_mb)->default_value(4096), "MiB per shard at most (0: one file)")
        ("stddev", po::value(&stddev)->default_value(0.02), "of the random projection and embedding weights")
        ("seed", po::value(&seed)->default_value(1), "of the weights")
        ("config-only", po::bool_switch(&config_only),
         "config.json and a one-value placeholder for the weights, which the engine refuses: "
         "enough for --dry-run and --create-only at the real size (deploy/bench-store-create.sh)");
    // clang-format on
    if (!lpi::tools::parse_command_line(argc, argv, opts)) return 0;
    if (dtype != "bfloat16" && dtype != "float32")
      throw po::error("--dtype must be bfloat16 or float32, not '" + dtype + "'");
    if (shard_mb < 0) throw po::error("--shard-mb must be 0 or more");
    if (!tokenizer.empty() && !fs::is_regular_file(tokenizer))
      throw std::runtime_error("--tokenizer " + tokenizer + ": no such file");
    const auto t0 = std::chrono::steady_clock::now();
    auto config = lpi::tools::named_shape(shape, layers);
    if (config_only) {
      fs::create_directories(out);
      config.torch_dtype = dtype;
      std::ofstream(fs::path(out) / "config.json") << ck::to_hf_config_json(config).dump(2) << "\n";
      const float one = 0;
      ck::write_safetensors(fs::path(out) / "model.safetensors",
                            {{"lpi.placeholder", ck::DType::F32, {1}, &one, sizeof one}},
                            {{"format", "pt"}, {"lpi", "placeholder: not a model"}});
      if (!tokenizer.empty())
        fs::copy_file(tokenizer, fs::path(out) / "tokenizer.json",
                      fs::copy_options::overwrite_existing);
      return 0;
    }
    en::Transformer model(config);
    model->init_weights(stddev, seed);
    const auto type = dtype == "bfloat16" ? torch::kBFloat16 : torch::kFloat32;
    en::save_model(model, out, type, shard_mb << 20);
    if (!tokenizer.empty())
      fs::copy_file(tokenizer, fs::path(out) / "tokenizer.json",
                    fs::copy_options::overwrite_existing);
    int64_t params = 0, files = 0;
    uintmax_t bytes = 0;
    for (const auto& p : model->parameters()) params += p.numel();
    for (const auto& e : fs::directory_iterator(out)) {
      if (e.path().extension() == ".safetensors") {
        ++files;
        bytes += e.file_size();
      }
    }
    std::printf(
        "%s: %s, %lld layer(s), %.3g parameters, %lld safetensors file(s), %.2f GB, in %.1f s\n",
        out.c_str(), shape.c_str(), static_cast<long long>(config.num_layers),
        static_cast<double>(params), static_cast<long long>(files),
        static_cast<double>(bytes) / 1e9,
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    return 0;
  });
}
