#pragma once
// The host steps that turn a seed image into a new stateroot next to the booted one (reference
// §3.6, done natively): guard, space check, fetch, os-init, one verified extraction pass,
// import, deploy (not default), /etc from the seed, rollback config. Each step is a method the
// Prep handler journals before calling; each either finishes or leaves only things that
// RemovePartial() takes away, so a killed daemon can redo the step or abort cleanly.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/json_yaml.hpp"
#include "common/process.hpp"
#include "stateroot/boot_cmdline.hpp"
#include "stateroot/ostree_sysroot.hpp"
#include "stateroot/seed_image.hpp"

namespace lca::stateroot {

// The seed's small root files, kept in <work>/seed/ between steps (so a resumed Prep does not
// need the image again).
struct SeedFiles {
  std::string rpm_ostree;       // rpm-ostree.json
  std::string mco_config;       // mco-currentconfig.json
  std::string manifest;         // manifest.json
  std::string containers_list;  // containers.list
  std::string etc_deletions;    // etc.deletions (may be empty)
  std::string origin;           // ostree-<id>.origin
};

struct SpaceEstimate {
  uint64_t layer_bytes = 0;     // the seed's layers as fetched
  uint64_t unpacked_bytes = 0;  // layers × expansion factor
  uint64_t margin_bytes = 0;
  uint64_t needed() const { return layer_bytes + unpacked_bytes + margin_bytes; }
};

class StaterootSetup {
 public:
  // `work` is a scratch dir on the sysroot's filesystem (hardlinks from the temp repo into the
  // sysroot repo need one filesystem and one mount): <sysroot>/ostree/lca-prep by default.
  StaterootSetup(OstreeSysroot& sysroot, std::filesystem::path work, std::string stateroot);

  const std::string& stateroot() const { return stateroot_; }
  std::filesystem::path stateroot_dir() const;
  std::filesystem::path layout_dir() const { return work_ / "layout"; }

  // A leftover stateroot with the target name: removed when an lca Prep made it (it carries
  // our marker), otherwise Prep must not touch it and fails naming it.
  void Guard(const std::optional<BootedDeployment>& booted);

  // Free space on the sysroot's filesystem against the estimate; kInvalid with both numbers.
  void CheckSpace(const SpaceEstimate& need) const;

  void Fetch(ProcessRunner& runner, const std::string& image, const RegistryAccess& access);

  // os-init plus the ownership marker.
  void InitStateroot();

  // Bytes written so far; may throw to cancel (extraction only writes to what Prep owns).
  using Progress = std::function<void(uint64_t written)>;
  // One pass over the fetched layers, each blob's sha256 and size verified as it is read:
  // ostree.tgz into <work>/repo, var.tgz into the new stateroot's var, etc.tgz into
  // <work>/etc (applied after deploy), the small files into <work>/seed. `progress` may throw
  // (cancellation). A missing root file or a corrupted blob is kInvalid.
  SeedFiles ExtractSeed(const Progress& progress);
  // A host fact: with SELinux enabled, an extended attribute (a security label) that cannot be
  // written fails the extraction instead of being a warning (ExtractOptions::selinux_enabled).
  void set_selinux_enabled(bool enabled) { selinux_enabled_ = enabled; }
  SeedFiles LoadSeedFiles() const;

  // Imports the seed repo's commits; returns the commit the seed booted (from rpm-ostree.json).
  std::string Import(const SeedFiles& files);
  // Deploys it (not default) with the seed's kargs plus ibu=<version> and the seed's origin.
  // Reuses a deployment already in the stateroot (a resumed Prep).
  Deployment Deploy(const std::string& checksum, const std::vector<std::string>& kargs,
                    const std::string& origin);
  // Moves the seed's /etc over the deployment's and applies etc.deletions. Entries already
  // missing are returned as warnings, not failures.
  std::vector<std::string> ApplyEtc(const Deployment& d, const SeedFiles& files);

  void WriteRollbackConfig(const Json& config);

  // Everything Prep made: the work dir, and the stateroot if it carries our marker. Never a
  // booted deployment (RemoveStateroot refuses it).
  void RemovePartial(const std::optional<BootedDeployment>& booted);
  void RemoveWorkDir();

  static constexpr const char* kOwnerMarker = ".lca-prep-owned";

 private:
  OstreeSysroot& sysroot_;
  std::filesystem::path work_;
  std::string stateroot_;
  bool selinux_enabled_ = false;
};

// The scratch dir StaterootSetup uses by default.
std::filesystem::path DefaultWorkDir(const std::filesystem::path& sysroot);

// Free bytes on the filesystem holding `path`: f_bavail, not f_bfree, because libostree keeps
// its own reserve (min-free-space) out of what root could use.
uint64_t AvailableBytes(const std::filesystem::path& path);

std::string HumanBytes(uint64_t bytes);

}  // namespace lca::stateroot
