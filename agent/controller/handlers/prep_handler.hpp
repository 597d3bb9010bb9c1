#pragma once
// Prep (reference §3.1, natively): validate the spec and the seed's labels, then build the new
// stateroot from the seed in journaled steps. Pre-caching is the next phase; this build has
// none, and the completion message says so.
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include "agent/controller/handlers/cleanup.hpp"
#include "agent/controller/stage_handler.hpp"

namespace lca {

struct PrepOptions {
  std::filesystem::path proc_cmdline = "/proc/cmdline";
  // The running release when the booted commit has no "version" metadata, or to override it
  // (Kubernetes mode reads ClusterVersion instead).
  std::optional<std::string> running_version;
  // containers-registries.conf for skopeo/podman (mirrors, insecure loopback registries).
  std::optional<std::filesystem::path> registries_conf;
  std::optional<std::filesystem::path> signature_policy;
  // The node's pull secret, used when the spec names no pullSecretRef (LCA does the same).
  std::filesystem::path node_pull_secret = "/var/lib/kubelet/config.json";
  // Unpacked size ≈ layer bytes × this (ostree.tgz and var.tgz of real seeds expand ~2.2-2.6×).
  double seed_expansion = 3.0;
  uint64_t space_margin_bytes = 512ull << 20;
  // Scratch dir on the sysroot's filesystem; empty = <sysroot>/ostree/lca-prep.
  std::filesystem::path work_dir;
};

class PrepHandler final : public StageHandler {
 public:
  explicit PrepHandler(PrepOptions opts) : opts_(std::move(opts)) {}
  Work work() const override { return Work::kPrep; }
  Outcome Run(StageContext& ctx) override;

  // The message Prep completes with when no pre-cache phase is built in.
  static constexpr const char* kCompletedWithoutPrecache =
      "Prep stage completed successfully (stateroot ready; container images were not "
      "pre-cached: this build has no pre-cache phase)";

 private:
  PrepOptions opts_;
};

// The cleanup step Abort and Finalize run for stateroots (§7.2 1b): every non-booted stateroot
// goes (the new one after an abort or a rollback, the old one after an upgrade), with Prep's
// scratch dir; then the repo is pruned. Errors are collected: "failed to remove N stateroots".
class StaterootCleanup final : public CleanupStep {
 public:
  StaterootCleanup(std::filesystem::path proc_cmdline, std::filesystem::path work_dir)
      : proc_cmdline_(std::move(proc_cmdline)), work_dir_(std::move(work_dir)) {}
  std::string name() const override { return "stateroots"; }
  void Run(StageContext& ctx) override;

 private:
  std::filesystem::path proc_cmdline_;
  std::filesystem::path work_dir_;
};

}  // namespace lca
