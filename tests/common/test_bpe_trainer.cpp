// Training a byte-level BPE on the synthetic corpus: a valid tokenizer.json of
// the requested size that the project's Tokenizer reads, deterministic, and
// round-tripping any text (unseen characters fall back to byte symbols).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "common/tokenizer/bpe_trainer.hpp"
#include "common/tokenizer/tokenizer.hpp"
#include "common/world/world.hpp"

namespace lpi::tokenizer {
namespace {

std::vector<std::string> small_corpus() {
  world::WorldOptions w;
  w.countries = 6;
  w.people = 6;
  world::CorpusOptions c;
  c.documents = 300;
  return world::make_corpus(world::make_world(w), c);
}

TEST(BpeTrainer, WritesATokenizerOfTheRequestedSize) {
  const auto corpus = small_corpus();
  BpeTrainOptions options;
  options.vocab_size = 400;
  const std::string text = train_bpe(corpus, options);
  const auto json = nlohmann::json::parse(text);
  EXPECT_EQ(json["model"]["type"], "BPE");
  EXPECT_EQ(json["normalizer"]["type"], "NFC");
  EXPECT_EQ(json["pre_tokenizer"]["type"], "ByteLevel");
  EXPECT_EQ(json["model"]["vocab"].size(), 400u);
  EXPECT_EQ(json["model"]["merges"].size(), 400u - 258u);
  const auto tok = Tokenizer::from_json_string(text, "trained");
  EXPECT_EQ(tok.vocab_size(), 400u);
  EXPECT_EQ(tok.token_to_id("<|endoftext|>"), 0);
  EXPECT_EQ(tok.token_to_id("<|padding|>"), 1);
  // Merges make the corpus shorter than its bytes by a good margin.
  std::size_t bytes = 0, tokens = 0;
  for (const auto& doc : corpus) {
    bytes += doc.size();
    tokens += tok.encode(doc).size();
    ASSERT_EQ(tok.decode(tok.encode(doc)), doc);
  }
  EXPECT_LT(tokens * 2, bytes);
  // Text the corpus never had still round-trips through byte symbols.
  const std::string unseen = "Zürich 東京 🙂 tabs\tand\nnewlines <|endoftext|>";
  EXPECT_EQ(tok.decode(tok.encode(unseen)), unseen);
  EXPECT_EQ(tok.encode("<|endoftext|>"), std::vector<int32_t>{0});
}

TEST(BpeTrainer, IsDeterministic) {
  const auto corpus = small_corpus();
  BpeTrainOptions options;
  options.vocab_size = 350;
  EXPECT_EQ(train_bpe(corpus, options), train_bpe(corpus, options));
}

TEST(BpeTrainer, StopsWhenNothingIsFrequentEnough) {
  BpeTrainOptions options;
  options.vocab_size = 5000;
  const auto text = train_bpe({"abab abab", "cd"}, options);
  const auto json = nlohmann::json::parse(text);
  EXPECT_LT(json["model"]["vocab"].size(), 270u);
  EXPECT_EQ(Tokenizer::from_json_string(text, "tiny").encode("abab abab").size(),
            3u);  // abab, Ġ, abab
}

TEST(BpeTrainer, RefusesBadInput) {
  BpeTrainOptions options;
  options.vocab_size = 100;
  EXPECT_THROW(train_bpe({"abc"}, options), std::invalid_argument);
  options.vocab_size = 300;
  try {
    train_bpe({"ok", std::string("bad \xff byte")}, options);
    FAIL() << "invalid UTF-8 accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("document 1"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace lpi::tokenizer
