#pragma once
// The regular files and symlinks of an extraction, written on worker threads.
//
// Creating an inode is what extraction spends its time on (ext4 here: ~250 µs of kernel time per
// openat(O_CREAT)), and the kernel does it for two directories at once about as fast as for one.
// So the reader thread parses the tar and makes directories, and hands each small file (its
// bytes, already in memory) or symlink to a worker.
//
// Safety does not depend on timing: a job carries an fd of its parent directory, opened by the
// reader without following symlinks, and the worker creates the file relative to that fd with
// O_NOFOLLOW. Whatever the archive does to the path later (replace the directory with a symlink),
// the file lands in the directory that was checked, never through a symlink.
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "common/unique_fd.hpp"

namespace lca::stateroot {

struct FileJob {
  enum class Kind { kFile, kSymlink };
  Kind kind = Kind::kFile;
  std::shared_ptr<const UniqueFd> dir;  // the parent, opened with O_NOFOLLOW at every component
  std::string name;                     // the last path component
  std::string entry;                    // the archive's name for it (already quoted), for messages

  struct Segment {
    std::int64_t offset = 0;  // in the file
    std::size_t start = 0;    // in data
    std::size_t size = 0;
  };
  std::vector<std::byte> data;    // the file's bytes, in segments (a sparse file has holes)
  std::vector<Segment> segments;  // in file order
  std::int64_t size = 0;  // the file's length (past the last segment when it ends in a hole)
  std::string target;     // a symlink's target

  mode_t mode = 0644;  // permission bits, setuid/setgid/sticky included
  std::optional<std::pair<uid_t, gid_t>> owner;
  std::optional<std::pair<timespec, timespec>> times;  // atime, mtime
  std::vector<std::pair<std::string, std::string>> xattrs;
};

// The steps of writing one regular file, used by the pool's workers and by the reader for the
// big files it streams itself. Every failure throws kIo naming the entry (ENOSPC with what it
// needed and what is free); only what BestEffort() (extract_policy.hpp) allows goes to `warn`.
using WarnFn = std::function<void(const std::string& message)>;
// Creates job.name in job.dir, O_EXCL | O_NOFOLLOW; a non-directory in the way is unlinked first
// (never written into: it may share an inode with files elsewhere).
UniqueFd CreateEntryFile(const std::string& label, const FileJob& job);
// pwrite(2) of all `size` bytes at `offset`; a short write is retried, an error thrown.
void WriteEntryData(const std::string& label, const FileJob& job, int fd, const std::byte* data,
                    std::size_t size, std::int64_t offset);
// Sizes the file to job.size (a trailing hole), restores owner, mode, xattrs and times, closes.
void FinishEntryFile(const std::string& label, const FileJob& job, UniqueFd fd, const WarnFn& warn);

class FileWriterPool {
 public:
  // `label` prefixes every error; at most `max_in_flight` bytes of file data wait in the queues.
  FileWriterPool(std::string label, unsigned threads, std::size_t max_in_flight);
  // Discards what is still queued and joins the workers: after an error, nothing more is written.
  ~FileWriterPool();
  FileWriterPool(const FileWriterPool&) = delete;
  FileWriterPool& operator=(const FileWriterPool&) = delete;

  // Queues a job for the worker `key` picks (the same key, the same worker, in order: give the
  // parent directory's path, so two entries with one name are written in archive order). Blocks
  // while too many bytes are queued. Rethrows a worker's failure instead of queueing.
  void Submit(std::size_t key, FileJob job);

  // Waits until every queued job is done; rethrows the first failure.
  void Drain();

  // Metadata the filesystem refused (entry, message), collected since the last call.
  std::vector<std::pair<std::string, std::string>> TakeWarnings();

 private:
  struct Worker {
    std::deque<FileJob> queue;
    bool busy = false;
    std::thread thread;
  };

  void Run(Worker& w);
  void Write(const FileJob& job);
  void WriteFile(const FileJob& job);
  void WriteSymlink(const FileJob& job);
  void Warn(const FileJob& job, const std::string& message);

  const std::string label_;
  const std::size_t max_in_flight_;
  std::mutex mu_;
  std::condition_variable work_cv_;  // workers wait for jobs
  std::condition_variable done_cv_;  // the producer waits for room or for the queues to empty
  std::size_t in_flight_ = 0;
  bool stop_ = false;
  std::exception_ptr error_;
  std::vector<std::pair<std::string, std::string>> warnings_;
  std::vector<std::unique_ptr<Worker>> workers_;  // last: the threads start once the rest exists
};

}  // namespace lca::stateroot
