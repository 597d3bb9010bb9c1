#include "common/beneath.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <memory>
#include <random>

#include "common/error.hpp"

namespace lca::beneath {
namespace {

std::atomic<Resolver> g_resolver{Resolver::kAuto};
// Unknown until the first call: -1; then 0 (ENOSYS) or 1.
std::atomic<int> g_openat2{-1};

// What an fd names, for messages: its path as the kernel sees it.
std::string Describe(int fd) {
  char buf[4096];
  const std::string link = "/proc/self/fd/" + std::to_string(fd);
  ssize_t n = ::readlink(link.c_str(), buf, sizeof buf - 1);
  if (n <= 0) return "directory fd " + std::to_string(fd);
  return std::string(buf, static_cast<std::size_t>(n));
}

std::string Join(const std::vector<std::string>& parts, std::size_t n) {
  std::string out;
  for (std::size_t i = 0; i < n && i < parts.size(); ++i) {
    if (!out.empty()) out += '/';
    out += parts[i];
  }
  return out;
}

[[noreturn]] void Refuse(int root, std::string_view rel, const std::string& why) {
  throw Error(Errc::kInvalid, "path \"" + std::string(rel) + "\" beneath " + Describe(root) +
                                  ": refused: " + why +
                                  " (nothing beneath this root is reached through a symlink)");
}

[[noreturn]] void Throw(int root, std::string_view rel, const std::string& doing, int err) {
  Error e = SystemError(doing + " \"" + std::string(rel) + "\" beneath " + Describe(root), err);
  // ENOTDIR: a file where a directory would be, so the path does not exist either.
  if (err == ENOENT || err == ENOTDIR) throw Error(Errc::kNotFound, e.what());
  throw e;
}

bool IsSymlinkAt(int dir, const std::string& name) {
  struct stat st {};
  return ::fstatat(dir, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode);
}

// One component at a time from `root`, each directory opened with O_NOFOLLOW: a symlink makes
// openat fail (ELOOP, or ENOTDIR with O_DIRECTORY), and fstatat then tells which one it was.
// Opens the first `n` of `parts`; `rel` (all of them) names the path in messages.
UniqueFd Walk(int root, std::string_view rel, const std::vector<std::string>& parts, std::size_t n,
              int flags, mode_t mode) {
  UniqueFd cur;
  int at = root;
  const int dir_flags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
  auto refuse_if_link = [&](std::size_t i, int err) {
    if ((err == ELOOP || err == ENOTDIR) && IsSymlinkAt(at, parts[i])) {
      if (i + 1 == parts.size()) Refuse(root, rel, "it is a symlink");
      Refuse(root, rel, "it goes through the symlink \"" + Join(parts, i + 1) + "\"");
    }
  };
  for (std::size_t i = 0; i + 1 < n; ++i) {
    UniqueFd next(::openat(at, parts[i].c_str(), dir_flags));
    if (next.get() < 0) {
      const int err = errno;
      refuse_if_link(i, err);
      Throw(root, rel, "opening \"" + Join(parts, i + 1) + "\" on the way to", err);
    }
    cur = std::move(next);
    at = cur.get();
  }
  const char* last = n == 0 ? "." : parts[n - 1].c_str();
  UniqueFd fd(::openat(at, last, flags | O_NOFOLLOW | O_CLOEXEC, mode));
  if (fd.get() < 0) {
    const int err = errno;
    if (n > 0) refuse_if_link(n - 1, err);
    Throw(root, rel, n == parts.size() ? "opening" : "opening the directory of", err);
  }
  return fd;
}

// openat2 with the kernel doing the confinement. -1 with errno ENOSYS when it has no openat2.
int Openat2(int root, const std::string& path, int flags, mode_t mode) {
  open_how how{};
  how.flags = static_cast<std::uint64_t>(flags | O_NOFOLLOW | O_CLOEXEC);
  if ((flags & O_CREAT) != 0 || (flags & O_TMPFILE) == O_TMPFILE) how.mode = mode;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
  for (;;) {
    long fd = ::syscall(SYS_openat2, root, path.empty() ? "." : path.c_str(), &how, sizeof how);
    if (fd >= 0 || errno != EAGAIN) return static_cast<int>(fd);
  }
}

bool UseOpenat2() {
  const Resolver r = g_resolver.load();
  if (r == Resolver::kWalk) return false;
  if (r == Resolver::kOpenat2) return true;
  return g_openat2.load() != 0;
}

}  // namespace

void SetResolver(Resolver r) { g_resolver.store(r); }

bool Openat2Available() {
  if (g_openat2.load() < 0) {
    UniqueFd fd(Openat2(AT_FDCWD, ".", O_RDONLY | O_DIRECTORY, 0));
    g_openat2.store(fd.get() >= 0 || errno != ENOSYS ? 1 : 0);
  }
  return g_openat2.load() == 1;
}

std::vector<std::string> Components(std::string_view rel) {
  if (!rel.empty() && rel.front() == '/') {
    throw Error(Errc::kInvalid, "path \"" + std::string(rel) +
                                    "\" refused: it is absolute, so it would leave its root");
  }
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= rel.size()) {
    std::size_t end = rel.find('/', start);
    if (end == std::string_view::npos) end = rel.size();
    std::string_view c = rel.substr(start, end - start);
    if (c == "..") {
      throw Error(Errc::kInvalid, "path \"" + std::string(rel) +
                                      "\" refused: it has a \"..\" component, which could leave "
                                      "its root");
    }
    if (!c.empty() && c != ".") out.emplace_back(c);
    start = end + 1;
  }
  return out;
}

