// Tests for common/beneath: every operation resolves beneath its root and never follows a
// symlink in any component, with openat2(2) and with the O_NOFOLLOW walk (each test runs with
// both). The victims live in a directory beside the root, as a host directory would beside a
// seed's stateroot, and must come out of every refused call untouched.
#include "common/beneath.hpp"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <string>

#include "common/atomic_file.hpp"
#include "common/error.hpp"
#include "tests/support/temp_dir.hpp"

namespace lca::beneath {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

class BeneathTest : public ::testing::TestWithParam<Resolver> {
 protected:
  void SetUp() override {
    if (GetParam() == Resolver::kOpenat2 && !Openat2Available()) {
      GTEST_SKIP() << "this kernel has no openat2(2); the walk is tested on its own";
    }
    SetResolver(GetParam());
    fs::create_directories(root_path_ / "etc");
    fs::create_directories(victim_ / "dir");
    WriteFileAtomic(victim_ / "victim", "host file\n", 0644);
    WriteFileAtomic(victim_ / "dir/inner", "host inner\n", 0644);
    root_ = OpenRoot(root_path_);
  }
  void TearDown() override { SetResolver(Resolver::kAuto); }

  // Everything under the victim directory, to compare before and after.
  std::map<std::string, std::string> Victims() const {
    std::map<std::string, std::string> out;
    for (const auto& e : fs::recursive_directory_iterator(victim_)) {
      struct stat st {};
      ::lstat(e.path().c_str(), &st);
      std::string v = std::to_string(st.st_mode);
      if (S_ISREG(st.st_mode)) v += ReadFile(e.path());
      out[fs::relative(e.path(), victim_).string()] = v;
    }
    return out;
  }

  void Link(const std::string& rel, const fs::path& target) {
    fs::create_directory_symlink(target, root_path_ / rel);
  }

  // The kInvalid message of f(), or "" when it did not throw one.
  template <class F>
  static std::string Refusal(F&& f) {
    try {
      f();
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), Errc::kInvalid) << e.what();
      return e.what();
    }
    ADD_FAILURE() << "not refused";
    return "";
  }

  test::TempDir tmp_{"lca-beneath"};
  fs::path root_path_ = tmp_ / "root";
  fs::path victim_ = tmp_ / "host";
  UniqueFd root_;
};

TEST_P(BeneathTest, OpenRefusesASymlinkInAnyComponent) {
  const auto before = Victims();
  Link("etc/dl", victim_);
  const std::string m = Refusal([&] { Open(root_.get(), "etc/dl/victim", O_WRONLY | O_TRUNC); });
  EXPECT_THAT(m, HasSubstr("path \"etc/dl/victim\" beneath " + root_path_.string()));
  EXPECT_THAT(m, HasSubstr("refused: it goes through the symlink \"etc/dl\""));
  // The last component too, even to create a file where a dangling link points.
  fs::create_symlink(victim_ / "new", root_path_ / "etc/new");
  EXPECT_THAT(Refusal([&] { Open(root_.get(), "etc/new", O_WRONLY | O_CREAT, 0644); }),
              HasSubstr("refused: it is a symlink"));
  EXPECT_THAT(Refusal([&] { Open(root_.get(), "etc/dl", O_RDONLY | O_DIRECTORY); }),
              HasSubstr("refused: it is a symlink"));
  EXPECT_FALSE(fs::exists(victim_ / "new"));
  EXPECT_EQ(Victims(), before);
}

TEST_P(BeneathTest, DotDotAndAbsolutePathsAreRefused) {
  EXPECT_THAT(Refusal([&] { Open(root_.get(), "etc/../../host/victim", O_RDONLY); }),
              HasSubstr("has a \"..\" component"));
  EXPECT_THAT(Refusal([&] { Open(root_.get(), (victim_ / "victim").string(), O_RDONLY); }),
              HasSubstr("it is absolute"));
  EXPECT_THAT(Refusal([&] { Remove(root_.get(), "../host/victim"); }),
              HasSubstr("has a \"..\" component"));
  EXPECT_TRUE(fs::exists(victim_ / "victim"));
}

TEST_P(BeneathTest, OpensPlainPathsAndCreatesFiles) {
  WriteFileAtomic(root_path_ / "etc/motd", "hello\n", 0644);
  UniqueFd fd = Open(root_.get(), "./etc//motd", O_RDONLY);
  char buf[16] = {};
  EXPECT_EQ(::read(fd.get(), buf, sizeof buf), 6);
  UniqueFd made = Open(root_.get(), "etc/made", O_WRONLY | O_CREAT | O_EXCL, 0600);
  EXPECT_TRUE(fs::is_regular_file(root_path_ / "etc/made"));
  EXPECT_EQ(OpenDirIfExists(root_.get(), "etc/missing/deeper"), std::nullopt);
  try {
    Open(root_.get(), "etc/missing", O_RDONLY);
    ADD_FAILURE() << "opened a missing file";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::kNotFound);
  }
}

