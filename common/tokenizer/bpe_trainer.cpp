#include "common/tokenizer/bpe_trainer.hpp"

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <unordered_map>

#include "common/tokenizer/bpe_model.hpp"
#include "common/tokenizer/unicode_text.hpp"

namespace lpi::tokenizer {

namespace {

const char* kSplitPattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

struct Word {
  std::vector<int32_t> symbols;  // indices into the symbol table
  std::size_t count = 0;
};

}  // namespace

std::string train_bpe(const std::vector<std::string>& documents, const BpeTrainOptions& options) {
  const std::size_t base = options.special_tokens.size() + 256;
  if (options.vocab_size < base) {
    throw std::invalid_argument("train_bpe: vocab_size " + std::to_string(options.vocab_size) +
                                " is smaller than the special tokens plus 256 byte symbols (" +
                                std::to_string(base) + ")");
  }
  // Word counts after NFC and the split regex.
  const detail::Regex split(kSplitPattern);
  std::map<std::string, std::size_t> counts;  // ordered: deterministic symbol ids
  std::vector<detail::Span> spans;
  for (std::size_t d = 0; d < documents.size(); ++d) {
    if (detail::find_invalid_utf8(documents[d]) != std::string_view::npos) {
      throw std::invalid_argument("train_bpe: document " + std::to_string(d) +
                                  " is not valid UTF-8");
    }
    const std::string text = detail::nfc_unchecked(documents[d]);
    spans.clear();
    split.find_all(text, spans);
    for (const auto& s : spans) ++counts[text.substr(s.begin, s.end - s.begin)];
  }

  // Symbols are strings of byte-level characters; ids 0..255 are the bytes.
  const auto& byte_char = detail::byte_to_char();
  std::vector<std::string> symbols(byte_char.begin(), byte_char.end());
  std::vector<Word> words;
  for (const auto& [text, count] : counts) {
    Word w;
    w.count = count;
    for (unsigned char c : text) w.symbols.push_back(c);
    words.push_back(std::move(w));
  }

  std::vector<std::pair<int32_t, int32_t>> merges;
  while (symbols.size() + options.special_tokens.size() < options.vocab_size) {
    std::map<std::pair<int32_t, int32_t>, std::size_t> pairs;
    for (const auto& w : words) {
      for (std::size_t i = 0; i + 1 < w.symbols.size(); ++i)
        pairs[{w.symbols[i], w.symbols[i + 1]}] += w.count;
    }
    // Most frequent pair; ties to the smallest (left, right) strings.
    const std::pair<int32_t, int32_t>* best = nullptr;
    std::size_t best_count = 0;
    for (const auto& [pair, count] : pairs) {
      if (count < best_count || count < options.min_frequency) continue;
      if (count == best_count) {
        const auto key = std::tie(symbols[pair.first], symbols[pair.second]);
        if (key >= std::tie(symbols[best->first], symbols[best->second])) continue;
      }
      best = &pair;
      best_count = count;
    }
    if (!best) break;  // nothing frequent enough left to merge
    const auto [a, b] = *best;
    const auto merged = static_cast<int32_t>(symbols.size());
    symbols.push_back(symbols[a] + symbols[b]);
    merges.emplace_back(a, b);
    for (auto& w : words) {
      std::vector<int32_t> out;
      out.reserve(w.symbols.size());
      for (std::size_t i = 0; i < w.symbols.size(); ++i) {
        if (i + 1 < w.symbols.size() && w.symbols[i] == a && w.symbols[i + 1] == b) {
          out.push_back(merged);
          ++i;
        } else {
          out.push_back(w.symbols[i]);
        }
      }
      w.symbols = std::move(out);
    }
  }

  // tokenizer.json, laid out as GPT-NeoX's.
  using json = nlohmann::ordered_json;
  const auto offset = static_cast<int32_t>(options.special_tokens.size());
  json added = json::array();
  for (std::size_t i = 0; i < options.special_tokens.size(); ++i) {
    added.push_back({{"id", static_cast<int32_t>(i)},
                     {"content", options.special_tokens[i]},
                     {"single_word", false},
                     {"lstrip", false},
                     {"rstrip", false},
                     {"normalized", false},
                     {"special", true}});
  }
  json vocab = json::object();
  for (std::size_t i = 0; i < options.special_tokens.size(); ++i) {
    vocab[options.special_tokens[i]] = static_cast<int32_t>(i);
  }
  for (std::size_t i = 0; i < symbols.size(); ++i) {
    if (vocab.contains(symbols[i])) {
      throw std::invalid_argument("train_bpe: special token '" + symbols[i] +
                                  "' collides with a BPE symbol");
    }
    vocab[symbols[i]] = static_cast<int32_t>(i) + offset;
  }
  json merge_list = json::array();
  for (const auto& [a, b] : merges) merge_list.push_back(symbols[a] + " " + symbols[b]);
  const json byte_level = {{"type", "ByteLevel"},
                           {"add_prefix_space", false},
                           {"trim_offsets", true},
                           {"use_regex", true}};
  json doc = {{"version", "1.0"},
              {"truncation", nullptr},
              {"padding", nullptr},
              {"added_tokens", added},
              {"normalizer", {{"type", "NFC"}}},
              {"pre_tokenizer", byte_level},
              {"post_processor", byte_level},
              {"decoder", byte_level},
              {"model",
               {{"type", "BPE"},
                {"dropout", nullptr},
                {"unk_token", nullptr},
                {"continuing_subword_prefix", nullptr},
                {"end_of_word_suffix", nullptr},
                {"fuse_unk", false},
                {"byte_fallback", false},
                {"vocab", vocab},
                {"merges", merge_list}}}};
  return doc.dump(1) + "\n";
}

}  // namespace lpi::tokenizer
