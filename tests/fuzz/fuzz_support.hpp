// What the fuzz targets share: a scratch folder per process (removed at
// exit), writing an input to a file, a tiny byte-level BPE tokenizer trained
// by the project's own trainer, and the finding for a broken invariant.
//
// The contract every target checks: bad input ends in the parser's typed
// exception (CheckpointError, TokenizerError, RelationsError, SweepJobError,
// ProtocolError, StoreError, h5::Error), which the target catches. Anything
// else is a finding: a crash or sanitizer report, an exception of another
// type escaping (std::terminate aborts), or a broken invariant (abort()).
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include "common/tokenizer/bpe_trainer.hpp"
#include "temp_dir.hpp"

namespace lpi::fuzz {

inline const std::filesystem::path& scratch() {
  static const lpi::test::TempDir dir("lpi_fuzz");
  return dir.path();
}

inline std::string_view as_text(const uint8_t* data, std::size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

inline void write_file(const std::filesystem::path& path, std::string_view bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) {
    std::fprintf(stderr, "fuzz: cannot write %s\n", path.c_str());
    std::abort();
  }
}

// A broken invariant is a finding, reported like a crash.
#define LPI_FUZZ_CHECK(cond)                                                                    \
  do {                                                                                          \
    if (!(cond)) {                                                                              \
      std::fprintf(stderr, "fuzz: invariant broken at %s:%d: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                             \
    }                                                                                           \
  } while (0)

// The tokenizer.json of a byte-level BPE trained on a few sentences (all 256
// bytes, ~100 merges), with or without the GPT-NeoX special tokens.
inline std::string tiny_tokenizer_json(bool special_tokens = true) {
  const std::vector<std::string> documents = {
      "The capital city of Norland is Vesk. The capital city of Ostria is Paln.",
      "Mira Solberg was born in Vesk. Tomas Reyes works as a nurse in Paln.",
      "The opposite of hot is cold; the opposite of early is late.",
      "Caf\xC3\xA9 na\xC3\xAFve r\xC3\xA9sum\xC3\xA9 \xE6\x9D\xB1\xE4\xBA\xAC 2024 100 3.14",
      "  indented\tand\ttabbed\nlines\r\n with 'quotes' and it's don't we'll"};
  tokenizer::BpeTrainOptions options;
  options.vocab_size = 360;
  options.min_frequency = 1;
  if (!special_tokens) options.special_tokens.clear();
  return tokenizer::train_bpe(documents, options);
}

}  // namespace lpi::fuzz
