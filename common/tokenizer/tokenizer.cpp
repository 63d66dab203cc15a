#include "common/tokenizer/tokenizer.hpp"

#include <nlohmann/json.hpp>

#include <fstream>
#include <map>
#include <sstream>
#include <unordered_map>
#include <unordered_set>

#include "common/json/json_text.hpp"
#include "common/tokenizer/added_tokens.hpp"
#include "common/tokenizer/bpe_model.hpp"
#include "common/tokenizer/unicode_text.hpp"

namespace lpi::tokenizer {

using detail::AddedToken;
using detail::AddedTokenMatcher;
using detail::Piece;
using detail::Span;
using json = nlohmann::json;

namespace {

// The GPT-2 split regex of HuggingFace's ByteLevel pre-tokenizer.
constexpr const char* kByteLevelPattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

// Rewrites an Oniguruma pattern for PCRE2 so that classes agree: Oniguruma's
// \s is the White_Space property (with U+0085, which PCRE2's UCP \s lacks),
// and its \p{L} / \p{N} follow a newer Unicode than PCRE2 10.42.
std::string onig_to_pcre2(const std::string& pattern) {
  static constexpr const char* kSpace = R"(\t-\r \x{85}\x{A0}\x{1680}\x{2000}-\x{200A})"
                                        R"(\x{2028}\x{2029}\x{202F}\x{205F}\x{3000})";
  std::string out;
  bool in_class = false;
  for (std::size_t i = 0; i < pattern.size(); ++i) {
    const char c = pattern[i];
    if (c == '\\' && i + 1 < pattern.size()) {
      const char e = pattern[++i];
      if (e == 's') {
        out += in_class ? std::string(kSpace) : "[" + std::string(kSpace) + "]";
      } else if (e == 'S' && !in_class) {
        out += "[^" + std::string(kSpace) + "]";
      } else if (e == 'p' &&
                 (pattern.compare(i + 1, 3, "{L}") == 0 || pattern.compare(i + 1, 3, "{N}") == 0)) {
        const bool letter = pattern[i + 2] == 'L';
        const std::string cls = std::string(letter ? "\\p{L}" : "\\p{N}") +
                                (letter ? detail::extra_letters() : detail::extra_numbers());
        out += in_class ? cls : "[" + cls + "]";
        i += 3;
      } else {
        out += c;
        out += e;
      }
      continue;
    }
    if (c == '[' && !in_class) {
      in_class = true;
    } else if (c == ']' && in_class) {
      in_class = false;
    }
    out += c;
  }
  return out;
}

// "<file>: <field>: <what>"
[[noreturn]] void fail(const std::string& source, const std::string& field,
                       const std::string& what) {
  throw TokenizerError(source + ": " + field + ": " + what);
}

enum class DecoderKind { kNone, kByteLevel };

}  // namespace

struct Tokenizer::Impl {
  std::string source;
  bool nfc = false;
  bool add_prefix_space = false;
  std::unique_ptr<detail::Regex> split_regex;  // null: use_regex false
  DecoderKind decoder = DecoderKind::kNone;
  std::unique_ptr<detail::BpeModel> model;
  std::unordered_map<int32_t, std::string> model_tokens;  // id -> token
  std::map<int32_t, AddedToken> added_by_id;              // ordered: deterministic matching
  std::unordered_map<std::string, int32_t> added_by_content;
  std::unordered_set<std::string> special_contents;
  std::unique_ptr<AddedTokenMatcher> raw_matcher;         // normalized: false
  std::unique_ptr<AddedTokenMatcher> normalized_matcher;  // normalized: true
  std::size_t vocab_size = 0;

