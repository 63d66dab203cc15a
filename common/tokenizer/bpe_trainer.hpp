// Training of a byte-level BPE tokenizer (GPT-2 split regex, NFC) on a corpus,
// written out as a HuggingFace tokenizer.json that this project's Tokenizer and
// HuggingFace `tokenizers` read the same way. Deterministic: ties between
// equally frequent pairs go to the lexicographically smallest pair.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace lpi::tokenizer {

struct BpeTrainOptions {
  std::size_t vocab_size = 1024;  // special tokens + 256 bytes + merges
  std::size_t min_frequency = 2;  // pairs seen fewer times are not merged
  // Added at ids 0, 1, ...: special, not normalised (as GPT-NeoX's <|endoftext|>).
  std::vector<std::string> special_tokens = {"<|endoftext|>", "<|padding|>"};
};

// Returns the tokenizer.json text (NFC normaliser, ByteLevel pre-tokenizer and
// decoder, BPE model). Throws std::invalid_argument on invalid UTF-8 or a
// vocab_size too small for the special tokens and the 256 byte symbols.
std::string train_bpe(const std::vector<std::string>& documents, const BpeTrainOptions& options);

}  // namespace lpi::tokenizer
