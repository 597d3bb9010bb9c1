// Backup and upgrade-recovery.sh on a fake host tree with a real etcd, a real throwaway ostree
// sysroot and the real lcactl binary; host commands (systemctl, crictl, crio, setenforce,
// getenforce) go to a recording hook, so nothing reaches this machine's systemd or SELinux.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "common/atomic_file.hpp"
#include "common/json_yaml.hpp"
#include "common/process.hpp"
#include "recovery/backup.hpp"
#include "recovery/backup_manifest.hpp"
#include "recovery/restore.hpp"
#include "recovery/tree_manifest.hpp"
#include "stateroot/ostree_sysroot.hpp"
#include "tests/support/child_process.hpp"
#include "tests/support/etcd.hpp"
#include "tests/support/fixture.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/support/test_sysroot.hpp"

namespace lca::test {
namespace {

namespace fs = std::filesystem;
using recovery::ScanTree;

const fs::path kLcactl = fs::path(LCA_TEST_BINARY_DIR) / "agent/cli/lcactl";
const fs::path kWrapper = fs::path(LCA_TEST_SOURCE_DIR) / "scripts/upgrade-recovery.sh";

using Result = CmdResult;
using Etcd = EtcdServer;

Result RunWithEnv(const std::vector<std::string>& argv,
                  const std::map<std::string, std::string>& env) {
  return RunCmd(argv, env);
}

void SetXattr(const fs::path& p, const std::string& name, const std::string& value) {
  ASSERT_EQ(::lsetxattr(p.c_str(), name.c_str(), value.data(), value.size(), 0), 0) << p << name;
}

// A POSIX access ACL (the kernel's xattr format): user::rw-, user:1234:r--, group::r--,
// mask::r--, other::---.
std::string AclValue() {
  std::string v;
  auto u32 = [&](std::uint32_t x) {
    for (int i = 0; i < 4; ++i) v += static_cast<char>((x >> (8 * i)) & 0xff);
  };
  auto u16 = [&](std::uint16_t x) {
    v += static_cast<char>(x & 0xff);
    v += static_cast<char>(x >> 8);
  };
  u32(2);
  const std::vector<std::tuple<std::uint16_t, std::uint16_t, std::uint32_t>> entries = {
      {0x01, 6, 0xffffffff},
      {0x02, 4, 1234},
      {0x04, 4, 0xffffffff},
      {0x10, 4, 0xffffffff},
      {0x20, 0, 0xffffffff}};
  for (const auto& [tag, perm, id] : entries) {
    u16(tag);
    u16(perm);
    u32(id);
  }
  return v;
}

std::string Read(const fs::path& p) {
  std::ifstream in(p);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::string Join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += x + "\n";
  return s;
}

class RecoveryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ::setenv("OSTREE_SYSROOT_DEBUG", "mutable-deployments", 1);
    os_ = std::make_unique<TestSysroot>(tmp_ / "os");
    // A second deployment of the booted stateroot (the backup removes it) and one in another
    // stateroot, as an open IBU has (the backup must leave it alone).
    stateroot::OstreeSysroot sr(os_->sysroot());
    sr.Deploy(os_->stateroot(), os_->commit(), {"root=LABEL=root", "rw"}, "");
    sr.InitStateroot("rhcos_4_15_0");
    sr.Deploy("rhcos_4_15_0", os_->commit(), {"root=LABEL=root", "rw"}, "");
    MakeHost();
    etcd_ = std::make_unique<Etcd>(root_ / "var/lib/etcd", tmp_ / "etcd.log");
    etcd_->Put("k1", "v1");
    etcd_->Put("k2", "v2");
    peer_port_ = FreePort();
    WriteConfig();
  }

