// The /etc config diff of `lcactl seed create` (stateroot/seed_creator.hpp) on a deployment
// tree with absolute symlinks, as every real /etc has (systemd's *.wants links). Paths must be
// taken lexically: following a link once turned "/etc/x" into "/../../usr/lib/x" lines that
// Prep then refused (found by the qemu test, tests/vm/).
#include "stateroot/seed_creator.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "common/atomic_file.hpp"
#include "tests/support/temp_dir.hpp"

namespace lca::stateroot {
namespace {

namespace fs = std::filesystem;
using Strings = std::vector<std::string>;

void Put(const fs::path& p, const std::string& text) {
  EnsureDir(p.parent_path(), 0755);
  WriteFileAtomic(p, text, 0644);
}
void Link(const fs::path& p, const std::string& target) {
  EnsureDir(p.parent_path(), 0755);
  fs::create_symlink(target, p);
}
Strings Sorted(Strings v) {
  std::sort(v.begin(), v.end());
  return v;
}

TEST(DiffEtc, AbsoluteSymlinksGiveEtcPathsAndChangesAreFound) {
  test::TempDir dep("lca-etcdiff");
  // Link targets that exist on the machine running this (as they do where a seed is made):
  // following them would leave the tree. Neither may be followed.
  for (const char* root : {"usr/etc", "etc"}) {
    Put(dep / root / "same.conf", "same\n");
    Link(dep / root / "systemd/system/multi-user.target.wants/real.service", "/usr/bin/env");
  }
  Put(dep / "usr/etc/changed.conf", "old\n");
  Put(dep / "etc/changed.conf", "new\n");
  Put(dep / "etc/added.conf", "added\n");
  Put(dep / "usr/etc/deleted.conf", "gone\n");
  Link(dep / "usr/etc/systemd/user/sockets.target.wants/gpg-agent.socket", "/usr/bin/env");
  EnsureDir(dep / "etc/systemd/user/sockets.target.wants", 0755);
  Link(dep / "etc/systemd/system/timers.target.wants/new.timer", "/bin/sh");

  const EtcDiff d = DiffEtc(dep.path());
  EXPECT_EQ(Sorted(d.changed),
            (Strings{"etc/added.conf", "etc/changed.conf", "etc/systemd/system/timers.target.wants",
                     "etc/systemd/system/timers.target.wants/new.timer"}))
      << "changed";
  EXPECT_EQ(
      Sorted(d.deleted),
      (Strings{"/etc/deleted.conf", "/etc/systemd/user/sockets.target.wants/gpg-agent.socket"}));
  for (const auto& line : d.deleted) EXPECT_EQ(line.find(".."), std::string::npos) << line;
}

}  // namespace
}  // namespace lca::stateroot
