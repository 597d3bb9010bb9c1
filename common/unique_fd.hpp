#pragma once
// A file descriptor closed on scope exit, so no error path leaks one.
#include <unistd.h>

#include <cerrno>
#include <string>
#include <utility>

#include "common/error.hpp"

namespace lca {

class UniqueFd {
 public:
  explicit UniqueFd(int fd = -1) : fd_(fd) {}
  ~UniqueFd() {
    if (fd_ >= 0) ::close(fd_);
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) {
      if (fd_ >= 0) ::close(fd_);
      fd_ = other.release();
    }
    return *this;
  }

  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }

  // close(2) with its error checked: for files we wrote, where a failed close can mean lost
  // data (NFS, quota). `what` names the file in the error.
  void Close(const std::string& what) {
    if (::close(release()) != 0) throw SystemError("closing " + what, errno);
  }

 private:
  int fd_;
};

}  // namespace lca
