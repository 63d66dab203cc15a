// Private part of lpi_tokenizer: the byte-level BPE model (GPT-2
// bytes_to_unicode mapping, merge-rank BPE as HuggingFace's Word::merge_all
// does it, a bounded per-word cache).
#pragma once

#include <array>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace lpi::tokenizer::detail {

// The GPT-2 byte -> character mapping, as UTF-8 strings, and its inverse.
const std::array<std::string, 256>& byte_to_char();
// The byte a byte-level character (one code point) stands for, or -1.
int char_to_byte(char32_t c);

struct BpeOptions {
  std::optional<std::string> unk_token;
  bool fuse_unk = false;
  bool byte_fallback = false;
  bool ignore_merges = false;
};

class BpeModel {
 public:
  using Vocab = std::unordered_map<std::string, int32_t>;
  using Merges = std::vector<std::pair<std::string, std::string>>;

  // Throws std::invalid_argument with a sentence when a merge names a token
  // that is not in `vocab` (the caller adds the file and field).
  BpeModel(Vocab vocab, const Merges& merges, BpeOptions options);

  // Appends the ids of one pre-token given as raw bytes (before the
  // byte-level mapping).
  void encode_word(std::string_view bytes, std::vector<int32_t>& out) const;

  const Vocab& vocab() const { return vocab_; }
  std::size_t merge_count() const { return merges_.size(); }

 private:
  struct MergeTarget {
    uint32_t rank;
    int32_t new_id;
  };
  static uint64_t pair_key(int32_t a, int32_t b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  }
  void merge_word(std::string_view bytes, std::vector<int32_t>& out) const;

  Vocab vocab_;
  std::unordered_map<uint64_t, MergeTarget> merges_;
  std::array<int32_t, 256> byte_id_{};  // vocab id of each byte's character, or -1
  BpeOptions options_;
  std::optional<int32_t> unk_id_;

  static constexpr std::size_t kCacheCapacity = 10000;
  static constexpr std::size_t kCacheMaxWordLength = 256;
  mutable std::mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::vector<int32_t>> cache_;
};

}  // namespace lpi::tokenizer::detail
