#pragma once
// An LCA-format seed made WITHOUT our seed creator (`lcactl seed create`): what the Go
// operator's `lca-cli create` puts in a seed image (reference-lca §3.7), built here from a
// throwaway seed host with the same tools lca-cli uses (GNU tar with --selinux --xattrs
// --xattrs-include=* --acls, `ostree admin config-diff`), so Prep is proven against the
// contract, not against our own creator's reading of it. Tests only.
//
// The seed host is a make-sysroot.sh sysroot whose commit `version` is an RHCOS-style build id
// (the OpenShift version lives in manifest.json). Its /etc gets the seed's own units,
// installation-configuration.service and lca-init-monitor.service (running /usr/local/bin/lca-cli),
// enabled in multi-user.target.wants, and the var-lib-containers.mount of its container storage
// partition; its /var a labelled file (security.selinux and a user.* attribute) and what
// lca-cli leaves out of var.tgz. The image: one layer with ostree.tgz, var.tgz, etc.tgz,
// etc.deletions, rpm-ostree.json, mco-currentconfig.json, ostree-<sha>.<serial>.origin,
// containers.list, manifest.json and lca-cli at its root; the format and cluster-info labels.
#include <sys/xattr.h>

#include <algorithm>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/atomic_file.hpp"
#include "common/error.hpp"
#include "common/json_yaml.hpp"
#include "common/process.hpp"
#include "tests/support/image_factory.hpp"
#include "tests/support/registry.hpp"
#include "tests/support/test_sysroot.hpp"

namespace lca::test {

// Unit texts as reference-lca §5.2 describes the seed's.
inline constexpr const char* kSeedPostPivotUnit =
    "[Unit]\nDescription=SNO Image-based Installation configuration\n"
    "After=coreos-update-ca-trust.service\n\n[Service]\nType=oneshot\n"
    "ExecStart=/usr/local/bin/lca-cli post-pivot\nRestart=on-failure\nRestartSec=5s\n\n"
    "[Install]\nWantedBy=multi-user.target\n";
inline constexpr const char* kSeedMonitorUnit =
    "[Unit]\nDescription=Lifecycle Agent Init Monitor Watchdog\n"
    "After=NetworkManager-wait-online.service\n\n[Service]\nType=simple\n"
    "ExecStart=/usr/local/bin/lca-cli init-monitor --monitor\n"
    "ExecStopPost=systemctl disable lca-init-monitor.service\n\n"
    "[Install]\nWantedBy=multi-user.target\n";
inline constexpr const char* kSeedStorageWhat = "/dev/disk/by-partlabel/var-lib-containers";
inline constexpr const char* kSeedSelinuxLabel = "system_u:object_r:container_var_lib_t:s0";

struct LcaSeedOptions {
  std::string version = "4.15.2";
  std::string build_id = "415.92.202402201450-0";  // the seed commit's `version` metadata
  std::vector<std::string> kargs = {"console=ttyS0,115200"};
  std::vector<std::string> containers = {"quay.io/openshift/etcd@sha256:" + std::string(64, 'b')};
  // seed_cluster_info (label and manifest.json) beyond the version; merged over the defaults.
  Json cluster_info = Json::object();
};

// The seed's files and labels, in `dir` (which the caller owns).
class LcaSeed {
 public:
  LcaSeed(const std::filesystem::path& dir, LcaSeedOptions opts)
      : dir_(dir), opts_(std::move(opts)), host_(dir / "seedhost", opts_.build_id) {
    namespace fs = std::filesystem;
    dep_ = host_.sysroot() / "ostree/deploy/rhcos/deploy" / (host_.commit() + ".0");
    files_ = dir_ / "files";
    fs::create_directories(files_);
    DressEtc();
    DressVar();
    ArchiveOstree();
    ArchiveVar();
    ArchiveEtc();
    WriteMetadata();
  }

  const std::filesystem::path& files() const { return files_; }
  const std::string& commit() const { return host_.commit(); }
  Json ClusterInfo() const {
    Json info = {{"seed_cluster_ocp_version", opts_.version},
                 {"base_domain", "example.com"},
                 {"cluster_name", "seed"},
                 {"node_ips", Json::array({"192.0.2.10"})},
                 {"release_registry", "quay.io"},
                 {"mirror_registry_configured", false},
                 {"sno_hostname", "seed"},
                 {"recert_image_pull_spec", "quay.io/edge-infrastructure/recert:v0"},
                 {"has_proxy", false},
                 {"has_fips", false},
                 {"additionalTrustBundle", nullptr},
                 {"container_storage_mountpoint_target", kSeedStorageWhat},
                 {"ingress_certificate_cn", "ingress-operator@1"}};
    for (const auto& [k, v] : opts_.cluster_info.items()) info[k] = v;
    return info;
  }
  std::map<std::string, std::string> Labels(const Json& info) const {
    return {{"com.openshift.lifecycle-agent.seed_format_version", "4"},
            {"com.openshift.lifecycle-agent.seed_cluster_info", info.dump()}};
  }

