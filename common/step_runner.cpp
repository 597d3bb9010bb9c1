#include "common/step_runner.hpp"

#include <spdlog/spdlog.h>

#include "common/error.hpp"
#include "common/failpoint.hpp"
#include "common/logging.hpp"

namespace lca {
namespace {

bool IsCancellation(const std::exception& e) {
  const auto* err = dynamic_cast<const Error*>(&e);
  return err != nullptr && err->code() == Errc::kCancelled;
}

}  // namespace

std::string StepRunner::RunErased(const std::vector<Erased>& steps, bool keep_going) {
  int total = 0, done = 0;
  for (const auto& s : steps) total += s.weight;
  std::string errors;
  for (size_t i = 0; i < steps.size(); ++i) {
    const Erased& step = steps[i];
    const auto t0 = std::chrono::steady_clock::now();
    try {
      RunOne(step);
    } catch (const std::exception& e) {
      if (!IsCancellation(e)) RecordFailure(step.name, e);
      if (IsCancellation(e) || !keep_going) {
        if (!IsCancellation(e)) UndoFrom(steps, i);
        throw;
      }
      if (!errors.empty()) errors += ' ';
      errors += e.what();
      continue;
    }
    done += step.weight;
    if (policy_.on_done) {
      policy_.on_done(step.name,
                      std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::steady_clock::now() - t0),
                      total > 0 ? static_cast<double>(done) / total : 1.0);
    }
  }
  return errors;
}

void StepRunner::RunOne(const Erased& step) {
  const std::string& name = step.name;
  if (policy_.skip_done && journal_.IsDone(name)) {
    if (!policy_.log_label.empty()) spdlog::info("{}: {} already done", policy_.log_label, name);
    return;
  }
  if (policy_.cancelled && policy_.cancelled()) {
    throw Error(Errc::kCancelled, "cancelled before " + name);
  }
  ScopedLogFields step_fields{{"LCA_STEP", name}};  // journalctl LCA_STEP=<name>
  CheckAttempts(name);
  journal_.Start(name);
  if (!policy_.log_label.empty()) spdlog::info("{}: {}", policy_.log_label, name);
  const auto t0 = std::chrono::steady_clock::now();
  auto body = [&] {
    // The crash matrix kills the process here: journaled, host step not yet run.
    if (!policy_.failpoint_prefix.empty()) LCA_FAILPOINT(policy_.failpoint_prefix + name);
    step.run();
  };
  if (policy_.name_in_errors) {
    WithContext(name, body);
  } else {
    body();
  }
  journal_.Done(name);
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
          .count();
  if (policy_.log_label.empty()) {
    spdlog::info("step {} done in {} ms", name, ms);
  } else {
    spdlog::info("{}: {} done in {} ms", policy_.log_label, name, ms);
  }
}

void StepRunner::CheckAttempts(const std::string& name) const {
  const int attempts = journal_.UnfinishedAttempts(name);
  if (attempts < policy_.max_attempts) return;
  std::string msg = "step " + name + " was started " + std::to_string(attempts) +
                    " times without finishing (the process stopped during it each time); it is "
                    "not started again";
  if (!policy_.give_up_hint.empty()) msg += ": " + policy_.give_up_hint;
  throw Error(Errc::kInvalid, msg);
}

void StepRunner::RecordFailure(const std::string& name, const std::exception& e) {
  if (journal_.Find(name) == nullptr) return;  // refused before it was journaled
  try {
    journal_.Fail(name, e.what());
  } catch (const std::exception& je) {
    spdlog::error("step {}: recording the failure: {}", name, je.what());
  }
}

void StepRunner::UndoFrom(const std::vector<Erased>& steps, size_t failed) {
  for (size_t i = std::min(failed + 1, steps.size()); i-- > 0;) {
    const Erased& s = steps[i];
    if (!s.undo || (i != failed && !journal_.IsDone(s.name))) continue;
    try {
      spdlog::info("undoing step {}", s.name);
      s.undo();
    } catch (const std::exception& e) {
      spdlog::error("undoing step {} failed too: {}", s.name, e.what());
    }
  }
}

}  // namespace lca
