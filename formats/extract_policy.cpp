#include "formats/extract_policy.hpp"

#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/bytes.hpp"
#include "common/error.hpp"

namespace lca::stateroot {
namespace {

bool Unsupported(int err) { return err == ENOTSUP || err == EOPNOTSUPP; }

// Only an extraction that is not root may be refused ownership or times of what it made.
bool Unprivileged(int err) { return ::geteuid() != 0 && (err == EPERM || err == EINVAL); }

// Where fd is, for the message.
std::string MountOf(int fd) {
  char buf[4096];
  const std::string link = "/proc/self/fd/" + std::to_string(fd);
  ssize_t n = ::readlink(link.c_str(), buf, sizeof buf - 1);
  return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : "the destination";
}

}  // namespace

bool BestEffort(Metadata what, std::string_view xattr, int err) {
  switch (what) {
    case Metadata::kXattr:
      if (Unsupported(err)) return true;
      return xattr == "security.selinux" && (err == EINVAL || err == EPERM || err == EACCES);
    case Metadata::kAcl:
      return Unsupported(err);
    case Metadata::kOwner:
    case Metadata::kTimes:
      return Unprivileged(err);
  }
  return false;
}

bool BestEffortArchiveWarning(int err) {
  // What libarchive still restores: ACLs (unsupported), owner and times (unprivileged). Xattrs
  // are not left to it: its warning for them does not keep the errno.
  return Unsupported(err) || Unprivileged(err);
}

void ThrowWriteFailure(const std::string& label, std::string_view doing, const std::string& entry,
                       int err, int fd, std::uint64_t entry_size, std::uint64_t unwritten) {
  std::string message =
      label + ": " + std::string(doing) + " entry " + entry + ": " + std::strerror(err);
  if (err == ENOSPC || err == EDQUOT) {
    struct statvfs st {};
    std::string free = "unknown";
    if (fd >= 0 && ::fstatvfs(fd, &st) == 0) {
      free = FormatBytes(static_cast<std::uint64_t>(st.f_bavail) * st.f_frsize);
    }
    message += " (the entry needs " + FormatBytes(entry_size) + ", " + FormatBytes(unwritten) +
               " of it still unwritten; " + free + " free on the filesystem of " + MountOf(fd) +
               "): free space there, then abort and retry";
  }
  throw Error(Errc::kIo, message);
}

}  // namespace lca::stateroot
