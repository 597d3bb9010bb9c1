#pragma once
// The host as one pass of a handler sees it, resolved once and shared by every step: the ostree
// sysroot (opened once), the booted deployment (from the kernel command line), and the target
// stateroot rhcos_<spec version>. Resolution is lazy, so a handler that needs none of it (a
// cleanup on a host that is not an ostree host) opens nothing; each accessor resolves at most
// once per pass.
#include <filesystem>
#include <optional>
#include <string>

#include "stateroot/ostree_sysroot.hpp"

namespace lca {

class HostView {
 public:
  // `seed_version` is spec.seedImageRef.version ("" = no target stateroot).
  HostView(std::filesystem::path sysroot, std::filesystem::path proc_cmdline,
           const std::string& seed_version);

  const std::filesystem::path& sysroot_path() const { return sysroot_path_; }
  const std::filesystem::path& proc_cmdline() const { return proc_cmdline_; }
  // The kernel command line's text (read once).
  const std::string& Cmdline();
  // rhcos_<spec version>; "" when the spec names no seed version.
  const std::string& target() const { return target_; }

  // nullopt when the command line has no ostree= (not booted from ostree).
  const std::optional<stateroot::BootedDeployment>& booted();
  // Throws kInvalid "the host is not booted from ostree (no ostree= in <proc_cmdline>)".
  const stateroot::BootedDeployment& RequireBooted();
  // Opened on first use; the same object for the whole pass (and its lock).
  stateroot::OstreeSysroot& sysroot();
  // The booted deployment in the sysroot's list; throws kNotFound when it is not there.
  const stateroot::Deployment& BootedDeployment();

 private:
  std::filesystem::path sysroot_path_;
  std::filesystem::path proc_cmdline_;
  std::string target_;
  std::optional<std::string> cmdline_;
  std::optional<std::optional<stateroot::BootedDeployment>> booted_;
  std::optional<stateroot::OstreeSysroot> sysroot_;
  std::optional<stateroot::Deployment> booted_deployment_;
};

}  // namespace lca
