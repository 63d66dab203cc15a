#include "common/tokenizer/added_tokens.hpp"

#include <algorithm>

namespace lpi::tokenizer::detail {
namespace {

// Rust regex's Unicode \w and \s, which HuggingFace uses for single_word,
// lstrip and rstrip.
constexpr const char* kWordChar = R"(\A[\p{Alphabetic}\p{M}\p{Nd}\p{Pc}\p{Join_Control}]\z)";
constexpr const char* kSpaceChar = R"(\A\p{White_Space}\z)";

bool is_continuation(char c) {
  return (static_cast<unsigned char>(c) & 0xC0) == 0x80;
}

// The code point ending at `end` (exclusive) / starting at `begin`.
std::string_view char_before(std::string_view text, std::size_t end) {
  std::size_t begin = end - 1;
  while (begin > 0 && is_continuation(text[begin])) --begin;
  return text.substr(begin, end - begin);
}
std::string_view char_at(std::string_view text, std::size_t begin) {
  std::size_t end = begin + 1;
  while (end < text.size() && is_continuation(text[end])) ++end;
  return text.substr(begin, end - begin);
}

bool is_one_char_of(const Regex& re, std::string_view ch) {
  Span m{};
  return re.find(ch, m);
}

}  // namespace

AddedTokenMatcher::AddedTokenMatcher(std::vector<std::string> patterns,
                                     std::vector<AddedToken> tokens)
    : by_first_byte_(256) {
  bool flags = false;
  for (std::size_t i = 0; i < patterns.size(); ++i) {
    if (patterns[i].empty()) continue;
    flags = flags || tokens[i].single_word || tokens[i].lstrip || tokens[i].rstrip;
    patterns_.push_back(std::move(patterns[i]));
    tokens_.push_back(std::move(tokens[i]));
  }
  for (std::size_t i = 0; i < patterns_.size(); ++i) {
    by_first_byte_[static_cast<unsigned char>(patterns_[i][0])].push_back(i);
  }
  for (auto& bucket : by_first_byte_) {
    std::stable_sort(bucket.begin(), bucket.end(), [this](std::size_t a, std::size_t b) {
      return patterns_[a].size() > patterns_[b].size();
    });
  }
  if (flags) {
    word_char_ = std::make_unique<Regex>(kWordChar);
    space_char_ = std::make_unique<Regex>(kSpaceChar);
  }
}

AddedTokenMatcher::AddedTokenMatcher(AddedTokenMatcher&&) noexcept = default;
AddedTokenMatcher::~AddedTokenMatcher() = default;

bool AddedTokenMatcher::next_match(std::string_view text, std::size_t from, std::size_t& begin,
                                   std::size_t& index) const {
  for (std::size_t i = from; i < text.size(); ++i) {
    for (const std::size_t p : by_first_byte_[static_cast<unsigned char>(text[i])]) {
      if (text.compare(i, patterns_[p].size(), patterns_[p]) == 0) {
        begin = i;
        index = p;
        return true;
      }
    }
  }
  return false;
}

void AddedTokenMatcher::split(std::string_view text, std::vector<Piece>& out) const {
  std::size_t start_offset = 0;
  std::size_t pos = 0;
  std::size_t begin = 0;
  std::size_t index = 0;
  while (pos < text.size() && next_match(text, pos, begin, index)) {
    const AddedToken& token = tokens_[index];
    std::size_t start = begin;
    std::size_t stop = begin + patterns_[index].size();
    pos = stop;  // the automaton resumes after its own match, whatever is done below
    if (token.single_word) {
      const bool word_before = start > 0 && is_one_char_of(*word_char_, char_before(text, start));
      const bool word_after =
          stop < text.size() && is_one_char_of(*word_char_, char_at(text, stop));
      if (word_before || word_after) continue;
    }
    if (token.lstrip) {
      std::size_t new_start = start;
      while (new_start > 0 && is_one_char_of(*space_char_, char_before(text, new_start))) {
        new_start -= char_before(text, new_start).size();
      }
      start = std::max(new_start, start_offset);
    }
    if (token.rstrip) {
      while (stop < text.size() && is_one_char_of(*space_char_, char_at(text, stop))) {
        stop += char_at(text, stop).size();
      }
    }
    if (start_offset < start) out.push_back(Piece{Span{start_offset, start}, -1});
    out.push_back(Piece{Span{start, stop}, token.id});
    start_offset = stop;
  }
  if (start_offset != text.size() || text.empty()) {
    out.push_back(Piece{Span{start_offset, text.size()}, -1});
  }
}

}  // namespace lpi::tokenizer::detail
