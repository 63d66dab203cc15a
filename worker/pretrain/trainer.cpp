#include "worker/pretrain/trainer.hpp"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <ostream>
#include <set>
#include <sstream>

#include "common/checkpoint/safetensors.hpp"
#include "common/relations/relations.hpp"
#include "common/tokenizer/bpe_trainer.hpp"
#include "common/tokenizer/tokenizer.hpp"
#include "worker/engine/evaluate.hpp"

namespace lpi::pretrain {
namespace fs = std::filesystem;
namespace ck = lpi::checkpoint;
using Clock = std::chrono::steady_clock;

namespace {

constexpr const char* kStateFile = "train_state.safetensors";
constexpr const char* kCurveFile = "hit_at_10.csv";

uint64_t fnv1a(const std::string& text) {
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : text) h = (h ^ c) * 1099511628211ULL;
  return h;
}

std::string job_fingerprint(const Job& job) {
  std::ifstream in(job.file, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  if (job.seed_override) text << "\n# --seed " << job.train.seed;
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(fnv1a(text.str())));
  return buf;
}

void write_text(const fs::path& file, const std::string& text) {
  const fs::path tmp = file.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary);
    out << text;
    if (!out) throw std::runtime_error("cannot write " + tmp.string());
  }
  fs::rename(tmp, file);
}

// AdamW with decoupled weight decay on matrices only (not on norm weights).
struct AdamW {
  std::vector<std::pair<std::string, torch::Tensor>> params;
  std::vector<torch::Tensor> m, v;

  explicit AdamW(engine::Transformer& model) {
    for (auto& item : model->named_parameters()) {
      params.emplace_back(item.key(), item.value());
      m.push_back(torch::zeros_like(item.value()));
      v.push_back(torch::zeros_like(item.value()));
    }
  }
  void step(const TrainOptions& t, double lr, int64_t step) {
    torch::NoGradGuard no_grad;
    const double c1 = 1.0 - std::pow(t.beta1, static_cast<double>(step));
    const double c2 = 1.0 - std::pow(t.beta2, static_cast<double>(step));
    for (std::size_t i = 0; i < params.size(); ++i) {
      auto& p = params[i].second;
      if (!p.grad().defined()) continue;
      const auto& g = p.grad();
      m[i].mul_(t.beta1).add_(g, 1.0 - t.beta1);
      v[i].mul_(t.beta2).addcmul_(g, g, 1.0 - t.beta2);
      if (p.dim() >= 2) p.mul_(1.0 - lr * t.weight_decay);
      p.addcdiv_(m[i] / c1, (v[i] / c2).sqrt_().add_(t.adam_eps), -lr);
    }
  }
};

struct Evaluator {
  relations::PromptSet set;
  std::vector<std::vector<int32_t>> prompts;
  std::vector<int32_t> targets;

  Evaluator(const fs::path& relations_dir, const tokenizer::Tokenizer& tok) {
    set = relations::build_prompts(relations::load_relations(relations_dir), tok, {});
    prompts = relations::prompt_ids(set);
    targets = relations::target_ids(set);
  }
  // Overall HIT@10, and "step,relation,prompts,hits,hit_at_10" rows.
  double run(engine::Transformer& model, int64_t step, std::string& rows) {
    const bool was_training = model->is_training();
    model->eval();
    engine::EvaluateOptions options;
    options.batch_size = 64;
    options.pad_id = model->config().pad_token_id.value_or(1);
    const auto scores = engine::evaluate(model, prompts, targets, options);
    model->train(was_training);
    std::map<int32_t, std::pair<int, int>> per;  // hits, prompts
    for (std::size_t i = 0; i < scores.size(); ++i) {
      auto& [hits, n] = per[set.prompts[i].relation];
      hits += scores[i].hit_at_10();
      ++n;
    }
    int all_hits = 0;
    for (const auto& [r, hn] : per) {
      rows += std::to_string(step) + "," + set.relations[r].id + "," + std::to_string(hn.second) +
              "," + std::to_string(hn.first) + "," +
              std::to_string(static_cast<double>(hn.first) / hn.second) + "\n";
      all_hits += hn.first;
    }
    const double overall = static_cast<double>(all_hits) / std::max<std::size_t>(1, scores.size());
    rows += std::to_string(step) + ",overall," + std::to_string(scores.size()) + "," +
            std::to_string(all_hits) + "," + std::to_string(overall) + "\n";
    return overall;
  }
};

}  // namespace

