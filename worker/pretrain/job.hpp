// A pre-training job file (INI): the synthetic world, the corpus, the
// tokenizer, the model (tiny OLMo or OLMoE) and the optimiser. Read with
// Boost.Program_options; an unknown key or a bad value is an error naming the
// file and the key.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "common/checkpoint/model_config.hpp"
#include "common/world/world.hpp"

namespace lpi::pretrain {

struct TrainOptions {
  uint64_t seed = 1;
  int64_t steps = 1000;
  int64_t batch_size = 16;
  int64_t sequence_length = 64;
  double learning_rate = 3e-3;
  double min_learning_rate = 3e-4;  // end of the decay
  int64_t warmup_steps = 50;
  // After the linear warmup: a cosine decay to min_learning_rate over the
  // remaining steps ("cosine"), or warmup-stable-decay ("wsd"): the peak rate
  // held until the last `decay_fraction` of the steps, then a linear decay.
  std::string schedule = "cosine";
  double decay_fraction = 0.2;
  double weight_decay = 0.1;
  double beta1 = 0.9, beta2 = 0.95, adam_eps = 1e-8;
  double grad_clip = 1.0;  // global norm; 0 = off
  double init_std = 0.02;
  int threads = 0;  // 0: libtorch's default
};

struct ScheduleOptions {
  // "geometric": `count` checkpoints, the first at first_step, geometrically
  // spaced to the final step. "even": every `every` steps, plus the `early`
  // steps, plus the final step (count and first_step unused).
  std::string spacing = "geometric";
  int count = 16;           // checkpoints, the last one at the final step
  int64_t first_step = 10;  // the first checkpoint; geometric spacing after it
  int64_t every = 0;
  std::vector<int64_t> early;
  bool include_step0 = true;
};

struct Job {
  std::filesystem::path file;
  std::string name;
  world::WorldOptions world;
  world::CorpusOptions corpus;
  std::size_t tokenizer_vocab = 1024;
  checkpoint::ModelConfig model;  // vocab_size filled in from the tokenizer
  TrainOptions train;
  ScheduleOptions schedule;
  bool seed_override = false;  // train.seed set by with_seed, not the file
};

Job read_job(const std::filesystem::path& file);

// The job with train.seed replaced (lpi-pretrain --seed): another
// initialisation and batch order on the same world; `seed_override` makes a
// folder trained with one seed refuse a resume with another.
Job with_seed(Job job, uint64_t seed);

// The learning rate at `step` (1-based) under the job's schedule.
double learning_rate(const TrainOptions& t, int64_t step);

// Steps at which checkpoints are saved: dense early and sparse late, ending at
// train.steps, strictly increasing.
std::vector<int64_t> checkpoint_steps(const Job& job);

// "step{N}-tokens{M}" (M = tokens seen: step * batch * sequence length).
std::string checkpoint_name(const Job& job, int64_t step);

}  // namespace lpi::pretrain
