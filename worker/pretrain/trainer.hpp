// Pre-training of a tiny OLMo or OLMoE model on the synthetic world, with the
// engine's model definition: deterministic batches, AdamW, warmup + cosine
// learning rate, OLMoE's load-balancing and router z-loss terms, HF-format
// checkpoints on a dense-early schedule, HIT@10 at each checkpoint, and resume
// from the last checkpoint of an interrupted run.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <iosfwd>
#include <string>
#include <vector>

#include "worker/engine/model.hpp"
#include "worker/pretrain/job.hpp"

namespace lpi::pretrain {

// The world, its tokenizer and the tokenised corpus (documents joined with
// <|endoftext|>), all functions of the job file.
struct TrainingData {
  world::World world;
  std::string tokenizer_json;
  std::vector<int32_t> stream;
  int64_t eos_id = 0;
};
TrainingData prepare_data(const Job& job);

// Writes out/relations/ and out/tokenizer.json (the world and its tokenizer).
void write_world(const Job& job, const TrainingData& data, const std::filesystem::path& out);
// Writes the corpus, one document per line (for inspection and fixtures).
void write_corpus(const Job& job, const std::filesystem::path& file);

// The batch of step `step`: [B, T+1] token ids drawn from the stream with the
// job's seed, the same on every run.
torch::Tensor training_batch(const Job& job, const TrainingData& data, int64_t step);

struct CheckpointRecord {
  int64_t step = 0;
  std::string name;
  double loss = 0;  // training loss of that step (NaN for step 0)
  double hit_at_10 = 0;
};

struct PretrainReport {
  std::vector<CheckpointRecord> checkpoints;
  int64_t parameters = 0;         // all parameters
  int64_t active_parameters = 0;  // per token (MoE: top-k experts only)
  bool resumed = false;
  int64_t resumed_from_step = -1;
  double seconds = 0;
};

struct PretrainOptions {
  std::ostream* log = nullptr;   // progress lines; null for silence
  int64_t stop_after_step = -1;  // stop (as if killed) after this step: tests of resume
  // Called after each checkpoint is saved, with the model as trained so far.
  std::function<void(int64_t step, const std::filesystem::path& dir, engine::Transformer& model)>
      on_checkpoint;
};

// Trains the job into `out`, resuming from out/train_state.safetensors when
// present. Throws std::runtime_error naming the file when `out` holds the
// state of a different job.
PretrainReport pretrain(const Job& job, const std::filesystem::path& out,
                        const PretrainOptions& options);

// One row of out/hit_at_10.csv: HIT@10 of one relation (or "overall") at a checkpoint.
struct CurvePoint {
  int64_t step = 0;
  std::string relation;
  int prompts = 0, hits = 0;
};
std::vector<CurvePoint> read_curve(const std::filesystem::path& out);

int64_t active_parameter_count(const checkpoint::ModelConfig& config);

}  // namespace lpi::pretrain
