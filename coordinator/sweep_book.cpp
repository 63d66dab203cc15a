#include "coordinator/sweep_book.hpp"

#include <algorithm>

#include "common/log/log.hpp"

namespace lpi::coordinator {

SweepPlan store_plan(store::SweepStore& store, std::function<int(int worker)> recorded_rank) {
  SweepPlan plan;
  const auto& d = store.description();
  plan.grid = &d.grid;
  plan.job_name = d.job_name;
  plan.store_path = store.path();
  plan.prompts = d.prompt_relation.size();
  auto& s = store;
  plan.attribution = {sweep::Phase::Attribution, [&s] { return s.done_flags(); },
                      [&s] { return s.aggregated_flags(); },
                      [&s, recorded_rank](int32_t u, int worker, float seconds) {
                        s.mark_done(u, recorded_rank(worker), seconds);
                      },
                      [&s](int32_t c) { s.aggregate(c); }};
  if (!d.ablation.enabled) return plan;
  plan.ablation = PhaseBook{sweep::Phase::Ablation, [&s] { return s.ablation_unit_flags(); },
                            [&s] { return s.ablation_flags(); },
                            [&s](int32_t u, int, float) { s.mark_ablation_done(u); },
                            [&s](int32_t c) { s.aggregate_ablation(c); }};
  // The ablation masks come from every checkpoint's aggregates.
  plan.ablation_ready = [&s](const PhaseSummary& attribution) {
    const auto agg = s.aggregated_flags();
    const auto missing = std::count(agg.begin(), agg.end(), uint8_t{0});
    if (attribution.given_up > 0 || missing > 0) {
      LPI_LOG(error) << "the ablation phase needs the attribution of every checkpoint; "
                     << attribution.given_up << " unit(s) were given up and " << missing
                     << " checkpoint(s) are not complete, so the ablation phase does not start: "
                     << "fix the cause above and resume the sweep (--resume) to retry them";
      return false;
    }
    const auto masks = s.mask_flags();
    for (int32_t c = 0; c < static_cast<int32_t>(masks.size()); ++c)
      if (!masks[c]) s.write_masks(c);
    return true;
  };
  return plan;
}

}  // namespace lpi::coordinator