  void MakeHost() {
    const fs::path etc = root_ / "etc";
    WriteText(etc / "hosts", "127.0.0.1 localhost\n");
    WriteText(etc / "secret/key", "s3cret\n");
    fs::permissions(etc / "secret", fs::perms(0750));
    fs::permissions(etc / "secret/key", fs::perms(0600));
    ::chown((etc / "secret/key").c_str(), 1234, 5678);
    WriteText(etc / "xattr.conf", "labelled\n");
    SetXattr(etc / "xattr.conf", "user.lca.test", "value\x01\x02");
    WriteText(etc / "acl.conf", "acl\n");
    SetXattr(etc / "acl.conf", "system.posix_acl_access", AclValue());
    WriteText(etc / "suid", "#!/bin/sh\n");
    fs::permissions(etc / "suid", fs::perms(04755));
    fs::create_symlink("hosts", etc / "hosts.link");
    fs::create_symlink("/usr/local/bin/tool", etc / "abs.link");
    WriteText(etc / "hard/a", "same inode\n");
    fs::create_hard_link(etc / "hard/a", etc / "hard/b");
    WriteText(etc / "tmpfiles.d/lca.conf",
              "# comment\nd /etc/tmpdata 0755 root root -\nd /run/foo 0755 root root -\n");
    // Static pods: the newest revision of each is what the backup takes.
    const fs::path spr = etc / "kubernetes/static-pod-resources";
    for (const std::string pod :
         {"kube-apiserver-pod", "kube-controller-manager-pod", "kube-scheduler-pod", "etcd-pod"}) {
      WriteText(spr / (pod + "-3") / (pod + ".yaml"), "old " + pod + "\n");
      WriteText(spr / (pod + "-10") / (pod + ".yaml"), "rev 10 " + pod + "\n");
      WriteText(spr / (pod + "-10") / "configmaps/x/data", "cfg\n");
      WriteText(etc / "kubernetes/manifests" / (pod + ".yaml"), "rev 10 " + pod + "\n");
    }
    WriteText(spr / "bin/etcdctl", "binary\n");
    // MachineConfig files: under /etc (copied with /etc), outside (extras), behind a symlink.
    const Json cc = ParseJson(R"({"spec":{"config":{"storage":{"files":[
        {"path":"/etc/mc.conf"},{"path":"/var/mc/extra.conf"},{"path":"/opt/mc/tool"},
        {"path":"/var/lib/kubelet/skip"},{"path":"/var/mc/extra.conf"}]}}}})",
                              "currentconfig");
    WriteText(etc / "machine-config-daemon/currentconfig", cc.dump());
    WriteText(etc / "mc.conf", "mc\n");
    WriteText(root_ / "var/mc/extra.conf", "extra v1\n");
    SetXattr(root_ / "var/mc/extra.conf", "user.mc", "1");
    WriteText(root_ / "var/opt/mc/tool", "tool v1\n");
    fs::create_symlink("var/opt", root_ / "opt");
    // Post-restore hook (inside /etc, so it is part of the backup as it would be on a host).
    WriteText(
        etc / "lca/recovery-hooks.d/10-redeploy",
        "#!/bin/sh\necho \"$LCA_RECOVERY_DIR\" >> " + (tmp_ / "posthook.log").string() + "\n");
    fs::permissions(etc / "lca/recovery-hooks.d/10-redeploy", fs::perms(0755));

    WriteText(root_ / "usr/local/bin/tool", "#!/bin/sh\necho tool\n");
    fs::permissions(root_ / "usr/local/bin/tool", fs::perms(0755));
    WriteText(root_ / "usr/local/share/data", "data\n");
    WriteText(root_ / "var/lib/kubelet/config.json", "{\"auths\":{}}\n");
    fs::permissions(root_ / "var/lib/kubelet/config.json", fs::perms(0600));
    WriteText(root_ / "var/lib/kubelet/pods/p1/volume", "v\n");

    // The host-command hook: records every call; getenforce says Enforcing; crictl lists etcd
    // as running once crio has been restarted.
    WriteText(hook_,
              "#!/bin/bash\nlog=\"$(dirname \"$0\")/hook.log\"\necho \"$*\" >> \"$log\"\n"
              "case \"$1\" in\n"
              "  getenforce) echo Enforcing ;;\n"
              "  crictl) if grep -qx 'systemctl restart crio.service' \"$log\"; then\n"
              "      echo '{\"containers\":[{\"id\":\"new-etcd\",\"metadata\":{\"name\":"
              "\"etcd\"},\"state\":\"CONTAINER_RUNNING\"}]}'\n"
              "    else echo '{\"containers\":[]}'; fi ;;\n"
              "esac\n");
    fs::permissions(hook_, fs::perms(0755));
  }

  void WriteConfig(std::uint64_t margin = 0) {
    Json cfg = {{"root", root_.string()},
                {"sysroot", os_->sysroot().string()},
                {"procCmdline", os_->cmdline_file().string()},
                {"commandPrefix", {hook_.string()}},
                {"etcdEndpoints", {etcd_->endpoint()}},
                {"etcdName", "default"},
                {"etcdPeerUrl", "http://127.0.0.1:" + std::to_string(peer_port_)},
                {"backupSpaceMarginBytes", margin},
                {"backupRecoveryScript", kWrapper.string()},
                {"restoreWaitContainers", {"etcd"}},
                {"restorePollInterval", "50ms"},
                {"restoreWaitTimeout", "10s"}};
    WriteFileAtomic(config_, cfg.dump(2), 0600);
  }

  std::map<std::string, std::string> Env(const std::string& failpoints = "") const {
    std::map<std::string, std::string> env = {{"LCA_RECOVERY_CONFIG", config_.string()},
                                              {"LCACTL", kLcactl.string()},
                                              {"LCA_FAILPOINTS", failpoints}};
    return env;
  }

  Result Lcactl(const std::vector<std::string>& args, const std::string& failpoints = "") const {
    std::vector<std::string> argv = {kLcactl.string(), "recovery"};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunWithEnv(argv, Env(failpoints));
  }
  Result Backup(const std::string& failpoints = "") const {
    return Lcactl({"backup", "--dir", "/var/recovery"}, failpoints);
  }
  Result Restore(const std::vector<std::string>& flags, const std::string& failpoints = "") const {
    std::vector<std::string> args = {"restore", "--dir", "/var/recovery"};
    args.insert(args.end(), flags.begin(), flags.end());
    return Lcactl(args, failpoints);
  }
  Result Wrapper(const std::vector<std::string>& flags) const {
    std::vector<std::string> argv = {kWrapper.string()};
    argv.insert(argv.end(), flags.begin(), flags.end());
    return RunWithEnv(argv, Env());
  }

  // What an upgrade leaves behind: changed, added and removed files in every restored tree.
  void ChangeHost() {
    const fs::path etc = root_ / "etc";
    WriteText(etc / "hosts", "10.0.0.1 upgraded\n");
    fs::permissions(etc / "secret/key", fs::perms(0644));
    ::chown((etc / "secret/key").c_str(), 0, 0);
    ::lremovexattr((etc / "xattr.conf").c_str(), "user.lca.test");
    ::lremovexattr((etc / "acl.conf").c_str(), "system.posix_acl_access");
    fs::remove(etc / "hosts.link");
    fs::create_symlink("elsewhere", etc / "hosts.link");
    fs::remove(etc / "hard/b");
    WriteText(etc / "hard/b", "same inode\n");
    WriteText(etc / "new.conf", "added by the upgrade\n");
    fs::remove_all(etc / "secret2");
    WriteText(etc / "tmpdata/runtime", "excluded: must survive\n");
    WriteText(etc / "kubernetes/manifests/etcd-pod.yaml", "rev 11 etcd-pod\n");
    WriteText(root_ / "usr/local/bin/tool", "#!/bin/sh\necho new tool\n");
    WriteText(root_ / "usr/local/share/new", "new\n");
    WriteText(root_ / "var/lib/kubelet/config.json", "{\"changed\":true}\n");
    fs::remove_all(root_ / "var/lib/kubelet/pods/p1");
    WriteText(root_ / "var/mc/extra.conf", "extra v2\n");
    WriteText(root_ / "var/opt/mc/tool", "tool v2\n");
  }

  std::vector<std::string> HookCalls() const {
    std::vector<std::string> out;
    std::ifstream in(tmp_ / "hook.log");
    for (std::string l; std::getline(in, l);) out.push_back(l);
    return out;
  }

  fs::path backup_dir() const { return root_ / "var/recovery"; }

  TempDir tmp_{"lca-recovery"};
  fs::path root_ = tmp_ / "root";
  fs::path hook_ = tmp_ / "hook";
  fs::path config_ = tmp_ / "recovery.json";
  std::unique_ptr<TestSysroot> os_;
  std::unique_ptr<Etcd> etcd_;
  int peer_port_ = 0;
};

