// Real hosts and real seeds (issue 18) on the real bed: an LCA-format seed made WITHOUT our seed
// creator (tests/support/lca_seed.hpp: what `lca-cli create` makes, with GNU tar and
// `ostree admin config-diff`), pushed to a real registry on loopback, and the real
// lifecycle-agent driven with the real lcactl on a throwaway ostree host whose booted commit
// carries an RHCOS build id as its version. Reboots are simulated (tests/support/agent_host.hpp).
//
// The test process runs in a private mount namespace, so the tmpfs that plays the host's
// container storage partition is seen by the daemon and by nobody else.
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/xattr.h>

#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "common/atomic_file.hpp"
#include "common/json_yaml.hpp"
#include "precache/podman.hpp"
#include "precache/storage_mount.hpp"
#include "tests/support/agent_host.hpp"
#include "tests/support/lca_seed.hpp"
#include "tests/support/podman_bed.hpp"
#include "tests/support/shared_bed.hpp"
#include "tests/support/temp_dir.hpp"

namespace lca {
namespace {

namespace fs = std::filesystem;
using test::AgentHost;

constexpr const char* kHostBuildId = "414.92.202310210434-0";  // RHCOS-style commit version
constexpr const char* kTarget = "rhcos_4.15.2";

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

std::string Xattr(const fs::path& p, const char* name) {
  char buf[256];
  const ssize_t n = ::lgetxattr(p.c_str(), name, buf, sizeof buf);
  return n < 0 ? std::string("<") + std::strerror(errno) + ">" : std::string(buf, n);
}

// A var.tgz whose one file carries an attribute no filesystem accepts ("lca.bogus": no such
// namespace), so writing it fails the way a label write fails on a host that refuses it.
std::string UnwritableXattrVarTgz(const fs::path& dir) {
  const fs::path out = dir / "var-bogus.tgz";
  archive* a = archive_write_new();
  archive_write_add_filter_gzip(a);
  archive_write_set_format_pax_restricted(a);
  if (archive_write_open_filename(a, out.c_str()) != ARCHIVE_OK) {
    throw Error(Errc::kIo, "writing " + out.string());
  }
  const std::string data = "labelled\n";
  for (const char* name : {"var/", "var/lib/", "var/lib/unlabelable"}) {
    archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, name);
    const bool dir_entry = name[std::strlen(name) - 1] == '/';
    archive_entry_set_filetype(e, dir_entry ? AE_IFDIR : AE_IFREG);
    archive_entry_set_perm(e, dir_entry ? 0755 : 0644);
    archive_entry_set_size(e, dir_entry ? 0 : static_cast<la_int64_t>(data.size()));
    if (!dir_entry) archive_entry_xattr_add_entry(e, "lca.bogus", "x", 1);
    archive_write_header(a, e);
    if (!dir_entry) archive_write_data(a, data.data(), data.size());
    archive_entry_free(e);
  }
  archive_write_close(a);
  archive_write_free(a);
  return ReadFile(out);
}

struct Bed {
  test::TempDir root{"lca-realhost-bed"};
  std::unique_ptr<test::LocalRegistry> registry;
  std::unique_ptr<test::LcaSeed> seed;
  std::string image, proxy_image, fips_image, other_storage_image, mirror_image, bogus_image;
  test::PushedImage app;  // the seed's containers.list: pre-cached by every completed Prep

