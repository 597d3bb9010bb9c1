#pragma once
// One journaled host step: recorded as started (persisted) before it runs and done after, and
// skipped when an earlier run finished it. A daemon killed in the middle finds the started step
// on restart and runs it again, so every step body must be safe to repeat.
#include <spdlog/spdlog.h>

#include <chrono>
#include <string>

#include "agent/controller/stage_handler.hpp"
#include "agent/store/step_journal.hpp"
#include "common/error.hpp"
#include "common/logging.hpp"

namespace lca {

template <class F>
void JournaledStep(StageContext& ctx, const std::string& name, F&& body) {
  if (ctx.journal.IsDone(name)) return;
  if (ctx.cancel.Cancelled()) throw Error(Errc::kCancelled, "cancelled before " + name);
  ScopedLogFields step_fields{{"LCA_STEP", name}};  // journalctl LCA_STEP=<name>
  ctx.journal.Start(name);
  const auto t0 = std::chrono::steady_clock::now();
  body();
  ctx.journal.Done(name);
  spdlog::info(
      "step {} done in {} ms", name,
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
          .count());
}

}  // namespace lca
