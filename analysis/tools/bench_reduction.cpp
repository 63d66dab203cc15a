// lpi-bench-reduction: the cost of lpi-analyze's reduction at a chosen scale,
// on synthetic per-prompt vectors (no store): seconds per checkpoint and the
// memory it holds. Defaults: OLMoE-1B-7B's expert neurons (16 layers x 64
// experts x 1024, 8 experts active per token), 906 prompts in 12 relations.
//   lpi-bench-reduction --bootstrap 10 --checkpoints 3
#include <boost/program_options.hpp>
#include <chrono>
#include <iostream>

#include "analysis/reduction.hpp"

namespace po = boost::program_options;
namespace an = lpi::analysis;

int main(int argc, char** argv) {
  int64_t layers = 16, experts = 64, width = 1024, active = 8, prompts = 906, checkpoints = 3;
  int32_t relations = 12;
  an::ReductionOptions o;
  po::options_description d("lpi-bench-reduction: lpi-analyze's reduction on synthetic data");
  // clang-format off
  d.add_options()
      ("help,h", "show this help")
      ("layers", po::value(&layers)->default_value(layers))
      ("experts", po::value(&experts)->default_value(experts), "1 for a dense FFN")
      ("width", po::value(&width)->default_value(width), "neurons per expert (or per dense layer)")
      ("active", po::value(&active)->default_value(active), "experts with a value per prompt and layer")
      ("prompts", po::value(&prompts)->default_value(prompts))
      ("relations", po::value(&relations)->default_value(relations))
      ("bootstrap", po::value(&o.bootstrap)->default_value(10))
      ("threads", po::value(&o.threads)->default_value(1))
      ("checkpoints", po::value(&checkpoints)->default_value(checkpoints));
  // clang-format on
  po::variables_map vm;
  po::store(po::parse_command_line(argc, argv, d), vm);
  po::notify(vm);
  if (vm.count("help")) {
    std::cout << d << "\n";
    return 0;
  }
  std::vector<int32_t> relation(static_cast<std::size_t>(prompts));
  for (int64_t p = 0; p < prompts; ++p) relation[p] = static_cast<int32_t>(p % relations);
  const auto design = an::make_design(relation, relations, o.bootstrap, 1);
  const int64_t N = layers * experts * width;
  an::FamilyReduction r(N, layers, design, o);
  std::cout << "neurons " << N << ", prompts " << prompts << ", relations " << relations
            << ", bootstrap " << o.bootstrap << ": state " << r.state_bytes() / 1e9 << " GB\n";
  // One checkpoint's per-prompt values in memory, as lpi-analyze holds them
  // (float, the k active experts' rows), from a cheap generator.
  const int64_t row = layers * active * width;
  std::vector<float> values(static_cast<std::size_t>(prompts * row));
  uint64_t x = 88172645463325252ULL;
  for (auto& v : values) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    v = static_cast<float>(static_cast<double>(x >> 11) / 9007199254740992.0 - 0.5);
  }
  std::cout << "per-prompt data " << values.size() * sizeof(float) / 1e9 << " GB\n";
  std::vector<double> seconds;
  for (int64_t c = 0; c < checkpoints; ++c) {
    const auto t = std::chrono::steady_clock::now();
    r.add_checkpoint([&](int32_t p, const an::Accumulator& to) {
      const float* v = values.data() + p * row;
      for (int64_t l = 0; l < layers; ++l)
        for (int64_t s = 0; s < active; ++s) {
          const int64_t e = (p * 7 + l * 3 + s * 11 + c) % experts;
          to.add(v + (l * active + s) * width, width, (l * experts + e) * width);
        }
    });
    seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count());
    std::cout << "checkpoint " << c << ": " << seconds.back() << " s\n";
  }
  std::vector<int64_t> steps;
  for (int64_t c = 0; c < checkpoints; ++c) steps.push_back(c);
  const auto t = std::chrono::steady_clock::now();
  (void)r.finish(steps, {{0, checkpoints - 1}});
  std::cout << "finish: "
            << std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count()
            << " s\n";
  return 0;
}
