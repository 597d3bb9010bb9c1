#pragma once
// Prep's step table (prep_steps.cpp): what PrepHandler runs once the spec is valid. Each row is
// a journaled host step "prep.<name>"; the names are persisted, never rename one. A new Prep
// step is a row in kPrepSteps plus a small function of PrepRun&.
#include <filesystem>
#include <optional>
#include <span>
#include <string>

#include "agent/controller/handlers/prep_options.hpp"
#include "agent/controller/stage_handler.hpp"
#include "agent/pivot/node_checks.hpp"
#include "common/error.hpp"
#include "common/step_runner.hpp"
#include "stateroot/ostree_sysroot.hpp"
#include "stateroot/seed_format.hpp"
#include "stateroot/stateroot_setup.hpp"

namespace lca {

class HostView;

// What every Prep step works with, for one pass.
struct PrepRun {
  StageContext& ctx;
  const PrepOptions& opts;
  const api::ImageBasedUpgrade ibu;
  HostView& host;
  std::optional<stateroot::StaterootSetup> setup{};
  std::string secret{}, secret_source{};  // the seed's pull secret and where it came from
  std::filesystem::path auth_path{};      // where it is written while a step needs it
  // Loaded when a step needs them: a Prep resumed after its scratch dir is gone needs none.
  std::optional<stateroot::SeedFiles> loaded{};
  // One lock from import to deploy: a prune in between would drop the imported commit.
  std::optional<stateroot::OstreeSysroot::Lock> lock{};
  std::string checksum{};  // the seed's commit, once imported (or read back on a resume)
  // This node's facts for the seed checks (agent/pivot/node_checks.hpp) and its container
  // storage mountpoint target (ValidateSpec, before anything is pulled).
  pivot::NodeView node{};
  std::optional<std::string> storage_target{};
};

std::span<const Step<PrepRun>> PrepSteps();

// Prep's failures carry the reference's prefixes so an operator who knows the Go operator's
// messages finds the same words: "<prefix>: <cause>".
Error PrepFailure(const std::string& prefix, const std::exception& e);

}  // namespace lca
