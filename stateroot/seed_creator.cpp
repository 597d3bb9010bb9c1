#include "stateroot/seed_creator.hpp"

#include <spdlog/spdlog.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <set>

#include "common/atomic_file.hpp"
#include "common/error.hpp"
#include "common/json_yaml.hpp"
#include "formats/archive.hpp"
#include "formats/oci_layout.hpp"
#include "stateroot/ostree_sysroot.hpp"
#include "stateroot/seed_format.hpp"
#include "stateroot/seed_image.hpp"

namespace lca::stateroot {
namespace fs = std::filesystem;

namespace {

bool StartsWith(const std::string& s, std::string_view prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

bool Under(const std::string& rel, std::string_view dir) {
  return rel == dir || StartsWith(rel, std::string(dir) + "/");
}

bool ExcludedFromEtc(const std::string& rel) {
  if (rel.find("cni/multus") != std::string::npos) return true;
  return Under(rel, "etc/NetworkManager/system-connections") ||
         Under(rel, "etc/machine-config-daemon/orig/var/lib/kubelet") ||
         rel == "etc/openvswitch/conf.db" || rel == "etc/openvswitch/.conf.db.~lock~" ||
         rel == "etc/hostname";
}

bool SameContent(const fs::path& a, const fs::path& b) {
  return ReadFile(a) == ReadFile(b);  // /etc files are small
}

// Does etc/<rel> differ from usr/etc/<rel> (which exists)?
bool Differs(const fs::path& a, const fs::path& b) {
  struct stat sa {
  }, sb{};
  if (::lstat(a.c_str(), &sa) != 0 || ::lstat(b.c_str(), &sb) != 0) return true;
  if ((sa.st_mode & S_IFMT) != (sb.st_mode & S_IFMT)) return true;
  if ((sa.st_mode & 07777) != (sb.st_mode & 07777) || sa.st_uid != sb.st_uid ||
      sa.st_gid != sb.st_gid) {
    return true;
  }
  if (S_ISLNK(sa.st_mode)) return fs::read_symlink(a) != fs::read_symlink(b);
  if (S_ISREG(sa.st_mode)) return sa.st_size != sb.st_size || !SameContent(a, b);
  return false;  // directories: their entries are compared one by one
}

void Walk(const fs::path& root, const fs::path& dir, std::vector<std::string>& out) {
  for (const auto& e : fs::directory_iterator(dir)) {
    // lexically: fs::relative() resolves symlinks, so an absolute link such as
    // etc/systemd/system/x.wants/y -> /lib/systemd/system/y would come out as "../../lib/...".
    out.push_back(e.path().lexically_relative(root).string());
    if (e.is_directory() && !e.is_symlink()) Walk(root, e.path(), out);
  }
}

Json RpmOstreeStatus(const Deployment& d) {
  Json dep = {{"id", d.stateroot + "-" + d.checksum + "." + std::to_string(d.serial)},
              {"osname", d.stateroot},
              {"checksum", d.checksum},
              {"serial", d.serial},
              {"booted", true},
              {"pinned", false},
              {"version", d.version},
              {"origin", d.origin_refspec}};
  return Json{{"deployments", Json::array({dep})}, {"transaction", nullptr}};
}

}  // namespace

bool ExcludedFromVar(const std::string& rel) {
  if (fs::path(rel).filename() == ".bash_history") return true;
  if (rel == "lib/lca" || StartsWith(rel, "lib/lca/")) return true;
  for (std::string_view dir : {"tmp", "log", "lib/log", "lib/cni/bin", "lib/containers",
                               "lib/kubelet/pods", "lib/ovn-ic/etc"}) {
    if (StartsWith(rel, std::string(dir) + "/")) return true;  // the dir stays, its content goes
  }
  return false;
}

EtcDiff DiffEtc(const fs::path& dep) {
  EtcDiff diff;
  std::vector<std::string> etc, usr_etc;
  if (fs::is_directory(dep / "etc")) Walk(dep, dep / "etc", etc);
  if (fs::is_directory(dep / "usr/etc")) Walk(dep / "usr", dep / "usr/etc", usr_etc);
  const std::set<std::string> etc_set(etc.begin(), etc.end());
  for (const auto& rel : etc) {
    if (ExcludedFromEtc(rel)) continue;
    const fs::path base = dep / "usr" / rel;
    std::error_code ec;
    if (!fs::exists(fs::symlink_status(base, ec)) || Differs(dep / rel, base)) {
      diff.changed.push_back(rel);
    }
  }
  std::string last_deleted;
  for (const auto& rel : usr_etc) {  // pre-order: a deleted dir comes before its content
    if (etc_set.count(rel) != 0) continue;
    if (!last_deleted.empty() && Under(rel, last_deleted)) continue;
    last_deleted = rel;
    diff.deleted.push_back("/" + rel);
  }
  return diff;
}

SeedCreateResult CreateSeed(ProcessRunner& runner, const SeedCreateOptions& opts) {
  if (opts.version.empty()) throw Error(Errc::kInvalid, "--version is required");
  if (opts.image.empty()) throw Error(Errc::kInvalid, "--image is required");
  OstreeSysroot sysroot(opts.sysroot);
  const auto deployments = sysroot.Deployments();
  if (opts.deployment_index < 0 || opts.deployment_index >= static_cast<int>(deployments.size())) {
    throw Error(Errc::kInvalid, "--deployment " + std::to_string(opts.deployment_index) + ": " +
                                    opts.sysroot.string() + " has " +
                                    std::to_string(deployments.size()) + " deployments");
  }
  const Deployment& d = deployments[static_cast<size_t>(opts.deployment_index)];
  spdlog::info("seed {}: from deployment {} ({} {}.{})", opts.version, d.index, d.stateroot,
               d.checksum.substr(0, 12), d.serial);

  std::string tmpl = (opts.work_dir / "lca-seed.XXXXXX").string();
  if (::mkdtemp(tmpl.data()) == nullptr)
    throw SystemError("creating a temp dir in " + opts.work_dir.string(), errno);
  const fs::path work = tmpl;
  struct Remove {
    fs::path p;
    ~Remove() {
      std::error_code ec;
      fs::remove_all(p, ec);
    }
  } remove_work{work};
  const fs::path root = work / "root";
  EnsureDir(root, 0755);

  {
    TarWriter w(root / std::string(seedfile::kOstree), Compression::kGzip, opts.gzip_level);
    w.AddTree(sysroot.repo_path(), ".");
    w.Close();
  }
  {
    TarWriter w(root / std::string(seedfile::kVar), Compression::kGzip, opts.gzip_level);
    w.AddTree(opts.sysroot / "ostree" / "deploy" / d.stateroot / "var", "var", ExcludedFromVar);
    w.Close();
  }
  const EtcDiff diff = DiffEtc(d.dir);
  {
    // Only what changed, with the directories leading to it.
    std::set<std::string> keep(diff.changed.begin(), diff.changed.end());
    for (const auto& rel : diff.changed) {
      for (fs::path p = fs::path(rel).parent_path(); !p.empty(); p = p.parent_path())
        keep.insert(p.string());
    }
    const std::vector<std::string> changed_dirs = [&] {
      std::vector<std::string> v;
      for (const auto& rel : diff.changed) {
        if (fs::is_directory(fs::symlink_status(d.dir / rel))) v.push_back(rel);
      }
      return v;
    }();
    TarWriter w(root / std::string(seedfile::kEtc), Compression::kGzip, opts.gzip_level);
    w.AddTree(d.dir, "", [&](const std::string& rel) {
      if (!Under(rel, "etc")) return true;
      if (keep.count(rel) != 0) return false;
      for (const auto& dir : changed_dirs) {
        if (Under(rel, dir)) return ExcludedFromEtc(rel);  // a new directory: all of it
      }
      return true;
    });
    w.Close();
  }
  std::string deletions;
  for (const auto& p : diff.deleted) deletions += p + "\n";
  WriteFileAtomic(root / std::string(seedfile::kEtcDeletions), deletions, 0644);
  WriteFileAtomic(root / std::string(seedfile::kRpmOstree), ToPrettyJson(RpmOstreeStatus(d)), 0644);

  const fs::path mcd = d.dir / "etc/machine-config-daemon/currentconfig";
  Json mc = fs::exists(mcd) ? ParseJson(ReadFile(mcd), mcd.string())
                            : Json{{"apiVersion", "machineconfiguration.openshift.io/v1"},
                                   {"kind", "MachineConfig"},
                                   {"metadata", {{"name", "lca-seed"}}},
                                   {"spec", {{"kernelArguments", opts.kernel_args}}}};
  WriteFileAtomic(root / std::string(seedfile::kMcoConfig), ToPrettyJson(mc), 0644);

  const fs::path origin = d.dir.string() + ".origin";
  const std::string origin_name =
      "ostree-" + d.checksum + "." + std::to_string(d.serial) + ".origin";
  WriteFileAtomic(root / origin_name,
                  ReadFileIfExists(origin).value_or("[origin]\nrefspec=" + d.checksum + "\n"),
                  0644);

  std::string list;
  for (const auto& c : opts.containers) list += c + "\n";
  WriteFileAtomic(root / std::string(seedfile::kContainersList), list, 0644);

  Json manifest = {{"seed_cluster_ocp_version", opts.version},
                   {"release_registry", opts.release_registry},
                   {"has_proxy", false},
                   {"has_fips", false},
                   {"mirror_registry_configured", false},
                   {"container_storage_mountpoint_target", ""}};
  WriteFileAtomic(root / std::string(seedfile::kManifest), ToPrettyJson(manifest), 0644);

  // One uncompressed layer: its members are gzip already, a second gzip would only burn CPU.
  const fs::path layer = work / "layer.tar";
  {
    TarWriter w(layer, Compression::kNone);
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(root)) files.push_back(e.path());
    std::sort(files.begin(), files.end());
    for (const auto& f : files) w.AddFile(f.filename().string(), f);
    w.Close();
  }
  fs::remove_all(root);