TEST_P(BeneathTest, RemoveNeverReachesThroughOrIntoASymlink) {
  const auto before = Victims();
  Link("etc/dl", victim_);
  EXPECT_THAT(Refusal([&] { Remove(root_.get(), "etc/dl/victim"); }),
              HasSubstr("goes through the symlink \"etc/dl\""));
  EXPECT_THAT(Refusal([&] { Remove(root_.get(), "etc/dl/dir"); }),
              HasSubstr("goes through the symlink \"etc/dl\""));
  // The link itself goes, as a link.
  EXPECT_TRUE(Remove(root_.get(), "etc/dl"));
  EXPECT_FALSE(fs::exists(fs::symlink_status(root_path_ / "etc/dl")));
  // A tree holding links to the host is emptied without following them.
  fs::create_directories(root_path_ / "etc/tree/sub");
  fs::create_directory_symlink(victim_, root_path_ / "etc/tree/sub/up");
  fs::create_symlink(victim_ / "victim", root_path_ / "etc/tree/file-link");
  EXPECT_TRUE(Remove(root_.get(), "etc/tree"));
  EXPECT_FALSE(fs::exists(root_path_ / "etc/tree"));
  EXPECT_FALSE(Remove(root_.get(), "etc/tree"));
  EXPECT_FALSE(Remove(root_.get(), "etc/no/such/thing"));
  EXPECT_EQ(Victims(), before);
}

TEST_P(BeneathTest, MakeDirsRefusesASymlinkOnTheWayAndSetsTheMode) {
  const auto before = Victims();
  fs::create_directories(root_path_ / "var");
  Link("var/opt", victim_);
  EXPECT_THAT(Refusal([&] { MakeDirs(root_.get(), "var/opt/extra-manifests", 0700); }),
              HasSubstr("\"opt\""));
  EXPECT_FALSE(fs::exists(victim_ / "extra-manifests"));
  EXPECT_EQ(Victims(), before);

  UniqueFd fd = MakeDirs(root_.get(), "var/lib/lca", 0700);
  struct stat st {};
  ASSERT_EQ(::fstat(fd.get(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0700u);
  EXPECT_TRUE(fs::is_directory(root_path_ / "var/lib/lca"));
}

TEST_P(BeneathTest, RenameRefusesSymlinkedParentsAndMovesLinksAsLinks) {
  const auto before = Victims();
  Link("etc/dl", victim_);
  WriteFileAtomic(root_path_ / "etc/file", "mine\n", 0644);
  EXPECT_THAT(Refusal([&] { Rename(root_.get(), "etc/file", root_.get(), "etc/dl/victim"); }),
              HasSubstr("goes through the symlink \"etc/dl\""));
  EXPECT_THAT(Refusal([&] { Rename(root_.get(), "etc/dl/victim", root_.get(), "etc/stolen"); }),
              HasSubstr("goes through the symlink \"etc/dl\""));
  Rename(root_.get(), "etc/dl", root_.get(), "etc/moved-link");
  EXPECT_TRUE(fs::is_symlink(root_path_ / "etc/moved-link"));
  Rename(root_.get(), "etc/file", root_.get(), "etc/moved-link");  // replaces the link itself
  EXPECT_EQ(ReadFile(root_path_ / "etc/moved-link"), "mine\n");
  EXPECT_EQ(Victims(), before);
}

TEST_P(BeneathTest, WriteFileAtomicAtReplacesAPlantedLinkWithoutFollowingIt) {
  const auto before = Victims();
  UniqueFd dir = MakeDirs(root_.get(), "var/lib/lca", 0700);
  fs::create_symlink(victim_ / "victim", root_path_ / "var/lib/lca/config.json");
  WriteFileAtomicAt(dir.get(), "config.json", "{}\n", 0600);
  EXPECT_FALSE(fs::is_symlink(root_path_ / "var/lib/lca/config.json"));
  EXPECT_EQ(ReadFile(root_path_ / "var/lib/lca/config.json"), "{}\n");
  struct stat st {};
  ASSERT_EQ(::lstat((root_path_ / "var/lib/lca/config.json").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_EQ(ListDir(dir.get()), std::vector<std::string>{"config.json"});  // no temp left
  EXPECT_EQ(Victims(), before);
}

TEST_P(BeneathTest, RemoveTreeRemovesALinkAsALink) {
  const auto before = Victims();
  Link("etc/dl", victim_);
  EXPECT_TRUE(RemoveTree(root_path_ / "etc/dl"));
  EXPECT_FALSE(fs::exists(fs::symlink_status(root_path_ / "etc/dl")));
  fs::create_directory_symlink(victim_, root_path_ / "etc/inside");
  EXPECT_TRUE(RemoveTree(root_path_));
  EXPECT_FALSE(fs::exists(root_path_));
  EXPECT_FALSE(RemoveTree(root_path_));
  EXPECT_EQ(Victims(), before);
}

// The handlers that remove Prep's scratch dir and a partial stateroot (stateroot_cleanup.cpp,
// ostree_sysroot.cpp RemoveTree) use std::filesystem::remove_all on trees a seed filled: it
// must remove a symlink inside, or at the top, as a link. Holds that assumption about libstdc++.
TEST(StdRemoveAll, NeverFollowsASymlinkInTheTree) {
  test::TempDir tmp{"lca-remove-all"};
  fs::create_directories(tmp / "host/sub");
  WriteFileAtomic(tmp / "host/sub/victim", "host\n", 0644);
  fs::create_directories(tmp / "tree/a");
  fs::create_directory_symlink(tmp / "host", tmp / "tree/a/link");
  fs::create_directory_symlink(tmp / "host", tmp / "top-link");
  fs::remove_all(tmp / "tree");
  fs::remove_all(tmp / "top-link");
  EXPECT_FALSE(fs::exists(tmp / "tree"));
  EXPECT_FALSE(fs::exists(fs::symlink_status(tmp / "top-link")));
  EXPECT_EQ(ReadFile(tmp / "host/sub/victim"), "host\n");
}

INSTANTIATE_TEST_SUITE_P(Resolvers, BeneathTest,
                         ::testing::Values(Resolver::kOpenat2, Resolver::kWalk), [](const auto& p) {
                           return p.param == Resolver::kOpenat2 ? "Openat2" : "Walk";
                         });

}  // namespace
}  // namespace lca::beneath