  // The image layer: the root files, uncompressed, names as `COPY . /` gives them.
  std::string Layer() const {
    std::vector<std::pair<std::string, std::string>> entries;
    for (const auto& e : std::filesystem::directory_iterator(files_)) {
      entries.emplace_back(e.path().filename().string(), ReadFile(e.path()));
    }
    std::sort(entries.begin(), entries.end());
    return TarOf(entries);
  }

  // Pushes the seed to `registry` as <repo>:<tag> with `info` (default ClusterInfo()) in the
  // label; `layer` replaces the seed's own (a variant). Returns the image reference.
  std::string Push(const LocalRegistry& registry, const std::string& tag,
                   std::optional<Json> info = std::nullopt,
                   std::optional<std::string> layer = std::nullopt) const {
    ImagePusher pusher(registry.address());
    return pusher
        .Push("ibu/lca-seed", tag, {layer ? *layer : Layer()}, Labels(info.value_or(ClusterInfo())))
        .ref;
  }

 private:
  static void Run(const std::vector<std::string>& argv) {
    SystemProcessRunner runner;
    RunChecked(runner, ProcessSpec{.argv = argv,
                                   .env = {{"OSTREE_SYSROOT_DEBUG", "mutable-deployments"}},
                                   .timeout = std::chrono::seconds(120),
                                   .stderr_tail_bytes = 1 << 14});
  }
  static std::string Out(const std::vector<std::string>& argv) {
    SystemProcessRunner runner;
    return RunChecked(runner, ProcessSpec{.argv = argv,
                                          .env = {{"OSTREE_SYSROOT_DEBUG", "mutable-deployments"}},
                                          .timeout = std::chrono::seconds(120),
                                          .stderr_tail_bytes = 1 << 14})
        .stdout_data;
  }
  static void Xattr(const std::filesystem::path& p, const std::string& name,
                    const std::string& value) {
    if (::setxattr(p.c_str(), name.c_str(), value.data(), value.size(), 0) != 0) {
      throw SystemError("setxattr " + name + " " + p.string(), errno);
    }
  }
  static const std::vector<std::string>& TarFlags() {
    static const std::vector<std::string> f = {"--selinux", "--xattrs", "--xattrs-include=*",
                                               "--acls"};
    return f;
  }

  // The seed host's /etc: a changed, an added and a deleted file, the seed's two units enabled,
  // and the mount unit of its container storage partition.
  void DressEtc() {
    namespace fs = std::filesystem;
    const fs::path units = dep_ / "etc/systemd/system";
    fs::create_directories(units / "multi-user.target.wants");
    fs::create_directories(units / "local-fs.target.requires");
    WriteFileAtomic(units / "installation-configuration.service", kSeedPostPivotUnit, 0644);
    WriteFileAtomic(units / "lca-init-monitor.service", kSeedMonitorUnit, 0644);
    for (const char* u : {"installation-configuration.service", "lca-init-monitor.service"}) {
      fs::create_symlink(fs::path("/etc/systemd/system") / u,
                         units / "multi-user.target.wants" / u);
    }
    WriteFileAtomic(units / "var-lib-containers.mount",
                    std::string("[Mount]\nWhere=/var/lib/containers\nWhat=") + kSeedStorageWhat +
                        "\nType=xfs\nOptions=defaults,prjquota\n\n[Install]\n"
                        "RequiredBy=local-fs.target\n",
                    0644);
    fs::create_symlink("/etc/systemd/system/var-lib-containers.mount",
                       units / "local-fs.target.requires/var-lib-containers.mount");
    WriteFileAtomic(dep_ / "etc/seed-added.conf", "added on the seed host\n", 0644);
    WriteFileAtomic(dep_ / "etc/motd", "Seed host, changed motd\n", 0644);
    fs::remove(dep_ / "etc/deprecated.conf");
    fs::create_directories(dep_ / "etc/machine-config-daemon");
    WriteFileAtomic(dep_ / "etc/hostname", "seed\n", 0644);  // excluded by lca-cli
  }

