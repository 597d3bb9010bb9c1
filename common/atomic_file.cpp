#include "common/atomic_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <random>
#include <sstream>

#include "common/error.hpp"
#include "common/failpoint.hpp"
#include "common/unique_fd.hpp"

namespace lca {
namespace {

void WriteAll(int fd, std::string_view data, const std::filesystem::path& path) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      throw SystemError("writing " + path.string(), errno);
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
}

std::string TempName(const std::filesystem::path& path) {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  std::ostringstream os;
  os << "." << path.filename().string() << ".tmp." << std::hex << rng();
  return os.str();
}

}  // namespace

void FsyncDir(const std::filesystem::path& dir) {
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() < 0) throw SystemError("opening directory " + dir.string(), errno);
  if (::fsync(fd.get()) != 0) throw SystemError("fsync of directory " + dir.string(), errno);
}

void WriteFileAtomic(const std::filesystem::path& path, std::string_view data, mode_t mode) {
  const std::filesystem::path dir = path.has_parent_path() ? path.parent_path() : ".";
  // A name can already be taken: a temp file left by a crash, or one made by a forked child
  // that inherited this thread's generator state. Draw another name rather than fail.
  std::filesystem::path tmp;
  int raw_fd = -1;
  for (int attempt = 0; attempt < 100; ++attempt) {
    tmp = dir / TempName(path);
    raw_fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (raw_fd >= 0 || errno != EEXIST) break;
  }
  UniqueFd fd(raw_fd);
  if (fd.get() < 0) throw SystemError("creating " + tmp.string(), errno);
  try {
    // fchmod: the umask must not loosen or tighten what the caller asked for.
    if (::fchmod(fd.get(), mode) != 0) throw SystemError("chmod " + tmp.string(), errno);
    WriteAll(fd.get(), data, tmp);
    if (::fsync(fd.get()) != 0) throw SystemError("fsync " + tmp.string(), errno);
    if (::close(fd.release()) != 0) throw SystemError("closing " + tmp.string(), errno);
    LCA_FAILPOINT("atomic-write.before-rename");
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
      throw SystemError("renaming " + tmp.string() + " to " + path.string(), errno);
    }
  } catch (...) {
    ::unlink(tmp.c_str());
    throw;
  }
  LCA_FAILPOINT("atomic-write.after-rename");
  FsyncDir(dir);
}

std::optional<std::string> ReadFileIfExists(const std::filesystem::path& path) {
  // POSIX calls rather than std::ifstream: an ifstream "opens" a directory and reads it as
  // empty, and does not promise a meaningful errno when it fails.
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) {
    if (errno == ENOENT) return std::nullopt;
    throw SystemError("reading " + path.string(), errno);
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) throw SystemError("reading " + path.string(), errno);
  if (S_ISDIR(st.st_mode)) throw SystemError("reading " + path.string(), EISDIR);
  std::string data;
  char buf[65536];
  for (;;) {
    const ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw SystemError("reading " + path.string(), errno);
    }
    if (n == 0) break;
    data.append(buf, static_cast<size_t>(n));
  }
  return data;
}

std::string ReadFile(const std::filesystem::path& path) {
  auto data = ReadFileIfExists(path);
  if (!data) throw Error(Errc::kNotFound, path.string() + ": no such file");
  return *data;
}

void EnsureDir(const std::filesystem::path& dir, mode_t mode) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw Error(Errc::kIo, "creating directory " + dir.string() + ": " + ec.message());
  if (::chmod(dir.c_str(), mode) != 0) throw SystemError("chmod " + dir.string(), errno);
}

}  // namespace lca