TEST_F(RecoveryTest, BackupPhase1RebootResumeRestoresTreesAndEtcd) {
  const recovery::PathFilter exclude({"tmpdata", ".updated", "kubernetes/manifests"});
  const auto etc_before = ScanTree(root_ / "etc", &exclude);
  const auto local_before = ScanTree(root_ / "usr/local");
  const auto kubelet_before = ScanTree(root_ / "var/lib/kubelet");

  Result r = Wrapper({"--take-backup"});
  ASSERT_EQ(r.code, 0) << r.out << r.err;

  // Layout (TALM's names) and the manifest.
  const fs::path b = backup_dir();
  EXPECT_EQ(fs::status(b).permissions(), fs::perms(0700));
  for (const auto* n : {"cluster", "etc", "local", "kubelet", "etc.exclude.list", "extras.tgz",
                        "upgrade-recovery.sh", "manifest.json"}) {
    EXPECT_TRUE(fs::exists(b / n)) << n;
  }
  EXPECT_EQ(Read(b / "etc.exclude.list"), "tmpdata\n.updated\nkubernetes/manifests\n");
  const auto m = recovery::LoadBackup(b);
  recovery::VerifyBackup(b, m);
  EXPECT_EQ(m.static_pod_dirs,
            (std::vector<std::string>{"kube-apiserver-pod-10", "kube-controller-manager-pod-10",
                                      "kube-scheduler-pod-10", "etcd-pod-10"}));
  EXPECT_EQ(m.extras, (std::vector<std::string>{"/var/mc/extra.conf", "/opt/mc/tool"}));
  const std::string tar_list = MustRun({"tar", "tzf", (b / "extras.tgz").string()});
  EXPECT_NE(tar_list.find("var/mc/extra.conf"), std::string::npos) << tar_list;
  EXPECT_NE(tar_list.find("var/opt/mc/tool"), std::string::npos) << tar_list;
  const std::string spods = MustRun({"tar", "tzf", (b / m.static_pods).string()});
  EXPECT_NE(spods.find("static-pod-resources/etcd-pod-10/etcd-pod.yaml"), std::string::npos);
  EXPECT_EQ(spods.find("-3/"), std::string::npos) << spods;
  EXPECT_EQ(spods.find("bin/"), std::string::npos) << spods;

  // ostree: the booted deployment pinned, the other one of its stateroot gone, the other
  // stateroot's untouched.
  {
    stateroot::OstreeSysroot sr(os_->sysroot());
    const auto deps = sr.Deployments();
    ASSERT_EQ(deps.size(), 2u);
    int rhcos = 0;
    for (const auto& d : deps) {
      if (d.stateroot == os_->stateroot()) {
        ++rhcos;
        EXPECT_TRUE(d.pinned);
        EXPECT_EQ(d.checksum, m.checksum);
      } else {
        EXPECT_EQ(d.stateroot, "rhcos_4_15_0");
      }
    }
    EXPECT_EQ(rhcos, 1);
  }

  // The upgrade happens.
  etcd_->Put("k1", "changed");
  etcd_->Put("k3", "new");
  etcd_->Stop();
  ChangeHost();

  // Phase 1 through the wrapper.
  r = Wrapper({});
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_NE(r.err.find("Please reboot now with 'systemctl reboot', then run '" + kWrapper.string() +
                       " --resume'"),
            std::string::npos)
      << r.err;
  EXPECT_EQ(Read(b / "progress"), "started\nrestore_files\n");
  EXPECT_TRUE(CompareTrees(etc_before, ScanTree(root_ / "etc", &exclude), &exclude).empty());
  EXPECT_TRUE(CompareTrees(local_before, ScanTree(root_ / "usr/local")).empty());
  EXPECT_EQ(Read(root_ / "var/mc/extra.conf"), "extra v1\n");
  EXPECT_EQ(Read(root_ / "var/opt/mc/tool"), "tool v1\n");
  EXPECT_EQ(Read(root_ / "etc/tmpdata/runtime"), "excluded: must survive\n");
  // Not yet: kubelet's files come back after the reboot.
  EXPECT_EQ(Read(root_ / "var/lib/kubelet/config.json"), "{\"changed\":true}\n");
  EXPECT_EQ(Join(HookCalls()),
            "getenforce\nsetenforce 0\nsystemctl stop kubelet.service\ncrictl rmp -fa\n"
            "systemctl stop crio.service\ncrio wipe -f\nsystemctl daemon-reload\n"
            "systemctl disable kubelet.service\nsetenforce 1\n");

  // After the "reboot", a plain run is refused; --resume does phases 2 and 3.
  r = Wrapper({});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.out,
            "Restore has already started. Use --restart option to restart, or --step to "
            "resume\n");
  r = Wrapper({"--resume"});
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_EQ(r.out, "Recovery complete\n");
  EXPECT_FALSE(fs::exists(b / "progress"));
  EXPECT_FALSE(fs::exists(b / "restore-journal.json"));
  EXPECT_EQ(Read(tmp_ / "posthook.log"), b.string() + "\n");

  // The trees match what was backed up (modes, owners, xattrs and ACLs, symlinks, hardlinks).
  for (const auto& d : CompareTrees(etc_before, ScanTree(root_ / "etc", &exclude), &exclude)) {
    ADD_FAILURE() << d;
  }
  EXPECT_TRUE(CompareTrees(local_before, ScanTree(root_ / "usr/local")).empty());
  EXPECT_TRUE(CompareTrees(kubelet_before, ScanTree(root_ / "var/lib/kubelet")).empty());
  EXPECT_EQ(Read(root_ / "etc/kubernetes/manifests/etcd-pod.yaml"), "rev 10 etcd-pod\n");
  EXPECT_TRUE(fs::exists(root_ / "var/lib/etcd-backup/member"));
  const auto calls = HookCalls();
  EXPECT_EQ(calls.back(), "setenforce 1");

  // The restored data dir, started by a real etcd, has the keys as they were.
  Etcd restored(root_ / "var/lib/etcd", tmp_ / "etcd-restored.log", peer_port_);
  EXPECT_EQ(restored.Get("k1"), "v1");
  EXPECT_EQ(restored.Get("k2"), "v2");
  EXPECT_EQ(restored.Get("k3"), "");
}

