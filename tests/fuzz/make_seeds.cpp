// lpi-fuzz-seeds SOURCE_DIR CORPUS_DIR: writes the seed corpora of the fuzz
// targets (CORPUS_DIR/<target>/<seed>) with the project's own writers: the
// safetensors writer, the HF config writer, the BPE trainer, the protocol's
// encoders, the sweep store (a real one-process store with two units
// written, aggregated and masked) and the repository's jobs/*.ini. Nothing
// is copied from outside the repository. The seeds are small (a few KB; the
// stores a few tens of KB once their 1 MiB run log is cut to 16 entries).
// Regression inputs found by fuzzing live beside the seeds (named
// crash-<what>) and are not written here.
#include <hdf5.h>
#include <mpi.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "common/checkpoint/model_config.hpp"
#include "common/checkpoint/safetensors.hpp"
#include "common/store/sweep_schema.hpp"
#include "common/store/sweep_store.hpp"
#include "common/sweep/protocol.hpp"
#include "fuzz_support.hpp"
#include "tiny_store.hpp"

namespace ck = lpi::checkpoint;
namespace fs = std::filesystem;
namespace sw = lpi::sweep;
namespace st = lpi::store;
using nlohmann::json;

namespace {

fs::path corpus;

void seed(const std::string& target, const std::string& name, const std::string& bytes) {
  fs::create_directories(corpus / target);
  lpi::fuzz::write_file(corpus / target / name, bytes);
  std::cout << target << "/" << name << ": " << bytes.size() << " bytes\n";
}

std::string read_all(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path.string());
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// ---- safetensors ------------------------------------------------------------

void safetensors_seeds(const fs::path& tmp) {
  const std::vector<float> f32 = {0.5f, -1.0f, 2.0f, 3.5f, 0.0f, -0.25f};
  const std::vector<uint16_t> bf16 = {ck::float_to_bf16(1.0f), ck::float_to_bf16(-2.0f)};
  const std::vector<uint16_t> f16 = {ck::float_to_f16(0.5f), ck::float_to_f16(65504.0f),
                                     ck::float_to_f16(-0.0f)};
  const auto write = [&](const std::string& name, const std::vector<ck::TensorToWrite>& tensors,
                         const std::map<std::string, std::string>& metadata) {
    const fs::path file = tmp / (name + ".safetensors");
    ck::write_safetensors(file, tensors, metadata);
    seed("safetensors", name, read_all(file));
  };
  write("three_dtypes",
        {{"model.embed_tokens.weight", ck::DType::F32, {2, 3}, f32.data(), 24},
         {"model.norm.weight", ck::DType::BF16, {2}, bf16.data(), 4},
         {"lm_head.weight", ck::DType::F16, {3, 1}, f16.data(), 6}},
        {{"format", "pt"}});
  write("no_tensors", {}, {});
  write("zero_size",
        {{"empty", ck::DType::F32, {0, 4}, nullptr, 0},
         {"scalar", ck::DType::F32, {}, f32.data(), 4}},
        {});

  // The index of the fuzz target's two shards (fuzz_safetensors_index.cpp).
  const std::string one = "model-00001-of-00002.safetensors",
                    two = "model-00002-of-00002.safetensors";
  json index = {
      {"metadata", {{"total_size", 32}}},
      {"weight_map",
       {{"model.embed_tokens.weight", one}, {"model.norm.weight", one}, {"lm_head.weight", two}}}};
  seed("safetensors_index", "two_shards", index.dump(2));
  index["weight_map"]["model.layers.0.mlp.gate_proj.weight"] = two;
  seed("safetensors_index", "tensor_not_in_shard", index.dump());
  seed("safetensors_index", "escaping_shard",
       json({{"weight_map", {{"lm_head.weight", "../" + two}}}}).dump());
  seed("safetensors_index", "one_shard", json({{"weight_map", {{"lm_head.weight", two}}}}).dump());
}

// ---- config.json ------------------------------------------------------------

void config_seeds() {
  ck::ModelConfig olmoe;
  olmoe.layout = ck::Layout::Olmoe;
  olmoe.architecture = "OlmoeForCausalLM";
  olmoe.model_type = "olmoe";
  olmoe.vocab_size = 1024;
  olmoe.hidden_size = 64;
  olmoe.intermediate_size = 32;
  olmoe.num_layers = 2;
  olmoe.num_heads = 4;
  olmoe.num_kv_heads = 4;
  olmoe.head_dim = 16;
  olmoe.max_position_embeddings = 4096;
  olmoe.norm = ck::NormKind::RMSNorm;
  olmoe.qk_norm = true;
  olmoe.clip_qkv = 8.0;
  olmoe.num_experts = 8;
  olmoe.num_experts_per_tok = 2;
  olmoe.router_aux_loss_coef = 0.01;
  olmoe.pad_token_id = 1;
  olmoe.eos_token_id = 0;
  olmoe.torch_dtype = "float32";
  seed("model_config", "olmoe", ck::to_hf_config_json(olmoe).dump(2));

  ck::ModelConfig olmo = olmoe;
  olmo.layout = ck::Layout::OlmoHF;
  olmo.architecture = "OlmoForCausalLM";
  olmo.model_type = "olmo";
  olmo.intermediate_size = 128;
  olmo.num_kv_heads = 2;
  olmo.norm = ck::NormKind::LayerNormNoAffine;
  olmo.qk_norm = false;
  olmo.clip_qkv.reset();
  olmo.num_experts = olmo.num_experts_per_tok = 0;
  olmo.max_position_embeddings = 2048;
  olmo.tie_word_embeddings = true;
  json hf = ck::to_hf_config_json(olmo);
  seed("model_config", "olmo_hf", hf.dump(2));
  hf.erase("rope_theta");  // transformers >= 5 spelling, a list of eos ids
  hf["rope_parameters"] = {{"rope_type", "default"}, {"rope_theta", 500000.0}};
  hf["eos_token_id"] = {50279, 0};
  seed("model_config", "olmo_hf_rope_parameters", hf.dump());

  // hf_olmo (allenai/OLMo-7B's own layout): written here with the keys of
  // olmo.config.ModelConfig, tiny sizes.
  const json fused = {{"architectures", {"OLMoForCausalLM"}},
                      {"model_type", "hf_olmo"},
                      {"d_model", 64},
                      {"n_heads", 4},
                      {"n_layers", 2},
                      {"mlp_ratio", 4},
                      {"mlp_hidden_size", 256},
                      {"max_sequence_length", 2048},
                      {"vocab_size", 1000},
                      {"embedding_size", 1024},
                      {"activation_type", "swiglu"},
                      {"block_type", "sequential"},
                      {"layer_norm_type", "default"},
                      {"layer_norm_with_affine", false},
                      {"attention_layer_norm", false},
                      {"include_bias", false},
                      {"rope", true},
                      {"rope_theta", 10000.0},
                      {"alibi", false},
                      {"multi_query_attention", false},
                      {"clip_qkv", nullptr},
                      {"weight_tying", false},
                      {"scale_logits", false},
                      {"block_group_size", 1},
                      {"eos_token_id", 50279},
                      {"pad_token_id", 1}};
  seed("model_config", "hf_olmo", fused.dump(2));
  seed("model_config", "model_type_only", R"({"model_type": "olmoe", "hidden_size": 32,
    "intermediate_size": 8, "num_hidden_layers": 1, "num_attention_heads": 2,
    "vocab_size": 64, "num_experts": 4, "num_experts_per_tok": 1})");
}

