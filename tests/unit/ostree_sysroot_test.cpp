// Tests for the libostree adapter against real, throwaway sysroots. The ostree CLI builds the
// fixtures (a source repo once per suite, a fresh sysroot with one booted-looking deployment per
// test); everything under test goes through OstreeSysroot only.
#include "stateroot/ostree_sysroot.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "common/process.hpp"
#include "stateroot/boot_cmdline.hpp"
#include "tests/support/fixture.hpp"

namespace lca::stateroot {
namespace {

namespace fs = std::filesystem;

// ---------------------------------------------------------------------------------------------
// Helpers

using test::MustRun;
using test::RunArgv;
using test::RunResult;
using test::Trim;
using test::WriteText;

std::string ReadText(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct BlsEntry {
  fs::path file;
  int version = -1;
  std::string options;
};

// The entries in the order a BLS bootloader offers them: highest `version` first, so [0] is
// what boots next.
std::vector<BlsEntry> BlsEntries(const fs::path& sysroot) {
  std::vector<BlsEntry> out;
  for (const auto& e : fs::directory_iterator(sysroot / "boot/loader/entries")) {
    BlsEntry b;
    b.file = e.path();
    std::ifstream in(e.path());
    std::string line;
    while (std::getline(in, line)) {
      if (line.rfind("options ", 0) == 0) b.options = Trim(line.substr(8));
      if (line.rfind("version ", 0) == 0) b.version = std::stoi(line.substr(8));
    }
    out.push_back(b);
  }
  std::sort(out.begin(), out.end(),
            [](const BlsEntry& a, const BlsEntry& b) { return a.version > b.version; });
  return out;
}

// Every object file of a repo, relative to its objects/ directory.
std::vector<fs::path> ObjectFiles(const fs::path& repo) {
  std::vector<fs::path> out;
  for (const auto& e : fs::recursive_directory_iterator(repo / "objects")) {
    if (e.is_regular_file() || e.is_symlink()) {
      out.push_back(fs::relative(e.path(), repo / "objects"));
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

// Exited children of this process nobody waited for.
int ZombieChildren() {
  int n = 0;
  for (const auto& e : fs::directory_iterator("/proc")) {
    std::ifstream in(e.path() / "stat");
    std::string line;
    if (!std::getline(in, line)) continue;
    const auto close = line.rfind(')');
    char state = 0;
    int ppid = 0;
    if (close != std::string::npos &&
        std::sscanf(line.c_str() + close + 1, " %c %d", &state, &ppid) == 2 && ppid == ::getpid() &&
        state == 'Z') {
      ++n;
    }
  }
  return n;
}

Deployment Dep(int index, const std::string& stateroot, const std::string& checksum,
               int serial = 0) {
  Deployment d;
  d.index = index;
  d.stateroot = stateroot;
  d.checksum = checksum;
  d.serial = serial;
  return d;
}

template <class F>
Error ExpectError(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e;
  }
  ADD_FAILURE() << "no lca::Error thrown";
  return Error(Errc::kInternal, "no error");
}

// ---------------------------------------------------------------------------------------------
// Pure functions

TEST(RollbackTargetTest, Table) {
  const std::string a(64, 'a'), b(64, 'b'), c(64, 'c');
  const BootedDeployment booted{"rhcos", a, 0, {}};
  struct Case {
    const char* name;
    std::vector<Deployment> deps;
    std::optional<std::string> want;  // "stateroot checksum"
  };
  const std::vector<Case> cases = {
      {"no deployments", {}, std::nullopt},
      {"only the booted one", {Dep(0, "rhcos", a)}, std::nullopt},
      {"booted default, new stateroot next",
       {Dep(0, "rhcos", a), Dep(1, "rhcos_4.15.2", b)},
       "rhcos_4.15.2 " + b},
      {"new stateroot is default (after set-default)",
       {Dep(0, "rhcos_4.15.2", b), Dep(1, "rhcos", a)},
       "rhcos_4.15.2 " + b},
      {"booted stateroot has an extra deployment",
       {Dep(0, "rhcos", a), Dep(1, "rhcos", c)},
       std::nullopt},
      {"extra deployment in booted stateroot comes first",
       {Dep(0, "rhcos", c), Dep(1, "rhcos", a), Dep(2, "rhcos_4.15.2", b)},
       "rhcos_4.15.2 " + b},
      {"two other stateroots: the first one",
       {Dep(0, "rhcos", a), Dep(1, "rhcos_x", c), Dep(2, "rhcos_4.15.2", b)},
       "rhcos_x " + c},
  };
  for (const auto& tc : cases) {
    const auto got = RollbackTarget(tc.deps, booted);
    if (!tc.want) {
      EXPECT_FALSE(got.has_value()) << tc.name << ": got " << got->stateroot;
    } else {
      ASSERT_TRUE(got.has_value()) << tc.name;
      EXPECT_EQ(got->stateroot + " " + got->checksum, *tc.want) << tc.name;
    }
  }
}

TEST(StaterootsToRemoveTest, Table) {
  const std::string a(64, 'a'), b(64, 'b'), c(64, 'c');
  struct Case {
    const char* name;
    std::vector<Deployment> deps;
    std::vector<std::string> dirs;
    std::vector<std::string> want;
  };
  const std::vector<Case> cases = {
      {"no deployments, no dirs", {}, {}, {}},
      {"no deployments, only the booted dir", {}, {"rhcos"}, {}},
      {"one booted", {Dep(0, "rhcos", a)}, {"rhcos"}, {}},
      {"two stateroots",
       {Dep(0, "rhcos", a), Dep(1, "rhcos_4.15.2", b)},
       {"rhcos", "rhcos_4.15.2"},
       {"rhcos_4.15.2"}},
      {"after set-default the booted one is second",
       {Dep(0, "rhcos_4.15.2", b), Dep(1, "rhcos", a)},
       {"rhcos", "rhcos_4.15.2"},
       {"rhcos_4.15.2"}},
      {"booted stateroot with an extra deployment",
       {Dep(0, "rhcos", a), Dep(1, "rhcos", c)},
       {"rhcos"},
       {}},
      {"half-created dir", {Dep(0, "rhcos", a)}, {"rhcos", "rhcos_4.15.2"}, {"rhcos_4.15.2"}},
      {"deployed stateroots in boot order, then half-created dirs sorted",
       {Dep(0, "rhcos", a), Dep(1, "z_other", b), Dep(2, "rhcos_4.15.2", c),
        Dep(3, "z_other", a, 1)},
       {"rhcos", "rhcos_4.16.0", "rhcos_4.15.2", "a_half", "z_other"},
       {"z_other", "rhcos_4.15.2", "a_half", "rhcos_4.16.0"}},
  };
  for (const auto& tc : cases) {
    EXPECT_EQ(StaterootsToRemove(tc.deps, tc.dirs, "rhcos"), tc.want) << tc.name;
  }
}

TEST(StaterootsToRemoveTest, UnknownBootedStaterootIsRefused) {
  const Error e = ExpectError([] { StaterootsToRemove({Dep(0, "rhcos", "x")}, {"rhcos"}, ""); });
  EXPECT_EQ(e.code(), Errc::kInvalid);
}

// ---------------------------------------------------------------------------------------------
// A real sysroot

class OstreeSysrootTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    // Deployments stay mutable, so temp dirs can simply be removed.
    ::setenv("OSTREE_SYSROOT_DEBUG", "mutable-deployments", 1);
    if (RunArgv({"ostree", "--version"}).exit_code != 0) {
      skip_reason_ = "the ostree CLI is not installed";
      return;
    }
    if (::geteuid() != 0) {
      // bare repos store real ownership, and admin deploy chowns: both need root.
      skip_reason_ = "needs root (bare ostree repos)";
      return;
    }
    try {
      BuildRepos();
    } catch (const std::exception& e) {
      setup_error_ = e.what();
    }
  }

  static void TearDownTestSuite() {
    if (root_.empty()) return;
    std::error_code ec;
    fs::remove_all(root_, ec);
    root_.clear();
  }

  // One source repo with two bootable commits on one branch, and a "seed" repo that holds only
  // the second, the way an IBU seed brings a newer release.
  static void BuildRepos() {
    std::string tmpl = (fs::temp_directory_path() / "ostree_sysroot_test.XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    root_ = tmpl;
    const fs::path tree = root_ / "tree";
    src_ = root_ / "src";
    seed_ = root_ / "seed";
    // bare, like a sysroot repo and like the repo in a seed's ostree.tgz: needed for hardlinks.
    MustRun({"ostree", "--repo=" + src_.string(), "init", "--mode=bare"});
    WriteText(tree / "usr/lib/modules/6.1.0/vmlinuz", "kernel 6.1.0\n");
    WriteText(tree / "usr/lib/modules/6.1.0/initramfs.img", "initramfs 6.1.0\n");
    WriteText(tree / "usr/bin/sh", "#!/not/really/a/shell\n");
    // ostree 2022.7 deploy needs ID or PRETTY_NAME to title the boot entry.
    WriteText(tree / "usr/etc/os-release", "ID=rhcos\nPRETTY_NAME=\"RHCOS test\"\n");
    WriteText(tree / "usr/share/release", "4.14.1\n");
    csum1_ = Commit(tree, "4.14.1", "2024-01-01 00:00:00 +0000");
    // A new kernel (so a new bootcsum) and a new file: content only the second commit has.
    WriteText(tree / "usr/lib/modules/6.1.0/vmlinuz", "kernel 6.1.0 build 2\n");
    WriteText(tree / "usr/share/release", "4.15.2\n");
    WriteText(tree / "usr/share/only-in-4.15.2", "new content\n");
    csum2_ = Commit(tree, "4.15.2", "2024-02-01 00:00:00 +0000");

    MustRun({"ostree", "--repo=" + seed_.string(), "init", "--mode=bare"});
    MustRun({"ostree", "--repo=" + seed_.string(), "pull-local", src_.string(), csum2_});
    MustRun({"ostree", "--repo=" + seed_.string(), "refs", "--create=rhcos/4.15.2", csum2_});
  }

  static std::string Commit(const fs::path& tree, const std::string& version,
                            const std::string& timestamp) {
    return Trim(
        MustRun({"ostree", "--repo=" + src_.string(), "commit", "--bootable", "--branch=rhcos",
                 "--tree=dir=" + tree.string(), "--add-metadata-string=version=" + version,
                 "--timestamp=" + timestamp, "--subject=" + version}));
  }

  // A fresh sysroot with 4.14.1 deployed in stateroot rhcos, built with the CLI.
  void SetUp() override {
    if (!skip_reason_.empty()) GTEST_SKIP() << skip_reason_;
    ASSERT_TRUE(setup_error_.empty()) << "building the test repos failed: " << setup_error_;
    const std::string name =
        ::testing::UnitTest::GetInstance()->current_test_info()->name() + std::string(".XXXXXX");
    std::string tmpl = (root_ / name).string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    sysroot_ = dir_ / "sysroot";
    fs::create_directories(sysroot_);
    const std::string s = sysroot_.string();
    const std::string repo = "--repo=" + s + "/ostree/repo";
    MustRun({"ostree", "admin", "init-fs", "--modern", s});
    MustRun({"ostree", repo, "config", "set", "sysroot.bootloader", "none"});
    MustRun({"ostree", "admin", "os-init", "--sysroot=" + s, "rhcos"});
    MustRun({"ostree", repo, "pull-local", src_.string(), csum1_});
    MustRun({"ostree", "admin", "deploy", "--sysroot=" + s, "--os=rhcos", "--karg=root=LABEL=root",
             "--karg=quiet", csum1_});
    const auto entries = BlsEntries(sysroot_);
    ASSERT_EQ(entries.size(), 1u);
    cmdline_ = "BOOT_IMAGE=/vmlinuz " + entries[0].options + " console=ttyS0";
    auto booted = ResolveBooted(sysroot_, cmdline_);
    ASSERT_TRUE(booted.has_value());
    booted_ = *booted;
  }

  void TearDown() override {
    if (dir_.empty()) return;
    std::error_code ec;
    fs::remove_all(dir_, ec);
    if (ec) {  // a failed immutable-flag test leaves chattr +i behind
      RunArgv({"chattr", "-R", "-i", dir_.string()});
      fs::remove_all(dir_, ec);
    }
  }

  // Deploys 4.15.2 into rhcos_4.15.2 the way Prep does, and returns the new deployment.
  Deployment DeployNewStateroot(OstreeSysroot& sr) {
    sr.InitStateroot("rhcos_4.15.2");
    EXPECT_EQ(sr.ImportFromRepo(seed_), std::vector<std::string>{csum2_});
    return sr.Deploy("rhcos_4.15.2", csum2_, {"ibu=4.15.2", "foo=bar"}, "");
  }

  // The deployment the first (default) BLS entry boots.
  BootedDeployment DefaultEntryTarget() {
    const auto entries = BlsEntries(sysroot_);
    EXPECT_FALSE(entries.empty());
    if (entries.empty()) return {};
    auto b = ResolveBooted(sysroot_, entries[0].options);
    EXPECT_TRUE(b.has_value()) << entries[0].options;
    return b.value_or(BootedDeployment{});
  }

  static inline std::string skip_reason_;
  static inline std::string setup_error_;
  static inline fs::path root_;
  static inline fs::path src_;
  static inline fs::path seed_;
  static inline std::string csum1_;
  static inline std::string csum2_;

  fs::path dir_;
  fs::path sysroot_;
  std::string cmdline_;
  BootedDeployment booted_;
};

TEST_F(OstreeSysrootTest, ListsTheDeployment) {
  OstreeSysroot sr(sysroot_);
  EXPECT_EQ(sr.path(), sysroot_);
  EXPECT_EQ(sr.repo_path(), sysroot_ / "ostree/repo");
  const auto deps = sr.Deployments();
  ASSERT_EQ(deps.size(), 1u);
  const Deployment& d = deps[0];
  EXPECT_EQ(d.index, 0);
  EXPECT_EQ(d.stateroot, "rhcos");
  EXPECT_EQ(d.checksum, csum1_);
  EXPECT_EQ(d.serial, 0);
  EXPECT_FALSE(d.pinned);
  EXPECT_EQ(d.version, "4.14.1");
  EXPECT_EQ(d.kargs, "root=LABEL=root quiet");
  EXPECT_EQ(d.origin_refspec, csum1_);
  EXPECT_EQ(d.dir, sysroot_ / "ostree/deploy/rhcos/deploy" / (csum1_ + ".0"));
  EXPECT_TRUE(fs::is_directory(d.dir / "usr"));

  EXPECT_TRUE(SameDeployment(d, booted_));
  const auto booted = sr.Booted(booted_);
  ASSERT_TRUE(booted.has_value());
  EXPECT_EQ(booted->checksum, csum1_);
  BootedDeployment other = booted_;
  other.serial = 1;
  EXPECT_FALSE(sr.Booted(other).has_value());

  EXPECT_EQ(sr.CommitVersion(csum1_), "4.14.1");
  EXPECT_TRUE(sr.StaterootExists("rhcos"));
  EXPECT_FALSE(sr.StaterootExists("rhcos_4.15.2"));
}

TEST_F(OstreeSysrootTest, OpeningSomethingElseFailsWithThePath) {
  const fs::path missing = dir_ / "not-a-sysroot";
  const Error e = ExpectError([&] { OstreeSysroot sr(missing); });
  EXPECT_NE(std::string(e.what()).find("opening ostree sysroot " + missing.string()),
            std::string::npos)
      << e.what();
}

TEST_F(OstreeSysrootTest, DeployIntoANewStaterootIsNotTheDefault) {
  OstreeSysroot sr(sysroot_);
  const Deployment d = DeployNewStateroot(sr);
  EXPECT_EQ(d.index, 1);
  EXPECT_EQ(d.stateroot, "rhcos_4.15.2");
  EXPECT_EQ(d.checksum, csum2_);
  EXPECT_EQ(d.version, "4.15.2");
  EXPECT_EQ(d.kargs, "ibu=4.15.2 foo=bar");  // nothing inherited from the booted deployment
  EXPECT_EQ(d.origin_refspec, csum2_);
  EXPECT_FALSE(d.pinned);
  EXPECT_EQ(sr.CommitVersion(csum2_), "4.15.2");

  const auto deps = sr.Deployments();
  ASSERT_EQ(deps.size(), 2u);
  EXPECT_TRUE(SameDeployment(deps[0], booted_));
  EXPECT_EQ(deps[0].index, 0);
  EXPECT_EQ(deps[0].kargs, "root=LABEL=root quiet");
  EXPECT_TRUE(SameDeployment(deps[1], d));
  EXPECT_EQ(deps[1].index, 1);

  // The default entry still boots the booted deployment; the second one boots the new one.
  const auto entries = BlsEntries(sysroot_);
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_TRUE(SameDeployment(deps[0], DefaultEntryTarget()));
  EXPECT_NE(entries[1].options.find("ibu=4.15.2"), std::string::npos) << entries[1].options;
  EXPECT_EQ(entries[0].options.find("ibu="), std::string::npos) << entries[0].options;
  auto second = ResolveBooted(sysroot_, entries[1].options);
  ASSERT_TRUE(second.has_value());
  EXPECT_TRUE(SameDeployment(d, *second));

  // /etc starts from the commit's /usr/etc, not from the booted deployment's /etc.
  EXPECT_EQ(ReadText(d.dir / "etc/os-release"), ReadText(d.dir / "usr/etc/os-release"));
  EXPECT_EQ(ReadText(d.dir / "usr/share/only-in-4.15.2"), "new content\n");
  EXPECT_TRUE(fs::is_directory(sysroot_ / "ostree/deploy/rhcos_4.15.2/var"));
  EXPECT_EQ(ReadText(fs::path(d.dir.string() + ".origin")), "[origin]\nrefspec=" + csum2_ + "\n");
}

TEST_F(OstreeSysrootTest, DeployKeepsTheGivenOriginMinusTransientState) {
  OstreeSysroot sr(sysroot_);
  sr.InitStateroot("rhcos_4.15.2");
  sr.ImportFromRepo(seed_);
  const std::string origin =
      "[origin]\ncontainer-image-reference=ostree-unverified-registry:quay.io/x/y@sha256:0\n"
      "\n[libostree-transient]\npinned=true\n";
  const Deployment d = sr.Deploy("rhcos_4.15.2", csum2_, {"ibu=4.15.2"}, origin);
  EXPECT_FALSE(d.pinned);
  EXPECT_EQ(d.origin_refspec, "");
  const std::string written = ReadText(fs::path(d.dir.string() + ".origin"));
  EXPECT_NE(written.find("container-image-reference=ostree-unverified-registry:quay.io/x/y"),
            std::string::npos)
      << written;
  EXPECT_EQ(written.find("libostree-transient"), std::string::npos) << written;
}

TEST_F(OstreeSysrootTest, SetDefaultMovesToTheFrontAndBack) {
  OstreeSysroot sr(sysroot_);
  const Deployment d = DeployNewStateroot(sr);

  sr.SetDefault(d);
  auto deps = sr.Deployments();
  ASSERT_EQ(deps.size(), 2u);
  EXPECT_TRUE(SameDeployment(deps[0], d));
  EXPECT_EQ(deps[0].index, 0);
  EXPECT_TRUE(SameDeployment(deps[1], booted_));
  EXPECT_TRUE(SameDeployment(d, DefaultEntryTarget()));
  EXPECT_NE(BlsEntries(sysroot_)[0].options.find("ibu=4.15.2"), std::string::npos);
  // What the rollback stage would pick from the booted 4.14.1: the new stateroot.
  auto target = RollbackTarget(deps, booted_);
  ASSERT_TRUE(target.has_value());
  EXPECT_TRUE(SameDeployment(*target, d));

  // Already the default: nothing is rewritten (the boot loader directory does not flip).
  const fs::path loader_before = fs::read_symlink(sysroot_ / "boot/loader");
  sr.SetDefault(deps[0]);
  EXPECT_EQ(fs::read_symlink(sysroot_ / "boot/loader"), loader_before);

  sr.SetDefault(deps[1]);
  deps = sr.Deployments();
  EXPECT_TRUE(SameDeployment(deps[0], booted_));
  EXPECT_TRUE(SameDeployment(deps[1], d));
  EXPECT_TRUE(SameDeployment(deps[0], DefaultEntryTarget()));
  EXPECT_EQ(BlsEntries(sysroot_)[0].options.find("ibu="), std::string::npos);

  Deployment gone = d;
  gone.serial = 7;
  EXPECT_EQ(ExpectError([&] { sr.SetDefault(gone); }).code(), Errc::kNotFound);
}

TEST_F(OstreeSysrootTest, SetPinnedIsVisibleInTheListAndTheOrigin) {
  OstreeSysroot sr(sysroot_);
  const Deployment d = DeployNewStateroot(sr);
  const fs::path origin = d.dir.string() + ".origin";

  sr.SetPinned(d, true);
  auto deps = sr.Deployments();
  EXPECT_FALSE(deps[0].pinned);
  EXPECT_TRUE(deps[1].pinned);
  const std::string text = ReadText(origin);
  EXPECT_NE(text.find("[libostree-transient]\npinned=true"), std::string::npos) << text;

  sr.SetPinned(d, true);  // idempotent
  EXPECT_TRUE(sr.Deployments()[1].pinned);

  sr.SetPinned(d, false);
  deps = sr.Deployments();
  EXPECT_FALSE(deps[1].pinned);
  EXPECT_EQ(ReadText(origin).find("pinned=true"), std::string::npos) << ReadText(origin);
}

TEST_F(OstreeSysrootTest, RemoveStaterootUndeploysAndRemovesTheDirectory) {
  OstreeSysroot sr(sysroot_);
  const Deployment d = DeployNewStateroot(sr);
  sr.SetPinned(d, true);  // pins do not protect against an explicit removal
  const fs::path bootdirs = sysroot_ / "boot/ostree";
  auto count_bootdirs = [&](const std::string& prefix) {
    int n = 0;
    for (const auto& e : fs::directory_iterator(bootdirs)) {
      n += e.path().filename().string().rfind(prefix + "-", 0) == 0 ? 1 : 0;
    }
    return n;
  };
  EXPECT_EQ(count_bootdirs("rhcos_4.15.2"), 1);

  sr.RemoveStateroot("rhcos_4.15.2", booted_);
  const auto deps = sr.Deployments();
  ASSERT_EQ(deps.size(), 1u);
  EXPECT_TRUE(SameDeployment(deps[0], booted_));
  EXPECT_FALSE(fs::exists(sysroot_ / "ostree/deploy/rhcos_4.15.2"));
  EXPECT_FALSE(sr.StaterootExists("rhcos_4.15.2"));
  EXPECT_EQ(count_bootdirs("rhcos_4.15.2"), 0);
  EXPECT_EQ(count_bootdirs("rhcos"), 1);
  EXPECT_TRUE(fs::is_directory(booted_.deployment_dir / "usr"));
  EXPECT_TRUE(SameDeployment(deps[0], DefaultEntryTarget()));
  EXPECT_EQ(BlsEntries(sysroot_).size(), 1u);
  // The kernel command line still resolves to the same deployment.
  auto again = ResolveBooted(sysroot_, cmdline_);
  ASSERT_TRUE(again.has_value());
  EXPECT_TRUE(SameDeployment(deps[0], *again));

  sr.RemoveStateroot("rhcos_4.15.2", booted_);  // already gone: nothing to do
}

// What a host looks like without OSTREE_SYSROOT_DEBUG=mutable-deployments, plus immutable
// parents for good measure.
TEST_F(OstreeSysrootTest, RemoveStaterootClearsTheImmutableFlag) {
  OstreeSysroot sr(sysroot_);
  const Deployment d = DeployNewStateroot(sr);
  const fs::path stateroot_dir = sysroot_ / "ostree/deploy/rhcos_4.15.2";
  const RunResult r = RunArgv({"chattr", "+i", d.dir.string(), (stateroot_dir / "deploy").string(),
                               stateroot_dir.string()});
  if (r.exit_code != 0) GTEST_SKIP() << "cannot set the immutable flag here: " << r.out;
  EXPECT_NE(RunArgv({"rm", "-rf", d.dir.string()}).exit_code, 0);

  sr.RemoveStateroot("rhcos_4.15.2", booted_);
  EXPECT_FALSE(fs::exists(stateroot_dir));
  EXPECT_EQ(sr.Deployments().size(), 1u);
}

TEST_F(OstreeSysrootTest, RemoveStaterootWhenTheNewOneIsTheDefault) {
  OstreeSysroot sr(sysroot_);
  const Deployment d = DeployNewStateroot(sr);
  sr.SetDefault(d);
  sr.RemoveStateroot("rhcos_4.15.2", booted_);
  const auto deps = sr.Deployments();
  ASSERT_EQ(deps.size(), 1u);
  EXPECT_TRUE(SameDeployment(deps[0], booted_));
  EXPECT_TRUE(SameDeployment(deps[0], DefaultEntryTarget()));
}

TEST_F(OstreeSysrootTest, RemoveTheBootedStaterootIsRefusedAndChangesNothing) {
  OstreeSysroot sr(sysroot_);
  const Deployment d = DeployNewStateroot(sr);
  // Also a second, non-booted deployment inside the booted stateroot: it must survive too.
  const Deployment extra = sr.Deploy("rhcos", csum2_, {"extra=1"}, "");
  const auto before = sr.Deployments();
  ASSERT_EQ(before.size(), 3u);
  const std::string entries_before = BlsEntries(sysroot_)[0].options;

  const Error e = ExpectError([&] { sr.RemoveStateroot("rhcos", booted_); });
  EXPECT_EQ(e.code(), Errc::kConflict);
  EXPECT_NE(std::string(e.what()).find("deployment 0 in stateroot rhcos is booted"),
            std::string::npos)
      << e.what();

  const auto after = sr.Deployments();
  ASSERT_EQ(after.size(), before.size());
  for (size_t i = 0; i < after.size(); ++i) EXPECT_TRUE(SameDeployment(after[i], before[i]));
  EXPECT_TRUE(fs::is_directory(extra.dir));
  EXPECT_TRUE(fs::is_directory(d.dir));
  EXPECT_EQ(BlsEntries(sysroot_)[0].options, entries_before);
}

TEST_F(OstreeSysrootTest, RemoveIsRefusedForTheBootedStaterootByName) {
  OstreeSysroot sr(sysroot_);
  sr.InitStateroot("rhcos_x");
  BootedDeployment booted = booted_;
  booted.stateroot = "rhcos_x";  // e.g. a deployment list libostree cannot read
  const Error e = ExpectError([&] { sr.RemoveStateroot("rhcos_x", booted); });
  EXPECT_EQ(e.code(), Errc::kConflict);
  EXPECT_NE(std::string(e.what()).find("stateroot rhcos_x is booted"), std::string::npos)
      << e.what();
  EXPECT_TRUE(sr.StaterootExists("rhcos_x"));
}

TEST_F(OstreeSysrootTest, RemoveAHalfCreatedStateroot) {
  OstreeSysroot sr(sysroot_);
  sr.InitStateroot("rhcos_4.15.2");
  EXPECT_TRUE(sr.StaterootExists("rhcos_4.15.2"));
  WriteText(sysroot_ / "ostree/deploy/rhcos_4.15.2/var/lib/lca/partial", "x");
  const std::string loader_before = fs::read_symlink(sysroot_ / "boot/loader");

  sr.RemoveStateroot("rhcos_4.15.2", std::nullopt);
  EXPECT_FALSE(fs::exists(sysroot_ / "ostree/deploy/rhcos_4.15.2"));
  ASSERT_EQ(sr.Deployments().size(), 1u);
  EXPECT_EQ(fs::read_symlink(sysroot_ / "boot/loader"), loader_before);  // no boot entry write
}

TEST_F(OstreeSysrootTest, InvalidInputsAreRefused) {
  OstreeSysroot sr(sysroot_);
  for (const char* bad : {"", ".", "..", "a/b", "../rhcos", "a b"}) {
    EXPECT_EQ(ExpectError([&] { sr.InitStateroot(bad); }).code(), Errc::kInvalid) << bad;
    EXPECT_EQ(ExpectError([&] { sr.RemoveStateroot(bad, booted_); }).code(), Errc::kInvalid) << bad;
  }
  EXPECT_EQ(ExpectError([&] { sr.InitStateroot("rhcos"); }).code(), Errc::kConflict);
  sr.InitStateroot("rhcos_4.15.2");
  sr.ImportFromRepo(seed_);
  EXPECT_EQ(ExpectError([&] {
              sr.Deploy("rhcos_4.15.2", csum2_, {"ostree=/ostree/boot.0/x/y/0"}, "");
            }).code(),
            Errc::kInvalid);
  EXPECT_EQ(ExpectError([&] { sr.Deploy("rhcos_4.15.2", "nope", {}, ""); }).code(), Errc::kInvalid);
  EXPECT_EQ(ExpectError([&] { sr.Deploy("rhcos_4.15.2", csum2_, {}, "not a keyfile ["); }).code(),
            Errc::kInvalid);
  EXPECT_EQ(ExpectError([&] { sr.Deploy("rhcos_9", csum2_, {}, ""); }).code(), Errc::kNotFound);
  EXPECT_EQ(ExpectError([&] { sr.CommitVersion(std::string(64, '0')); }).code(), Errc::kNotFound);
  EXPECT_EQ(sr.Deployments().size(), 1u);
}

TEST_F(OstreeSysrootTest, LibostreeErrorsNameTheOperation) {
  OstreeSysroot sr(sysroot_);
  sr.InitStateroot("rhcos_4.15.2");
  const std::string missing(64, 'e');
  const Error e = ExpectError([&] { sr.Deploy("rhcos_4.15.2", missing, {"ibu=1"}, ""); });
  EXPECT_EQ(
      std::string(e.what()).rfind("deploying " + missing + " into stateroot rhcos_4.15.2: ", 0), 0u)
      << e.what();
  const Error e2 = ExpectError([&] { sr.ImportFromRepo(dir_ / "no-repo"); });
  EXPECT_NE(std::string(e2.what()).find("importing " + (dir_ / "no-repo").string()),
            std::string::npos)
      << e2.what();
}

TEST_F(OstreeSysrootTest, PruneAfterRemovalReducesRepoObjects) {
  OstreeSysroot sr(sysroot_);
  const auto objects_before = ObjectFiles(sr.repo_path()).size();
  DeployNewStateroot(sr);
  sr.Prune();  // the deployment keeps its commit: nothing of it goes
  const auto objects_deployed = ObjectFiles(sr.repo_path()).size();
  EXPECT_GT(objects_deployed, objects_before);
  EXPECT_EQ(sr.CommitVersion(csum2_), "4.15.2");

  sr.RemoveStateroot("rhcos_4.15.2", booted_);
  EXPECT_EQ(ObjectFiles(sr.repo_path()).size(), objects_deployed);  // removal does not prune
  sr.Prune();
  const auto objects_after = ObjectFiles(sr.repo_path()).size();
  EXPECT_LT(objects_after, objects_deployed);
  EXPECT_EQ(objects_after, objects_before);
  EXPECT_EQ(ExpectError([&] { sr.CommitVersion(csum2_); }).code(), Errc::kNotFound);
  EXPECT_EQ(sr.CommitVersion(csum1_), "4.14.1");
  EXPECT_TRUE(fs::is_directory(booted_.deployment_dir / "usr"));
}

TEST_F(OstreeSysrootTest, TryLockWhileAnotherHoldsItIsAConflict) {
  OstreeSysroot holder(sysroot_);
  OstreeSysroot other(sysroot_);
  {
    auto lock = holder.TryLock();
    const Error e = ExpectError([&] { other.TryLock(); });
    EXPECT_EQ(e.code(), Errc::kConflict);
    EXPECT_NE(std::string(e.what()).find("ostree sysroot " + sysroot_.string() +
                                         " is locked by another process (rpm-ostree or ostree "
                                         "admin?)"),
              std::string::npos)
        << e.what();
    // Mutations lock for themselves, so they refuse too; reading does not need the lock.
    EXPECT_EQ(ExpectError([&] { other.InitStateroot("rhcos_4.15.2"); }).code(), Errc::kConflict);
    EXPECT_EQ(other.Deployments().size(), 1u);
    // The holder can run a whole stage under its one lock.
    DeployNewStateroot(holder);
    EXPECT_EQ(ExpectError([&] { holder.TryLock(); }).code(), Errc::kInternal);
    // The CLI sees the same lock: it waits for it (timeout's exit code 124).
    EXPECT_EQ(RunArgv({"timeout", "2", "ostree", "admin", "--sysroot=" + sysroot_.string(),
                       "undeploy", "1"})
                  .exit_code,
              124);
  }
  auto lock = other.TryLock();
  EXPECT_EQ(other.Deployments().size(), 2u);
  auto moved = std::move(lock);  // still held
  EXPECT_EQ(ExpectError([&] { holder.TryLock(); }).code(), Errc::kConflict);
}

// libostree 2022.7 forks a daemonizing watchdog around each /boot sync and never reaps the
// intermediate child; the adapter does, so a long-running agent does not collect zombies.
TEST_F(OstreeSysrootTest, BootEntryWritesLeaveNoZombies) {
  OstreeSysroot sr(sysroot_);
  const int before = ZombieChildren();
  const Deployment d = DeployNewStateroot(sr);
  sr.SetDefault(d);
  sr.SetDefault(sr.Deployments()[1]);
  sr.RemoveStateroot("rhcos_4.15.2", booted_);
  sr.Prune();
  EXPECT_EQ(ZombieChildren(), before);
}

// Prep imports its scratch repo by moving the objects: the commit deploys, its objects left the
// scratch repo, one the sysroot repo already had stays where it was (the sysroot's copy is not
// replaced), and a commit the scratch repo marks partial is not imported.
TEST_F(OstreeSysrootTest, ImportFromScratchMovesObjects) {
  const fs::path scratch = dir_ / "scratch";
  MustRun({"cp", "-a", seed_.string(), scratch.string()});
  OstreeSysroot sr(sysroot_);
  // An object both repos have: the scratch copy must stay, the sysroot's inode untouched.
  std::string shared_rel;
  for (const auto& rel : ObjectFiles(scratch)) {
    if (rel.extension() == ".file" && fs::exists(sr.repo_path() / "objects" / rel)) {
      shared_rel = rel.string();
      break;
    }
  }
  struct stat before {};
  if (!shared_rel.empty()) {
    ASSERT_EQ(::lstat((sr.repo_path() / "objects" / shared_rel).c_str(), &before), 0);
  }
  // A partial commit in the scratch repo: its commit object must not move.
  const fs::path partial_tree = dir_ / "partial-tree";
  WriteText(partial_tree / "usr/share/partial.txt", "partial\n");
  const std::string partial =
      Trim(MustRun({"ostree", "--repo=" + scratch.string(), "commit", "--branch=partial",
                    "--tree=dir=" + partial_tree.string()}));
  WriteText(scratch / "state" / (partial + ".commitpartial"), "");
  // A symlink object (its target resolves nowhere from objects/xx, as in any bare repo) alone in
  // its directory, so it is listed last there: it must move, not fail the listing with ENOENT.
  std::string lone_dir;
  for (int i = 0; i < 256 && lone_dir.empty(); ++i) {
    char hex[3];
    std::snprintf(hex, sizeof hex, "%02x", i);
    if (!fs::exists(scratch / "objects" / hex) && !fs::exists(sr.repo_path() / "objects" / hex)) {
      lone_dir = hex;
    }
  }
  ASSERT_FALSE(lone_dir.empty());
  const std::string lone = std::string(62, 'e') + ".file";
  fs::create_directories(scratch / "objects" / lone_dir);
  fs::create_symlink("../no/such/target", scratch / "objects" / lone_dir / lone);

  sr.InitStateroot("rhcos_4.15.2");
  EXPECT_TRUE(HasLooseCommit(scratch, csum2_));
  EXPECT_FALSE(HasLooseCommit(scratch, "../" + csum2_.substr(3)));
  EXPECT_EQ(sr.ImportFromRepo(scratch, OstreeSysroot::ImportMode::kMoveFromScratch),
            std::vector<std::string>{csum2_});
  EXPECT_EQ(fs::read_symlink(sr.repo_path() / "objects" / lone_dir / lone), "../no/such/target");
  EXPECT_TRUE(sr.HasCommit(csum2_));
  EXPECT_FALSE(sr.HasCommit(partial));
  const Deployment d = sr.Deploy("rhcos_4.15.2", csum2_, {"ibu=4.15.2"}, "");
  EXPECT_EQ(d.checksum, csum2_);
  EXPECT_FALSE(HasLooseCommit(scratch, csum2_));
  int left = 0;
  for (const auto& rel : ObjectFiles(scratch)) {
    if (rel.string() == shared_rel) continue;
    if (rel.string().find(partial.substr(2)) != std::string::npos) continue;
    if (!fs::exists(sr.repo_path() / "objects" / rel)) ++left;  // moved ones exist there
  }
  EXPECT_EQ(left, 0);
  if (!shared_rel.empty()) {
    EXPECT_TRUE(fs::exists(scratch / "objects" / shared_rel));
    struct stat after {};
    ASSERT_EQ(::lstat((sr.repo_path() / "objects" / shared_rel).c_str(), &after), 0);
    EXPECT_EQ(after.st_ino, before.st_ino);
  }
  // The seed repo the other tests import from is untouched by kPull.
  EXPECT_TRUE(fs::exists(seed_ / "objects" / csum2_.substr(0, 2) / (csum2_.substr(2) + ".commit")));
}

// Not a pass/fail check of speed: prints how long importing ~2000 small files takes, and checks
// that the objects were hardlinked rather than copied (both repos are bare, on one filesystem).
TEST_F(OstreeSysrootTest, ImportTimingAndHardlinks) {
  const fs::path tree = dir_ / "big";
  const fs::path big = dir_ / "big-repo";
  WriteText(tree / "usr/etc/os-release", "ID=rhcos\n");
  for (int i = 0; i < 2000; ++i) {
    WriteText(tree / "usr/share/many" / std::to_string(i / 100) / (std::to_string(i) + ".txt"),
              "file number " + std::to_string(i) + "\n");
  }
  MustRun({"ostree", "--repo=" + big.string(), "init", "--mode=bare"});
  // Building the fixture is not what is measured: skip its per-object fsyncs.
  MustRun({"ostree", "--repo=" + big.string(), "config", "set", "core.fsync", "false"});
  const std::string csum =
      Trim(MustRun({"ostree", "--repo=" + big.string(), "commit", "--branch=big",
                    "--tree=dir=" + tree.string(), "--add-metadata-string=version=big"}));

  OstreeSysroot sr(sysroot_);
  ::sync();  // the commit above left dirty pages that the import's syncfs would flush
  const auto t0 = std::chrono::steady_clock::now();
  const auto imported = sr.ImportFromRepo(big);
  const auto t1 = std::chrono::steady_clock::now();
  EXPECT_EQ(imported, std::vector<std::string>{csum});
  EXPECT_EQ(sr.CommitVersion(csum), "big");

  // The same import with the CLI into a second sysroot repo, for comparison.
  const fs::path cli_repo = dir_ / "cli-repo";
  MustRun({"ostree", "--repo=" + cli_repo.string(), "init", "--mode=bare"});
  ::sync();
  const auto t2 = std::chrono::steady_clock::now();
  MustRun({"ostree", "--repo=" + cli_repo.string(), "pull-local", big.string(), csum});
  const auto t3 = std::chrono::steady_clock::now();

  struct stat src_st {};
  ASSERT_EQ(::stat(big.c_str(), &src_st), 0);
  struct stat dst_st {};
  ASSERT_EQ(::stat(sr.repo_path().c_str(), &dst_st), 0);
  int files = 0;
  int linked = 0;
  for (const auto& rel : ObjectFiles(big)) {
    if (rel.extension() != ".file") continue;
    struct stat a {};
    struct stat b {};
    if (::lstat((big / "objects" / rel).c_str(), &a) != 0 || !S_ISREG(a.st_mode)) continue;
    ASSERT_EQ(::lstat((sr.repo_path() / "objects" / rel).c_str(), &b), 0) << rel;
    ++files;
    if (a.st_ino == b.st_ino && a.st_dev == b.st_dev && b.st_nlink > 1) ++linked;
  }
  using ms = std::chrono::duration<double, std::milli>;
  std::printf(
      "[ timing ] ImportFromRepo: %d file objects in %.1f ms (%d hardlinked); "
      "`ostree pull-local` of the same commit: %.1f ms\n",
      files, ms(t1 - t0).count(), linked, ms(t3 - t2).count());
  EXPECT_GE(files, 2000);
  if (src_st.st_dev == dst_st.st_dev) {
    EXPECT_EQ(linked, files);
  }
}

}  // namespace
}  // namespace lca::stateroot