TEST_F(RecoveryTest, RefusesBackupWithoutSpaceAndKeepsTheOldOne) {
  ASSERT_EQ(Backup().code, 0);
  const std::string manifest = Read(backup_dir() / "manifest.json");
  WriteConfig(std::uint64_t{1} << 60);
  const Result r = Backup();
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("insufficient disk space to trigger backup"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("the previous backup there"), std::string::npos) << r.err;
  EXPECT_EQ(Read(backup_dir() / "manifest.json"), manifest);
  recovery::VerifyBackup(backup_dir(), recovery::LoadBackup(backup_dir()));
  EXPECT_FALSE(fs::exists(backup_dir() / ".backup-staging"));
}

TEST_F(RecoveryTest, RefusesBackupWhileARestoreIsInProgress) {
  ASSERT_EQ(Backup().code, 0);
  WriteText(backup_dir() / "progress", "started\n");
  const Result r = Wrapper({"--take-backup"});
  EXPECT_EQ(r.code, 3);
  EXPECT_NE(r.err.find("Cannot take backup. Recovery is currently in progress"), std::string::npos)
      << r.err;
}

TEST_F(RecoveryTest, RefusesUnpinnedMissingAndCorruptedBackups) {
  // Missing content.
  Result r = Restore({});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("Required backup content not found in " + backup_dir().string()),
            std::string::npos)
      << r.err;

  ASSERT_EQ(Backup().code, 0);
  // Booted deployment not pinned: refused, and --force goes on.
  {
    stateroot::OstreeSysroot sr(os_->sysroot());
    for (const auto& d : sr.Deployments()) {
      if (d.stateroot == os_->stateroot()) sr.SetPinned(d, false);
    }
  }
  r = Restore({});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.out.find("Active ostree deployment is not pinned and should be rolled back."),
            std::string::npos)
      << r.out << r.err;
  EXPECT_FALSE(fs::exists(backup_dir() / "progress"));

  // A corrupted artifact: refused before anything on the host changes.
  {
    std::fstream f(backup_dir() / recovery::LoadBackup(backup_dir()).etcd_snapshot,
                   std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(100);
    f.put('\x42');
  }
  WriteText(root_ / "etc/hosts", "changed\n");
  r = Restore({"--force"});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("sha256 mismatch"), std::string::npos) << r.err;
  EXPECT_EQ(Read(root_ / "etc/hosts"), "changed\n");
  EXPECT_TRUE(HookCalls().empty());

  // A damaged tree copy is named too.
  ASSERT_EQ(Backup().code, 0);
  WriteText(backup_dir() / "etc/hosts", "tampered\n");
  r = Restore({"--force"});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("etc/hosts: content differs"), std::string::npos) << r.err;

  // Missing piece of a backup.
  ASSERT_EQ(Backup().code, 0);
  fs::remove_all(backup_dir() / "kubelet");
  r = Restore({"--force"});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("missing kubelet/"), std::string::npos) << r.err;
}

