#include "formats/file_writer_pool.hpp"

#include <fcntl.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "common/error.hpp"
#include "formats/extract_policy.hpp"

namespace lca::stateroot {

FileWriterPool::FileWriterPool(std::string label, unsigned threads, std::size_t max_in_flight)
    : label_(std::move(label)), max_in_flight_(max_in_flight) {
  if (threads == 0) threads = 1;
  workers_.reserve(threads);
  for (unsigned i = 0; i < threads; ++i) workers_.push_back(std::make_unique<Worker>());
  for (auto& w : workers_) w->thread = std::thread([this, worker = w.get()] { Run(*worker); });
}

FileWriterPool::~FileWriterPool() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  work_cv_.notify_all();
  for (auto& w : workers_) {
    if (w->thread.joinable()) w->thread.join();
  }
}

void FileWriterPool::Submit(std::size_t key, FileJob job) {
  std::size_t bytes = job.data.size();
  std::unique_lock lock(mu_);
  // One job bigger than the budget still goes, alone.
  done_cv_.wait(lock,
                [&] { return error_ || in_flight_ == 0 || in_flight_ + bytes <= max_in_flight_; });
  if (error_) std::rethrow_exception(error_);
  in_flight_ += bytes;
  workers_[key % workers_.size()]->queue.push_back(std::move(job));
  lock.unlock();
  work_cv_.notify_all();
}

void FileWriterPool::Drain() {
  std::unique_lock lock(mu_);
  done_cv_.wait(lock, [&] {
    if (error_) return true;
    for (const auto& w : workers_) {
      if (w->busy || !w->queue.empty()) return false;
    }
    return true;
  });
  if (error_) std::rethrow_exception(error_);
}

std::vector<std::pair<std::string, std::string>> FileWriterPool::TakeWarnings() {
  std::lock_guard lock(mu_);
  return std::exchange(warnings_, {});
}

void FileWriterPool::Run(Worker& w) {
  for (;;) {
    FileJob job;
    {
      std::unique_lock lock(mu_);
      work_cv_.wait(lock, [&] { return stop_ || (!w.queue.empty() && !error_); });
      if (stop_ || error_) return;
      job = std::move(w.queue.front());
      w.queue.pop_front();
      w.busy = true;
    }
    std::exception_ptr failure;
    try {
      Write(job);
    } catch (...) {
      failure = std::current_exception();
    }
    {
      std::lock_guard lock(mu_);
      w.busy = false;
      in_flight_ -= job.data.size();
      if (failure && !error_) error_ = failure;
    }
    // Only the producer waits on done_cv_; wake the other workers too after a failure, so they
    // stop instead of writing on.
    done_cv_.notify_all();
    if (failure) work_cv_.notify_all();
  }
}

void FileWriterPool::Write(const FileJob& job) {
  if (job.kind == FileJob::Kind::kSymlink) {
    WriteSymlink(job);
  } else {
    WriteFile(job);
  }
}

void FileWriterPool::Warn(const FileJob& job, const std::string& message) {
  std::lock_guard lock(mu_);
  warnings_.emplace_back(job.entry, message);
}

