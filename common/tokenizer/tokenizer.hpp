// A reader of HuggingFace tokenizer.json byte-level BPE tokenizers (GPT-NeoX /
// OLMo style: NFC normaliser, ByteLevel pre-tokenizer with the GPT-2 split
// regex, BPE merges, added tokens). encode() gives the ids of HuggingFace
// `tokenizers` encode(text, add_special_tokens=False) for any UTF-8 text.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace lpi::tokenizer {

// A tokenizer.json that cannot be read or is of a kind this reader does not
// support; what() names the file and the field.
class TokenizerError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class Tokenizer {
 public:
  static Tokenizer from_file(const std::filesystem::path& path);
  static Tokenizer from_json_string(const std::string& json, const std::string& source_name);

  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  ~Tokenizer();

  // Ids for `text` (UTF-8), no special tokens added. Invalid UTF-8 is an error.
  std::vector<int32_t> encode(std::string_view text) const;
  // Text for `ids` (byte-level decode, added tokens verbatim). Unknown ids are an error.
  std::string decode(const std::vector<int32_t>& ids, bool skip_special_tokens = false) const;

  std::size_t vocab_size() const;  // model vocab + added tokens (largest id + 1)
  std::optional<int32_t> token_to_id(std::string_view token) const;
  std::optional<std::string> id_to_token(int32_t id) const;
  const std::string& source() const;

 private:
  struct Impl;
  explicit Tokenizer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Unicode NFC of UTF-8 text (utf8proc); throws TokenizerError on invalid UTF-8.
std::string nfc(std::string_view text);

}  // namespace lpi::tokenizer
