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
  double min_learning_rate = 3e-4;  // end of the cosine decay
  int64_t warmup_steps = 50;
  double weight_decay = 0.1;
  double beta1 = 0.9, beta2 = 0.95, adam_eps = 1e-8;
  double grad_clip = 1.0;  // global norm; 0 = off
  double init_std = 0.02;
  int threads = 0;  // 0: libtorch's default
};

struct ScheduleOptions {
  int count = 16;           // checkpoints, the last one at the final step
  int64_t first_step = 10;  // the first checkpoint; geometric spacing after it
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
};

Job read_job(const std::filesystem::path& file);

// Steps at which checkpoints are saved: dense early and sparse late, ending at
// train.steps, strictly increasing.
std::vector<int64_t> checkpoint_steps(const Job& job);

// "step{N}-tokens{M}" (M = tokens seen: step * batch * sequence length).
std::string checkpoint_name(const Job& job, int64_t step);

}  // namespace lpi::pretrain