  std::string layout_dir, tag = "latest";
  const bool to_layout = opts.image.rfind("oci:", 0) == 0;
  if (to_layout) {
    std::string rest = opts.image.substr(4);
    if (auto colon = rest.rfind(':');
        colon != std::string::npos && rest.find('/', colon) == std::string::npos) {
      tag = rest.substr(colon + 1);
      rest = rest.substr(0, colon);
    }
    layout_dir = rest;
  } else {
    layout_dir = (work / "layout").string();
    tag = "seed";
  }
  OciLayoutWriter writer(layout_dir);
  const OciLayer l = writer.AddLayerFile(layer, kOciLayerTarMediaType, /*move=*/true);
  const std::map<std::string, std::string> labels = {
      {std::string(kSeedFormatVersionLabel), std::string(kSeedFormatVersion)},
      {std::string(kSeedClusterInfoLabel), manifest.dump()}};
  const OciDescriptor m = writer.AddImage(tag, {l}, labels);

  SeedCreateResult result;
  result.manifest_digest = m.digest;
  result.layer_bytes = static_cast<uint64_t>(l.descriptor.size);
  if (to_layout) {
    result.image = "oci:" + layout_dir + ":" + tag;
    return result;
  }
  ProcessSpec push;
  push.argv = {"skopeo"};
  if (opts.policy) push.argv.insert(push.argv.end(), {"--policy", opts.policy->string()});
  push.argv.push_back("copy");
  if (opts.registries_conf)
    push.argv.insert(push.argv.end(), {"--registries-conf", opts.registries_conf->string()});
  if (opts.authfile)
    push.argv.insert(push.argv.end(), {"--dest-authfile", opts.authfile->string()});
  push.argv.insert(push.argv.end(),
                   {"--quiet", "oci:" + layout_dir + ":" + tag, SkopeoReference(opts.image)});
  push.timeout = std::chrono::hours(2);
  WithContext("pushing the seed to " + opts.image, [&] { RunChecked(runner, push); });
  result.image = opts.image;
  return result;
}

}  // namespace lca::stateroot