  Bed() {
    registry = std::make_unique<test::LocalRegistry>();
    app = test::ImagePusher(registry->address())
              .Push("ocp/etcd", "v1", {test::TarOf({{"usr/bin/etcd", "etcd\n"}})});
    test::LcaSeedOptions opts;
    opts.containers = {app.pinned};
    seed = std::make_unique<test::LcaSeed>(root / "seed", opts);
    image = seed->Push(*registry, "4.15.2");
    auto variant = [&](const std::string& tag, const Json& change) {
      Json info = seed->ClusterInfo();
      for (const auto& [k, v] : change.items()) info[k] = v;
      return seed->Push(*registry, tag, info);
    };
    proxy_image = variant("proxy", {{"has_proxy", true}});
    fips_image = variant("fips", {{"has_fips", true}});
    other_storage_image =
        variant("other-storage", {{"container_storage_mountpoint_target", "/dev/sdb1"}});
    mirror_image = variant("mirror", {{"mirror_registry_configured", true}});
    // The seed with var.tgz replaced (a layer of its own).
    std::vector<std::pair<std::string, std::string>> entries;
    for (const auto& e : fs::directory_iterator(seed->files())) {
      const std::string name = e.path().filename().string();
      entries.emplace_back(
          name, name == "var.tgz" ? UnwritableXattrVarTgz(root.path()) : ReadFile(e.path()));
    }
    std::sort(entries.begin(), entries.end());
    bogus_image = seed->Push(*registry, "unlabelable", std::nullopt, test::TarOf(entries));
  }
};

class RealHostTest : public test::SharedBedSuite<Bed, test::EnterPrivateVarLib> {
 protected:
  void TearDown() override {
    if (host_) {
      if (HasFailure()) std::cerr << "---- daemon log ----\n" << host_->DaemonLog() << "----\n";
      host_->Stop();
    }
    if (mounted_) ::umount2((tmp_ / "containers").c_str(), MNT_DETACH);
  }

  // A host at kHostBuildId whose booted deployment says OPENSHIFT_VERSION=`ocp` (none when
  // empty), with a tmpfs as its container storage partition mounted by a unit like
  // var-lib-containers.mount (What= `what`), unless `partition` is false: then the storage is
  // a directory of the booted stateroot's /var.
  AgentHost& Host(const std::string& ocp = "4.14", bool partition = true,
                  const std::string& what = test::kSeedStorageWhat,
                  std::vector<std::string> flags = {}) {
    host_ = std::make_unique<AgentHost>(tmp_ / "h", *bed->registry, kHostBuildId);
    const fs::path dep = host_->BootedDeploymentDir();
    if (!ocp.empty()) {
      // Replaced, not edited in place: the file is a hardlink into the ostree repo.
      const std::string text = ReadFile(dep / "usr/lib/os-release");
      fs::remove(dep / "usr/lib/os-release");
      WriteFileAtomic(dep / "usr/lib/os-release", text + "OPENSHIFT_VERSION=\"" + ocp + "\"\n",
                      0644);
    }
    // As on RHCOS: /etc/os-release is a link to the release's own.
    fs::remove(dep / "etc/os-release");
    fs::create_symlink("../usr/lib/os-release", dep / "etc/os-release");
    // lca is installed on the host: both of its units, the monitor running lcactl.
    const fs::path lib_units = dep / "usr/lib/systemd/system";
    fs::create_directories(lib_units);
    WriteFileAtomic(lib_units / "lifecycle-agent.service",
                    "[Service]\nExecStart=/usr/bin/lifecycle-agent\n[Install]\n"
                    "WantedBy=multi-user.target\n",
                    0644);
    WriteFileAtomic(lib_units / "lca-init-monitor.service",
                    "[Service]\nExecStart=/bin/sh -c 'exec /usr/bin/lcactl init-monitor "
                    "--monitor'\n[Install]\nWantedBy=multi-user.target\n",
                    0644);
    fs::path storage = host_->host().stateroot_var() / "lib/containers/storage";
    if (partition) {
      const fs::path part = tmp_ / "containers";
      fs::create_directories(part);
      if (::mount("lca-test-containers", part.c_str(), "tmpfs", 0, "mode=0700") != 0) {
        throw SystemError("mount tmpfs " + part.string(), errno);
      }
      mounted_ = true;
      storage = part / "storage";
      const fs::path unit = dep / "etc/systemd/system" / precache::MountUnitName(part);
      fs::create_directories(unit.parent_path());
      WriteFileAtomic(unit, "[Mount]\nWhere=" + part.string() + "\nWhat=" + what + "\n", 0644);
    }
    flags.insert(flags.end(),
                 {"--containers-root", storage.string(), "--containers-runroot",
                  (tmp_ / "containers-run").string(), "--containers-storage-driver", "vfs"});
    host_->SetDaemonFlags(flags);
    host_->EnablePrecache();
    host_->Start();
    return *host_;
  }

  static Json PrepPatch(const std::string& image, Json extra = Json::object()) {
    Json spec = {{"stage", "Prep"}, {"seedImageRef", {{"version", "4.15.2"}, {"image", image}}}};
    for (const auto& [k, v] : extra.items()) spec[k] = v;
    return Json{{"spec", spec}};
  }

