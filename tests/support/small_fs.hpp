#pragma once
// A small filesystem mounted on a directory, for tests of what happens when the disk fills up:
// a loop-mounted ext4 image (mkfs.ext4 on a file, mount -o loop, as tests/bench/prep.sh does),
// or a tmpfs with size=. Unmounted (lazily) and its image removed on destruction. Mounting needs
// root (CAP_SYS_ADMIN); where it is refused, mounted() is false and why_not() says why, for a
// GTEST_SKIP.
#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include "common/process.hpp"

namespace lca::test {

class SmallFs {
 public:
  enum class Kind { kExt4Loop, kTmpfs };

  // `image` is where the ext4 image file goes (not under `dir`).
  SmallFs(Kind kind, const std::filesystem::path& dir, const std::filesystem::path& image,
          int size_mb)
      : kind_(kind), dir_(dir), image_(image) {
    std::filesystem::create_directories(dir_);
    if (kind == Kind::kTmpfs) {
      const std::string opts = "size=" + std::to_string(size_mb) + "m,mode=0755";
      if (::mount("lca-small-fs", dir_.c_str(), "tmpfs", 0, opts.c_str()) == 0) {
        mounted_ = true;
      } else {
        why_not_ = std::string("mounting a tmpfs: ") + std::strerror(errno);
      }
      return;
    }
    // -m 0: no blocks reserved for root, so what statvfs reports free is what root can use.
    // No journal: a few MiB of it would be most of such a small filesystem.
    std::ofstream(image_).close();
    std::filesystem::resize_file(image_, static_cast<std::uintmax_t>(size_mb) << 20);
    SystemProcessRunner runner;
    const ProcessResult mkfs = runner.Run(ProcessSpec{
        .argv = {"mkfs.ext4", "-q", "-F", "-m", "0", "-O", "^has_journal", image_.string()}});
    if (mkfs.exit_code != 0) {
      why_not_ = "mkfs.ext4 failed: " + mkfs.stderr_tail;
      return;
    }
    const ProcessResult mount =
        runner.Run(ProcessSpec{.argv = {"mount", "-o", "loop", image_.string(), dir_.string()}});
    if (mount.exit_code != 0) {
      why_not_ = "mount -o loop failed: " + mount.stderr_tail;
      return;
    }
    mounted_ = true;
  }
  ~SmallFs() {
    if (mounted_) ::umount2(dir_.c_str(), MNT_DETACH);
    if (kind_ == Kind::kExt4Loop) {
      std::error_code ec;
      std::filesystem::remove(image_, ec);
    }
  }
  SmallFs(const SmallFs&) = delete;
  SmallFs& operator=(const SmallFs&) = delete;

  bool mounted() const { return mounted_; }
  const std::string& why_not() const { return why_not_; }
  static const char* Name(Kind k) { return k == Kind::kExt4Loop ? "Ext4Loop" : "Tmpfs"; }

 private:
  Kind kind_;
  std::filesystem::path dir_;
  std::filesystem::path image_;
  bool mounted_ = false;
  std::string why_not_;
};

}  // namespace lca::test
