#include "common/tokenizer/unicode_text.hpp"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <utf8proc.h>

#include <cstdlib>
#include <memory>

#include "common/tokenizer/tokenizer.hpp"

namespace lpi::tokenizer::detail {
namespace {

// Length of the well-formed UTF-8 sequence starting at s[i] (> 0), or minus
// the length of the maximal invalid subpart starting there (< 0). The second
// byte ranges follow Unicode Table 3-7 (no overlongs, no surrogates, <= U+10FFFF).
int sequence_length(const unsigned char* s, std::size_t n, std::size_t i) {
  const unsigned b0 = s[i];
  if (b0 < 0x80) return 1;
  int need = 0;
  unsigned lo = 0x80, hi = 0xBF;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    need = 1;
  } else if (b0 == 0xE0) {
    need = 2, lo = 0xA0;
  } else if ((b0 >= 0xE1 && b0 <= 0xEC) || b0 == 0xEE || b0 == 0xEF) {
    need = 2;
  } else if (b0 == 0xED) {
    need = 2, hi = 0x9F;
  } else if (b0 == 0xF0) {
    need = 3, lo = 0x90;
  } else if (b0 >= 0xF1 && b0 <= 0xF3) {
    need = 3;
  } else if (b0 == 0xF4) {
    need = 3, hi = 0x8F;
  } else {
    return -1;
  }
  for (int k = 1; k <= need; ++k) {
    if (i + k >= n) return -k;
    const unsigned c = s[i + k];
    if (c < lo || c > hi) return -k;
    lo = 0x80, hi = 0xBF;
  }
  return need + 1;
}

std::string pcre2_message(int code) {
  PCRE2_UCHAR buffer[256];
  if (pcre2_get_error_message(code, buffer, sizeof buffer) < 0) {
    return "PCRE2 error " + std::to_string(code);
  }
  return reinterpret_cast<const char*>(buffer);
}

struct MatchDataDeleter {
  void operator()(void* md) const { pcre2_match_data_free(static_cast<pcre2_match_data*>(md)); }
};
using MatchData = std::unique_ptr<void, MatchDataDeleter>;

}  // namespace

std::size_t find_invalid_utf8(std::string_view text) {
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  const std::size_t n = text.size();
  std::size_t i = 0;
  while (i < n) {
    if (s[i] < 0x80) {
      ++i;
      continue;
    }
    const int len = sequence_length(s, n, i);
    if (len < 0) return i;
    i += static_cast<std::size_t>(len);
  }
  return std::string_view::npos;
}

std::string utf8_lossy(std::string_view bytes) {
  static constexpr char kReplacement[] = "\xEF\xBF\xBD";
  const auto* s = reinterpret_cast<const unsigned char*>(bytes.data());
  const std::size_t n = bytes.size();
  std::string out;
  out.reserve(n);
  std::size_t i = 0;
  while (i < n) {
    const int len = sequence_length(s, n, i);
    if (len > 0) {
      out.append(bytes.data() + i, static_cast<std::size_t>(len));
      i += static_cast<std::size_t>(len);
    } else {
      out.append(kReplacement);
      i += static_cast<std::size_t>(-len);
    }
  }
  return out;
}

#include "common/tokenizer/unicode_tables.inc"

namespace {

std::string nfc_run(std::string_view text) {
  if (text.empty()) return {};
  utf8proc_uint8_t* mapped = nullptr;
  // An explicit length (no UTF8PROC_NULLTERM) keeps embedded U+0000.
  const utf8proc_ssize_t len =
      utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(text.data()),
                   static_cast<utf8proc_ssize_t>(text.size()), &mapped,
                   static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_COMPOSE));
  if (len < 0) {
    throw TokenizerError(std::string("NFC normalisation failed (utf8proc): ") +
                         utf8proc_errmsg(len));
  }
  std::string out(reinterpret_cast<const char*>(mapped), static_cast<std::size_t>(len));
  std::free(mapped);
  return out;
}

}  // namespace