UniqueFd OpenRoot(const std::filesystem::path& dir) {
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() < 0) {
    Error e = SystemError("opening directory " + dir.string(), errno);
    if (errno == ENOENT) throw Error(Errc::kNotFound, e.what());
    throw e;
  }
  return fd;
}

namespace {

// The first `n` components of `parts` opened beneath `root`; see Open().
UniqueFd OpenPrefix(int root, std::string_view rel, const std::vector<std::string>& parts,
                    std::size_t n, int flags, mode_t mode) {
  if (UseOpenat2()) {
    int fd = Openat2(root, Join(parts, n), flags, mode);
    if (fd >= 0) return UniqueFd(fd);
    const int err = errno;
    if (err == ENOSYS && g_resolver.load() == Resolver::kAuto) {
      g_openat2.store(0);
    } else if (err != ELOOP && err != EXDEV && err != ENOTDIR) {
      Throw(root, rel, n == parts.size() ? "opening" : "opening the directory of", err);
    }
    // Refused by the kernel (or no openat2): the walk names the symlink, or opens the path if
    // the tree changed in between, with the same guarantees.
  }
  return Walk(root, rel, parts, n, flags, mode);
}

}  // namespace

UniqueFd Open(int root, std::string_view rel, int flags, mode_t mode) {
  const std::vector<std::string> parts = Components(rel);
  return OpenPrefix(root, rel, parts, parts.size(), flags, mode);
}

std::optional<UniqueFd> OpenDirIfExists(int root, std::string_view rel) {
  try {
    return Open(root, rel, O_RDONLY | O_DIRECTORY);
  } catch (const Error& e) {
    if (e.code() == Errc::kNotFound) return std::nullopt;
    throw;
  }
}

Parent OpenParent(int root, std::string_view rel) {
  std::vector<std::string> parts = Components(rel);
  if (parts.empty()) {
    throw Error(Errc::kInvalid, "path \"" + std::string(rel) + "\" beneath " + Describe(root) +
                                    " names the root itself");
  }
  Parent p;
  p.name = parts.back();
  p.dir = OpenPrefix(root, rel, parts, parts.size() - 1, O_RDONLY | O_DIRECTORY, 0);
  return p;
}

UniqueFd MakeDirs(int root, std::string_view rel, mode_t mode) {
  const std::vector<std::string> parts = Components(rel);
  UniqueFd cur = Open(root, "", O_RDONLY | O_DIRECTORY);
  for (std::size_t i = 0; i < parts.size(); ++i) {
    const bool last = i + 1 == parts.size();
    if (::mkdirat(cur.get(), parts[i].c_str(), last ? mode : 0755) != 0 && errno != EEXIST) {
      Throw(root, rel, "making directory \"" + Join(parts, i + 1) + "\" for", errno);
    }
    // One component from a directory already opened without following anything.
    try {
      cur = Open(cur.get(), parts[i], O_RDONLY | O_DIRECTORY);
    } catch (const Error& e) {
      throw e.WithContext("making directories \"" + std::string(rel) + "\" beneath " +
                          Describe(root));
    }
  }
  if (!parts.empty() && ::fchmod(cur.get(), mode) != 0) Throw(root, rel, "chmod", errno);
  return cur;
}

std::vector<std::string> ListDir(int dir) {
  // Its own open file description: fdopendir takes over the fd and moves its offset.
  int fd = ::openat(dir, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) throw SystemError("listing " + Describe(dir), errno);
  std::unique_ptr<DIR, int (*)(DIR*)> d(::fdopendir(fd), &::closedir);
  if (!d) {
    const int err = errno;
    ::close(fd);
    throw SystemError("listing " + Describe(dir), err);
  }
  std::vector<std::string> names;
  errno = 0;
  while (dirent* de = ::readdir(d.get())) {
    std::string_view n = de->d_name;
    if (n != "." && n != "..") names.emplace_back(n);
  }
  if (errno != 0) throw SystemError("listing " + Describe(dir), errno);
  return names;
}

