// Tests for the kernel command line -> booted deployment resolution. ResolveBooted runs against a
// real, throwaway ostree sysroot that the suite builds with the ostree CLI.
#include "stateroot/boot_cmdline.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
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
#include "tests/support/fixture.hpp"

namespace lca::stateroot {
namespace {

namespace fs = std::filesystem;

// ---------------------------------------------------------------------------------------------
// Pure parsing

TEST(OstreeKargTest, FindsTheArgument) {
  EXPECT_EQ(OstreeKarg("ostree=/ostree/boot.1/rhcos/abc/0"), "/ostree/boot.1/rhcos/abc/0");
  EXPECT_EQ(OstreeKarg("BOOT_IMAGE=(hd0,gpt3)/ostree/rhcos-abc/vmlinuz rw "
                       "ostree=/ostree/boot.0/rhcos/abc/1 ignition.platform.id=metal"),
            "/ostree/boot.0/rhcos/abc/1");
  EXPECT_EQ(OstreeKarg("  root=UUID=x\tostree=/a/b\n"), "/a/b");
  EXPECT_EQ(OstreeKarg("ostree="), "");
}

TEST(OstreeKargTest, FirstOneWins) {
  EXPECT_EQ(OstreeKarg("ostree=/first ostree=/second"), "/first");
}

TEST(OstreeKargTest, AbsentOrOnlySimilarArguments) {
  EXPECT_EQ(OstreeKarg(""), std::nullopt);
  EXPECT_EQ(OstreeKarg("   "), std::nullopt);
  EXPECT_EQ(OstreeKarg("BOOT_IMAGE=/vmlinuz root=/dev/sda1 rw quiet"), std::nullopt);
  EXPECT_EQ(OstreeKarg("rd.ostree=/x ostreex=/y ostree"), std::nullopt);
}

TEST(StaterootNameTest, ReplacesDashesOnlyInTheVersion) {
  EXPECT_EQ(StaterootNameForVersion("4.15.0-rc.1"), "rhcos_4.15.0_rc.1");
  EXPECT_EQ(StaterootNameForVersion("4.14.1"), "rhcos_4.14.1");
  EXPECT_EQ(StaterootNameForVersion("4.16.0-0.nightly-2024-01-01-000000"),
            "rhcos_4.16.0_0.nightly_2024_01_01_000000");
}

TEST(ResolveBootedTest, NoOstreeArgumentIsNullopt) {
  EXPECT_EQ(ResolveBooted("/nonexistent-sysroot", "BOOT_IMAGE=/vmlinuz root=/dev/sda1 rw"),
            std::nullopt);
  EXPECT_EQ(ResolveBooted("/nonexistent-sysroot", ""), std::nullopt);
}

// ---------------------------------------------------------------------------------------------
// A real ostree sysroot

using test::MustRun;
using test::RunArgv;
using test::Trim;
using test::WriteText;

bool IsUnder(const fs::path& p, const fs::path& root) {
  const fs::path rel = p.lexically_normal().lexically_relative(root.lexically_normal());
  return !rel.empty() && *rel.begin() != "..";
}

class OstreeSysrootTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    // Keep deployments mutable so the temp dir can simply be removed afterwards.
    ::setenv("OSTREE_SYSROOT_DEBUG", "mutable-deployments", 1);
    if (RunArgv({"ostree", "--version"}).exit_code != 0) {
      skip_reason_ = "the ostree CLI is not installed";
      return;
    }
    try {
      Build();
    } catch (const std::exception& e) {
      setup_error_ = e.what();
    }
  }

  static void TearDownTestSuite() {
    if (root_.empty()) return;
    std::error_code ec;
    fs::remove_all(root_, ec);
    if (ec) {
      // An immutable deployment (chattr +i) cannot be removed until the flag is cleared.
      RunArgv({"chattr", "-R", "-i", root_.string()});
      fs::remove_all(root_, ec);
    }
    root_.clear();
  }

  void SetUp() override {
    if (!skip_reason_.empty()) GTEST_SKIP() << skip_reason_;
    ASSERT_TRUE(setup_error_.empty()) << "building the test sysroot failed: " << setup_error_;
  }