std::string nfc_unchecked(std::string_view text) {
  bool ascii = true;
  for (const char c : text) {
    if (static_cast<unsigned char>(c) >= 0x80) {
      ascii = false;
      break;
    }
  }
  if (ascii) return std::string(text);  // ASCII is always NFC
  // Inert code points are starters without decomposition for HuggingFace, so
  // NFC distributes over the runs between them.
  std::string out;
  std::size_t run_begin = 0;
  std::size_t i = 0;
  while (i < text.size()) {
    const auto lead = static_cast<unsigned char>(text[i]);
    const std::size_t n = lead < 0x80 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4;
    char32_t cp = n == 1 ? lead : n == 2 ? (lead & 0x1F) : n == 3 ? (lead & 0x0F) : (lead & 0x07);
    for (std::size_t k = 1; k < n; ++k) cp = (cp << 6) | (text[i + k] & 0x3F);
    if (nfc_inert(cp)) {
      out += nfc_run(text.substr(run_begin, i - run_begin));
      out.append(text, i, n);
      run_begin = i + n;
    }
    i += n;
  }
  if (run_begin == 0) return nfc_run(text);
  out += nfc_run(text.substr(run_begin));
  return out;
}

Regex::Regex(const std::string& pattern) : pattern_(pattern) {
  int error = 0;
  PCRE2_SIZE offset = 0;
  code_ = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                        PCRE2_UTF | PCRE2_UCP, &error, &offset, nullptr);
  if (code_ == nullptr) {
    throw TokenizerError("cannot compile the regex /" + pattern + "/ with PCRE2 at offset " +
                         std::to_string(offset) + ": " + pcre2_message(error) +
                         " (PCRE2 >= 10.40 is needed for Unicode binary properties)");
  }
  // JIT is an optimisation only: when it is unavailable the interpreter runs.
  (void)pcre2_jit_compile(code_, PCRE2_JIT_COMPLETE);
}

Regex::~Regex() {
  pcre2_code_free(code_);
}

bool Regex::match_from(std::string_view subject, std::size_t offset, void* match_data,
                       Span& match) const {
  auto* md = static_cast<pcre2_match_data*>(match_data);
  const auto* s = reinterpret_cast<PCRE2_SPTR>(subject.data());
  // The subject was validated once by the caller; PCRE2 would otherwise check
  // the whole subject again on every call.
  int rc = pcre2_match(code_, s, subject.size(), offset, PCRE2_NO_UTF_CHECK, md, nullptr);
  if (rc == PCRE2_ERROR_JIT_STACKLIMIT) {
    rc = pcre2_match(code_, s, subject.size(), offset, PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT, md,
                     nullptr);
  }
  if (rc == PCRE2_ERROR_NOMATCH) return false;
  if (rc < 0) {
    throw TokenizerError("regex /" + pattern_ + "/ failed on a " + std::to_string(subject.size()) +
                         "-byte piece: " + pcre2_message(rc));
  }
  const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(md);
  match.begin = ovector[0];
  match.end = ovector[1];
  return true;
}

void Regex::find_all(std::string_view subject, std::vector<Span>& out) const {
  MatchData md(pcre2_match_data_create_from_pattern(code_, nullptr));
  if (!md) throw std::bad_alloc();
  const auto* s = reinterpret_cast<const unsigned char*>(subject.data());
  std::size_t offset = 0;
  Span m{};
  while (offset <= subject.size() && match_from(subject, offset, md.get(), m)) {
    out.push_back(m);
    if (m.end > m.begin) {
      offset = m.end;
    } else {  // empty match: step over one character
      offset = m.end + 1;
      while (offset < subject.size() && (s[offset] & 0xC0) == 0x80) ++offset;
    }
  }
}

bool Regex::find(std::string_view subject, Span& match) const {
  MatchData md(pcre2_match_data_create_from_pattern(code_, nullptr));
  if (!md) throw std::bad_alloc();
  return match_from(subject, 0, md.get(), match);
}

}  // namespace lpi::tokenizer::detail