// ---- tokenizer.json ---------------------------------------------------------

void tokenizer_seeds() {
  const std::string trained = lpi::fuzz::tiny_tokenizer_json(true);
  seed("tokenizer_json", "trained", trained);
  json doc = json::parse(trained);
  doc["added_tokens"].push_back({{"id", 400},
                                 {"content", "<mask>"},
                                 {"single_word", true},
                                 {"lstrip", true},
                                 {"rstrip", true},
                                 {"normalized", true},
                                 {"special", false}});
  doc["normalizer"] = {{"type", "Sequence"}, {"normalizers", {{{"type", "NFC"}}}}};
  json merges = json::array();  // the newer spelling: pairs
  for (const auto& m : doc["model"]["merges"]) {
    const std::string s = m.get<std::string>();
    merges.push_back({s.substr(0, s.find(' ')), s.substr(s.find(' ') + 1)});
  }
  doc["model"]["merges"] = merges;
  doc["decoder"] = nullptr;
  seed("tokenizer_json", "added_flags_pair_merges", doc.dump());
  // A small hand-written BPE: no byte alphabet, unk and byte fallback, no regex.
  seed("tokenizer_json", "unk_byte_fallback", R"({
  "added_tokens": [{"id": 9, "content": "<s>", "special": true}],
  "normalizer": null,
  "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": true, "use_regex": false},
  "decoder": {"type": "ByteLevel"},
  "model": {"type": "BPE", "unk_token": "<unk>", "fuse_unk": true, "byte_fallback": true,
            "ignore_merges": true,
            "vocab": {"<unk>": 0, "a": 1, "b": 2, "ab": 3, "Ġ": 4, "Ġab": 5, "<0x63>": 6,
                      "<0x64>": 7, "c": 8},
            "merges": ["a b", "Ġ ab"]}
})");

  const auto text = [](uint8_t which, const std::string& s) {
    return std::string(1, static_cast<char>(which)) + s;
  };
  seed("tokenizer_encode", "plain", text(0, "The capital city of Norland is Vesk."));
  seed("tokenizer_encode", "unicode",
       text(0,
            "Caf\xC3\xA9 e\xCC\x81t\xC3\xA9 \xE6\x9D\xB1\xE4\xBA\xAC \xF0\x9F\x98\x80 \xC2\x85 "
            "\xE2\x80\xA8x"));
  seed("tokenizer_encode", "spaces", text(0, "  a\t\tb\n\n c   \r\n"));
  seed("tokenizer_encode", "added",
       text(1, "a <mask> b[SEP]  city cities caf\xC3\xA9 \n<|endoftext|>"));
}

