// lpi-bench: Gated-LPI throughput on random weights of a given shape (libtorch
// only). Times the fast path on N prompts, the PyTorch peer formulation
// (bench_parts.hpp) and the reference on a few, checks that they agree, and
// reports prompts/s, the speed-ups, achieved FLOP/s, memory, the projection
// cost and the CPU kernel against the core's limit.
//   lpi-bench --shape small-moe --prompts 128 --threads 1
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <map>
#include <string>

#include "common/checkpoint/model_shape.hpp"
#include "worker/engine/gated_lpi.hpp"
#ifdef LPI_HAVE_CUDA_KERNELS
#include "worker/engine/cuda/lpi_cuda.hpp"
#endif
#include "worker/engine/lse_kernel.hpp"
#include "worker/engine/lse_kernel_block.hpp"
#include "worker/engine/threads.hpp"
#include "worker/tools/bench_parts.hpp"
#include "worker/tools/shapes.hpp"

namespace ck = lpi::checkpoint;
namespace en = lpi::engine;
using Clock = std::chrono::steady_clock;

namespace {

const char* kUsage =
    "usage: lpi-bench [--shape NAME] [--prompts N] [--reference-prompts R] [--prompt-len T]\n"
    "                 [--lens frozen|exact] [--device cpu|cuda] [--dtype float32|bfloat16]\n"
    "                 [--budget-mb M] [--threads K] [--batch-invariant 1|0]\n"
    "                 [--peer 1|0] [--peer-prompts P] [--kernel 1|0]\n"
    "--threads K: libtorch's and OpenBLAS's threads (0: libtorch's default)\n"
    "--peer 1: also time the PyTorch formulation (bench_parts.hpp) on the first P prompts\n"
    "          (default 32; its rate does not depend on the count)\n"
    "--kernel 1: the CPU kernel alone against the core's limit (CPU only)\n"
    "shapes: tiny-moe, tiny-dense (embedded default), small-moe, small-dense (OLMoE-1B-7B and "
    "OLMo-7B\n"
    "        scaled down about 4x in width and vocabulary, for a CPU),\n"
    "        olmoe-1b-7b, olmo-7b (full shapes, for a GPU)\n";

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
  std::map<std::string, std::string> opt = {
      {"shape", "small-moe"},   {"prompts", "256"},   {"reference-prompts", "4"},
      {"prompt-len", "12"},     {"lens", "frozen"},   {"device", "cpu"},
      {"dtype", "float32"},     {"budget-mb", "256"}, {"threads", "0"},
      {"batch-invariant", "1"}, {"peer", "1"},        {"kernel", "1"},
      {"peer-prompts", "32"}};
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::cout << kUsage;
      return 0;
    }
    if (arg.rfind("--", 0) != 0 || i + 1 >= argc || !opt.count(arg.substr(2))) {
      std::cerr << "lpi-bench: bad argument '" << arg << "'\n" << kUsage;
      return 2;
    }
    opt[arg.substr(2)] = argv[++i];
  }
  try {
    if (std::stoi(opt["threads"]) > 0) en::set_compute_threads(std::stoi(opt["threads"]));
    const auto config = lpi::tools::named_shape(opt["shape"]);
    const torch::Device device(opt["device"]);
    const auto dtype = opt["dtype"] == "bfloat16" ? torch::kBFloat16 : torch::kFloat32;
    const int64_t n = std::stoll(opt["prompts"]), r = std::stoll(opt["reference-prompts"]);
    const int64_t len = std::stoll(opt["prompt-len"]);
    en::LpiOptions options;
    options.lens = opt["lens"] == "exact" ? en::Lens::Exact : en::Lens::Frozen;
    options.memory_budget_mb = std::stoll(opt["budget-mb"]);
    options.batch_invariant = opt["batch-invariant"] != "0";  // 0: batched forward passes

    en::Transformer model(config);
    model->init_weights(0.02, 1);
    model->to(device, dtype);
    model->eval();
    std::vector<std::vector<int32_t>> prompts(n);
    std::vector<int32_t> gold(n);
    for (int64_t i = 0; i < n; ++i) {
      for (int64_t t = 0; t < len; ++t)
        prompts[i].push_back(
            static_cast<int32_t>(2 + (i * 7919 + t * 104729) % (config.vocab_size - 2)));
      gold[i] = static_cast<int32_t>(2 + (i * 31) % (config.vocab_size - 2));
    }
    const int64_t d = config.hidden_size, V = config.vocab_size, L = config.num_layers;
    const auto shape = lpi::checkpoint::shape_of(config);
    const int64_t attn_n = shape.attn_width(), active_ffn = shape.ffn_active_width();
    const int64_t all_ffn = shape.ffn_width();
    const int64_t neurons_per_prompt = L * (attn_n + active_ffn);

    // Projection P = W_U diag(g) U for every output column, in the fast
    // path's tiles (the CPU kernel's product on the CPU): once per checkpoint.
    double projection_s = 0;
    {
      torch::NoGradGuard no_grad;
      const auto wu = model->lm_head().to(torch::kFloat32);
      const int64_t tile = std::max<int64_t>(1, (options.memory_budget_mb << 20) / 8 / V);
      const auto t0 = Clock::now();
      for (int64_t l = 0; l < L; ++l) {
        auto columns = [&](const torch::Tensor& u) {
          for (int64_t c0 = 0; c0 < u.size(1); c0 += tile) {
            const auto g = u.narrow(1, c0, std::min(tile, u.size(1) - c0)).to(torch::kFloat32);
            if (device.is_cpu() && dtype == torch::kFloat32) {
              (void)en::kernels::unembed_columns(g, wu, en::kernels::padded(V));
            } else {
              (void)torch::matmul(wu, g);
            }
          }
        };
        columns(model->o_proj(l));
        if (config.is_moe()) {
          const auto down = model->down_proj(l);
          for (int64_t e = 0; e < config.num_experts; ++e) columns(down[e]);
        } else {
          columns(model->down_proj(l));
        }
      }
      if (device.is_cuda()) torch::cuda::synchronize();
      projection_s = seconds_since(t0);
    }
    const double projection_flop = 2.0 * V * d * L * (attn_n + all_ffn);

    auto t0 = Clock::now();
    const auto fast = en::gated_lpi(model, prompts, gold, options);
    if (device.is_cuda()) torch::cuda::synchronize();
    const double fast_s = seconds_since(t0);
    // Per (prompt, neuron): one multiply-add, an exp and a sum over the vocabulary.
    const double fast_flop =
        projection_flop + 4.0 * V * static_cast<double>(n * neurons_per_prompt);

    const double forward_s = device.is_cpu() ? lpi::bench::time_forward(model, prompts) : 0;
    lpi::bench::PeerRun peer;
    const int64_t peer_n = std::min<int64_t>(n, std::stoll(opt["peer-prompts"]));
    if (opt["peer"] == "1") {
      const std::vector<std::vector<int32_t>> first(prompts.begin(), prompts.begin() + peer_n);
      const std::vector<int32_t> first_gold(gold.begin(), gold.begin() + peer_n);
      const auto fast_first = en::gated_lpi(model, first, first_gold, options);
      peer = lpi::bench::run_peer(model, first, first_gold, options, fast_first);
    }
    lpi::bench::KernelRun kernel;
    const bool kernel_bench = opt["kernel"] == "1" && device.is_cpu();
    if (kernel_bench) kernel = lpi::bench::run_kernel(V, d);

    std::vector<std::vector<int32_t>> sub(prompts.begin(), prompts.begin() + std::min(n, r));
    std::vector<int32_t> sub_gold(gold.begin(), gold.begin() + std::min(n, r));
    double ref_s = 0, diff = 0;
    if (!sub.empty()) {
      t0 = Clock::now();
      const auto ref = en::gated_lpi_reference(model, sub, sub_gold, options);
      if (device.is_cuda()) torch::cuda::synchronize();
      ref_s = seconds_since(t0);
      const auto fast_sub = en::gated_lpi(model, sub, sub_gold, options);
      for (std::size_t l = 0; l < ref.layers.size(); ++l) {
        diff = std::max(diff,
                        (ref.layers[l].attn - fast_sub.layers[l].attn).abs().max().item<double>());
        diff =
            std::max(diff, (ref.layers[l].ffn - fast_sub.layers[l].ffn).abs().max().item<double>());
      }
    }
    // The device's practical peak: a large float32 matrix product.
    double peak_gflops = 0;
    {
      torch::NoGradGuard no_grad;
      const int64_t s = device.is_cuda() ? 8192 : 1024;
      const auto x = torch::randn({s, s}, torch::TensorOptions().device(device));
      (void)torch::matmul(x, x);
      if (device.is_cuda()) torch::cuda::synchronize();
      const auto t_mm = Clock::now();
      const int reps = 5;
      for (int i = 0; i < reps; ++i) (void)torch::matmul(x, x);
      if (device.is_cuda()) torch::cuda::synchronize();
      peak_gflops = 2.0 * s * s * s * reps / seconds_since(t_mm) / 1e9;
    }
    struct rusage usage {};
    getrusage(RUSAGE_SELF, &usage);
    const double fast_rate = n / fast_s, ref_rate = sub.empty() ? 0 : sub.size() / ref_s;
    std::printf(
        "shape %s (%s, d=%lld, %lld layers, V=%lld%s), %s, %s lens, %lld prompts of %lld tokens\n",
        opt["shape"].c_str(), config.architecture.c_str(), static_cast<long long>(d),
        static_cast<long long>(L), static_cast<long long>(V),
        config.is_moe() ? (", " + std::to_string(config.num_experts) + " experts top-" +
                           std::to_string(config.num_experts_per_tok))
                              .c_str()
                        : "",
        opt["dtype"].c_str(), opt["lens"].c_str(), static_cast<long long>(n),
        static_cast<long long>(len));
    std::printf("neurons scored per prompt      %lld\n",
                static_cast<long long>(neurons_per_prompt));
    std::printf("threads                        %d (CPU kernels: %s)\n", at::get_num_threads(),
                en::kernels::isa());
    std::printf(
        "fast path                      %.3f s, %.2f prompts/s, %.2f GFLOP/s (%.0f%% of %.0f "
        "GFLOP/s matmul peak)\n",
        fast_s, fast_rate, fast_flop / fast_s / 1e9, 100 * fast_flop / fast_s / 1e9 / peak_gflops,
        peak_gflops);
    if (device.is_cpu()) {
      std::printf("forward passes alone           %.3f s (%.1f ms per prompt)\n", forward_s,
                  1e3 * forward_s / n);
    }
    std::printf("projection tiles computed      %lld\n",
                static_cast<long long>(fast.projection_tiles));
    std::printf("projection alone (once/ckpt)   %.3f s, %.2f GFLOP/s\n", projection_s,
                projection_flop / projection_s / 1e9);
    if (opt["peer"] == "1") {
      std::printf(
          "peer (PyTorch, scoring only)   %.3f s for %lld prompts, %.2f prompts/s; fast path "
          "%.1fx; max |fast - peer| %.2e\n",
          peer.seconds, static_cast<long long>(peer_n), peer_n / peer.seconds,
          fast_rate / (peer_n / peer.seconds), peer.max_diff);
    }
    if (kernel_bench) {
      std::printf("core limit (L1 data, threads)  %.2e terms/s polynomial, %.2e terms/s exp\n",
                  kernel.limit_small, kernel.limit_exp);
      std::printf("kernel alone (64 x 256 x V)    %.2e terms/s, %.0f%% of the polynomial limit\n",
                  kernel.kernel, 100 * kernel.kernel / kernel.limit_small);
      std::printf("projection product alone       %.1f GFLOP/s\n", kernel.product);
    }
    if (!sub.empty()) {
      std::printf("reference (%zu prompts)         %.3f s, %.3f prompts/s\n", sub.size(), ref_s,
                  ref_rate);
      std::printf("speed-up fast / reference      %.1fx\n", fast_rate / ref_rate);
      std::printf("max |fast - reference|         %.2e\n", diff);
    }
    std::printf("peak resident memory           %.0f MiB\n", usage.ru_maxrss / 1024.0);
#ifdef LPI_HAVE_CUDA_KERNELS
    // On a GPU: what the device holds after the run (libtorch's caching
    // allocator keeps its peak). Compiled in CI, run only on a GPU.
    int64_t used = 0, total = 0;
    if (device.is_cuda() && lpi::engine::cuda::device_memory(used, total))
      std::printf("peak device memory             %.0f MiB of %.0f MiB (in use after the run)\n",
                  static_cast<double>(used) / (1 << 20), static_cast<double>(total) / (1 << 20));
#endif
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "lpi-bench: " << e.what() << "\n";
    return 1;
  }
}