  void parse_normalizer(const json& n);
  void parse_pre_tokenizer(const json& p);
  void parse_decoder(const json& d);
  void parse_model(const json& m);
  void parse_added_tokens(const json& a);
  void encode_text(std::string_view text, std::vector<int32_t>& out) const;
};

namespace {

std::string type_of(const json& j) {
  const auto it = j.find("type");
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string("(none)");
}

bool truthy(const json& j, const char* key) {
  const auto it = j.find(key);
  return it != j.end() && it->is_boolean() && it->get<bool>();
}

// A string-or-null field that must be null or empty for this reader.
void require_unset(const std::string& source, const json& j, const std::string& where,
                   const char* key) {
  const auto it = j.find(key);
  if (it == j.end() || it->is_null()) return;
  if (it->is_string() && it->get<std::string>().empty()) return;
  fail(source, where + "." + key,
       "is set (" + json_text::brief(*it) + "), which this reader does not support");
}

}  // namespace

void Tokenizer::Impl::parse_normalizer(const json& n) {
  if (n.is_null()) return;
  const std::string type = type_of(n);
  if (type == "NFC") {
    nfc = true;
  } else if (type == "Sequence" && n.contains("normalizers") && n["normalizers"].is_array()) {
    for (const json& sub : n["normalizers"]) {
      if (type_of(sub) != "NFC") {
        fail(source, "normalizer.normalizers[].type",
             "unsupported normalizer type \"" + type_of(sub) + "\" (only NFC is supported)");
      }
      nfc = true;
    }
  } else {
    fail(source, "normalizer.type",
         "unsupported normalizer type \"" + type + "\" (only NFC or none is supported)");
  }
}

void Tokenizer::Impl::parse_pre_tokenizer(const json& p) {
  if (p.is_null() || type_of(p) != "ByteLevel") {
    fail(source, "pre_tokenizer.type",
         "unsupported pre_tokenizer type \"" + (p.is_null() ? "null" : type_of(p)) +
             "\" (only ByteLevel is supported)");
  }
  add_prefix_space = truthy(p, "add_prefix_space");
  const auto use_regex = p.find("use_regex");
  if (use_regex == p.end() || !use_regex->is_boolean() || use_regex->get<bool>()) {
    split_regex = std::make_unique<detail::Regex>(onig_to_pcre2(kByteLevelPattern));
  }
}

void Tokenizer::Impl::parse_decoder(const json& d) {
  if (d.is_null()) return;
  if (type_of(d) != "ByteLevel") {
    fail(source, "decoder.type",
         "unsupported decoder type \"" + type_of(d) + "\" (only ByteLevel or none is supported)");
  }
  decoder = DecoderKind::kByteLevel;
}

void Tokenizer::Impl::parse_model(const json& m) {
  if (!m.is_object()) fail(source, "model", "missing or not an object");
  const std::string type = type_of(m);
  if (type != "BPE" && !(type == "(none)" && m.contains("merges"))) {
    fail(source, "model.type", "model type \"" + type + "\" is not supported (only BPE)");
  }
  const auto dropout = m.find("dropout");
  if (dropout != m.end() && !dropout->is_null() &&
      !(dropout->is_number() && dropout->get<double>() == 0.0)) {
    fail(source, "model.dropout", "BPE dropout is not supported");
  }
  require_unset(source, m, "model", "continuing_subword_prefix");
  require_unset(source, m, "model", "end_of_word_suffix");

  const auto vocab_it = m.find("vocab");
  if (vocab_it == m.end() || !vocab_it->is_object()) {
    fail(source, "model.vocab", "missing or not an object");
  }
  detail::BpeModel::Vocab vocab;
  vocab.reserve(vocab_it->size());
  for (const auto& [token, id] : vocab_it->items()) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() > INT32_MAX) {
      fail(source, "model.vocab",
           "token \"" + token + "\" has id " + json_text::brief(id) +
               ", not a non-negative 32-bit integer");
    }
    const auto v = id.get<int32_t>();
    vocab.emplace(token, v);
    model_tokens.emplace(v, token);
    vocab_size = std::max(vocab_size, static_cast<std::size_t>(v) + 1);
  }

  const auto merges_it = m.find("merges");
  if (merges_it == m.end() || !merges_it->is_array()) {
    fail(source, "model.merges", "missing or not an array");
  }
  detail::BpeModel::Merges merges;
  merges.reserve(merges_it->size());
  for (std::size_t i = 0; i < merges_it->size(); ++i) {
    const json& e = (*merges_it)[i];
    const std::string where = "model.merges[" + std::to_string(i) + "]";
    if (e.is_string()) {  // legacy "a b"
      const std::string s = e.get<std::string>();
      const auto space = s.find(' ');
      if (space == std::string::npos || s.find(' ', space + 1) != std::string::npos) {
        fail(source, where, "\"" + s + "\" is not two tokens separated by one space");
      }
      merges.emplace_back(s.substr(0, space), s.substr(space + 1));
    } else if (e.is_array() && e.size() == 2 && e[0].is_string() && e[1].is_string()) {
      merges.emplace_back(e[0].get<std::string>(), e[1].get<std::string>());
    } else {
      fail(source, where, "expected \"a b\" or [\"a\", \"b\"], got " + json_text::brief(e));
    }
  }

  detail::BpeOptions options;
  const auto unk = m.find("unk_token");
  if (unk != m.end() && unk->is_string()) options.unk_token = unk->get<std::string>();
  options.fuse_unk = truthy(m, "fuse_unk");
  options.byte_fallback = truthy(m, "byte_fallback");
  options.ignore_merges = truthy(m, "ignore_merges");
  try {
    model = std::make_unique<detail::BpeModel>(std::move(vocab), merges, std::move(options));
  } catch (const std::invalid_argument& e) {
    fail(source, "model.merges", e.what());
  }
}

