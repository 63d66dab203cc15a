// Encoding arbitrary bytes with a real byte-level BPE (trained by the
// project's trainer): invalid UTF-8 is a TokenizerError, and valid text
// decodes back to its NFC form. The first byte picks the tokenizer: the
// trained one without added tokens, or one with the special tokens and added
// tokens that strip and match single words (encoded and decoded, not
// compared: stripping drops spaces, and NFC stops at an added token).
#include <cstddef>
#include <cstdint>

#include <nlohmann/json.hpp>

#include "common/tokenizer/tokenizer.hpp"
#include "common/tokenizer/unicode_text.hpp"
#include "fuzz_support.hpp"

namespace tk = lpi::tokenizer;

namespace {

struct Tokenizers {
  tk::Tokenizer plain, added;
};

const Tokenizers& tokenizers() {
  static const Tokenizers t = [] {
    nlohmann::json doc = nlohmann::json::parse(lpi::fuzz::tiny_tokenizer_json(true));
    int32_t id = 1000;
    for (const auto& [content, flags] :
         std::vector<std::pair<std::string, std::string>>{{"<mask>", "lstrip"},
                                                          {"[SEP]", "rstrip"},
                                                          {"city", "single_word"},
                                                          {"caf\xC3\xA9", "normalized"},
                                                          {"e\xCC\x81", "normalized"},
                                                          {" \n", "raw"}}) {
      nlohmann::json token = {{"id", id++},      {"content", content}, {"single_word", false},
                              {"lstrip", false}, {"rstrip", false},    {"normalized", false},
                              {"special", false}};
      if (flags != "raw") token[flags] = true;
      doc["added_tokens"].push_back(token);
    }
    return Tokenizers{
        tk::Tokenizer::from_json_string(lpi::fuzz::tiny_tokenizer_json(false), "trained"),
        tk::Tokenizer::from_json_string(doc.dump(), "trained+added")};
  }();
  return t;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  (void)tokenizers();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const bool added = (data[0] & 1) != 0;
  const tk::Tokenizer& tokenizer = added ? tokenizers().added : tokenizers().plain;
  const std::string_view text = lpi::fuzz::as_text(data + 1, size - 1);
  const bool valid = tk::detail::find_invalid_utf8(text) == std::string_view::npos;
  std::vector<int32_t> ids;
  try {
    ids = tokenizer.encode(text);
  } catch (const tk::TokenizerError&) {
    LPI_FUZZ_CHECK(!valid);  // only invalid UTF-8 is refused
    return 0;
  }
  LPI_FUZZ_CHECK(valid);
  for (int32_t id : ids) LPI_FUZZ_CHECK(static_cast<std::size_t>(id) < tokenizer.vocab_size());
  const std::string decoded = tokenizer.decode(ids);
  if (!added) LPI_FUZZ_CHECK(decoded == tk::nfc(text));
  return 0;
}
