#include "stateroot/stateroot_setup.hpp"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <set>

#include "common/atomic_file.hpp"
#include "common/beneath.hpp"
#include "common/bytes.hpp"
#include "common/error.hpp"
#include "common/state_layout.hpp"
#include "common/unique_fd.hpp"
#include "formats/archive.hpp"
#include "formats/oci_layout.hpp"
#include "stateroot/seed_format.hpp"

namespace lca::stateroot {
namespace fs = std::filesystem;

namespace {

void RemoveAll(const fs::path& p) {
  try {
    beneath::RemoveTree(p);
  } catch (const Error& e) {
    throw e.WithContext("removing " + p.string());
  }
}

bool IsDirAt(int dir, const std::string& name, struct stat* st) {
  return ::fstatat(dir, name.c_str(), st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st->st_mode);
}

// Moves the entry `name` of `src` over the same name in `dst` (rename, so no data is copied:
// both are on the sysroot's filesystem), through directory fds and never following a symlink
// on either side: a symlink is moved or replaced as a link. A directory present on both sides
// is merged and takes the staged one's mode and owner; anything else in the way is replaced.
// `shown` names the entry in errors ("etc/pki").
void MergeMoveAt(int src, int dst, const std::string& name, const std::string& shown) {
  struct stat sst {};
  if (::fstatat(src, name.c_str(), &sst, AT_SYMLINK_NOFOLLOW) != 0) {
    throw SystemError("stat of the staged " + shown, errno);
  }
  struct stat dstat {};
  const bool dst_exists = ::fstatat(dst, name.c_str(), &dstat, AT_SYMLINK_NOFOLLOW) == 0;
  if (S_ISDIR(sst.st_mode) && dst_exists && S_ISDIR(dstat.st_mode)) {
    // One component from fds that were opened without following anything.
    const UniqueFd from = beneath::Open(src, name, O_RDONLY | O_DIRECTORY);
    const UniqueFd to = beneath::Open(dst, name, O_RDONLY | O_DIRECTORY);
    for (const std::string& child : beneath::ListDir(from.get())) {
      MergeMoveAt(from.get(), to.get(), child, shown + "/" + child);
    }
    if (::fchown(to.get(), sst.st_uid, sst.st_gid) != 0) throw SystemError("chown " + shown, errno);
    if (::fchmod(to.get(), sst.st_mode & 07777) != 0) throw SystemError("chmod " + shown, errno);
    return;
  }
  if (dst_exists && S_ISDIR(dstat.st_mode) != S_ISDIR(sst.st_mode)) beneath::RemoveAt(dst, name);
  if (::renameat(src, name.c_str(), dst, name.c_str()) != 0) {
    throw SystemError("moving the staged " + shown + " into place", errno);
  }
}

// Merges the staged tree <staged>/<name> (from a seed archive) into <root>/<name>. The staged
// top must be a real directory: a symlink there would put a link to anywhere in place of the
// deployment's /etc or the stateroot's /var, and every later write would go through it.
void MergeStagedTree(const fs::path& staged, const fs::path& root, const std::string& name,
                     const std::string& archive) {
  const UniqueFd src = beneath::OpenRoot(staged);
  struct stat st {};
  if (::fstatat(src.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return;
    throw SystemError("stat of the staged " + name, errno);
  }
  if (!S_ISDIR(st.st_mode)) {
    throw Error(Errc::kInvalid, archive + ": entry \"" + name + "\" is " +
                                    (S_ISLNK(st.st_mode) ? "a symlink" : "not a directory") +
                                    ": refused, it must be a directory (a symlink there would "
                                    "lead writes outside the new stateroot)");
  }
  const UniqueFd dst = beneath::OpenRoot(root);
  if (!IsDirAt(dst.get(), name, &st)) {
    throw Error(Errc::kInvalid, (root / name).string() + " is not a directory: refused to merge " +
                                    archive + " into it");
  }
  MergeMoveAt(src.get(), dst.get(), name, name);
}

// libostree follows symlinks inside a repo (objects/XX, config, refs): in the scratch repo, which
// ostree.tgz made, any such link could point it at files outside. A bare repo's symlinks are
// object files (objects/XX/<checksum>.file), never a directory on the way to one.
void CheckScratchRepo(const fs::path& repo) {
  const UniqueFd root = beneath::OpenRoot(repo);
  auto refuse_links = [&](int dir, const std::string& prefix) {
    for (const std::string& name : beneath::ListDir(dir)) {
      struct stat st {};
      if (::fstatat(dir, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode)) {
        throw Error(Errc::kInvalid,
                    std::string(seedfile::kOstree) + ": entry \"" + prefix + name +
                        "\" is a symlink: refused, a link there would lead the import outside "
                        "the seed's repo");
      }
    }
  };
  refuse_links(root.get(), "");
  if (auto objects = beneath::OpenDirIfExists(root.get(), "objects")) {
    refuse_links(objects->get(), "objects/");
  }
}

std::string ReadSeedFile(const fs::path& dir, std::string_view name, bool required) {
  auto data = ReadFileIfExists(dir / std::string(name));
  if (!data && required) {
    throw Error(Errc::kInvalid, "seed image is missing " + std::string(name));
  }
  return data.value_or("");
}

}  // namespace

fs::path DefaultWorkDir(const fs::path& sysroot) { return sysroot / "ostree" / "lca-prep"; }

uint64_t AvailableBytes(const fs::path& path) {
  struct statvfs st {};
  if (::statvfs(path.c_str(), &st) != 0) throw SystemError("statvfs " + path.string(), errno);
  return static_cast<uint64_t>(st.f_bavail) * st.f_frsize;
}

std::string HumanBytes(uint64_t bytes) { return FormatBytes(bytes); }

StaterootSetup::StaterootSetup(OstreeSysroot& sysroot, fs::path work, std::string stateroot)
    : sysroot_(sysroot), work_(std::move(work)), stateroot_(std::move(stateroot)) {}

fs::path StaterootSetup::stateroot_dir() const {
  return sysroot_.path() / "ostree" / "deploy" / stateroot_;
}

void StaterootSetup::Guard(const std::optional<BootedDeployment>& booted) {
  if (!sysroot_.StaterootExists(stateroot_)) return;
  if (!fs::exists(stateroot_dir() / kOwnerMarker)) {
    throw Error(Errc::kConflict,
                "stateroot " + stateroot_ + " already exists in " + sysroot_.path().string() +
                    " and was not made by lifecycle-agent: remove it by hand (undeploy its "
                    "deployments, then delete ostree/deploy/" +
                    stateroot_ + ") or use a seed of another version");
  }
  spdlog::info("removing stateroot {} left by an earlier Prep", stateroot_);
  sysroot_.RemoveStateroot(stateroot_, booted);
}

void StaterootSetup::CheckSpace(const SpaceEstimate& need) const {
  const uint64_t avail = AvailableBytes(sysroot_.path());
  if (avail < need.needed()) {
    throw Error(Errc::kInvalid, "not enough space on " + sysroot_.path().string() +
                                    " for the new stateroot: need " + HumanBytes(need.needed()) +
                                    " (seed layers " + HumanBytes(need.layer_bytes) +
                                    " + unpacked estimate " + HumanBytes(need.unpacked_bytes) +
                                    " + margin " + HumanBytes(need.margin_bytes) + "), available " +
                                    HumanBytes(avail) +
                                    ": free space there, then abort and retry Prep");
  }
}

void StaterootSetup::Fetch(ProcessRunner& runner, const std::string& image,
                           const RegistryAccess& access) {
  RemoveAll(layout_dir());  // a partial copy from an interrupted fetch
  EnsureDir(work_, 0700);
  FetchSeed(runner, image, access, layout_dir(), "seed");
}

void StaterootSetup::InitStateroot() {
  if (!sysroot_.StaterootExists(stateroot_)) sysroot_.InitStateroot(stateroot_);
  WriteFileAtomic(stateroot_dir() / kOwnerMarker,
                  "made by lifecycle-agent Prep; removed by abort or finalize\n", 0600);
}

SeedFiles StaterootSetup::ExtractSeed(const Progress& progress) {
  // An interrupted earlier pass may have left any of these half-written.
  for (const char* d : {"repo", "etc", "var", "seed"}) RemoveAll(work_ / d);
  EnsureDir(work_ / "repo", 0755);
  EnsureDir(work_ / "etc", 0755);
  EnsureDir(work_ / "var", 0755);
  EnsureDir(work_ / "seed", 0700);

  const OciImage image = ReadOciImage(layout_dir(), "seed");
  uint64_t written_before = 0;
  uint64_t written = 0;
  ExtractOptions opts;
  opts.selinux_enabled = selinux_enabled_;
  opts.progress = [&](uint64_t done) {
    written = written_before + done;
    if (progress) progress(written);
  };
  std::set<std::string> seen;
  auto nested = [&](TarReader& r, const fs::path& dest, bool repo) {
    ExtractOptions o = opts;
    // A bare ostree repo stores symlinks as objects whose targets are data, never followed.
    o.allow_escaping_symlinks = repo;
    const auto stats = r.ExtractNested(dest, o);
    written_before += stats.bytes;
  };
  for (const auto& layer : image.layers) {
    VerifyingSource src(layout_dir(), layer, "the seed image");
    TarReader reader(src, "seed layer " + layer.digest.substr(0, 19));
    while (auto entry = reader.Next()) {
      const std::string& name = entry->name;
      if (entry->type != TarEntryType::kFile) continue;
      if (name == seedfile::kOstree) {
        nested(reader, work_ / "repo", true);
      } else if (name == seedfile::kVar) {
        nested(reader, work_ / "var", false);
      } else if (name == seedfile::kEtc) {
        nested(reader, work_ / "etc", false);
      } else if (name == seedfile::kRpmOstree || name == seedfile::kMcoConfig ||
                 name == seedfile::kManifest || name == seedfile::kContainersList ||
                 name == seedfile::kEtcDeletions) {
        WriteFileAtomic(work_ / "seed" / name, reader.ReadAll(), 0600);
      } else if (seedfile::IsOrigin(name)) {
        WriteFileAtomic(work_ / "seed" / "origin", reader.ReadAll(), 0600);
        seen.insert("origin");
        continue;
      } else {
        continue;  // lca-cli and anything newer seeds carry
      }
      seen.insert(name);
    }
    reader.Finish();  // reads the rest and checks the layer's sha256 and size
  }
  for (std::string_view required :
       {seedfile::kOstree, seedfile::kVar, seedfile::kEtc, seedfile::kRpmOstree,
        seedfile::kMcoConfig, seedfile::kManifest, seedfile::kContainersList}) {
    if (seen.count(std::string(required)) == 0) {
      throw Error(Errc::kInvalid, "seed image is missing " + std::string(required));
    }
  }
  if (seen.count("origin") == 0) {
    throw Error(Errc::kInvalid, "seed image is missing its ostree-<deployment>.origin file");
  }
  // Only var/ of var.tgz becomes the stateroot's /var: anything else in it is not ours to place.
  MergeStagedTree(work_ / "var", stateroot_dir(), "var", std::string(seedfile::kVar));
  SyncFilesystem(sysroot_.path());
  return LoadSeedFiles();
}

SeedFiles StaterootSetup::LoadSeedFiles() const {
  const fs::path dir = work_ / "seed";
  SeedFiles f;
  f.rpm_ostree = ReadSeedFile(dir, seedfile::kRpmOstree, true);
  f.mco_config = ReadSeedFile(dir, seedfile::kMcoConfig, true);
  f.manifest = ReadSeedFile(dir, seedfile::kManifest, true);
  f.containers_list = ReadSeedFile(dir, seedfile::kContainersList, true);
  f.etc_deletions = ReadSeedFile(dir, seedfile::kEtcDeletions, false);
  f.origin = ReadSeedFile(dir, "origin", true);
  return f;
}

std::string StaterootSetup::Import(const SeedFiles& files) {
  const SeedDeployment seed = SeedBootedDeployment(ParseJson(files.rpm_ostree, "rpm-ostree.json"));
  CheckScratchRepo(work_ / "repo");
  // Moved into place by an import that was interrupted after its last rename (commits go last,
  // so every object under it is there): the scratch repo no longer holds it.
  if (sysroot_.HasCommit(seed.checksum) && !HasLooseCommit(work_ / "repo", seed.checksum)) {
    return seed.checksum;
  }
  const auto imported =
      sysroot_.ImportFromRepo(work_ / "repo", OstreeSysroot::ImportMode::kMoveFromScratch);
  if (std::find(imported.begin(), imported.end(), seed.checksum) == imported.end()) {
    throw Error(Errc::kInvalid, "the seed booted commit " + seed.checksum +
                                    " (rpm-ostree.json) is not in its ostree.tgz");
  }
  return seed.checksum;
}

Deployment StaterootSetup::Deploy(const std::string& checksum,
                                  const std::vector<std::string>& kargs,
                                  const std::string& origin) {
  for (const auto& d : sysroot_.Deployments()) {
    if (d.stateroot == stateroot_ && d.checksum == checksum) return d;
  }
  return sysroot_.Deploy(stateroot_, checksum, kargs, origin);
}

std::vector<std::string> StaterootSetup::ApplyEtc(const Deployment& d, const SeedFiles& files) {
  MergeStagedTree(work_ / "etc", d.dir, "etc", std::string(seedfile::kEtc));
  // Each path beneath the deployment, no symlink followed on the way: etc.tgz may have put
  // etc/dl -> /host/dir there, and /etc/dl/victim must not reach the host.
  const UniqueFd root = beneath::OpenRoot(d.dir);
  std::vector<std::string> warnings;
  for (const auto& rel : ParseEtcDeletions(files.etc_deletions)) {
    try {
      if (beneath::Components(rel).size() < 2) {
        throw Error(Errc::kInvalid, "it names /etc itself");
      }
      if (!beneath::Remove(root.get(), rel)) {
        warnings.push_back("etc.deletions: /" + rel + " is already absent");
      }
    } catch (const Error& e) {
      throw e.WithContext("applying etc.deletions: removing /" + rel);
    }
  }
  for (const auto& w : warnings) spdlog::warn("{}", w);
  return warnings;
}

void StaterootSetup::WriteRollbackConfig(const Json& config) {
  // The stateroot's var came from the seed: var/lib may be a symlink it planted.
  const UniqueFd root = beneath::OpenRoot(stateroot_dir());
  WithContext("writing the rollback config into " + stateroot_dir().string(), [&] {
    const UniqueFd dir = beneath::MakeDirs(root.get(), "var/lib/lca", 0700);
    beneath::WriteFileAtomicAt(dir.get(), state_layout::kAutoRollbackConfig, ToPrettyJson(config),
                               0600);
  });
}

void StaterootSetup::RemoveWorkDir() { RemoveAll(work_); }

void StaterootSetup::RemovePartial(const std::optional<BootedDeployment>& booted) {
  RemoveWorkDir();
  if (sysroot_.StaterootExists(stateroot_) && fs::exists(stateroot_dir() / kOwnerMarker)) {
    sysroot_.RemoveStateroot(stateroot_, booted);
  }
}

}  // namespace lca::stateroot