  // Prep fails; returns its message. Nothing of the new stateroot is left.
  std::string PrepFails(AgentHost& h, const std::string& image, Json extra = Json::object()) {
    h.Patch(PrepPatch(image, std::move(extra)));
    const Json o = h.WaitFor(
        [](const Json& obj) {
          return AgentHost::ConditionStatus(obj, "PrepInProgress") == "False";
        },
        "Prep failed");
    EXPECT_EQ(AgentHost::ConditionStatus(o, "PrepCompleted"), "False");
    EXPECT_FALSE(fs::exists(h.sysroot() / "ostree/deploy" / kTarget));
    return AgentHost::ConditionMessage(o, "PrepInProgress");
  }

  void PrepCompletes(AgentHost& h, const std::string& image) {
    h.Patch(PrepPatch(image));
    const Json o = h.WaitFor(
        [](const Json& obj) {
          return AgentHost::ConditionStatus(obj, "PrepInProgress") == "False";
        },
        "Prep to end", std::chrono::seconds(240));
    ASSERT_EQ(AgentHost::ConditionStatus(o, "PrepCompleted"), "True")
        << AgentHost::ConditionMessage(o, "PrepInProgress");
  }

  void Abort(AgentHost& h) {
    h.Patch(Json::parse(R"({"spec":{"stage":"Idle"}})"));
    h.WaitFor([](const Json& o) { return AgentHost::ConditionStatus(o, "Idle") == "True"; },
              "Idle");
  }

