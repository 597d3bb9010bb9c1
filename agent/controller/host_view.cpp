#include "agent/controller/host_view.hpp"

#include "common/atomic_file.hpp"
#include "common/error.hpp"
#include "stateroot/boot_cmdline.hpp"

namespace lca {

HostView::HostView(std::filesystem::path sysroot, std::filesystem::path proc_cmdline,
                   const std::string& seed_version)
    : sysroot_path_(std::move(sysroot)),
      proc_cmdline_(std::move(proc_cmdline)),
      target_(seed_version.empty() ? "" : stateroot::StaterootNameForVersion(seed_version)) {}

const std::string& HostView::Cmdline() {
  if (!cmdline_) cmdline_ = ReadFile(proc_cmdline_);
  return *cmdline_;
}

const std::optional<stateroot::BootedDeployment>& HostView::booted() {
  if (!booted_) booted_ = stateroot::FindBooted(sysroot_path_, Cmdline());
  return *booted_;
}

const stateroot::BootedDeployment& HostView::RequireBooted() {
  const auto& b = booted();
  if (!b) {
    throw Error(Errc::kInvalid, "the host is not booted from ostree (no ostree= in " +
                                    proc_cmdline_.string() + ")");
  }
  return *b;
}

stateroot::OstreeSysroot& HostView::sysroot() {
  if (!sysroot_) sysroot_.emplace(sysroot_path_);
  return *sysroot_;
}

const stateroot::Deployment& HostView::BootedDeployment() {
  if (booted_deployment_) return *booted_deployment_;
  const auto& b = RequireBooted();
  const auto d = sysroot().Booted(b);
  if (!d) {
    throw Error(Errc::kNotFound, "the booted deployment " + b.stateroot + " " + b.checksum + "." +
                                     std::to_string(b.serial) +
                                     " is not in the sysroot's deployment list");
  }
  booted_deployment_ = *d;
  return *booted_deployment_;
}

}  // namespace lca
