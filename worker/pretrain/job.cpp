#include "worker/pretrain/job.hpp"

#include <boost/program_options.hpp>
#include <cmath>
#include <fstream>
#include <set>
#include <sstream>
#include <stdexcept>

namespace lpi::pretrain {
namespace po = boost::program_options;
namespace ck = lpi::checkpoint;

namespace {

[[noreturn]] void fail(const std::filesystem::path& file, const std::string& what) {
  throw std::invalid_argument("job file " + file.string() + ": " + what);
}

}  // namespace

Job read_job(const std::filesystem::path& file) {
  Job job;
  job.file = file;
  std::string architecture;
  double clip_qkv = 0;
  int64_t hidden = 0, layers = 0, heads = 0, kv_heads = 0, intermediate = 0, experts = 0, top_k = 0;
  bool norm_topk = false;
  std::string early;
  double aux_coef = 0.01, z_coef = 0.001, rope_theta = 10000.0;
  auto& w = job.world;
  auto& c = job.corpus;
  auto& t = job.train;
  auto& s = job.schedule;
  po::options_description opts;
  // One option a line reads best here.
  // clang-format off
  opts.add_options()
      ("job.name", po::value(&job.name)->required())
      ("world.seed", po::value(&w.seed)->default_value(w.seed))
      ("world.countries", po::value(&w.countries)->default_value(w.countries))
      ("world.people", po::value(&w.people)->default_value(w.people))
      ("world.occupations", po::value(&w.occupations)->default_value(w.occupations))
      ("world.fruits", po::value(&w.fruits)->default_value(w.fruits))
      ("world.objects", po::value(&w.objects)->default_value(w.objects))
      ("world.words", po::value(&w.words)->default_value(w.words))
      ("world.antonyms", po::value(&w.antonyms)->default_value(w.antonyms))
      ("corpus.seed", po::value(&c.seed)->default_value(c.seed))
      ("corpus.documents", po::value(&c.documents)->default_value(c.documents))
      ("corpus.facts_per_document", po::value(&c.facts_per_document)->default_value(c.facts_per_document))
      ("corpus.filler_per_fact", po::value(&c.filler_per_fact)->default_value(c.filler_per_fact))
      ("tokenizer.vocab_size", po::value(&job.tokenizer_vocab)->default_value(job.tokenizer_vocab))
      ("model.architecture", po::value(&architecture)->required())
      ("model.hidden_size", po::value(&hidden)->required())
      ("model.layers", po::value(&layers)->required())
      ("model.heads", po::value(&heads)->required())
      ("model.kv_heads", po::value(&kv_heads)->default_value(0))
      ("model.intermediate_size", po::value(&intermediate)->required())
      ("model.experts", po::value(&experts)->default_value(0))
      ("model.experts_per_token", po::value(&top_k)->default_value(0))
      ("model.norm_topk_prob", po::value(&norm_topk)->default_value(false))
      ("model.router_aux_loss_coef", po::value(&aux_coef)->default_value(aux_coef))
      ("model.router_z_loss_coef", po::value(&z_coef)->default_value(z_coef))
      ("model.rope_theta", po::value(&rope_theta)->default_value(rope_theta))
      ("model.clip_qkv", po::value(&clip_qkv)->default_value(0))
      ("train.seed", po::value(&t.seed)->default_value(t.seed))
      ("train.steps", po::value(&t.steps)->required())
      ("train.batch_size", po::value(&t.batch_size)->default_value(t.batch_size))
      ("train.sequence_length", po::value(&t.sequence_length)->default_value(t.sequence_length))
      ("train.learning_rate", po::value(&t.learning_rate)->default_value(t.learning_rate))
      ("train.min_learning_rate", po::value(&t.min_learning_rate)->default_value(t.min_learning_rate))
      ("train.warmup_steps", po::value(&t.warmup_steps)->default_value(t.warmup_steps))
      ("train.schedule", po::value(&t.schedule)->default_value(t.schedule))
      ("train.decay_fraction", po::value(&t.decay_fraction)->default_value(t.decay_fraction))
      ("train.weight_decay", po::value(&t.weight_decay)->default_value(t.weight_decay))
      ("train.beta1", po::value(&t.beta1)->default_value(t.beta1))
      ("train.beta2", po::value(&t.beta2)->default_value(t.beta2))
      ("train.grad_clip", po::value(&t.grad_clip)->default_value(t.grad_clip))
      ("train.init_std", po::value(&t.init_std)->default_value(t.init_std))
      ("train.threads", po::value(&t.threads)->default_value(t.threads))
      ("checkpoints.spacing", po::value(&s.spacing)->default_value(s.spacing))
      ("checkpoints.every", po::value(&s.every)->default_value(s.every))
      ("checkpoints.early", po::value(&early)->default_value(""))
      ("checkpoints.count", po::value(&s.count)->default_value(s.count))
      ("checkpoints.first_step", po::value(&s.first_step)->default_value(s.first_step))
      ("checkpoints.include_step0", po::value(&s.include_step0)->default_value(s.include_step0));
  // clang-format on

  std::ifstream in(file);
  if (!in) fail(file, "cannot be opened");
  po::variables_map vm;
  try {
    po::store(po::parse_config_file(in, opts, /*allow_unregistered=*/false), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    fail(file, e.what());
  }

  auto& m = job.model;
  if (architecture == "olmoe") {
    m.layout = ck::Layout::Olmoe;
    m.architecture = "OlmoeForCausalLM";
    m.model_type = "olmoe";
    m.norm = ck::NormKind::RMSNorm;
    m.qk_norm = true;
    if (experts < 2 || top_k < 1 || top_k > experts) {
      fail(file, "[model] olmoe needs experts >= 2 and 1 <= experts_per_token <= experts");
    }
  } else if (architecture == "olmo") {
    m.layout = ck::Layout::OlmoHF;
    m.architecture = "OlmoForCausalLM";
    m.model_type = "olmo";
    m.norm = ck::NormKind::LayerNormNoAffine;
    m.qk_norm = false;
    if (experts != 0) fail(file, "[model] olmo is dense: experts must be 0");
  } else {
    fail(file, "[model] architecture '" + architecture + "': expected olmoe or olmo");
  }
  if (hidden <= 0 || layers <= 0 || heads <= 0 || hidden % heads != 0 || intermediate <= 0) {
    fail(file,
         "[model] needs positive hidden_size, layers, heads, intermediate_size, and hidden_size "
         "divisible by heads");
  }
  if (kv_heads == 0) kv_heads = heads;
  if (heads % kv_heads != 0) fail(file, "[model] heads must be a multiple of kv_heads");
  m.hidden_size = hidden;
  m.num_layers = layers;
  m.num_heads = heads;
  m.num_kv_heads = kv_heads;
  m.head_dim = hidden / heads;
  if (m.head_dim % 2 != 0) fail(file, "[model] hidden_size / heads must be even (RoPE)");
  m.intermediate_size = intermediate;
  m.num_experts = experts;
  m.num_experts_per_tok = top_k;
  m.norm_topk_prob = norm_topk;
  m.router_aux_loss_coef = experts ? aux_coef : 0.0;
  m.router_z_loss_coef = experts ? z_coef : 0.0;
  m.rope_theta = rope_theta;
  m.norm_eps = 1e-5;
  if (clip_qkv > 0) m.clip_qkv = clip_qkv;
  m.tie_word_embeddings = false;
  m.max_position_embeddings = std::max<int64_t>(t.sequence_length, 128);
  m.eos_token_id = 0;
  m.pad_token_id = 1;
  m.torch_dtype = "float32";

  if (t.steps <= 0 || t.batch_size <= 0 || t.sequence_length < 2) {
    fail(file, "[train] steps and batch_size must be positive and sequence_length at least 2");
  }
  if (t.schedule != "cosine" && t.schedule != "wsd")
    fail(file, "[train] schedule '" + t.schedule + "': expected cosine or wsd");
  if (!(t.decay_fraction > 0 && t.decay_fraction <= 1))
    fail(file, "[train] decay_fraction must be in (0, 1]");
  if (s.spacing == "geometric") {
    if (s.count < 2 || s.first_step < 1 || s.first_step >= t.steps)
      fail(file, "[checkpoints] needs count >= 2 and 1 <= first_step < train.steps");
  } else if (s.spacing == "even") {
    if (s.every < 1 || s.every > t.steps)
      fail(file, "[checkpoints] spacing = even needs 1 <= every <= train.steps");
    std::stringstream list(early);
    for (std::string item; std::getline(list, item, ',');) {
      std::size_t used = 0;
      int64_t step = -1;
      try {
        step = std::stoll(item, &used);
      } catch (const std::exception&) {
      }
      while (used < item.size() && item[used] == ' ') ++used;
      if (used != item.size() || step < 1 || step >= t.steps)
        fail(file, "[checkpoints] early '" + early +
                       "': expected comma-separated steps between 1 and train.steps - 1");
      s.early.push_back(step);
    }
  } else {
    fail(file, "[checkpoints] spacing '" + s.spacing + "': expected geometric or even");
  }
  return job;
}

Job with_seed(Job job, uint64_t seed) {
  job.train.seed = seed;
  job.seed_override = true;
  return job;
}

double learning_rate(const TrainOptions& t, int64_t step) {
  if (step <= t.warmup_steps)
    return t.learning_rate * static_cast<double>(step) / std::max<int64_t>(1, t.warmup_steps);
  if (t.schedule == "wsd") {
    const auto decay = std::max<int64_t>(1, std::llround(t.decay_fraction * t.steps));
    const int64_t stable_end = std::max(t.warmup_steps, t.steps - decay);
    if (step <= stable_end) return t.learning_rate;
    const double f = static_cast<double>(step - stable_end) /
                     static_cast<double>(std::max<int64_t>(1, t.steps - stable_end));
    return t.learning_rate + f * (t.min_learning_rate - t.learning_rate);
  }
  const double progress = static_cast<double>(step - t.warmup_steps) /
                          static_cast<double>(std::max<int64_t>(1, t.steps - t.warmup_steps));
  return t.min_learning_rate +
         0.5 * (t.learning_rate - t.min_learning_rate) * (1.0 + std::cos(M_PI * progress));
}

std::vector<int64_t> checkpoint_steps(const Job& job) {
  const auto& s = job.schedule;
  const int64_t last = job.train.steps;
  if (s.spacing == "even") {
    std::set<int64_t> steps(s.early.begin(), s.early.end());
    if (s.include_step0) steps.insert(0);
    for (int64_t step = s.every; step < last; step += s.every) steps.insert(step);
    steps.insert(last);
    return {steps.begin(), steps.end()};
  }
  const int n = s.count - (s.include_step0 ? 1 : 0);
  std::set<int64_t> steps;
  if (s.include_step0) steps.insert(0);
  const double ratio = static_cast<double>(last) / static_cast<double>(s.first_step);
  for (int i = 0; i < n; ++i) {
    const double f = n == 1 ? 1.0 : static_cast<double>(i) / (n - 1);
    steps.insert(std::llround(static_cast<double>(s.first_step) * std::pow(ratio, f)));
  }
  steps.insert(last);
  return {steps.begin(), steps.end()};
}

std::string checkpoint_name(const Job& job, int64_t step) {
  const int64_t tokens = step * job.train.batch_size * job.train.sequence_length;
  return "step" + std::to_string(step) + "-tokens" + std::to_string(tokens);
}

}  // namespace lpi::pretrain