// A step that fails leaves SELinux as it was, and --resume retries from that step without
// redoing the ones already done (the crio wipe is not repeated).
TEST_F(RecoveryTest, FailedStepSetsSelinuxBackAndResumeSkipsFinishedSteps) {
  ASSERT_EQ(Backup().code, 0);
  ChangeHost();
  Result r = Restore({}, "recovery.restore.files.etc=error");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("files.etc: failpoint recovery.restore.files.etc"), std::string::npos)
      << r.err;
  EXPECT_EQ(Join(HookCalls()),
            "getenforce\nsetenforce 0\nsystemctl stop kubelet.service\ncrictl rmp -fa\n"
            "systemctl stop crio.service\ncrio wipe -f\nsetenforce 1\n");
  fs::remove(tmp_ / "hook.log");
  r = Restore({"--resume"});
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_EQ(Join(HookCalls()),
            "setenforce 0\nsystemctl daemon-reload\nsystemctl disable kubelet.service\n"
            "setenforce 1\n");
  EXPECT_EQ(Read(root_ / "etc/hosts"), "127.0.0.1 localhost\n");
}

// A kill at every restore step, then --resume (again after the "reboot"), ends where an
// uninterrupted restore does, with SELinux enforcing again.
TEST_F(RecoveryTest, KillAtEveryRestoreStepThenResumeConverges) {
  ASSERT_EQ(Backup().code, 0);
  const recovery::PathFilter exclude({"tmpdata", ".updated", "kubernetes/manifests"});
  const auto m = recovery::LoadBackup(backup_dir());
  etcd_->Stop();
  // Every row of the restore's step tables (recovery/restore.cpp).
  const std::vector<std::string> steps = recovery::RestoreStepNames();
  for (const auto& step : steps) {
    SCOPED_TRACE(step);
    ChangeHost();
    fs::remove(tmp_ / "hook.log");
    const std::string fp = "recovery.restore." + step + "=crash";
    const bool phase1 = step.rfind("files.", 0) == 0;
    Result r;
    if (phase1) {
      r = Restore({"--restart"}, fp);
    } else {
      ASSERT_EQ(Restore({"--restart"}).code, 0);
      r = Restore({"--resume"}, fp);
    }
    ASSERT_EQ(r.code, 137) << r.out << r.err;
    // Until it says complete: phase 1 ends with the reboot prompt, the next --resume goes on.
    for (int i = 0; i < 3 && fs::exists(backup_dir() / "progress"); ++i) {
      r = Restore({"--resume"});
      ASSERT_EQ(r.code, 0) << r.out << r.err;
    }
    EXPECT_FALSE(fs::exists(backup_dir() / "progress"));
    for (const auto& d :
         CompareTrees(m.trees.at("etc"), ScanTree(root_ / "etc", &exclude), &exclude)) {
      ADD_FAILURE() << d;
    }
    EXPECT_TRUE(CompareTrees(m.trees.at("local"), ScanTree(root_ / "usr/local")).empty());
    EXPECT_TRUE(CompareTrees(m.trees.at("kubelet"), ScanTree(root_ / "var/lib/kubelet")).empty());
    EXPECT_EQ(Read(root_ / "var/mc/extra.conf"), "extra v1\n");
    EXPECT_TRUE(fs::exists(root_ / "var/lib/etcd/member/snap/db"));
    EXPECT_EQ(HookCalls().back(), "setenforce 1");
  }
}