bool RemoveAt(int dir, const std::string& name) {
  struct stat st {};
  if (::fstatat(dir, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return false;
    throw SystemError("stat \"" + name + "\" in " + Describe(dir), errno);
  }
  int flags = 0;
  if (S_ISDIR(st.st_mode)) {
    // O_NOFOLLOW: had it been swapped for a symlink since the fstatat, this fails instead of
    // emptying whatever the link points to.
    UniqueFd sub(::openat(dir, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (sub.get() < 0) throw SystemError("opening \"" + name + "\" in " + Describe(dir), errno);
    for (const std::string& child : ListDir(sub.get())) RemoveAt(sub.get(), child);
    flags = AT_REMOVEDIR;
  }
  if (::unlinkat(dir, name.c_str(), flags) != 0) {
    if (errno == ENOENT) return true;
    throw SystemError("removing \"" + name + "\" in " + Describe(dir), errno);
  }
  return true;
}

bool Remove(int root, std::string_view rel) {
  std::optional<Parent> p;
  try {
    p = OpenParent(root, rel);
  } catch (const Error& e) {
    if (e.code() == Errc::kNotFound) return false;  // a directory on the way is missing
    throw;
  }
  return RemoveAt(p->dir.get(), p->name);
}

bool RemoveTree(const std::filesystem::path& path) {
  const std::filesystem::path p = path.lexically_normal();
  std::filesystem::path name = p.filename();
  std::filesystem::path parent = p.parent_path();
  if (name.empty()) {  // "dir/": the last component is before the separator
    name = parent.filename();
    parent = parent.parent_path();
  }
  if (name.empty() || name == "." || name == "..") {
    throw Error(Errc::kInvalid, "removing " + path.string() + ": not a removable path");
  }
  UniqueFd dir(::open(parent.empty() ? "." : parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dir.get() < 0) {
    if (errno == ENOENT) return false;
    throw SystemError("removing " + path.string() + ": opening its parent", errno);
  }
  return RemoveAt(dir.get(), name.string());
}

void Rename(int src_root, std::string_view src_rel, int dst_root, std::string_view dst_rel,
            unsigned flags) {
  Parent from = OpenParent(src_root, src_rel);
  Parent to = OpenParent(dst_root, dst_rel);
  if (::renameat2(from.dir.get(), from.name.c_str(), to.dir.get(), to.name.c_str(), flags) != 0) {
    throw SystemError("moving \"" + std::string(src_rel) + "\" beneath " + Describe(src_root) +
                          " to \"" + std::string(dst_rel) + "\" beneath " + Describe(dst_root),
                      errno);
  }
}

void WriteFileAtomicAt(int dir, const std::string& name, std::string_view data, mode_t mode) {
  if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos) {
    throw Error(Errc::kInvalid, "writing \"" + name + "\": not a single path component");
  }
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  const std::string where = "\"" + name + "\" in " + Describe(dir);
  std::string tmp;
  UniqueFd fd;
  for (int attempt = 0; attempt < 100 && fd.get() < 0; ++attempt) {
    char suffix[24];
    std::snprintf(suffix, sizeof suffix, "%016llx", static_cast<unsigned long long>(rng()));
    tmp = "." + name + ".tmp." + suffix;
    fd = UniqueFd(
        ::openat(dir, tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode));
    if (fd.get() < 0 && errno != EEXIST) break;
  }
  if (fd.get() < 0) throw SystemError("creating a temp file for " + where, errno);
  try {
    if (::fchmod(fd.get(), mode) != 0) throw SystemError("chmod " + where, errno);
    for (std::string_view rest = data; !rest.empty();) {
      ssize_t n = ::write(fd.get(), rest.data(), rest.size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) throw SystemError("writing " + where, errno);
      rest.remove_prefix(static_cast<std::size_t>(n));
    }
    if (::fsync(fd.get()) != 0) throw SystemError("fsync " + where, errno);
    fd.Close(where);
    if (::renameat(dir, tmp.c_str(), dir, name.c_str()) != 0) {
      throw SystemError("renaming the temp file to " + where, errno);
    }
  } catch (...) {
    ::unlinkat(dir, tmp.c_str(), 0);
    throw;
  }
  if (::fsync(dir) != 0) throw SystemError("fsync of the directory of " + where, errno);
}

}  // namespace lca::beneath
