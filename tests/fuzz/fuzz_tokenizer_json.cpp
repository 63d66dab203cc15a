// tokenizer.json from arbitrary bytes: normalizer, pre-tokenizer, decoder,
// BPE model (vocab, merges in both spellings, unk, byte fallback) and added
// tokens (with single_word / lstrip / rstrip / normalized). A tokenizer it
// accepts then encodes a few fixed texts and the input itself, and decodes
// what it encoded.
#include <cstddef>
#include <cstdint>

#include "common/tokenizer/tokenizer.hpp"
#include "common/tokenizer/unicode_text.hpp"
#include "fuzz_support.hpp"

namespace tk = lpi::tokenizer;

namespace {

void check_round(const tk::Tokenizer& tokenizer, std::string_view text) {
  const std::vector<int32_t> ids = tokenizer.encode(text);
  for (int32_t id : ids) {
    LPI_FUZZ_CHECK(id >= 0 && static_cast<std::size_t>(id) < tokenizer.vocab_size());
    LPI_FUZZ_CHECK(tokenizer.id_to_token(id).has_value());
  }
  (void)tokenizer.decode(ids);
  (void)tokenizer.decode(ids, /*skip_special_tokens=*/true);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  const std::string text(lpi::fuzz::as_text(data, size));
  try {
    const tk::Tokenizer tokenizer = tk::Tokenizer::from_json_string(text, "fuzz/tokenizer.json");
    for (const char* fixed :
         {"The capital city of Norland is", " hello  world\n\t",
          "Caf\xC3\xA9 e\xCC\x81 \xE6\x9D\xB1", "<|endoftext|>x<|padding|>", "", " "}) {
      check_round(tokenizer, fixed);
    }
    // The input's own bytes (its added tokens and vocab entries appear in it).
    std::string_view own(text);
    own = own.substr(0, 512);
    if (tk::detail::find_invalid_utf8(own) == std::string_view::npos) check_round(tokenizer, own);
  } catch (const tk::TokenizerError&) {
  }
  return 0;
}