int64_t active_parameter_count(const ck::ModelConfig& c) {
  const int64_t d = c.hidden_size, hd = c.head_dim;
  int64_t per_layer = d * hd * (2 * c.num_heads + 2 * c.num_kv_heads);
  const int64_t experts = c.is_moe() ? c.num_experts_per_tok : 1;
  per_layer += experts * 3 * d * c.intermediate_size;
  if (c.is_moe()) per_layer += c.num_experts * d;  // the router runs for every token
  return c.num_layers * per_layer + 2 * c.vocab_size * d;
}

TrainingData prepare_data(const Job& job) {
  TrainingData data;
  data.world = world::make_world(job.world);
  const auto documents = world::make_corpus(data.world, job.corpus);
  tokenizer::BpeTrainOptions bpe;
  bpe.vocab_size = job.tokenizer_vocab;
  data.tokenizer_json = tokenizer::train_bpe(documents, bpe);
  const auto tok =
      tokenizer::Tokenizer::from_json_string(data.tokenizer_json, "trained tokenizer.json");
  data.eos_id = *tok.token_to_id("<|endoftext|>");
  for (const auto& doc : documents) {
    const auto ids = tok.encode(doc);
    data.stream.insert(data.stream.end(), ids.begin(), ids.end());
    data.stream.push_back(static_cast<int32_t>(data.eos_id));
  }
  return data;
}

void write_world(const Job&, const TrainingData& data, const fs::path& out) {
  fs::create_directories(out);
  world::write_relations(data.world, out / "relations");
  write_text(out / "tokenizer.json", data.tokenizer_json);
}

void write_corpus(const Job& job, const fs::path& file) {
  const auto world = world::make_world(job.world);
  std::string text;
  for (const auto& doc : world::make_corpus(world, job.corpus)) text += doc + "\n";
  write_text(file, text);
}

std::vector<CurvePoint> read_curve(const fs::path& out) {
  const fs::path file = out / kCurveFile;
  std::ifstream in(file);
  if (!in)
    throw std::runtime_error("cannot read " + file.string() + " (no checkpoint evaluated yet?)");
  std::vector<CurvePoint> points;
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    std::stringstream row(line);
    std::string step, relation, prompts, hits;
    std::getline(row, step, ',');
    std::getline(row, relation, ',');
    std::getline(row, prompts, ',');
    std::getline(row, hits, ',');
    try {
      points.push_back({std::stoll(step), relation, std::stoi(prompts), std::stoi(hits)});
    } catch (const std::exception&) {
      throw std::runtime_error(file.string() + ": malformed row '" + line + "'");
    }
  }
  return points;
}

torch::Tensor training_batch(const Job& job, const TrainingData& data, int64_t step) {
  const int64_t B = job.train.batch_size, T = job.train.sequence_length;
  const auto span = static_cast<int64_t>(data.stream.size()) - (T + 1);
  if (span <= 0)
    throw std::runtime_error("job " + job.file.string() +
                             ": the corpus is shorter than one sequence");
  world::Rng rng(job.train.seed * 0x100000001B3ULL + static_cast<uint64_t>(step));
  auto batch = torch::empty({B, T + 1}, torch::kInt64);
  auto a = batch.accessor<int64_t, 2>();
  for (int64_t b = 0; b < B; ++b) {
    const auto start = static_cast<int64_t>(rng.below(static_cast<uint64_t>(span)));
    for (int64_t t = 0; t <= T; ++t) a[b][t] = data.stream[start + t];
  }
  return batch;
}