void Tokenizer::Impl::parse_added_tokens(const json& a) {
  if (!a.is_null() && !a.is_array()) fail(source, "added_tokens", "not an array");
  for (std::size_t i = 0; a.is_array() && i < a.size(); ++i) {
    const json& t = a[i];
    const std::string where = "added_tokens[" + std::to_string(i) + "]";
    if (!t.is_object() || !t.contains("id") || !t["id"].is_number_integer() ||
        !t.contains("content") || !t["content"].is_string()) {
      fail(source, where, "expected an object with integer \"id\" and string \"content\"");
    }
    const json& id = t["id"];
    if (id.get<int64_t>() < 0 || id.get<int64_t>() > INT32_MAX) {
      fail(source, where + ".id", json_text::brief(id) + " is not a non-negative 32-bit integer");
    }
    AddedToken token;
    token.content = t["content"].get<std::string>();
    token.id = id.get<int32_t>();
    if (const auto bad = detail::find_invalid_utf8(token.content); bad != std::string::npos) {
      fail(source, where + ".content", "invalid UTF-8 at byte " + std::to_string(bad));
    }
    token.single_word = truthy(t, "single_word");
    token.lstrip = truthy(t, "lstrip");
    token.rstrip = truthy(t, "rstrip");
    token.special = truthy(t, "special");
    // HuggingFace's default: special tokens are not normalised, others are.
    token.normalized = t.contains("normalized") && t["normalized"].is_boolean()
                           ? t["normalized"].get<bool>()
                           : !token.special;
    if (token.content.empty()) continue;  // HuggingFace ignores empty added tokens
    if (token.special) special_contents.insert(token.content);
    added_by_content[token.content] = token.id;
    added_by_id[token.id] = token;
    vocab_size = std::max(vocab_size, static_cast<std::size_t>(token.id) + 1);
  }
  std::vector<std::string> raw_patterns, norm_patterns;
  std::vector<AddedToken> raw_tokens, norm_tokens;
  for (const auto& [id, token] : added_by_id) {
    if (token.normalized) {
      norm_patterns.push_back(nfc ? detail::nfc_unchecked(token.content) : token.content);
      norm_tokens.push_back(token);
    } else {
      raw_patterns.push_back(token.content);
      raw_tokens.push_back(token);
    }
  }
  raw_matcher = std::make_unique<AddedTokenMatcher>(std::move(raw_patterns), std::move(raw_tokens));
  normalized_matcher =
      std::make_unique<AddedTokenMatcher>(std::move(norm_patterns), std::move(norm_tokens));
}

void Tokenizer::Impl::encode_text(std::string_view text, std::vector<int32_t>& out) const {
  // 1. Added tokens that are matched on the raw text.
  std::vector<Piece> raw;
  raw_matcher->split(text, raw);
  std::vector<Piece> pieces;
  std::vector<Span> words;
  for (const Piece& r : raw) {
    if (r.id >= 0) {
      out.push_back(r.id);
      continue;
    }
    if (r.span.end <= r.span.begin) continue;
    // 2. Normalise the rest and match the normalised added tokens in it.
    const std::string_view raw_text = text.substr(r.span.begin, r.span.end - r.span.begin);
    const std::string normalized = nfc ? detail::nfc_unchecked(raw_text) : std::string(raw_text);
    pieces.clear();
    normalized_matcher->split(normalized, pieces);
    for (const Piece& p : pieces) {
      if (p.id >= 0) {
        out.push_back(p.id);
        continue;
      }
      if (p.span.end <= p.span.begin) continue;
      // 3. ByteLevel pre-tokenizer, then BPE on each pre-token's bytes.
      std::string piece = normalized.substr(p.span.begin, p.span.end - p.span.begin);
      if (add_prefix_space && piece[0] != ' ') piece.insert(0, 1, ' ');
      if (!split_regex) {
        model->encode_word(piece, out);
        continue;
      }
      words.clear();
      split_regex->find_all(piece, words);
      std::size_t last = 0;  // "Isolated": the gaps between matches are words too
      const std::string_view view(piece);
      for (const Span& w : words) {
        if (w.begin > last) model->encode_word(view.substr(last, w.begin - last), out);
        model->encode_word(view.substr(w.begin, w.end - w.begin), out);
        last = w.end;
      }
      if (last < view.size()) model->encode_word(view.substr(last), out);
    }
  }
}

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