// ---- relations, job, protocol -----------------------------------------------

void relation_seeds() {
  seed("relations", "capital",
       json({{"name", "country capital city"},
             {"prompt_templates", {"The capital city of {} is", "{}'s capital is"}},
             {"properties", {{"relation_type", "factual"}}},
             {"samples",
              {{{"subject", "Norland"}, {"object", "Vesk"}},
               {{"subject", "Ostria"}, {"object", "Paln"}},
               {{"subject", "Norland"}, {"object", "Vesk"}}}}})
           .dump(2));
  seed("relations", "antonym",
       json({{"name", "adjective antonym"},
             {"prompt_templates", {"The opposite of {} is"}},
             {"samples",
              {{{"subject", "hot"}, {"object", "cold"}},
               {{"subject", "early"}, {"object", " "}},
               {{"subject", ""}, {"object", "late"}}}}})
           .dump());
}

void job_seeds(const fs::path& source) {
  for (const char* name : {"sweep-tiny-olmo.ini", "sweep-tiny-olmoe.ini"}) {
    const std::string ini = read_all(source / "jobs" / name);
    seed("job", fs::path(name).stem().string(), ini);
    seed("job", fs::path(name).stem().string() + "+overrides",
         ini + std::string(1, '\0') +
             "checkpoints.list=step10-tokens41K,step0-tokens0\nunits.prompts_per_unit=3\n"
             "store.per_prompt=none\nablation.heads=2\nablation.ffn_fraction=0.5\n"
             "attribution.lens=exact\ncheckpoints.steps=5:\n");
  }
  seed("job", "minimal",
       "[job]\nname = j\n[model]\nname = m\nrevisions = ../runs/tiny-olmoe\n"
       "[relations]\nfolder = ../runs/tiny-olmoe/relations\n[checkpoints]\nevery = 2\n"
       "steps = :20\n");
}

void protocol_seeds() {
  const auto message = [](uint8_t selector, const std::vector<uint8_t>& bytes) {
    return std::string(1, static_cast<char>(selector)) + std::string(bytes.begin(), bytes.end());
  };
  seed("protocol", "work_request", message(0, sw::encode(sw::WorkRequest{3})));
  seed("protocol", "assign", message(1, sw::encode(sw::Assign{{17, 18, 19}, 2})));
  seed("protocol", "unit_done",
       message(2, sw::encode(sw::UnitDone{17, 1.5, 0.25, 0.125, 0.0, 96})));
  seed("protocol", "unit_failed",
       message(3, sw::encode(sw::UnitFailed{17, "CUDA out of memory on unit 17"})));
  seed("protocol", "shutdown", message(4, sw::encode(sw::Shutdown{})));
  seed("protocol", "share_ready", message(5, sw::encode(sw::ShareReady{3, 1})));
  seed("protocol", "share_group", message(6, sw::encode(sw::ShareGroup{3, {2, 4, 5}})));
  seed("protocol", "assign_shared", message(1, sw::encode(sw::Assign{{4, 5}, -1, 3, 2})));
}

// ---- stores -----------------------------------------------------------------

void check(herr_t rc, const char* what) {
  if (rc < 0) throw std::runtime_error(std::string("HDF5: ") + what);
}