// A kill at every backup step leaves the previous backup whole, or (during the swap) is
// finished by the next run; either way the next backup is complete and verifies.
TEST_F(RecoveryTest, KillAtEveryBackupStepThenRerunConverges) {
  ASSERT_EQ(Backup().code, 0);
  // Every row of the backup's step table (recovery/backup.cpp), then inside the swap.
  std::vector<std::string> points = recovery::BackupStepNames();
  points.insert(points.end(), {"swap-entry", "2*swap-entry"});
  for (const std::string& step : points) {
    SCOPED_TRACE(step);
    const std::string name = step.rfind("2*", 0) == 0 ? step.substr(2) : step;
    const std::string action = step.rfind("2*", 0) == 0 ? "2*crash" : "crash";
    const std::string old_manifest = Read(backup_dir() / "manifest.json");
    WriteText(root_ / "etc/hosts", "rev " + step + "\n");
    Result r = Backup("recovery.backup." + name + "=" + action);
    ASSERT_EQ(r.code, 137) << r.out << r.err;
    if (name != "swap-entry") {
      EXPECT_EQ(Read(backup_dir() / "manifest.json"), old_manifest);
      recovery::VerifyBackup(backup_dir(), recovery::LoadBackup(backup_dir()));
    }
    r = Backup();
    ASSERT_EQ(r.code, 0) << r.out << r.err;
    recovery::VerifyBackup(backup_dir(), recovery::LoadBackup(backup_dir()));
    EXPECT_EQ(Read(backup_dir() / "etc/hosts"), "rev " + step + "\n");
    EXPECT_FALSE(fs::exists(backup_dir() / ".backup-staging"));
    EXPECT_FALSE(fs::exists(backup_dir() / ".backup-old"));
    EXPECT_FALSE(fs::exists(backup_dir() / ".backup-swap"));
  }
}

}  // namespace
}  // namespace lca::test
