#include "stateroot/file_writer_pool.hpp"

#include <fcntl.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/error.hpp"

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

void FileWriterPool::Fail(const FileJob& job, const std::string& doing, int err) {
  throw Error(Errc::kIo, label_ + ": " + doing + " entry " + job.entry + ": " + std::strerror(err));
}

void FileWriterPool::Warn(const FileJob& job, const std::string& message) {
  std::lock_guard lock(mu_);
  warnings_.emplace_back(job.entry, message);
}

// Makes room for `job` in its directory: an existing non-directory is unlinked (so an inode
// shared by hardlinks elsewhere is never written to); a directory in the way is an error.
void FileWriterPool::MakeRoom(const FileJob& job) {
  const int dir = job.dir->get();
  struct stat st {};
  if (::fstatat(dir, job.name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return;
    Fail(job, "replacing", errno);
  }
  if (S_ISDIR(st.st_mode)) {
    throw Error(Errc::kIo, label_ + ": extracting entry " + job.entry +
                               ": a directory of that name is in the way");
  }
  if (::unlinkat(dir, job.name.c_str(), 0) != 0 && errno != ENOENT) Fail(job, "replacing", errno);
}

void FileWriterPool::WriteFile(const FileJob& job) {
  const int dir = job.dir->get();
  const int flags = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC;
  UniqueFd fd(::openat(dir, job.name.c_str(), flags, 0600));
  if (fd.get() < 0 && errno == EEXIST) {
    MakeRoom(job);
    fd = UniqueFd(::openat(dir, job.name.c_str(), flags, 0600));
  }
  if (fd.get() < 0) Fail(job, "creating", errno);
  for (const FileJob::Segment& s : job.segments) {
    const std::byte* p = job.data.data() + s.start;
    std::size_t left = s.size;
    off_t offset = s.offset;
    while (left > 0) {
      ssize_t n = ::pwrite(fd.get(), p, left, offset);
      if (n < 0) {
        if (errno == EINTR) continue;
        Fail(job, "writing", errno);
      }
      p += n;
      left -= static_cast<std::size_t>(n);
      offset += n;
    }
  }
  std::int64_t end = job.segments.empty() ? 0
                                          : job.segments.back().offset +
                                                static_cast<std::int64_t>(job.segments.back().size);
  if (job.size > end && ::ftruncate(fd.get(), job.size) != 0) Fail(job, "writing", errno);
  Metadata(job, fd.get());
  if (::close(fd.release()) != 0) Fail(job, "closing", errno);
}

// Owner first: chown(2) clears setuid and setgid, so the mode comes after it; without the owner,
// setuid and setgid are dropped (as libarchive does), never granted to whoever extracts.
void FileWriterPool::Metadata(const FileJob& job, int fd) {
  mode_t mode = job.mode & 07777;
  if (job.owner) {
    if (::fchown(fd, job.owner->first, job.owner->second) != 0) {
      Warn(job, std::string("can't restore the owner: ") + std::strerror(errno));
      mode &= ~(S_ISUID | S_ISGID);
    }
  } else {
    mode &= ~(S_ISUID | S_ISGID);
  }
  if (::fchmod(fd, mode) != 0) Fail(job, "setting the mode of", errno);
  for (const auto& [name, value] : job.xattrs) {
    if (::fsetxattr(fd, name.c_str(), value.data(), value.size(), 0) != 0) {
      Warn(job, "can't restore extended attribute " + name + ": " + std::strerror(errno));
    }
  }
  if (job.times) {
    timespec ts[2] = {job.times->first, job.times->second};
    if (::futimens(fd, ts) != 0)
      Warn(job, std::string("can't restore times: ") + std::strerror(errno));
  }
}

void FileWriterPool::WriteSymlink(const FileJob& job) {
  const int dir = job.dir->get();
  if (::symlinkat(job.target.c_str(), dir, job.name.c_str()) != 0) {
    if (errno != EEXIST) Fail(job, "creating", errno);
    MakeRoom(job);
    if (::symlinkat(job.target.c_str(), dir, job.name.c_str()) != 0) Fail(job, "creating", errno);
  }
  if (job.owner && ::fchownat(dir, job.name.c_str(), job.owner->first, job.owner->second,
                              AT_SYMLINK_NOFOLLOW) != 0) {
    Warn(job, std::string("can't restore the owner: ") + std::strerror(errno));
  }
  if (!job.xattrs.empty()) {
    // lsetxattr needs a path: the parent through its fd, so nothing on the way is followed, and
    // the symlink itself is not followed by lsetxattr.
    std::string path = "/proc/self/fd/" + std::to_string(dir) + "/" + job.name;
    for (const auto& [name, value] : job.xattrs) {
      if (::lsetxattr(path.c_str(), name.c_str(), value.data(), value.size(), 0) != 0) {
        Warn(job, "can't restore extended attribute " + name + ": " + std::strerror(errno));
      }
    }
  }
  if (job.times) {
    timespec ts[2] = {job.times->first, job.times->second};
    if (::utimensat(dir, job.name.c_str(), ts, AT_SYMLINK_NOFOLLOW) != 0) {
      Warn(job, std::string("can't restore times: ") + std::strerror(errno));
    }
  }
}

}  // namespace lca::stateroot
