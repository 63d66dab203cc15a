// Private part of lpi_tokenizer: HuggingFace's AddedVocabulary splitting. The
// added tokens of one kind (normalized or not) are found leftmost-longest (as
// the Aho-Corasick automaton of HuggingFace with MatchKind::LeftmostLongest),
// then single_word / lstrip / rstrip are applied as find_matches does.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/tokenizer/unicode_text.hpp"

namespace lpi::tokenizer::detail {

struct AddedToken {
  std::string content;
  int32_t id = 0;
  bool single_word = false;
  bool lstrip = false;
  bool rstrip = false;
  bool normalized = true;
  bool special = false;
};

// A piece of the input: either an added token (id >= 0) or text still to be
// processed (id < 0).
struct Piece {
  Span span;
  int32_t id;
};

class AddedTokenMatcher {
 public:
  // `patterns[i]` is what token `tokens[i]` matches (its content, or its
  // normalised content). Empty patterns are ignored.
  AddedTokenMatcher(std::vector<std::string> patterns, std::vector<AddedToken> tokens);
  AddedTokenMatcher(AddedTokenMatcher&&) noexcept;
  ~AddedTokenMatcher();

  bool empty() const { return patterns_.empty(); }
  // Splits `text` (valid UTF-8) into pieces covering it, in order; the
  // pieces may be empty only when `text` is.
  void split(std::string_view text, std::vector<Piece>& out) const;

 private:
  // Leftmost-longest match at or after `from`; false when none.
  bool next_match(std::string_view text, std::size_t from, std::size_t& begin,
                  std::size_t& index) const;

  std::vector<std::string> patterns_;
  std::vector<AddedToken> tokens_;
  std::vector<std::vector<std::size_t>> by_first_byte_;  // longest first
  std::unique_ptr<Regex> word_char_, space_char_;        // only when a token has flags
};

}  // namespace lpi::tokenizer::detail