  static void Build() {
    std::string tmpl = (fs::temp_directory_path() / "boot_cmdline_test.XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    root_ = tmpl;
    sysroot_ = root_ / "sysroot";
    const fs::path tree = root_ / "tree";
    fs::create_directories(sysroot_);
    const std::string s = sysroot_.string();
    const std::string repo = "--repo=" + s + "/ostree/repo";

    MustRun({"ostree", "admin", "init-fs", "--modern", s});
    MustRun({"ostree", repo, "config", "set", "sysroot.bootloader", "none"});
    MustRun({"ostree", "admin", "os-init", "--sysroot=" + s, "rhcos"});

    fs::create_directories(tree / "usr/lib/modules/6.1.0");
    fs::create_directories(tree / "usr/etc");
    fs::create_directories(tree / "usr/bin");
    WriteText(tree / "usr/lib/modules/6.1.0/vmlinuz", "k\n");
    WriteText(tree / "usr/lib/modules/6.1.0/initramfs.img", "i\n");
    // ostree admin deploy needs ID or PRETTY_NAME here to title the boot entry.
    WriteText(tree / "usr/etc/os-release", "ID=rhcos\nPRETTY_NAME=\"RHCOS test\"\n");

    MustRun({"ostree", repo, "commit", "--branch=rhcos/4.14", "--tree=dir=" + tree.string(),
             "--add-metadata-string=version=4.14.1"});
    MustRun({"ostree", "admin", "deploy", "--sysroot=" + s, "--os=rhcos", "rhcos/4.14"});
    checksum_ = Trim(MustRun({"ostree", repo, "rev-parse", "rhcos/4.14"}));

    // The first BLS entry: ostree-1-<os>.conf (older ostree) or ostree-1.conf (newer).
    const fs::path entries = sysroot_ / "boot/loader/entries";
    fs::path entry;
    for (const auto& e : fs::directory_iterator(entries)) {
      const std::string name = e.path().filename().string();
      if (name.rfind("ostree-1-", 0) == 0 || name == "ostree-1.conf") entry = e.path();
    }
    if (entry.empty()) throw std::runtime_error("no ostree-1 BLS entry in " + entries.string());
    std::ifstream in(entry);
    std::string line;
    while (std::getline(in, line)) {
      if (line.rfind("options ", 0) == 0) options_ = Trim(line.substr(8));
    }
    if (options_.empty()) throw std::runtime_error("no options line in " + entry.string());
    auto karg = OstreeKarg(options_);
    if (!karg) throw std::runtime_error("no ostree= in options: " + options_);
    karg_ = *karg;
    // ostree=/ostree/boot.N/<os>/<bootcsum>/<serial>
    std::vector<std::string> parts;
    for (const auto& c : fs::path(karg_).relative_path()) parts.push_back(c.string());
    if (parts.size() != 5) throw std::runtime_error("unexpected ostree= shape: " + karg_);
    bootcsum_ = parts[3];
  }

  static fs::path DeploymentDir() {
    return sysroot_ / "ostree/deploy/rhcos/deploy" / (checksum_ + ".0");
  }

  static void ExpectBootedIsTheDeployment(const std::optional<BootedDeployment>& b) {
    ASSERT_TRUE(b.has_value());
    EXPECT_EQ(b->stateroot, "rhcos");
    EXPECT_EQ(b->checksum, checksum_);
    EXPECT_EQ(b->serial, 0);
    EXPECT_TRUE(fs::is_directory(b->deployment_dir)) << b->deployment_dir;
    EXPECT_EQ(b->deployment_dir.lexically_normal(), DeploymentDir().lexically_normal());
    EXPECT_TRUE(IsUnder(b->deployment_dir, sysroot_)) << b->deployment_dir;
    EXPECT_TRUE(fs::exists(b->deployment_dir / "usr/etc/os-release"));
  }

  static inline std::string skip_reason_;
  static inline std::string setup_error_;
  static inline fs::path root_;
  static inline fs::path sysroot_;
  static inline std::string checksum_;
  static inline std::string options_;
  static inline std::string karg_;
  static inline std::string bootcsum_;
};

TEST_F(OstreeSysrootTest, TheSysrootLooksLikeOstreeMadeIt) {
  EXPECT_EQ(checksum_.size(), 64u) << checksum_;
  EXPECT_EQ(karg_.rfind("/ostree/boot.", 0), 0u) << karg_;
  EXPECT_TRUE(fs::is_symlink(sysroot_ / fs::path(karg_).relative_path())) << karg_;
  EXPECT_TRUE(fs::is_directory(DeploymentDir()));
}

TEST_F(OstreeSysrootTest, ResolvesTheBlsEntryOptions) {
  ExpectBootedIsTheDeployment(ResolveBooted(sysroot_, options_));
}

TEST_F(OstreeSysrootTest, ResolvesWithinAFullCommandLine) {
  const std::string cmdline = "BOOT_IMAGE=(hd0,gpt3)/ostree/rhcos-" + bootcsum_ +
                              "/vmlinuz-6.1.0 rw ostree=" + karg_ +
                              " ignition.platform.id=metal console=ttyS0\n";
  ExpectBootedIsTheDeployment(ResolveBooted(sysroot_, cmdline));
}

TEST_F(OstreeSysrootTest, ResolvesTheDeploymentDirectoryItself) {
  const std::string cmdline = "ostree=/ostree/deploy/rhcos/deploy/" + checksum_ + ".0";
  ExpectBootedIsTheDeployment(ResolveBooted(sysroot_, cmdline));
}

TEST_F(OstreeSysrootTest, SysrootPathWithTrailingSlashOrDots) {
  ExpectBootedIsTheDeployment(ResolveBooted(sysroot_.string() + "/", "ostree=" + karg_));
  ExpectBootedIsTheDeployment(ResolveBooted(sysroot_ / "." / ".." / "sysroot", "ostree=" + karg_));
}

TEST_F(OstreeSysrootTest, DanglingArgumentIsNotFound) {
  for (const std::string& karg : std::vector<std::string>{
           "/ostree/boot.1/rhcos/" + std::string(64, '0') + "/0", "/ostree/boot.9/rhcos/x/0",
           "/ostree/deploy/rhcos", "/ostree/deploy/rhcos/deploy", "/", "",
           "/ostree/deploy/rhcos/deploy/" + checksum_ + ".0/usr"}) {
    try {
      ResolveBooted(sysroot_, "ostree=" + karg);
      ADD_FAILURE() << "ostree=" << karg << " resolved";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), Errc::kNotFound) << karg << ": " << e.what();
    }
  }
}

