#include "agent/controller/handlers/cleanup.hpp"

#include <spdlog/spdlog.h>

#include "agent/store/object_store.hpp"
#include "agent/store/step_journal.hpp"
#include "common/error.hpp"

namespace lca {

std::string Cleanup::RunAll(StageContext& ctx, const std::string& journal_prefix) {
  std::string errors;
  for (auto& step : steps_) {
    const std::string journal_name = journal_prefix + "." + step->name();
    try {
      ctx.journal.Start(journal_name);
      step->Run(ctx);
      ctx.journal.Done(journal_name);
    } catch (const std::exception& e) {
      spdlog::error("cleanup {}: {}", step->name(), e.what());
      try {
        ctx.journal.Fail(journal_name, e.what());
      } catch (const std::exception& je) {
        spdlog::error("cleanup {}: recording the failure: {}", step->name(), je.what());
      }
      if (!errors.empty()) errors += ' ';
      errors += e.what();
    }
  }
  return errors;
}

void WorkspaceCleanup::Run(StageContext& ctx) {
  const auto ws = ctx.paths.workspace();
  std::error_code ec;
  if (!std::filesystem::exists(ws, ec)) return;
  std::filesystem::remove_all(ws, ec);
  if (ec) throw Error(Errc::kIo, "failed to remove " + ws.string() + ": " + ec.message());
}

void AnnotationCleanup::Run(StageContext& ctx) {
  ctx.store.Update([](api::ImageBasedUpgrade& ibu) {
    ibu.metadata.annotations.erase("extra-manifest.lca.openshift.io/validation-warning");
  });
}

std::vector<std::unique_ptr<CleanupStep>> DefaultCleanupSteps() {
  std::vector<std::unique_ptr<CleanupStep>> steps;
  steps.push_back(std::make_unique<WorkspaceCleanup>());
  steps.push_back(std::make_unique<AnnotationCleanup>());
  return steps;
}

}  // namespace lca