herr_t copy_attribute(hid_t loc, const char* name, const H5A_info_t*, void* out) {
  const hid_t dst = *static_cast<hid_t*>(out);
  const hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
  const hid_t type = H5Aget_type(a), space = H5Aget_space(a);
  std::vector<char> buf(H5Tget_size(type));
  check(H5Aread(a, type, buf.data()), "read an attribute");
  const hid_t b = H5Acreate2(dst, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
  check(H5Awrite(b, type, buf.data()), "write an attribute");
  H5Aclose(b);
  H5Sclose(space);
  H5Tclose(type);
  H5Aclose(a);
  return 0;
}

// `from` as written by the store, with its run log cut to 16 entries (the
// one dataset of fixed size 4096 x 256 bytes): every other object copied.
void compact_store(const std::string& from, const std::string& to) {
  const hid_t src = H5Fopen(from.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  const hid_t dst = H5Fcreate(to.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  if (src < 0 || dst < 0) throw std::runtime_error("cannot open " + from + " or " + to);
  hid_t dst_root = dst;
  hsize_t at = 0;
  check(H5Aiterate2(src, H5_INDEX_NAME, H5_ITER_INC, &at, copy_attribute, &dst_root),
        "copy the root attributes");
  const hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
  H5Pset_create_intermediate_group(lcpl, 1);
  for (const char* group : {"job"})
    check(H5Ocopy(src, group, dst, group, H5P_DEFAULT, lcpl), "copy a group");
  std::set<std::string> done;
  for (const auto& e : st::schema::table()) {
    if (!done.insert(e.path).second || H5Lexists(src, e.path, H5P_DEFAULT) <= 0) continue;
    if (std::string(e.path) == st::schema::kRunLog) {
      const hid_t log = H5Dopen2(src, e.path, H5P_DEFAULT);
      const hid_t type = H5Dget_type(log);
      const hsize_t n = 16;
      std::vector<char> buf(n * H5Tget_size(type));
      const hid_t mem = H5Screate_simple(1, &n, nullptr), file = H5Dget_space(log);
      const hsize_t start = 0;
      check(H5Sselect_hyperslab(file, H5S_SELECT_SET, &start, nullptr, &n, nullptr), "select");
      check(H5Dread(log, type, mem, file, H5P_DEFAULT, buf.data()), "read the run log");
      const hid_t out = H5Dcreate2(dst, e.path, type, mem, lcpl, H5P_DEFAULT, H5P_DEFAULT);
      check(H5Dwrite(out, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf.data()), "write the run log");
      H5Dclose(out);
      H5Sclose(file);
      H5Sclose(mem);
      H5Tclose(type);
      H5Dclose(log);
      continue;
    }
    check(H5Ocopy(src, e.path, dst, e.path, H5P_DEFAULT, lcpl), "copy a dataset");
  }
  H5Pclose(lcpl);
  H5Fclose(dst);
  H5Fclose(src);
}

// A real store (tiny_store.hpp), compacted.
void store_seed(const fs::path& tmp, const std::string& name, bool moe, bool ablation,
                bool per_prompt) {
  const std::string path = (tmp / (name + ".h5")).string();
  lpi::fuzz::write_tiny_store(path, moe, ablation, per_prompt);
  const std::string compact = (tmp / (name + ".compact")).string();
  compact_store(path, compact);
  st::read_store_info(compact);  // still a store
  seed("store", name, read_all(compact));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: lpi-fuzz-seeds SOURCE_DIR CORPUS_DIR (e.g. . tests/fuzz/corpus)\n";
    return 2;
  }
  MPI_Init(&argc, &argv);
  int rc = 0;
  try {
    const fs::path source = argv[1];
    corpus = argv[2];
    const fs::path tmp = lpi::fuzz::scratch();
    safetensors_seeds(tmp);
    config_seeds();
    tokenizer_seeds();
    relation_seeds();
    job_seeds(source);
    protocol_seeds();
    // fuzz_store_edits: the first byte picks the store, the rest are edits.
    for (int base = 0; base < 3; ++base)
      seed("store_edits", "store" + std::to_string(base), std::string(1, static_cast<char>(base)));
    seed("store_edits", "edits", "\x01prompts/relation\x07\x02\x10units\x03\x05");
    store_seed(tmp, "dense", false, false, true);
    store_seed(tmp, "moe_ablation", true, true, true);
    store_seed(tmp, "dense_no_per_prompt", false, true, false);
  } catch (const std::exception& e) {
    std::cerr << "lpi-fuzz-seeds: " << e.what() << "\n";
    rc = 1;
  }
  MPI_Finalize();
  return rc;
}