TEST_F(OstreeSysrootTest, MissingSysrootIsNotFound) {
  try {
    ResolveBooted(root_ / "no-such-sysroot", "ostree=" + karg_);
    FAIL() << "resolved inside a sysroot that does not exist";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::kNotFound);
  }
}

TEST_F(OstreeSysrootTest, SymlinkLoopIsNotFound) {
  const fs::path dir = sysroot_ / "ostree/boot.loop";
  fs::create_directories(dir);
  fs::create_symlink("b", dir / "a");
  fs::create_symlink("a", dir / "b");
  try {
    ResolveBooted(sysroot_, "ostree=/ostree/boot.loop/a");
    FAIL() << "a symlink loop resolved";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::kNotFound);
  }
}

// An absolute link is taken relative to the sysroot, as it would be once the sysroot is '/'.
// The machine running the test has no /ostree, so resolving against the real '/' cannot succeed.
TEST_F(OstreeSysrootTest, AbsoluteFinalSymlinkStaysInsideTheSysroot) {
  ASSERT_FALSE(fs::exists("/ostree/deploy/rhcos/deploy/" + checksum_ + ".0"));
  const fs::path dir = sysroot_ / "ostree/boot.abs/rhcos" / bootcsum_;
  fs::create_directories(dir);
  fs::create_symlink("/ostree/deploy/rhcos/deploy/" + checksum_ + ".0", dir / "0");
  ExpectBootedIsTheDeployment(
      ResolveBooted(sysroot_, "ostree=/ostree/boot.abs/rhcos/" + bootcsum_ + "/0"));
}

TEST_F(OstreeSysrootTest, AbsoluteIntermediateSymlinkStaysInsideTheSysroot) {
  // boot.1 -> boot.1.1 as ostree makes it, but absolute: the kernel would follow it to the real
  // root if the path were handed to it whole.
  const fs::path real_bootdir = fs::read_symlink(sysroot_ / "ostree/boot.1");
  fs::create_symlink("/ostree/" + real_bootdir.string(), sysroot_ / "ostree/boot.abs2");
  ExpectBootedIsTheDeployment(
      ResolveBooted(sysroot_, "ostree=/ostree/boot.abs2/rhcos/" + bootcsum_ + "/0"));
}

TEST_F(OstreeSysrootTest, AbsoluteSymlinkChainStaysInsideTheSysroot) {
  // Two absolute hops: boot.abs3/rhcos -> /ostree/chain/rhcos, chain/rhcos/<bootcsum>/0 ->
  // /ostree/deploy/rhcos/deploy/<checksum>.0.
  const fs::path chain = sysroot_ / "ostree/chain/rhcos" / bootcsum_;
  fs::create_directories(chain);
  fs::create_symlink("/ostree/deploy/rhcos/deploy/" + checksum_ + ".0", chain / "0");
  fs::create_directories(sysroot_ / "ostree/boot.abs3");
  fs::create_symlink("/ostree/chain/rhcos", sysroot_ / "ostree/boot.abs3/rhcos");
  ExpectBootedIsTheDeployment(
      ResolveBooted(sysroot_, "ostree=/ostree/boot.abs3/rhcos/" + bootcsum_ + "/0"));
}

TEST_F(OstreeSysrootTest, DotDotNeverClimbsAboveTheSysroot) {
  // As in a chroot, ".." at the sysroot's top stays at the top: a link with too many ".." still
  // lands inside the sysroot, never in the directory that holds it.
  const fs::path dir = sysroot_ / "ostree/boot.up/rhcos" / bootcsum_;
  fs::create_directories(dir);
  fs::create_symlink("../../../../../../../../../../ostree/deploy/rhcos/deploy/" + checksum_ + ".0",
                     dir / "0");
  ExpectBootedIsTheDeployment(
      ResolveBooted(sysroot_, "ostree=/ostree/boot.up/rhcos/" + bootcsum_ + "/0"));

  // A decoy deployment beside the sysroot must never be picked up.
  const fs::path decoy = root_ / "ostree/deploy/evil/deploy" / (checksum_ + ".0");
  fs::create_directories(decoy);
  const fs::path dir2 = sysroot_ / "ostree/boot.up2";
  fs::create_directories(dir2);
  fs::create_symlink("../../../ostree/deploy/evil/deploy/" + checksum_ + ".0", dir2 / "0");
  try {
    auto b = ResolveBooted(sysroot_, "ostree=/ostree/boot.up2/0");
    ADD_FAILURE() << "resolved to " << (b ? b->deployment_dir.string() : "nothing");
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::kNotFound);
  }
}

}  // namespace
}  // namespace lca::stateroot
