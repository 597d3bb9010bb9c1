// The node-side checks of issue 18 as pure functions: the running-version sources and the
// major.minor rule, the seed compatibility messages, the node's proxy/FIPS facts, the mount unit
// names and the shared-storage refusal, the init-monitor decision.
#include <gtest/gtest.h>

#include <filesystem>
#include <functional>

#include "agent/pivot/init_monitor_owner.hpp"
#include "common/atomic_file.hpp"
#include "common/error.hpp"
#include "precache/storage_mount.hpp"
#include "stateroot/running_version.hpp"
#include "stateroot/seed_compat.hpp"
#include "tests/support/temp_dir.hpp"

namespace lca {
namespace {

namespace fs = std::filesystem;
namespace sr = stateroot;

std::string MessageOf(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

bool Has(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

class RunningVersionTest : public ::testing::Test {
 protected:
  sr::RunningVersionInputs In(const std::string& os_release, const std::string& commit) {
    fs::create_directories(tmp_ / "dep/usr/lib");
    fs::remove(tmp_ / "dep/usr/lib/os-release");
    if (!os_release.empty()) WriteFileAtomic(tmp_ / "dep/usr/lib/os-release", os_release, 0644);
    sr::RunningVersionInputs in;
    in.booted_deployment = tmp_ / "dep";
    in.commit_version = commit;
    return in;
  }
  test::TempDir tmp_{"lca-running-version"};
};

TEST_F(RunningVersionTest, SourcesInOrderClusterVersionSettingOsReleaseCommit) {
  auto in = In("NAME=\"RHCOS\"\nOPENSHIFT_VERSION=\"4.16\"\n", "416.94.202405291527-0");
  EXPECT_EQ(sr::ResolveRunningVersion(in).version, "4.16");
  EXPECT_TRUE(sr::ResolveRunningVersion(in).major_minor_only);
  in.setting = "4.16.2";
  EXPECT_EQ(sr::ResolveRunningVersion(in).version, "4.16.2");
  EXPECT_EQ(sr::ResolveRunningVersion(in).source, "runningVersion");
  in.cluster_version = [] { return std::optional<std::string>("4.16.3"); };
  EXPECT_EQ(sr::ResolveRunningVersion(in).version, "4.16.3");
  in.cluster_version = [] { return std::optional<std::string>(); };  // none: next source
  EXPECT_EQ(sr::ResolveRunningVersion(in).version, "4.16.2");
  EXPECT_EQ(sr::ResolveRunningVersion(In("", "4.14.1")).version, "4.14.1");
}

TEST_F(RunningVersionTest, BuildIdOrGarbageIsAnErrorNamingTheSetting) {
  const auto m =
      MessageOf([&] { sr::ResolveRunningVersion(In("NAME=x\n", "416.94.202405291527-0")); });
  EXPECT_TRUE(Has(m, "is an RHCOS build id")) << m;
  EXPECT_TRUE(Has(m, "set runningVersion")) << m;
  auto in = In("OPENSHIFT_VERSION=latest\n", "");
  EXPECT_TRUE(Has(MessageOf([&] { sr::ResolveRunningVersion(in); }), "set runningVersion"));
  in = In("", "");
  in.setting = "four";
  EXPECT_TRUE(Has(MessageOf([&] { sr::ResolveRunningVersion(in); }), "set runningVersion"));
}

TEST_F(RunningVersionTest, EtcOsReleaseSymlinkIsNotFollowedOutOfTheDeployment) {
  auto in = In("OPENSHIFT_VERSION=4.16\n", "");
  fs::create_directories(tmp_ / "dep/etc");
  WriteFileAtomic(tmp_ / "elsewhere", "OPENSHIFT_VERSION=9.9\n", 0644);
  fs::create_symlink(tmp_ / "elsewhere", tmp_ / "dep/etc/os-release");
  EXPECT_EQ(sr::ResolveRunningVersion(in).version, "4.16");
}

TEST(RunningVersionRule, MajorMinorOnlyComparesAsSuch) {
  const sr::RunningVersion r{"4.16", true, "os-release"};
  EXPECT_NO_THROW(sr::CheckSeedIsNewer("4.17.0", r));
  EXPECT_NO_THROW(sr::CheckSeedIsNewer("5.0.1", r));
  EXPECT_EQ(MessageOf([&] { sr::CheckSeedIsNewer("4.15.9", r); }),
            "seed OCP version (4.15.9) must be higher than current OCP version (4.16)");
  const auto same = MessageOf([&] { sr::CheckSeedIsNewer("4.16.9", r); });
  EXPECT_TRUE(Has(same, "same minor release")) << same;
  EXPECT_TRUE(Has(same, "set runningVersion")) << same;
  EXPECT_NO_THROW(sr::CheckSeedIsNewer("4.16.9", {"4.16.3", false, "runningVersion"}));
  EXPECT_TRUE(sr::IsRhcosBuildId("416.94.202405291527-0"));
  EXPECT_FALSE(sr::IsRhcosBuildId("4.16.3"));
}

TEST(SeedCompat, ReferenceMessagesForEachMismatch) {
  sr::SeedClusterInfo seed;
  sr::NodeFacts node;
  node.proxy_source = "p";
  node.fips_source = "f";
  node.storage_target = "/dev/disk/by-partlabel/var-lib-containers";
  EXPECT_NO_THROW(sr::CheckSeedCompatibility(seed, node));
  EXPECT_NO_THROW(sr::CheckSeedCompatibility(std::nullopt, node));
  seed.has_proxy = true;
  EXPECT_TRUE(Has(MessageOf([&] { sr::CheckSeedCompatibility(seed, node); }),
                  "checking seed image compatibility: seed image has a proxy but the cluster "
                  "being upgraded does not, this combination is not supported"));
  seed.has_proxy = false;
  node.has_fips = true;
  EXPECT_TRUE(Has(MessageOf([&] { sr::CheckSeedCompatibility(std::nullopt, node); }),
                  "seed image does not have FIPS enabled but the cluster being upgraded does"));
  node.has_fips = false;
  seed.container_storage_mountpoint_target = "/dev/sdb1";
  EXPECT_TRUE(Has(MessageOf([&] { sr::CheckSeedCompatibility(seed, node); }),
                  "container storage mountpoint target mismatch: seed=/dev/sdb1, "
                  "cluster=/dev/disk/by-partlabel/var-lib-containers"));
  seed.container_storage_mountpoint_target.clear();
  seed.release_registry = "quay.io";
  seed.mirror_registry_configured = true;
  EXPECT_TRUE(
      Has(MessageOf([&] { sr::CheckSeedCompatibility(seed, node); }), "set releaseRegistry"));
  node.mirror_sources = {"quay.io/openshift-release-dev/ocp-release"};
  EXPECT_NO_THROW(sr::CheckSeedCompatibility(seed, node)) << "the seed's registry is mirrored";
  node.mirror_sources = {"registry.example.com/x"};
  node.release_registry = "registry.example.com:5000";
  EXPECT_NO_THROW(sr::CheckSeedCompatibility(seed, node)) << "the override has its registry";
}

TEST(SeedCompat, NodeFactsFromCmdlineAndProxyEnv) {
  EXPECT_TRUE(sr::CmdlineHasFips("BOOT_IMAGE=x ostree=/a fips=1 boot=LABEL=boot"));
  EXPECT_FALSE(sr::CmdlineHasFips("BOOT_IMAGE=x nofips=1 fips=0"));
  EXPECT_EQ(sr::ProxyKeyIn("HTTP_PROXY=\nhttps_proxy=\"http://p:3128\"\n"), "HTTPS_PROXY");
  EXPECT_EQ(sr::ProxyKeyIn("# none\nHTTP_PROXY=\"\"\n"), "");
  EXPECT_EQ(sr::ProxyKeyIn("export NO_PROXY=.cluster.local\n"), "NO_PROXY");
}

TEST(StorageMount, UnitNamesAndWhatAsSystemdHasThem) {
  EXPECT_EQ(precache::MountUnitName("/srv/lcatest/containers"), "srv-lcatest-containers.mount");
  EXPECT_EQ(precache::MountUnitName("/srv/lcatest/containers/"), "srv-lcatest-containers.mount");
  EXPECT_EQ(precache::MountUnitName("/tmp/lca-x1/containers"), "tmp-lca\\x2dx1-containers.mount");
  EXPECT_EQ(precache::MountUnitName("/srv/.hidden"), "srv-\\x2ehidden.mount");
  EXPECT_EQ(precache::MountUnitWhat("[Mount]\nWhere=/var/lib/containers\n  What=/dev/sda5 \n"),
            "/dev/sda5");
  EXPECT_EQ(precache::MountUnitWhat("[Mount]\nWhere=/x\n"), "");
}

TEST(StorageMount, StorageOnTheStaterootVarFilesystemIsRefused) {
  test::TempDir tmp{"lca-storage-mount"};
  fs::create_directories(tmp / "var/lib");
  precache::StorageMountInputs in;
  in.stateroot_var = tmp / "var";
  in.storage_root = tmp / "var/lib/containers/storage";  // not there yet: its parent decides
  in.booted_deployment = tmp / "dep";
  const auto m = MessageOf([&] { precache::CheckSharedContainerStorage(in); });
  EXPECT_EQ(m.rfind("container storage mountpoint target not found: ", 0), 0u) << m;
  EXPECT_TRUE(Has(m, "var-lib-containers.mount")) << m;
}

TEST(InitMonitorOwner, TheSeedsMonitorIsRecordedAndOursOtherwise) {
  test::TempDir tmp{"lca-monitor-owner"};
  const fs::path dep = tmp / "dep", root = tmp / "stateroot";
  fs::create_directories(dep / "etc/systemd/system");
  EXPECT_EQ(pivot::DecideInitMonitor(dep, root), pivot::MonitorOwner::kAgent);
  WriteFileAtomic(dep / "etc/systemd/system/lca-init-monitor.service",
                  "[Service]\nExecStart=/bin/sh -c 'exec /usr/bin/lcactl init-monitor --monitor'\n",
                  0644);
  EXPECT_EQ(pivot::DecideInitMonitor(dep, root), pivot::MonitorOwner::kAgent);
  WriteFileAtomic(dep / "etc/systemd/system/lca-init-monitor.service",
                  "[Service]\nExecStart=/usr/local/bin/lca-cli init-monitor --monitor\n", 0644);
  EXPECT_EQ(pivot::DecideInitMonitor(dep, root), pivot::MonitorOwner::kSeed);
  EXPECT_EQ(pivot::RecordedInitMonitor(root / "var/lib/lca"), pivot::MonitorOwner::kSeed);
  EXPECT_EQ(pivot::RecordedInitMonitor(tmp / "nowhere"), pivot::MonitorOwner::kAgent);
}

}  // namespace
}  // namespace lca
