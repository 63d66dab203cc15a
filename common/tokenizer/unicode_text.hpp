// Private helpers of lpi_tokenizer: UTF-8 validation and lossy repair, NFC
// (utf8proc) and a PCRE2 regex handle (UTF + UCP) used for the split regexes.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

struct pcre2_real_code_8;

namespace lpi::tokenizer::detail {

// Byte offset of the first invalid UTF-8 sequence in `text` (overlong forms,
// surrogates and code points above U+10FFFF are invalid), or npos.
std::size_t find_invalid_utf8(std::string_view text);

// `bytes` with every invalid UTF-8 sequence replaced by U+FFFD, one per maximal
// invalid subpart (as Rust's String::from_utf8_lossy does).
std::string utf8_lossy(std::string_view bytes);

// Unicode NFC of valid UTF-8 `text` (no validation here), as HuggingFace
// computes it: code points for which nfc_inert() holds are left alone and
// split the text into separately normalised runs.
bool nfc_inert(char32_t c);
std::string nfc_unchecked(std::string_view text);

// PCRE2 class fragments (\x{..} ranges) of the letters and digits that
// HuggingFace's Oniguruma classifies as \p{L} / \p{N} and PCRE2 10.42
// (Unicode 14) does not.
const char* extra_letters();
const char* extra_numbers();

struct Span {
  std::size_t begin;
  std::size_t end;
};

// A compiled PCRE2 pattern (UTF, UCP, JIT when available). Owns the code.
class Regex {
 public:
  explicit Regex(const std::string& pattern);
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;
  ~Regex();

  // Non-overlapping leftmost matches in `subject` (valid UTF-8), appended to
  // `out`. An empty match advances by one character, as Oniguruma does.
  void find_all(std::string_view subject, std::vector<Span>& out) const;
  // The first match in `subject`, if any.
  bool find(std::string_view subject, Span& match) const;

 private:
  bool match_from(std::string_view subject, std::size_t offset, void* match_data,
                  Span& match) const;
  pcre2_real_code_8* code_ = nullptr;
  std::string pattern_;
};

}  // namespace lpi::tokenizer::detail
