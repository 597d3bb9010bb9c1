// recovery/ pieces on temp trees: the copy and its comparison (xattrs, ACL xattrs, owners,
// modes, symlinks, hardlinks, excludes, deletion), TALM's space rule, the exclude list, the
// MachineConfig extras filter and path resolution inside a root.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "common/error.hpp"
#include "recovery/backup_content.hpp"
#include "recovery/backup_manifest.hpp"
#include "recovery/tree_manifest.hpp"
#include "recovery/tree_sync.hpp"
#include "tests/support/fixture.hpp"
#include "tests/support/temp_dir.hpp"

namespace lca::recovery {
namespace {

namespace fs = std::filesystem;
using test::TempDir;
using test::WriteText;

std::string Read(const fs::path& p) {
  std::ifstream in(p);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void MakeTree(const fs::path& t) {
  WriteText(t / "a.conf", "alpha\n");
  ::lsetxattr((t / "a.conf").c_str(), "user.k", "v", 1, 0);
  WriteText(t / "sub/owned", "x\n");
  ::chown((t / "sub/owned").c_str(), 4321, 8765);
  fs::permissions(t / "sub", fs::perms(0710));
  WriteText(t / "suid", "s\n");
  fs::permissions(t / "suid", fs::perms(04750));
  fs::create_symlink("../outside/target", t / "sub/link");
  WriteText(t / "h1", "hard\n");
  fs::create_hard_link(t / "h1", t / "sub/h2");
  ::mkfifo((t / "fifo").c_str(), 0640);
}

TEST(RecoveryTreeTest, CopyKeepsEverythingAndCompares) {
  TempDir tmp;
  MakeTree(tmp / "src");
  const auto st = SyncTree(tmp / "src", tmp / "dst");
  EXPECT_GT(st.written, 0u);
  EXPECT_TRUE(CompareTrees(ScanTree(tmp / "src"), ScanTree(tmp / "dst")).empty());
  struct stat a {
  }, b{};
  ::lstat((tmp / "dst/h1").c_str(), &a);
  ::lstat((tmp / "dst/sub/h2").c_str(), &b);
  EXPECT_EQ(a.st_ino, b.st_ino);
  EXPECT_EQ(fs::read_symlink(tmp / "dst/sub/link"), "../outside/target");
  EXPECT_EQ(fs::status(tmp / "dst/suid").permissions(), fs::perms(04750));
  // A second pass changes nothing and rewrites nothing.
  const auto again = SyncTree(tmp / "src", tmp / "dst");
  EXPECT_EQ(again.written, 0u);
  EXPECT_EQ(again.bytes, 0u);
}

TEST(RecoveryTreeTest, RestoreRevertsChangesButLeavesExcludedPaths) {
  TempDir tmp;
  MakeTree(tmp / "src");
  SyncTree(tmp / "src", tmp / "dst");
  const auto want = ScanTree(tmp / "src");
  WriteText(tmp / "dst/a.conf", "changed\n");
  ::lremovexattr((tmp / "dst/a.conf").c_str(), "user.k");
  ::lsetxattr((tmp / "dst/sub/owned").c_str(), "user.extra", "1", 1, 0);
  fs::permissions(tmp / "dst/suid", fs::perms(0644));
  fs::remove(tmp / "dst/sub/h2");
  WriteText(tmp / "dst/sub/h2", "hard\n");  // same content, no longer the same inode
  WriteText(tmp / "dst/new/file", "extra\n");
  WriteText(tmp / "dst/keep/state", "runtime\n");
  const auto diffs = CompareTrees(want, ScanTree(tmp / "dst"));
  EXPECT_FALSE(diffs.empty());

  const PathFilter exclude({"keep"});
  SyncTree(tmp / "src", tmp / "dst", SyncOptions{.exclude = &exclude});
  for (const auto& d : CompareTrees(want, ScanTree(tmp / "dst", &exclude), &exclude)) {
    ADD_FAILURE() << d;
  }
  EXPECT_EQ(Read(tmp / "dst/keep/state"), "runtime\n");
  EXPECT_FALSE(fs::exists(tmp / "dst/new"));
}

TEST(RecoveryTreeTest, CompareNamesTheDifference) {
  TempDir tmp;
  WriteText(tmp / "a/f", "1\n");
  WriteText(tmp / "b/f", "22\n");
  fs::permissions(tmp / "b/f", fs::perms(0600));
  WriteText(tmp / "b/g", "\n");
  const auto d = CompareTrees(ScanTree(tmp / "a"), ScanTree(tmp / "b"));
  ASSERT_EQ(d.size(), 2u);
  EXPECT_EQ(d[0], "f: content differs (size 3, backup has 2); mode 0600, backup has 0644");
  EXPECT_EQ(d[1], "g: not in the backup");
  // JSON round trip keeps every field.
  const auto entries = ScanTree(tmp / "b");
  EXPECT_EQ(TreeFromJson(TreeToJson(entries), "t"), entries);
}

TEST(RecoveryTreeTest, PathFilterIsAnchoredAndCoversSubtrees) {
  const PathFilter f = PathFilter::FromList("# c\n/etc-like/\nkubernetes/manifests\n*.tmp\n\n");
  EXPECT_TRUE(f.Excluded("kubernetes/manifests"));
  EXPECT_TRUE(f.Excluded("kubernetes/manifests/etcd-pod.yaml"));
  EXPECT_FALSE(f.Excluded("kubernetes/static-pod-resources"));
  EXPECT_FALSE(f.Excluded("x/kubernetes/manifests"));
  EXPECT_TRUE(f.Excluded("etc-like/x"));
  EXPECT_TRUE(f.Excluded("a.tmp"));
  EXPECT_FALSE(f.Excluded("d/a.tmp"));  // FNM_PATHNAME: * does not cross /
}

TEST(RecoveryBackupContentTest, SpaceRuleIsTalms) {
  // reference §2.3's table: free > estimated + 10 GiB, strictly.
  EXPECT_TRUE(EnoughSpace(80 * kGiB, 100 * kGiB, kDefaultSpaceMargin));
  EXPECT_FALSE(EnoughSpace(70 * kGiB, 75 * kGiB, kDefaultSpaceMargin));
  EXPECT_FALSE(EnoughSpace(70 * kGiB, 70 * kGiB, kDefaultSpaceMargin));
  EXPECT_FALSE(EnoughSpace(790 * kGiB, 800 * kGiB, kDefaultSpaceMargin));
  EXPECT_EQ(HumanSize(512), "512 B");
  EXPECT_EQ(HumanSize(3 * kGiB / 2), "1.5 GiB");
  EXPECT_EQ(HumanSize(std::uint64_t{2} << 50), "2.0 PiB");
}

TEST(RecoveryBackupContentTest, ExcludeListExtrasAndStaticPods) {
  TempDir tmp;
  HostConfig host;
  host.root = tmp.path();
  WriteText(tmp / "etc/tmpfiles.d/b.conf", "L /etc/b-link - - - - /x # trailing comment\n");
  WriteText(tmp / "etc/tmpfiles.d/a.conf",
            "# only /etc paths\nd /etc/a 0755 - - -\nd /var/x 0755 - - -\nd /etc/a 0755\n");
  EXPECT_EQ(EtcExcludeList(host), "a\nb-link\n.updated\nkubernetes/manifests\n");

  EXPECT_TRUE(ManagedExtraFiles(host).empty());  // no currentconfig: not an OpenShift node
  WriteText(tmp / "etc/machine-config-daemon/currentconfig",
            R"({"spec":{"config":{"storage":{"files":[{"path":"/etc/x"},{"path":"/usr/local/y"},
            {"path":"/var/lib/kubelet/z"},{"path":"/srv/var/lib/kubelet/kept"},{"path":"/a"},
            {"path":"/a"},{"path":""}]}}}})");
  EXPECT_EQ(ManagedExtraFiles(host), (std::vector<std::string>{"/srv/var/lib/kubelet/kept", "/a"}));
  WriteText(tmp / "etc/machine-config-daemon/currentconfig",
            R"({"spec":{"config":{"storage":{"files":[{"path":"/../x"}]}}}})");
  try {
    ManagedExtraFiles(host);
    ADD_FAILURE() << "accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("storage.files[0].path \"/../x\""), std::string::npos)
        << e.what();
  }

  fs::create_directories(tmp / "var/opt");
  fs::create_symlink("/var/opt", tmp / "opt");
  fs::create_symlink("../var", tmp / "rel");
  EXPECT_EQ(ResolveInRoot(tmp.path(), "/opt/mc/tool"), "var/opt/mc/tool");
  EXPECT_EQ(ResolveInRoot(tmp.path(), "/rel/opt/f"), "var/opt/f");
  EXPECT_EQ(ResolveInRoot(tmp.path(), "/opt"), "opt");  // the last component is not followed

  const fs::path spr = tmp / "etc/kubernetes/static-pod-resources";
  for (const std::string p :
       {"kube-apiserver-pod", "kube-controller-manager-pod", "kube-scheduler-pod", "etcd-pod"}) {
    fs::create_directories(spr / (p + "-9"));
    fs::create_directories(spr / (p + "-12"));
  }
  fs::create_directories(spr / "etcd-pod-x");
  EXPECT_EQ(NewestStaticPodDirs(host),
            (std::vector<std::string>{"kube-apiserver-pod-12", "kube-controller-manager-pod-12",
                                      "kube-scheduler-pod-12", "etcd-pod-12"}));
  fs::remove_all(spr / "etcd-pod-9");
  fs::remove_all(spr / "etcd-pod-12");
  EXPECT_THROW(NewestStaticPodDirs(host), Error);
}

}  // namespace
}  // namespace lca::recovery
