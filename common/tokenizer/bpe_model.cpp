#include "common/tokenizer/bpe_model.hpp"

#include <cstdio>
#include <queue>
#include <stdexcept>

namespace lpi::tokenizer::detail {
namespace {

void append_utf8(std::string& out, char32_t c) {
  if (c < 0x80) {
    out.push_back(static_cast<char>(c));
  } else if (c < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (c >> 6)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else {  // the byte-level alphabet stays below U+0800
    out.push_back(static_cast<char>(0xE0 | (c >> 12)));
    out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  }
}

// GPT-2 bytes_to_unicode: printable Latin-1 bytes stand for themselves, the
// others are numbered from U+0100 upwards in byte order.
std::array<char32_t, 256> make_byte_code_points() {
  std::array<char32_t, 256> cps{};
  char32_t next = 0x100;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
    cps[b] = printable ? static_cast<char32_t>(b) : next++;
  }
  return cps;
}

const std::array<char32_t, 256>& byte_code_points() {
  static const std::array<char32_t, 256> cps = make_byte_code_points();
  return cps;
}

// One symbol of a word being merged (a doubly linked list over a vector, as
// HuggingFace's Word does it).
struct Symbol {
  int32_t id;
  int prev;
  int next;
  bool removed;
};

struct QueuedMerge {
  uint32_t rank;
  int pos;
  int32_t new_id;
  // std::priority_queue pops the largest: lowest rank first, then leftmost.
  bool operator<(const QueuedMerge& o) const {
    return rank != o.rank ? rank > o.rank : pos > o.pos;
  }
};

}  // namespace

const std::array<std::string, 256>& byte_to_char() {
  static const std::array<std::string, 256> table = [] {
    std::array<std::string, 256> t;
    for (int b = 0; b < 256; ++b) append_utf8(t[b], byte_code_points()[b]);
    return t;
  }();
  return table;
}

int char_to_byte(char32_t c) {
  static const std::unordered_map<char32_t, int> inverse = [] {
    std::unordered_map<char32_t, int> m;
    for (int b = 0; b < 256; ++b) m.emplace(byte_code_points()[b], b);
    return m;
  }();
  const auto it = inverse.find(c);
  return it == inverse.end() ? -1 : it->second;
}

BpeModel::BpeModel(Vocab vocab, const Merges& merges, BpeOptions options)
    : vocab_(std::move(vocab)), options_(std::move(options)) {
  merges_.reserve(merges.size());
  for (std::size_t rank = 0; rank < merges.size(); ++rank) {
    const auto& [a, b] = merges[rank];
    const auto ia = vocab_.find(a);
    const auto ib = vocab_.find(b);
    const auto ic = vocab_.find(a + b);
    // The first of a, b and a + b missing from the vocab (any may be empty).
    const std::string* missing = ia == vocab_.end() ? &a : ib == vocab_.end() ? &b : nullptr;
    const std::string merged = a + b;
    if (missing == nullptr && ic == vocab_.end()) missing = &merged;
    if (missing != nullptr) {
      throw std::invalid_argument("merge " + std::to_string(rank) + " (\"" + a + "\" \"" + b +
                                  "\") names token \"" + *missing +
                                  "\", which is not in the vocab");
    }
    // A repeated pair keeps its last rank, as HuggingFace's HashMap collect does.
    merges_[pair_key(ia->second, ib->second)] =
        MergeTarget{static_cast<uint32_t>(rank), ic->second};
  }
  for (int b = 0; b < 256; ++b) {
    const auto it = vocab_.find(byte_to_char()[b]);
    byte_id_[b] = it == vocab_.end() ? -1 : it->second;
  }
  if (options_.unk_token) {
    const auto it = vocab_.find(*options_.unk_token);
    if (it == vocab_.end()) {
      throw std::invalid_argument("unk_token \"" + *options_.unk_token + "\" is not in the vocab");
    }
    unk_id_ = it->second;
  }
}

void BpeModel::encode_word(std::string_view bytes, std::vector<int32_t>& out) const {
  if (bytes.empty()) return;
  const bool cacheable = bytes.size() <= kCacheMaxWordLength;
  std::string key;
  if (cacheable) {
    key.assign(bytes);
    std::lock_guard<std::mutex> lock(cache_mutex_);
    const auto it = cache_.find(key);
    if (it != cache_.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  std::vector<int32_t> ids;
  merge_word(bytes, ids);
  out.insert(out.end(), ids.begin(), ids.end());
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cache_mutex_);
    if (cache_.size() >= kCacheCapacity) cache_.clear();
    cache_.emplace(std::move(key), std::move(ids));
  }
}

void BpeModel::merge_word(std::string_view bytes, std::vector<int32_t>& out) const {
  if (options_.ignore_merges) {
    std::string mapped;
    for (const char c : bytes) mapped += byte_to_char()[static_cast<unsigned char>(c)];
    const auto it = vocab_.find(mapped);
    if (it != vocab_.end()) {
      out.push_back(it->second);
      return;
    }
  }

  // Initial symbols: one per byte-level character, with HuggingFace's
  // handling of characters missing from the vocab (byte fallback, then unk,
  // else the character is dropped).
  std::vector<Symbol> symbols;
  symbols.reserve(bytes.size());
  int32_t pending_unk = -1;  // an unk not yet added (fuse_unk extends it)
  auto add = [&symbols](int32_t id) {
    const int n = static_cast<int>(symbols.size());
    symbols.push_back(Symbol{id, n - 1, n + 1, false});
  };
  for (const char ch : bytes) {
    const auto byte = static_cast<unsigned char>(ch);
    if (byte_id_[byte] >= 0) {
      if (pending_unk >= 0) add(pending_unk), pending_unk = -1;
      add(byte_id_[byte]);
      continue;
    }
    if (options_.byte_fallback) {
      std::vector<int32_t> fallback;
      for (const char c : byte_to_char()[byte]) {
        char name[8];
        std::snprintf(name, sizeof name, "<0x%02X>", static_cast<unsigned char>(c));
        const auto it = vocab_.find(name);
        if (it == vocab_.end()) break;
        fallback.push_back(it->second);
      }
      if (fallback.size() == byte_to_char()[byte].size()) {
        for (const int32_t id : fallback) add(id);
        continue;
      }
    }
    if (unk_id_) {
      if (pending_unk >= 0 && !options_.fuse_unk) add(pending_unk);
      pending_unk = *unk_id_;
    }
  }
  if (pending_unk >= 0) add(pending_unk);
  if (symbols.empty()) return;
  symbols.back().next = -1;

  std::priority_queue<QueuedMerge> queue;
  auto push_pair = [&](int pos) {
    const int next = symbols[pos].next;
    if (next < 0) return;
    const auto it = merges_.find(pair_key(symbols[pos].id, symbols[next].id));
    if (it != merges_.end()) queue.push(QueuedMerge{it->second.rank, pos, it->second.new_id});
  };
  for (int i = 0; i + 1 < static_cast<int>(symbols.size()); ++i) push_pair(i);

  while (!queue.empty()) {
    const QueuedMerge top = queue.top();
    queue.pop();
    Symbol& left = symbols[top.pos];
    if (left.removed || left.next < 0) continue;
    Symbol& right = symbols[left.next];
    // Skip stale entries: the pair at this position has changed since.
    const auto it = merges_.find(pair_key(left.id, right.id));
    if (it == merges_.end() || it->second.new_id != top.new_id) continue;
    left.id = top.new_id;
    right.removed = true;
    left.next = right.next;
    if (left.next >= 0) symbols[left.next].prev = top.pos;
    if (left.prev >= 0) push_pair(left.prev);
    push_pair(top.pos);
  }
  for (const Symbol& s : symbols) {
    if (!s.removed) out.push_back(s.id);
  }
}

}  // namespace lpi::tokenizer::detail
