#include "agent/controller/handlers/cleanup.hpp"

#include <spdlog/spdlog.h>

#include "agent/pivot/extra_manifests.hpp"
#include "agent/store/object_store.hpp"
#include "common/error.hpp"

namespace lca {
namespace {

// Removes <state-dir>/workspace (the seed pull secret, pre-cache status, scratch files).
void RemoveWorkspace(CleanupRun& c) {
  const auto ws = c.ctx.paths.workspace();
  std::error_code ec;
  if (!std::filesystem::exists(ws, ec)) return;
  std::filesystem::remove_all(ws, ec);
  if (ec) throw Error(Errc::kIo, "failed to remove " + ws.string() + ": " + ec.message());
}

// Removes the annotations Prep wrote (extra-manifest validation warnings).
void RemoveAnnotations(CleanupRun& c) {
  c.ctx.store.Update([](api::ImageBasedUpgrade& ibu) {
    ibu.metadata.annotations.erase(std::string(pivot::kValidationWarningAnnotation));
  });
}

// Cleanup order as the Go operator's: stateroots first, then the workspace and annotations.
constexpr Step<CleanupRun> kCleanupSteps[] = {
    {"stateroots", 5, &RemoveUpgradeStateroots},
    {"workspace", 1, &RemoveWorkspace},
    {"annotations", 1, &RemoveAnnotations},
};

class TableStep final : public CleanupStep {
 public:
  TableStep(const Step<CleanupRun>& row, std::shared_ptr<const CleanupOptions> opts)
      : row_(row), opts_(std::move(opts)) {}
  std::string name() const override { return row_.name; }
  void Run(StageContext& ctx) override {
    CleanupRun c{ctx, *opts_};
    row_.run(c);
  }

 private:
  const Step<CleanupRun>& row_;
  std::shared_ptr<const CleanupOptions> opts_;
};

}  // namespace

std::string Cleanup::RunAll(StageContext& ctx, const std::string& journal_prefix) {
  std::vector<StepFn> steps;
  for (auto& step : steps_) {
    steps.push_back(StepFn{journal_prefix + "." + step->name(), 1,
                           [&ctx, s = step.get()] {
                             try {
                               s->Run(ctx);
                             } catch (const std::exception& e) {
                               spdlog::error("cleanup {}: {}", s->name(), e.what());
                               throw;
                             }
                           },
                           nullptr});
  }
  // Never cancelled (nothing is a valid next stage while it runs); every step on every run.
  StepPolicy policy = ctx.StepsPolicy();
  policy.cancelled = nullptr;
  policy.skip_done = false;
  return StepRunner(ctx.journal, std::move(policy)).RunAll(steps);
}

std::vector<std::string> Cleanup::StepNames(const std::string& journal_prefix) const {
  std::vector<std::string> out;
  for (const auto& step : steps_) out.push_back(journal_prefix + "." + step->name());
  return out;
}

std::vector<std::unique_ptr<CleanupStep>> DefaultCleanupSteps(CleanupOptions opts) {
  auto shared = std::make_shared<const CleanupOptions>(std::move(opts));
  std::vector<std::unique_ptr<CleanupStep>> steps;
  for (const auto& row : kCleanupSteps) steps.push_back(std::make_unique<TableStep>(row, shared));
  return steps;
}

}  // namespace lca