PretrainReport pretrain(const Job& job_in, const fs::path& out, const PretrainOptions& options) {
  const auto t_start = Clock::now();
  Job job = job_in;
  auto say = [&](const std::string& line) {
    if (options.log) *options.log << "[" << job.name << "] " << line << std::endl;
  };
  if (job.train.threads > 0) torch::set_num_threads(job.train.threads);

  const auto data = prepare_data(job);
  const auto tok = tokenizer::Tokenizer::from_json_string(data.tokenizer_json,
                                                          (out / "tokenizer.json").string());
  job.model.vocab_size = (static_cast<int64_t>(tok.vocab_size()) + 63) / 64 * 64;
  const std::string fingerprint = job_fingerprint(job);
  fs::create_directories(out);
  const fs::path state_file = out / kStateFile;

  PretrainReport report;
  engine::Transformer model(nullptr);
  int64_t start_step = 0;
  std::string curve = "step,relation,prompts,hits,hit_at_10\n";
  std::map<std::string, torch::Tensor> saved_moments;
  if (fs::exists(state_file)) {
    const ck::SafetensorsFile state(state_file);
    const auto& meta = state.metadata();
    auto field = [&](const std::string& key) {
      auto it = meta.find(key);
      if (it == meta.end())
        throw std::runtime_error(state_file.string() + ": metadata has no '" + key + "'");
      return it->second;
    };
    if (field("job_fingerprint") != fingerprint) {
      throw std::runtime_error(state_file.string() + " was written by job '" + field("job_name") +
                               "' (" + field("job_file") + ", fingerprint " +
                               field("job_fingerprint") + "), not by " + job.file.string() +
                               " (fingerprint " + fingerprint +
                               "): use another --out folder, or remove it to start over");
    }
    start_step = std::stoll(field("step"));
    const fs::path dir = out / checkpoint_name(job, start_step);
    model = engine::load_model(dir);
    for (auto& p : model->parameters()) p.set_requires_grad(true);
    for (const auto& [name, info] : state.tensors()) {
      const auto values = ck::to_float32(state.view(name));
      saved_moments[name] =
          torch::from_blob(const_cast<float*>(values.data()), info.shape, torch::kFloat32).clone();
    }
    std::ifstream in(out / kCurveFile);
    std::string line;
    std::getline(in, line);  // header
    while (std::getline(in, line)) {
      if (std::stoll(line.substr(0, line.find(','))) <= start_step) curve += line + "\n";
    }
    report.resumed = true;
    report.resumed_from_step = start_step;
    say("resuming from " + dir.string() + " (step " + std::to_string(start_step) + ")");
  } else {
    model = engine::Transformer(job.model);
    model->init_weights(job.train.init_std, job.train.seed);
  }
  model->train();
  write_world(job, data, out);
  Evaluator evaluator(out / "relations", tok);
  AdamW adam(model);
  for (std::size_t i = 0; i < adam.params.size(); ++i) {
    const auto& name = adam.params[i].first;
    if (saved_moments.count("m." + name)) adam.m[i].copy_(saved_moments["m." + name]);
    if (saved_moments.count("v." + name)) adam.v[i].copy_(saved_moments["v." + name]);
  }
  for (const auto& p : model->parameters()) report.parameters += p.numel();
  report.active_parameters = active_parameter_count(job.model);
  say(std::string(job.model.architecture) + ": " + std::to_string(report.parameters) +
      " parameters, " + std::to_string(report.active_parameters) + " active per token; corpus " +
      std::to_string(data.stream.size()) + " tokens, vocab " + std::to_string(tok.vocab_size()));

  const auto schedule = checkpoint_steps(job);
  const std::set<int64_t> save_at(schedule.begin(), schedule.end());
  auto save_checkpoint = [&](int64_t step, double loss) {
    const std::string name = checkpoint_name(job, step);
    const fs::path dir = out / name, tmp = out / (name + ".partial");
    fs::remove_all(tmp);
    engine::save_model(model, tmp);
    write_text(tmp / "tokenizer.json", data.tokenizer_json);
    fs::remove_all(dir);
    fs::rename(tmp, dir);
    const double hit = evaluator.run(model, step, curve);
    write_text(out / kCurveFile, curve);
    // The optimiser state last: a crash before this line resumes from the
    // previous checkpoint and redoes the same steps.
    std::vector<torch::Tensor> keep;
    std::vector<ck::TensorToWrite> tensors;
    for (std::size_t i = 0; i < adam.params.size(); ++i) {
      for (const auto& [prefix, t] : {std::pair{"m.", adam.m[i]}, std::pair{"v.", adam.v[i]}}) {
        keep.push_back(t.detach().contiguous());
        tensors.push_back({prefix + adam.params[i].first, ck::DType::F32, keep.back().sizes().vec(),
                           keep.back().data_ptr(), static_cast<std::size_t>(keep.back().nbytes())});
      }
    }
    ck::write_safetensors(state_file, tensors,
                          {{"step", std::to_string(step)},
                           {"job_name", job.name},
                           {"job_file", job.file.string()},
                           {"job_fingerprint", fingerprint}});
    report.checkpoints.push_back({step, name, loss, hit});
    if (options.on_checkpoint) options.on_checkpoint(step, dir, model);
    char line[160];
    std::snprintf(line, sizeof line, "checkpoint %s: loss %.4f, HIT@10 %.3f", name.c_str(), loss,
                  hit);
    say(line);
  };
  if (start_step == 0 && save_at.count(0)) save_checkpoint(0, std::nan(""));

  const auto t_train = Clock::now();
  auto last_report = t_train;
  const int64_t tokens_per_step = job.train.batch_size * job.train.sequence_length;
  const int64_t T = job.train.sequence_length;
  for (int64_t step = start_step + 1; step <= job.train.steps; ++step) {
    const auto batch = training_batch(job, data, step);
    const auto inputs = batch.narrow(1, 0, T), labels = batch.narrow(1, 1, T);
    engine::Batch b{inputs, torch::full({inputs.size(0)}, T, torch::kInt64),
                    torch::full({inputs.size(0)}, T - 1, torch::kInt64)};
    engine::ForwardOptions fo;
    fo.all_positions = true;
    auto result = model->forward(b, fo);
    const auto ce = torch::cross_entropy_loss(result.logits.reshape({-1, result.logits.size(-1)}),
                                              labels.reshape({-1}));
    auto loss = ce + job.model.router_aux_loss_coef * result.load_balancing_loss +
                job.model.router_z_loss_coef * result.router_z_loss;
    model->zero_grad();
    loss.backward();
    if (job.train.grad_clip > 0)
      torch::nn::utils::clip_grad_norm_(model->parameters(), job.train.grad_clip);
    const double lr = learning_rate(job.train, step);
    adam.step(job.train, lr, step);
    const double ce_value = ce.item<double>();
    if (!std::isfinite(ce_value)) {
      throw std::runtime_error("job " + job.file.string() + ": the loss diverged at step " +
                               std::to_string(step) + "; lower train.learning_rate");
    }

    const auto now = Clock::now();
    if (now - last_report > std::chrono::seconds(3) || step == job.train.steps) {
      last_report = now;
      const double secs = std::chrono::duration<double>(now - t_train).count();
      const double per_step = secs / static_cast<double>(step - start_step);
      char line[200];
      std::snprintf(
          line, sizeof line, "step %lld/%lld  loss %.4f  lr %.2e  %.0f tokens/s  ETA %.0f s",
          static_cast<long long>(step), static_cast<long long>(job.train.steps), ce_value, lr,
          tokens_per_step / per_step, per_step * static_cast<double>(job.train.steps - step));
      say(line);
    }
    if (save_at.count(step)) save_checkpoint(step, ce_value);
    if (step == options.stop_after_step) break;
  }
  report.seconds = std::chrono::duration<double>(Clock::now() - t_start).count();
  return report;
}

}  // namespace lpi::pretrain