Tokenizer Tokenizer::from_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw TokenizerError(path.string() + ": cannot open the file for reading");
  std::ostringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) throw TokenizerError(path.string() + ": error while reading the file");
  return from_json_string(buffer.str(), path.string());
}

Tokenizer Tokenizer::from_json_string(const std::string& text, const std::string& source_name) {
  json root;
  try {
    root = json::parse(text);
  } catch (const json::exception& e) {  // parse_error, and out_of_range for a number like 1e400
    throw TokenizerError(source_name + ": not valid JSON: " + e.what());
  }
  if (!root.is_object()) throw TokenizerError(source_name + ": top level is not a JSON object");
  auto impl = std::make_unique<Impl>();
  impl->source = source_name;
  const auto field = [&root](const char* key) -> const json& {
    static const json null_value;
    const auto it = root.find(key);
    return it == root.end() ? null_value : *it;
  };
  try {
    impl->parse_normalizer(field("normalizer"));
    impl->parse_pre_tokenizer(field("pre_tokenizer"));
    impl->parse_decoder(field("decoder"));
    impl->parse_model(field("model"));
    impl->parse_added_tokens(field("added_tokens"));
  } catch (const json::exception& e) {  // a field of an unexpected JSON type
    throw TokenizerError(source_name + ": unexpected JSON value: " + e.what());
  }
  return Tokenizer(std::move(impl));
}

std::vector<int32_t> Tokenizer::encode(std::string_view text) const {
  if (const auto bad = detail::find_invalid_utf8(text); bad != std::string_view::npos) {
    throw TokenizerError("encode: invalid UTF-8 in the input at byte offset " +
                         std::to_string(bad));
  }
  std::vector<int32_t> ids;
  impl_->encode_text(text, ids);
  return ids;
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids, bool skip_special_tokens) const {
  std::string bytes;
  bool first = true;
  for (const int32_t id : ids) {
    const auto token = id_to_token(id);
    if (!token) {
      throw TokenizerError(impl_->source + ": decode: id " + std::to_string(id) +
                           " is not in the vocabulary");
    }
    if (skip_special_tokens && impl_->special_contents.count(*token) != 0) continue;
    if (impl_->decoder == DecoderKind::kNone) {  // HuggingFace joins with spaces
      if (!first) bytes += ' ';
      bytes += *token;
      first = false;
      continue;
    }
    // ByteLevel: a token made only of byte-level characters stands for those
    // bytes; any other token (an added token with spaces, say) for itself.
    std::string mapped;
    bool all_mapped = true;
    for (std::size_t i = 0; i < token->size() && all_mapped;) {
      std::size_t n = 1;
      while (i + n < token->size() && ((*token)[i + n] & 0xC0) == 0x80) ++n;
      char32_t cp = 0;
      const auto lead = static_cast<unsigned char>((*token)[i]);
      cp = n == 1 ? lead : n == 2 ? (lead & 0x1F) : n == 3 ? (lead & 0x0F) : (lead & 0x07);
      for (std::size_t k = 1; k < n; ++k) cp = (cp << 6) | ((*token)[i + k] & 0x3F);
      const int b = detail::char_to_byte(cp);
      if (b < 0) all_mapped = false;
      mapped.push_back(static_cast<char>(b));
      i += n;
    }
    bytes += all_mapped ? mapped : *token;
  }
  return detail::utf8_lossy(bytes);
}

std::size_t Tokenizer::vocab_size() const {
  return impl_->vocab_size;
}

std::optional<int32_t> Tokenizer::token_to_id(std::string_view token) const {
  const std::string key(token);
  if (const auto it = impl_->added_by_content.find(key); it != impl_->added_by_content.end()) {
    return it->second;
  }
  const auto& vocab = impl_->model->vocab();
  if (const auto it = vocab.find(key); it != vocab.end()) return it->second;
  return std::nullopt;
}

std::optional<std::string> Tokenizer::id_to_token(int32_t id) const {
  if (const auto it = impl_->added_by_id.find(id); it != impl_->added_by_id.end()) {
    return it->second.content;
  }
  if (const auto it = impl_->model_tokens.find(id); it != impl_->model_tokens.end()) {
    return it->second;
  }
  return std::nullopt;
}

const std::string& Tokenizer::source() const {
  return impl_->source;
}

std::string nfc(std::string_view text) {
  if (const auto bad = detail::find_invalid_utf8(text); bad != std::string_view::npos) {
    throw TokenizerError("nfc: invalid UTF-8 at byte offset " + std::to_string(bad));
  }
  return detail::nfc_unchecked(text);
}

}  // namespace lpi::tokenizer