namespace {

[[noreturn]] void Fail(const std::string& label, const FileJob& job, std::string_view doing,
                       int err) {
  ThrowWriteFailure(label, doing, job.entry, err, job.dir->get(),
                    static_cast<std::uint64_t>(job.size), static_cast<std::uint64_t>(job.size));
}

// Makes room for `job` in its directory: an existing non-directory is unlinked (so an inode
// shared by hardlinks elsewhere is never written to); a directory in the way is an error.
void MakeRoom(const std::string& label, const FileJob& job) {
  const int dir = job.dir->get();
  struct stat st {};
  if (::fstatat(dir, job.name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return;
    Fail(label, job, "replacing", errno);
  }
  if (S_ISDIR(st.st_mode)) {
    throw Error(Errc::kIo, label + ": extracting entry " + job.entry +
                               ": a directory of that name is in the way");
  }
  if (::unlinkat(dir, job.name.c_str(), 0) != 0 && errno != ENOENT) {
    Fail(label, job, "replacing", errno);
  }
}

// A metadata failure: a warning when BestEffort() allows it, else the entry fails.
void MetadataFailed(const std::string& label, const FileJob& job, Metadata what,
                    std::string_view xattr, std::string_view doing, int err, const WarnFn& warn) {
  const std::string message = std::string(doing) + ": " + std::strerror(err);
  if (BestEffort(what, xattr, err)) {
    warn(message);
    return;
  }
  throw Error(Errc::kIo, label + ": extracting entry " + job.entry + ": " + message);
}

// Owner first: chown(2) clears setuid and setgid, so the mode comes after it; without the owner,
// setuid and setgid are dropped (as libarchive does), never granted to whoever extracts.
void RestoreMetadata(const std::string& label, const FileJob& job, int fd, const WarnFn& warn) {
  mode_t mode = job.mode & 07777;
  if (job.owner) {
    if (::fchown(fd, job.owner->first, job.owner->second) != 0) {
      MetadataFailed(label, job, Metadata::kOwner, "", "can't restore the owner", errno, warn);
      mode &= ~(S_ISUID | S_ISGID);
    }
  } else {
    mode &= ~(S_ISUID | S_ISGID);
  }
  if (::fchmod(fd, mode) != 0) Fail(label, job, "setting the mode of", errno);
  for (const auto& [name, value] : job.xattrs) {
    if (::fsetxattr(fd, name.c_str(), value.data(), value.size(), 0) != 0) {
      MetadataFailed(label, job, Metadata::kXattr, name, "can't restore extended attribute " + name,
                     errno, warn);
    }
  }
  if (job.times) {
    timespec ts[2] = {job.times->first, job.times->second};
    if (::futimens(fd, ts) != 0) {
      MetadataFailed(label, job, Metadata::kTimes, "", "can't restore times", errno, warn);
    }
  }
}

}  // namespace

UniqueFd CreateEntryFile(const std::string& label, const FileJob& job) {
  const int dir = job.dir->get();
  const int flags = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC;
  UniqueFd fd(::openat(dir, job.name.c_str(), flags, 0600));
  if (fd.get() < 0 && errno == EEXIST) {
    MakeRoom(label, job);
    fd = UniqueFd(::openat(dir, job.name.c_str(), flags, 0600));
  }
  if (fd.get() < 0) Fail(label, job, "creating", errno);
  return fd;
}

void WriteEntryData(const std::string& label, const FileJob& job, int fd, const std::byte* data,
                    std::size_t size, std::int64_t offset) {
  while (size > 0) {
    ssize_t n = ::pwrite(fd, data, size, offset);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      ThrowWriteFailure(label, "writing", job.entry, err, fd, static_cast<std::uint64_t>(job.size),
                        static_cast<std::uint64_t>(std::max<std::int64_t>(job.size - offset, 0)));
    }
    data += n;
    size -= static_cast<std::size_t>(n);
    offset += n;
  }
}

void FinishEntryFile(const std::string& label, const FileJob& job, UniqueFd fd,
                     const WarnFn& warn) {
  // A sparse file may end in a hole no segment covered; sizing can need blocks too.
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) Fail(label, job, "sizing", errno);
  if (st.st_size != job.size && ::ftruncate(fd.get(), job.size) != 0) {
    Fail(label, job, "sizing", errno);
  }
  RestoreMetadata(label, job, fd.get(), warn);
  // Delayed allocation and network filesystems report some write errors only here.
  if (::close(fd.release()) != 0) Fail(label, job, "closing", errno);
}

void FileWriterPool::WriteFile(const FileJob& job) {
  UniqueFd fd = CreateEntryFile(label_, job);
  for (const FileJob::Segment& s : job.segments) {
    WriteEntryData(label_, job, fd.get(), job.data.data() + s.start, s.size, s.offset);
  }
  FinishEntryFile(label_, job, std::move(fd), [&](const std::string& m) { Warn(job, m); });
}

void FileWriterPool::WriteSymlink(const FileJob& job) {
  const int dir = job.dir->get();
  const WarnFn warn = [&](const std::string& m) { Warn(job, m); };
  if (::symlinkat(job.target.c_str(), dir, job.name.c_str()) != 0) {
    if (errno != EEXIST) Fail(label_, job, "creating", errno);
    MakeRoom(label_, job);
    if (::symlinkat(job.target.c_str(), dir, job.name.c_str()) != 0) {
      Fail(label_, job, "creating", errno);
    }
  }
  if (job.owner && ::fchownat(dir, job.name.c_str(), job.owner->first, job.owner->second,
                              AT_SYMLINK_NOFOLLOW) != 0) {
    MetadataFailed(label_, job, Metadata::kOwner, "", "can't restore the owner", errno, warn);
  }
  if (!job.xattrs.empty()) {
    // lsetxattr needs a path: the parent through its fd, so nothing on the way is followed, and
    // the symlink itself is not followed by lsetxattr.
    std::string path = "/proc/self/fd/" + std::to_string(dir) + "/" + job.name;
    for (const auto& [name, value] : job.xattrs) {
      if (::lsetxattr(path.c_str(), name.c_str(), value.data(), value.size(), 0) != 0) {
        MetadataFailed(label_, job, Metadata::kXattr, name,
                       "can't restore extended attribute " + name, errno, warn);
      }
    }
  }
  if (job.times) {
    timespec ts[2] = {job.times->first, job.times->second};
    if (::utimensat(dir, job.name.c_str(), ts, AT_SYMLINK_NOFOLLOW) != 0) {
      MetadataFailed(label_, job, Metadata::kTimes, "", "can't restore times", errno, warn);
    }
  }
}

}  // namespace lca::stateroot