  test::TempDir tmp_{"lca-realhost"};
  std::unique_ptr<AgentHost> host_;
  bool mounted_ = false;
};

// The whole flow with a seed as lca-cli makes it: Prep (running version from os-release,
// shared storage, labels and xattrs kept), Upgrade, the simulated boot, finalize; the seed's
// own init monitor is the one watchdog of the new boot and the one completion stops.
TEST_F(RealHostTest, LcaFormatSeedPrepsUpgradesBootsAndFinalizesWithTheSeedsOwnMonitor) {
  AgentHost& h = Host();
  ASSERT_NO_FATAL_FAILURE(PrepCompletes(h, bed->image));
  EXPECT_TRUE(Contains(h.DaemonLog(), "running version 4.14 (from OPENSHIFT_VERSION"));
  const fs::path new_var = h.sysroot() / "ostree/deploy" / kTarget / "var";
  EXPECT_EQ(Xattr(new_var / "lib/seeddata/labelled", "security.selinux"), test::kSeedSelinuxLabel);
  EXPECT_EQ(Xattr(new_var / "lib/seeddata/labelled", "user.lca-seed"), "kept");
  EXPECT_TRUE(fs::exists(new_var / "seed_data/manifest.json"));
  EXPECT_FALSE(fs::exists(new_var / "tmp/excluded"));
  EXPECT_FALSE(fs::exists(new_var / "lib/containers/storage/excluded"));

  h.Patch(Json::parse(R"({"spec":{"stage":"Upgrade"}})"));
  h.WaitFor([&](const Json&) { return h.Reboots() == 1; }, "the reboot request");
  const auto newdep = [&] {
    for (const auto& e : fs::directory_iterator(h.sysroot() / "ostree/deploy" / kTarget / "deploy"))
      if (e.is_directory()) return e.path();
    return fs::path();
  }();
  const fs::path units = newdep / "etc/systemd/system";
  // The seed's units, as the seed made them, enabled; the agent's monitor not installed over.
  EXPECT_EQ(ReadFile(units / "lca-init-monitor.service"), test::kSeedMonitorUnit);
  EXPECT_EQ(ReadFile(units / "installation-configuration.service"), test::kSeedPostPivotUnit);
  EXPECT_TRUE(fs::is_symlink(units / "multi-user.target.wants/lca-init-monitor.service"));
  EXPECT_TRUE(fs::is_symlink(units / "multi-user.target.wants/installation-configuration.service"));
  EXPECT_TRUE(fs::exists(units / "lifecycle-agent.service")) << "the agent is carried in";
  EXPECT_EQ(ParseJson(ReadFile(new_var / "lib/lca/init-monitor.json"), "record")["owner"], "seed");

  h.Reboot();
  ASSERT_EQ(h.BootedStateroot(), kTarget);
  h.WaitFor(
      [](const Json& o) { return AgentHost::ConditionStatus(o, "UpgradeCompleted") == "True"; },
      "UpgradeCompleted");
  // Pre-cached before the pivot into the shared storage, there after it.
  precache::PodmanConfig pc = test::IsolatedPodman(
      tmp_ / "podman-check", bed->registry->registries_conf(), bed->registry->policy_json());
  pc.root = tmp_ / "containers/storage";
  pc.runroot = tmp_ / "containers-run";
  SystemProcessRunner runner;
  EXPECT_TRUE(precache::ListLocalImages(runner, pc).Contains(bed->app.pinned));
  const std::string systemctl = ReadFileIfExists(h.dir() / "systemctl.log").value_or("");
  EXPECT_TRUE(Contains(systemctl, "stop lca-init-monitor.service")) << systemctl;
  EXPECT_TRUE(Contains(systemctl, "disable lca-init-monitor.service")) << systemctl;
  EXPECT_FALSE(Contains(systemctl, "installation-configuration")) << systemctl;
  EXPECT_FALSE(fs::exists(units / "lca-init-monitor.service")) << "removed as the Go operator does";
  EXPECT_TRUE(fs::exists(units / "installation-configuration.service"));

  h.Patch(Json::parse(R"({"spec":{"stage":"Idle"}})"));
  h.WaitFor([](const Json& o) { return AgentHost::ConditionStatus(o, "Idle") == "True"; },
            "Idle after finalize", std::chrono::seconds(180));
  EXPECT_FALSE(fs::exists(h.sysroot() / "ostree/deploy/rhcos"));
}

TEST_F(RealHostTest, HostWithoutAContainerStoragePartitionIsRefusedBeforeAnythingIsFetched) {
  AgentHost& h = Host("4.14", /*partition=*/false);
  const std::string m = PrepFails(h, bed->image);
  EXPECT_EQ(m.rfind("container storage mountpoint target not found: ", 0), 0u) << m;
  EXPECT_TRUE(Contains(m, "same filesystem as this stateroot's /var")) << m;
  EXPECT_TRUE(Contains(m, "var-lib-containers.mount")) << m;
  EXPECT_FALSE(fs::exists(h.sysroot() / "ostree/lca-prep/oci")) << "nothing was fetched";
  // Without pre-caching nothing pulled can be lost: a warning, and Prep goes on.
  Abort(h);
  h.Stop();
  h.SetDaemonFlags({"--containers-root",
                    (h.host().stateroot_var() / "lib/containers/storage").string(),
                    "--precache-disabled"});
  h.Start();
  ASSERT_NO_FATAL_FAILURE(PrepCompletes(h, bed->image));
  EXPECT_TRUE(Contains(h.DaemonLog(), "(pre-caching is disabled, so Prep goes on)"));
}

TEST_F(RealHostTest, SeedOfAnotherContainerStorageTargetIsRefused) {
  AgentHost& h = Host();
  const std::string m = PrepFails(h, bed->other_storage_image);
  EXPECT_TRUE(Contains(m,
                       "failed to validate seed image info: checking seed image "
                       "compatibility: container storage mountpoint target mismatch: "
                       "seed=/dev/sdb1, cluster=" +
                           std::string(test::kSeedStorageWhat)))
      << m;
}

TEST_F(RealHostTest, ProxyAndFipsMismatchesAreRefusedWithTheReferenceMessages) {
  AgentHost& h = Host();
  std::string m = PrepFails(h, bed->proxy_image);
  EXPECT_TRUE(Contains(m,
                       "checking seed image compatibility: seed image has a proxy but the "
                       "cluster being upgraded does not, this combination is not supported"))
      << m;
  Abort(h);
  m = PrepFails(h, bed->fips_image);
  EXPECT_TRUE(Contains(m,
                       "seed image has FIPS enabled but the cluster being upgraded does not, "
                       "this combination is not supported"))
      << m;
  EXPECT_TRUE(Contains(m, "no fips=1 on the kernel command line")) << m;
  Abort(h);
  // The node's proxy, as the Machine Config Operator writes it for the node's services.
  const fs::path env = h.BootedDeploymentDir() / "etc/mco/proxy.env";
  fs::create_directories(env.parent_path());
  WriteFileAtomic(env, "HTTPS_PROXY=http://proxy.example.com:3128\n", 0644);
  m = PrepFails(h, bed->image);
  EXPECT_TRUE(Contains(m,
                       "seed image does not have a proxy but the cluster being upgraded does, "
                       "this combination is not supported"))
      << m;
  EXPECT_TRUE(Contains(m, "HTTPS_PROXY set in the booted deployment's /etc/mco/proxy.env")) << m;
}

TEST_F(RealHostTest, SeedFromAMirroredClusterNeedsTheReleaseRegistrySetting) {
  AgentHost& h = Host();
  const std::string m = PrepFails(h, bed->mirror_image);
  EXPECT_TRUE(Contains(m,
                       "the seed's images come from release registry quay.io "
                       "(mirror_registry_configured: true)"))
      << m;
  EXPECT_TRUE(Contains(m, "set releaseRegistry")) << m;
}

TEST_F(RealHostTest, RunningVersionThatCannotBeComparedNamesTheSetting) {
  // An RHCOS build id and no OPENSHIFT_VERSION: never "seed is not newer".
  AgentHost& h = Host(/*ocp=*/"");
  std::string m = PrepFails(h, bed->image);
  EXPECT_TRUE(Contains(
      m, "the booted commit's version " + std::string(kHostBuildId) + " is an RHCOS build id"))
      << m;
  EXPECT_TRUE(Contains(m, "set runningVersion")) << m;
  EXPECT_FALSE(Contains(m, "must be higher")) << m;
  Abort(h);
  h.Stop();
  // The same minor in os-release cannot say which is newer.
  const fs::path osr = h.BootedDeploymentDir() / "usr/lib/os-release";
  const std::string text = ReadFile(osr);
  fs::remove(osr);
  WriteFileAtomic(osr, text + "OPENSHIFT_VERSION=\"4.15\"\n", 0644);
  h.Start();
  m = PrepFails(h, bed->image);
  EXPECT_TRUE(Contains(m, "are the same minor release")) << m;
  EXPECT_TRUE(Contains(m, "set runningVersion")) << m;
  Abort(h);
  // The setting wins over os-release.
  h.Stop();
  h.SetDaemonFlags({"--running-version", "4.15.1", "--containers-root",
                    (tmp_ / "containers/storage").string(), "--containers-runroot",
                    (tmp_ / "containers-run").string(), "--containers-storage-driver", "vfs"});
  h.Start();
  ASSERT_NO_FATAL_FAILURE(PrepCompletes(h, bed->image));
  EXPECT_TRUE(Contains(h.DaemonLog(), "running version 4.15.1 (from runningVersion)"));
}

TEST_F(RealHostTest, OadpContentFailsPrepSayingWhatIsNeeded) {
  AgentHost& h = Host();
  const std::string m = PrepFails(
      h, bed->image,
      {{"oadpContent", Json::array({{{"name", "backups"}, {"namespace", "openshift-adp"}}})}});
  EXPECT_EQ(m.rfind("failed to validate IBU spec: spec.oadpContent (openshift-adp/backups) is "
                    "not supported yet",
                    0),
            0u)
      << m;
  EXPECT_TRUE(Contains(m, "remove spec.oadpContent")) << m;
}

TEST_F(RealHostTest, WithSelinuxEnabledAnAttributeThatCannotBeWrittenFailsPrep) {
  // Without SELinux the attribute is a warning and Prep completes.
  AgentHost& h = Host();
  ASSERT_NO_FATAL_FAILURE(PrepCompletes(h, bed->bogus_image));
  EXPECT_TRUE(Contains(h.DaemonLog(), "lca.bogus")) << "the warning names the attribute";
  Abort(h);
  h.Stop();
  const fs::path selinuxfs = tmp_ / "selinuxfs";
  fs::create_directories(selinuxfs);
  WriteFileAtomic(selinuxfs / "enforce", "1\n", 0644);
  h.SetDaemonFlags({"--selinuxfs", selinuxfs.string(), "--containers-root",
                    (tmp_ / "containers/storage").string(), "--containers-runroot",
                    (tmp_ / "containers-run").string(), "--containers-storage-driver", "vfs"});
  h.Start();
  const std::string m = PrepFails(h, bed->bogus_image);
  EXPECT_TRUE(Contains(m, "var/lib/unlabelable")) << m;
  EXPECT_TRUE(Contains(m, "SELinux is enabled on this host")) << m;
}

}  // namespace
}  // namespace lca
