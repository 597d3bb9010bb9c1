#pragma once
// Prep (reference §3.1, natively): validate the spec and the seed's labels, then build the new
// stateroot from the seed in journaled steps, then pre-cache the new release's images
// (precache_phase.hpp).
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "agent/controller/handlers/cleanup.hpp"
#include "agent/controller/handlers/prep_options.hpp"
#include "agent/controller/stage_handler.hpp"
#include "agent/pivot/node_checks.hpp"

namespace lca {

class PrepHandler final : public StageHandler {
 public:
  explicit PrepHandler(PrepOptions opts) : opts_(std::move(opts)) {}
  Work work() const override { return Work::kPrep; }
  Outcome Run(StageContext& ctx) override;
  // The persisted names of kPrepSteps (prep_steps.cpp), in order.
  static std::vector<std::string> StepNames();

  // The reference's message, after the stateroot and the pre-cache phases.
  static constexpr const char* kCompleted = "Prep stage completed successfully";
  // When pre-caching is disabled in the lifecycle-agent config, the message says so.
  static constexpr const char* kCompletedWithoutPrecache =
      "Prep stage completed successfully (stateroot ready; container images were not "
      "pre-cached: pre-caching is disabled in the lifecycle-agent configuration)";
  // When extraManifests validation left the warning annotation (reference-lca §3.1 item 5).
  static constexpr const char* kCompletedWithWarnings =
      "Prep stage completed with extramanifests validation warning. Please check the "
      "annotation 'extra-manifest.lca.openshift.io/validation-warning' for details.";

 private:
  PrepOptions opts_;
};

}  // namespace lca
