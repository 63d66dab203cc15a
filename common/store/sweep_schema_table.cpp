// The sweep store's schema table (sweep_schema.hpp): one entry per dataset,
// in creation order.
#include "common/store/sweep_schema.hpp"

namespace lpi::store::schema {

namespace {

using D = Dim;
constexpr auto u8 = Dtype::u8, i32 = Dtype::i32, i64 = Dtype::i64, f32 = Dtype::f32,
               f64 = Dtype::f64, str = Dtype::str, pp = Dtype::pp;
constexpr auto creation = Writer::creation, rank0 = Writer::rank0, worker = Writer::worker;
constexpr auto always = Phase::always, attn = Phase::per_prompt_attn, ffn = Phase::per_prompt_ffn,
               ablation = Phase::ablation;
constexpr auto any = Model::any, dense = Model::dense, moe = Model::moe;
constexpr auto zero = Fill::zero, minus1 = Fill::minus_one, never = Fill::never;

// One row per dataset (clang-format would spread each over ten lines).
// clang-format off
const std::vector<Entry> kTable = {
    // path, type, shape, chunk lead, fill, writer, phase, model, in the attribution file, meaning
    {"checkpoints/name", str, {D::C}, 0, never, creation, always, any, false, "revision folder name (`step{N}-tokens{M}`), by step"},
    {"checkpoints/path", str, {D::C}, 0, never, creation, always, any, false, "its path"},
    {"checkpoints/header_hash", str, {D::C}, 0, never, creation, always, any, false, "an FNV-1a hash of config.json, every safetensors header and 8 sampled 4 KiB blocks of its data: a resume, and a worker loading it, refuse a checkpoint whose files changed"},
    {"checkpoints/step", i64, {D::C}, 0, never, creation, always, any, false, "from the name"},
    {"checkpoints/tokens", i64, {D::C}, 0, never, creation, always, any, false, "from the name (`41B` = 41e9)"},
    {"checkpoints/bytes", i64, {D::C}, 0, never, creation, always, any, false, "size of its config.json, safetensors and index files"},
    {"relations/id", str, {D::R}, 0, never, creation, always, any, true, "relation ids"},
    {"relations/file", str, {D::R}, 0, never, creation, always, any, true, "their JSON files"},
    {"prompts/relation", i32, {D::P}, 0, never, creation, always, any, true, "relation index"},
    {"prompts/sample", i32, {D::P}, 0, never, creation, always, any, true, "sample index in its file"},
    {"prompts/gold_target", i32, {D::P}, 0, never, creation, always, any, true, "first token of \" \" + object"},
    {"prompts/text", str, {D::P}, 0, never, creation, always, any, true, "the prompt (first template with the subject)"},
    {"prompts/token_ids", i32, {D::T}, 0, never, creation, always, any, true, "prompt p's ids are `token_ids[token_offsets[p]:token_offsets[p+1]]`"},
    {"prompts/token_offsets", i64, {D::P1}, 0, never, creation, always, any, true, "see token_ids"},
    {"units/checkpoint", i32, {D::U}, 0, never, creation, always, any, false, "the grid: unit u covers prompts `first_prompt .. +prompt_count` (one relation) at one checkpoint"},
    {"units/relation", i32, {D::U}, 0, never, creation, always, any, false, "see checkpoint"},
    {"units/first_prompt", i32, {D::U}, 0, never, creation, always, any, false, "see checkpoint"},
    {"units/prompt_count", i32, {D::U}, 0, never, creation, always, any, false, "see checkpoint"},
    {kUnitDone, u8, {D::U}, 0, zero, rank0, always, any, false, "1 once the unit's data is in the file"},
    {kUnitRank, i32, {D::U}, 0, minus1, rank0, always, any, false, "the rank that computed it (0 in a one-process run)"},
    {kUnitSeconds, f32, {D::U}, 0, zero, rank0, always, any, false, "its time"},
    {kTarget, i32, {D::C, D::P}, 0, minus1, worker, always, any, true, "the token whose log-probability is attributed"},
    {kBaseLogprob, f32, {D::C, D::P}, 0, zero, worker, always, any, true, "log p(target) of the unmodified model"},
    {kGoldRank, i32, {D::C, D::P}, 0, minus1, worker, always, any, false, "tokens whose logit beats the gold target's (0 = top-1)"},
    {kHit, u8, {D::C, D::P}, 0, zero, worker, always, any, false, "gold_rank < 10"},
    {kAttn, pp, {D::C, D::P, D::L, D::A}, 2, never, worker, attn, any, true, "attention neuron (head j, dimension i) at j*dh+i (`store.per_prompt` has `attn`)"},
    {kFfn, pp, {D::C, D::P, D::L, D::k, D::I}, 2, never, worker, ffn, moe, true, "FFN neurons; for MoE the neurons of the k chosen experts in `expert_ids` order (`store.per_prompt` has `ffn`)"},
    {kExpertIds, i32, {D::C, D::P, D::L, D::k}, 2, never, worker, ffn, moe, true, "chosen experts by descending router weight; every other expert's neurons have importance exactly 0"},
    {kFfn, pp, {D::C, D::P, D::L, D::I}, 2, never, worker, ffn, dense, true, ""},
    {kUnitAttnSum, f64, {D::U, D::L, D::A}, 1, never, worker, always, any, false, "each unit's sums over its prompts"},
    {kUnitFfnSum, f64, {D::U, D::L, D::W}, 1, never, worker, always, any, false, "each unit's sums over its prompts (MoE over all experts)"},
    {kFfnMean, f32, {D::C, D::L, D::E, D::I}, 1, never, rank0, always, moe, false, "mean over all prompts (unchosen experts count as 0)"},
    {kFfnMean, f32, {D::C, D::L, D::I}, 1, never, rank0, always, dense, false, ""},
    {kAttnMean, f32, {D::C, D::L, D::A}, 1, never, rank0, always, any, false, "mean over all prompts of the checkpoint"},
    {kHitByRelation, f32, {D::C, D::R}, 0, zero, rank0, always, any, false, "HIT@10 per relation"},
    {kHitAll, f32, {D::C}, 0, zero, rank0, always, any, false, "HIT@10 over all prompts"},
    {kAggDone, u8, {D::C}, 0, zero, rank0, always, any, false, "1 once the checkpoint's aggregates are written"},
    {kRunLog, Dtype::log, {D::Log}, 0, Fill::library, rank0, always, any, false, "the run history: \"start\"/\"resume\" and \"end\" entries with time, ranks, host, tool version; a run with no \"end\" was killed"},
    // The ablation phase.
    {kAblCondition, str, {D::M}, 0, never, creation, ablation, any, false, "`none`, `heads:1`, `heads:10`, `ffn:0.01`"},
    {kAblHeads, i32, {D::C, D::Hmax, D::Two}, 0, minus1, rank0, ablation, any, false, "(layer, head) by descending head score; `heads:N` masks the first N"},
    {kAblHeadScore, f32, {D::C, D::Hmax}, 0, zero, rank0, ablation, any, false, "the score: sum over the head's dh neurons of abs(`aggregates/attn_mean`)"},
    {kAblFfnNeurons, i64, {D::C, D::K}, 0, minus1, rank0, ablation, any, false, "the top `floor(F * N)` (at least 1) FFN/expert neurons by abs(`aggregates/ffn_mean`), best first, ties to the lower index, as flat indices `l*I + i` (dense) or `(l*E + e)*I + i` (MoE)"},
    {kAblMaskDone, u8, {D::C}, 0, zero, rank0, ablation, any, false, "1 once the checkpoint's masks are written"},
    {kAblGoldRank, i32, {D::C, D::P, D::M}, 0, minus1, worker, ablation, any, false, "rank of the gold target under each condition (0 = top-1)"},
    {kAblLogprob, f32, {D::C, D::P, D::M}, 0, zero, worker, ablation, any, false, "its log-probability"},
    {kAblHit, u8, {D::C, D::P, D::M}, 0, zero, worker, ablation, any, false, "gold_rank < 10"},
    {kAblUnitDone, u8, {D::U}, 0, zero, rank0, ablation, any, false, "the ablation phase's flag per unit (units as in `/units`)"},
    {kAblHitAll, f32, {D::C, D::M}, 0, zero, rank0, ablation, any, false, "HIT@10 over all prompts per condition"},
    {kAblHitByRelation, f32, {D::C, D::R, D::M}, 0, zero, rank0, ablation, any, false, "per relation"},
    {kAblDone, u8, {D::C}, 0, zero, rank0, ablation, any, false, "1 once the checkpoint's ablation aggregates are written"},
};
// clang-format on

}  // namespace

const std::vector<Entry>& table() {
  return kTable;
}

}  // namespace lpi::store::schema