  void DressVar() {
    namespace fs = std::filesystem;
    const fs::path var = host_.stateroot_var();
    fs::create_directories(var / "lib/seeddata");
    WriteFileAtomic(var / "lib/seeddata/labelled", "seed data\n", 0644);
    Xattr(var / "lib/seeddata/labelled", "security.selinux", kSeedSelinuxLabel);
    Xattr(var / "lib/seeddata/labelled", "user.lca-seed", "kept");
    fs::create_directories(var / "seed_data");
    WriteFileAtomic(var / "seed_data/manifest.json", ClusterInfo().dump(), 0644);
    fs::create_directories(var / "usrlocal/bin");
    WriteFileAtomic(var / "usrlocal/bin/lca-cli", "#!/bin/sh\nexit 0\n", 0755);
    // What lca-cli leaves out of var.tgz.
    for (const char* d : {"tmp", "log", "lib/lca", "lib/containers/storage", "lib/kubelet/pods"}) {
      fs::create_directories(var / d);
      WriteFileAtomic(var / d / "excluded", "must not travel\n", 0644);
    }
  }

  void ArchiveOstree() {
    std::vector<std::string> argv = {"tar", "czf", (files_ / "ostree.tgz").string()};
    argv.insert(argv.end(), TarFlags().begin(), TarFlags().end());
    argv.insert(argv.end(), {"-C", (host_.sysroot() / "ostree/repo").string(), "."});
    Run(argv);
  }

  void ArchiveVar() {
    std::vector<std::string> argv = {"tar", "czf", (files_ / "var.tgz").string()};
    argv.insert(argv.end(), TarFlags().begin(), TarFlags().end());
    for (const char* x : {"*/.bash_history", "var/tmp/*", "var/log/*", "var/lib/lca",
                          "var/lib/containers/*", "var/lib/kubelet/pods/*"}) {
      argv.push_back(std::string("--exclude=") + x);
    }
    argv.insert(argv.end(), {"-C", (host_.sysroot() / "ostree/deploy/rhcos").string(), "var"});
    Run(argv);
  }

  // etc.tgz from `ostree admin config-diff` (A and M entries, minus lca-cli's exclusions) and
  // etc.deletions from its D entries.
  void ArchiveEtc() {
    const std::string diff = Out(
        {"ostree", "admin", "config-diff", "--sysroot=" + host_.sysroot().string(), "--os=rhcos"});
    std::vector<std::string> keep;
    std::string deletions;
    size_t start = 0;
    while (start < diff.size()) {
      size_t nl = diff.find('\n', start);
      if (nl == std::string::npos) nl = diff.size();
      const std::string line = diff.substr(start, nl - start);
      start = nl + 1;
      if (line.size() < 6) continue;
      const std::string path = "etc/" + line.substr(5);
      if (line[0] == 'D') {
        deletions += "/" + path + "\n";
      } else if (path != "etc/hostname" && std::filesystem::is_regular_file(dep_ / path)) {
        keep.push_back(path);
      } else if (std::filesystem::is_symlink(dep_ / path)) {
        keep.push_back(path);
      }
    }
    WriteFileAtomic(files_ / "etc.deletions", deletions, 0644);
    std::vector<std::string> argv = {"tar", "czf", (files_ / "etc.tgz").string()};
    argv.insert(argv.end(), TarFlags().begin(), TarFlags().end());
    argv.insert(argv.end(), {"-C", dep_.string()});
    argv.insert(argv.end(), keep.begin(), keep.end());
    Run(argv);
  }

  void WriteMetadata() {
    const std::string id = "rhcos-" + host_.commit() + ".0";
    const Json status = {{"deployments", Json::array({{{"id", id},
                                                       {"osname", "rhcos"},
                                                       {"serial", 0},
                                                       {"checksum", host_.commit()},
                                                       {"version", opts_.build_id},
                                                       {"booted", true},
                                                       {"staged", false}}})},
                         {"transaction", nullptr},
                         {"cached-update", nullptr}};
    WriteFileAtomic(files_ / "rpm-ostree.json", status.dump(2), 0644);
    const Json mc = {{"apiVersion", "machineconfiguration.openshift.io/v1"},
                     {"kind", "MachineConfig"},
                     {"metadata", {{"name", "rendered-master-0"}}},
                     {"spec", {{"kernelArguments", opts_.kargs}, {"fips", false}}}};
    WriteFileAtomic(files_ / "mco-currentconfig.json", mc.dump(2), 0644);
    const auto origin = dep_.parent_path() / (host_.commit() + ".0.origin");
    WriteFileAtomic(files_ / ("ostree-" + host_.commit() + ".0.origin"), ReadFile(origin), 0644);
    std::string list;
    for (const auto& c : opts_.containers) list += c + "\n";
    WriteFileAtomic(files_ / "containers.list", list, 0644);
    WriteFileAtomic(files_ / "manifest.json", ClusterInfo().dump(), 0644);
    WriteFileAtomic(files_ / "lca-cli", "#!/bin/sh\nexit 0\n", 0755);
  }

  std::filesystem::path dir_;
  LcaSeedOptions opts_;
  TestSysroot host_;
  std::filesystem::path dep_;
  std::filesystem::path files_;
};

}  // namespace lca::test
