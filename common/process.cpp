#include "common/process.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/process.hpp>
#include <boost/process/extend.hpp>
#include <cerrno>
#include <cstdlib>
#include <string_view>
#include <system_error>
#include <utility>

#include "common/child_record.hpp"
#include "common/error.hpp"

namespace lca {
namespace {

namespace asio = boost::asio;
namespace bp = boost::process;

constexpr std::size_t kReadChunk = 64 * 1024;
// After SIGKILLing the group, how long to wait for the pipes to close. Only a descendant that
// escaped the group (setsid) can hold them open longer, and it must not hold us hostage.
constexpr std::chrono::milliseconds kKillGrace{1000};
constexpr std::chrono::milliseconds kCancelPoll{100};
constexpr std::size_t kMaxArgInMessage = 200;

Error NotFound(const std::string& argv0) {
  return Error(Errc::kNotFound, argv0 + ": command not found");
}

std::string FormatDuration(std::chrono::milliseconds d) {
  const auto ms = d.count();
  if (ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
  if (ms < 1000) return std::to_string(ms) + "ms";
  std::string frac = std::to_string(ms % 1000);
  frac.insert(0, 3 - frac.size(), '0');
  while (frac.back() == '0') frac.pop_back();
  return std::to_string(ms / 1000) + "." + frac + "s";
}

std::string_view Trim(std::string_view s) {
  const auto first = s.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos) return {};
  const auto last = s.find_last_not_of(" \t\r\n");
  return s.substr(first, last - first + 1);
}

std::string CommandForMessage(const std::vector<std::string>& argv) {
  if (argv.empty()) return "<empty argv>";
  std::string out = std::filesystem::path(argv[0]).filename().string();
  if (out.empty()) out = argv[0];
  for (std::size_t i = 1; i < argv.size(); ++i) {
    out += ' ';
    if (argv[i].size() > kMaxArgInMessage) {
      out.append(argv[i], 0, kMaxArgInMessage);
      out += "...";
    } else {
      out += argv[i];
    }
  }
  return out;
}

std::vector<boost::filesystem::path> SearchDirs(const ProcessSpec& spec) {
  std::string path;
  if (auto it = spec.env.find("PATH"); it != spec.env.end()) {
    path = it->second;
  } else if (const char* ours = std::getenv("PATH")) {
    path = ours;
  } else {
    path = "/usr/local/bin:/usr/bin:/bin";
  }
  std::vector<boost::filesystem::path> dirs;
  std::size_t start = 0;
  while (start <= path.size()) {
    std::size_t end = path.find(':', start);
    if (end == std::string::npos) end = path.size();
    // An empty entry means "current directory" to a shell; a daemon must not run whatever
    // happens to sit in its cwd, so it is skipped.
    if (end > start) dirs.emplace_back(path.substr(start, end - start));
    start = end + 1;
  }
  return dirs;
}

// Resolving in the parent gives a precise kNotFound instead of an anonymous exec failure, and
// keeps PATH walking (which allocates) out of the forked child.
boost::filesystem::path ResolveExecutable(const ProcessSpec& spec) {
  const std::string& name = spec.argv[0];
  if (name.find('/') == std::string::npos) {
    boost::filesystem::path found = bp::search_path(name, SearchDirs(spec));
    if (found.empty()) throw NotFound(name);
    return found;
  }
  std::filesystem::path where(name);
  if (where.is_relative() && !spec.cwd.empty()) where = spec.cwd / where;
  std::error_code ec;
  if (!std::filesystem::exists(where, ec)) throw NotFound(name);
  return name;
}

// The child's envp, built by hand: bp::environment in 1.74 reads past the end of shorter entries
// in find() and dangles after a copy (both caught by ASan), so it is not used at all.
class Envp {
 public:
  explicit Envp(const ProcessSpec& spec) {
    std::map<std::string, std::string> merged;
    if (spec.inherit_env) {
      for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
        std::string_view entry(*e);
        const auto eq = entry.find('=');
        if (eq == std::string_view::npos || eq == 0) continue;
        merged.emplace(entry.substr(0, eq), entry.substr(eq + 1));
      }
    }
    for (const auto& [key, value] : spec.env) {
      if (key.empty() || key.find_first_of(std::string_view("=\0", 2)) != std::string::npos ||
          value.find('\0') != std::string::npos) {
        throw Error(Errc::kInvalid, "invalid environment variable name or value: " + key);
      }
      merged[key] = value;
    }
    entries_.reserve(merged.size());
    for (const auto& [key, value] : merged) entries_.push_back(key + "=" + value);
    for (std::string& entry : entries_) pointers_.push_back(entry.data());
    pointers_.push_back(nullptr);
  }
  char** get() { return pointers_.data(); }

 private:
  std::vector<std::string> entries_;
  std::vector<char*> pointers_;
};

// Writing stdin to a child that exits without reading it raises SIGPIPE, whose default action
// would kill the whole daemon. Block it on this thread while we write, and swallow one we caused.
class SigpipeBlock {
 public:
  SigpipeBlock() {
    sigset_t pipe_only = PipeSet();
    ::pthread_sigmask(SIG_BLOCK, &pipe_only, &old_mask_);
    sigset_t pending;
    ::sigpending(&pending);
    was_pending_ = ::sigismember(&pending, SIGPIPE) == 1;
  }
  ~SigpipeBlock() {
    if (!was_pending_) {
      sigset_t pipe_only = PipeSet();
      const timespec zero{};
      while (::sigtimedwait(&pipe_only, nullptr, &zero) == SIGPIPE) {
      }
    }
    ::pthread_sigmask(SIG_SETMASK, &old_mask_, nullptr);
  }
  SigpipeBlock(const SigpipeBlock&) = delete;
  SigpipeBlock& operator=(const SigpipeBlock&) = delete;

 private:
  static sigset_t PipeSet() {
    sigset_t set;
    ::sigemptyset(&set);
    ::sigaddset(&set, SIGPIPE);
    return set;
  }
  sigset_t old_mask_{};
  bool was_pending_ = false;
};

// Runs in the forked child of a possibly multi-threaded parent: async-signal-safe calls only.
// `fail(errno, what)` reports to the parent and does not return.
template <class Fail>
void SetUpChild(const char* cwd, pid_t parent, const Fail& fail) {
  // Own process group, so a timeout can kill the child and every descendant with one kill().
  if (::setpgid(0, 0) != 0) fail(errno, "setpgid");
  // Dies with the daemon (SIGKILL included) instead of writing on behind a restarted one. The
  // signal comes when the forking *thread* ends; Run() waits for the child on that thread, so
  // the thread outlives it. What the child starts is covered by child_record.hpp.
  if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) fail(errno, "prctl(PR_SET_PDEATHSIG)");
  if (::getppid() != parent) ::_exit(127);  // the daemon died before prctl took effect
  // The mask and ignored dispositions survive exec; a daemon thread that blocks signals or
  // ignores SIGPIPE must not hand that to e.g. `yes | head`, which would then never end.
  sigset_t none;
  ::sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  ::sigaction(SIGPIPE, &dfl, nullptr);
  // bp::start_dir ignores chdir() failure in 1.74, which would run the command in the wrong
  // directory, so the child changes directory itself and reports failure.
  if (cwd != nullptr && ::chdir(cwd) != 0) fail(errno, "chdir");
  // Pipes other threads are setting up for their own children are not close-on-exec
  // (bp::async_pipe uses plain pipe()). If our child kept one, that other Run would not see EOF
  // until our child exited. Marking instead of closing keeps Boost's exec-error pipe working.
  if (::close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) != 0) {
    rlimit lim{};
    ::getrlimit(RLIMIT_NOFILE, &lim);
    for (rlim_t fd = 3; fd < lim.rlim_cur; ++fd) ::fcntl(static_cast<int>(fd), F_SETFD, FD_CLOEXEC);
  }
}

template <class StdinInit>
bp::child Spawn(const boost::filesystem::path& exe, const std::vector<std::string>& args,
                Envp& envp, const std::string& cwd, bp::async_pipe& out, bp::async_pipe& err,
                StdinInit&& in, std::error_code& ec) {
  auto use_envp = bp::extend::on_setup([&envp](auto& exec) { exec.env = envp.get(); });
  const pid_t parent = ::getpid();
  auto set_up_child = bp::extend::on_exec_setup([&cwd, parent](auto& exec) {
    const auto fail = [&exec](int err_no, const char* what) {
      exec.set_error(std::error_code(err_no, std::system_category()), what);
      // set_error in the child only reports; it does not stop the exec.
      ::_exit(127);
    };
    SetUpChild(cwd.empty() ? nullptr : cwd.c_str(), parent, fail);
  });
  // Boost forgets the forked pid when startup fails, leaving a zombie (or, if it got as far as
  // exec, a live orphan). Reap it here while the pid is still ours.
  auto reap_on_error = bp::extend::on_error([](auto& exec, const std::error_code&) {
    if (exec.pid <= 0) return;
    ::kill(exec.pid, SIGKILL);
    int status = 0;
    while (::waitpid(exec.pid, &status, 0) < 0 && errno == EINTR) {
    }
  });
  // Passing `ec` (an error handler) makes Boost call on_error instead of throwing past it.
  return bp::child(bp::exe = exe, bp::args = args, bp::std_out > out, bp::std_err > err,
                   std::forward<StdinInit>(in), use_envp, set_up_child, reap_on_error, ec);
}

// All the asynchronous state of one Run, on one private io_context so concurrent Runs share
// nothing. Completion is "every stream at EOF and the child exited" or the timeout path.
class Session {
 public:
  Session(const ProcessSpec& spec, ProcessResult& result)
      : spec_(spec), result_(result), out_buf_(kReadChunk), err_buf_(kReadChunk) {
    if (spec.stdin_data) in_.emplace(io_);
  }

  bp::async_pipe& out() { return out_; }
  bp::async_pipe& err() { return err_; }
  bp::async_pipe* in() { return in_ ? &*in_ : nullptr; }

  void Pump(pid_t pid) {
    pid_ = pid;
    // Before WriteStdin: asio may attempt the first write right away, not inside run().
    std::optional<SigpipeBlock> block_sigpipe;
    if (in_) block_sigpipe.emplace();
    ReadStdout();
    ReadStderr();
    if (in_) WriteStdin();
    WatchExit();
    if (spec_.timeout.count() > 0) {
      timer_.expires_after(spec_.timeout);
      timer_.async_wait([this](const boost::system::error_code& ec) { OnTimeout(ec); });
    }
    if (spec_.cancelled) PollCancel();
    io_.run();
    if (result_.stderr_tail.size() > spec_.stderr_tail_bytes) {
      result_.stderr_tail.erase(0, result_.stderr_tail.size() - spec_.stderr_tail_bytes);
    }
  }

 private:
  void ReadStdout() {
    ++pending_;
    out_.async_read_some(asio::buffer(out_buf_),
                         [this](const boost::system::error_code& ec, std::size_t n) {
                           result_.stdout_data.append(out_buf_.data(), n);
                           DeliverLines(/*eof=*/static_cast<bool>(ec));
                           if (ec) return Done();
                           --pending_;
                           ReadStdout();
                         });
  }

  // Hands complete stdout lines to spec_.on_stdout_line; at EOF also an unterminated last one.
  void DeliverLines(bool eof) {
    if (!spec_.on_stdout_line) return;
    const std::string& out = result_.stdout_data;
    size_t nl;
    while ((nl = out.find('\n', line_start_)) != std::string::npos) {
      spec_.on_stdout_line(out.substr(line_start_, nl - line_start_));
      line_start_ = nl + 1;
    }
    if (eof && line_start_ < out.size()) {
      spec_.on_stdout_line(out.substr(line_start_));
      line_start_ = out.size();
    }
  }

  void ReadStderr() {
    ++pending_;
    err_.async_read_some(asio::buffer(err_buf_),
                         [this](const boost::system::error_code& ec, std::size_t n) {
                           AppendStderr(n);
                           if (ec) return Done();
                           --pending_;
                           ReadStderr();
                         });
  }

  void AppendStderr(std::size_t n) {
    std::string& tail = result_.stderr_tail;
    tail.append(err_buf_.data(), n);
    // Trim lazily (only once well past the limit) so a chatty child costs O(n), not O(n * limit).
    const std::size_t keep = spec_.stderr_tail_bytes;
    if (tail.size() > 2 * keep + kReadChunk) tail.erase(0, tail.size() - keep);
  }

  void WriteStdin() {
    ++pending_;
    asio::async_write(*in_, asio::buffer(*spec_.stdin_data),
                      [this](const boost::system::error_code&, std::size_t) {
                        // EPIPE only means the child stopped reading early; its exit status
                        // says whether that mattered. Either way the child must see EOF.
                        boost::system::error_code ignored;
                        in_->close(ignored);
                        Done();
                      });
  }

  void WatchExit() {
    // A pidfd turns "child exited" into an fd event, so the timeout also covers a child that
    // closed its output early, without SIGCHLD handlers (which belong to the whole process).
    // Raw syscall: glibc 2.36's <sys/pidfd.h> lacks extern "C"; pidfd_open() won't link from C++.
    const int fd = static_cast<int>(::syscall(SYS_pidfd_open, pid_, 0));
    if (fd < 0) return;  // old kernel: EOF on the pipes is all we can wait for
    exit_watch_.emplace(io_, fd);
    ++pending_;
    exit_watch_->async_wait(asio::posix::stream_descriptor::wait_read,
                            [this](const boost::system::error_code&) { Done(); });
  }

  void Done() {
    if (--pending_ == 0) {
      timer_.cancel();
      poll_.cancel();
    }
  }

  void PollCancel() {
    poll_.expires_after(kCancelPoll);
    poll_.async_wait([this](const boost::system::error_code& ec) {
      if (ec || pending_ == 0) return;
      if (!spec_.cancelled()) return PollCancel();
      result_.cancelled = true;
      // SIGTERM first: podman and skopeo then leave their storage consistent.
      ::kill(-pid_, SIGTERM);
      ::kill(pid_, SIGTERM);
      poll_.expires_after(kKillGrace);
      poll_.async_wait([this](const boost::system::error_code& grace_ec) {
        if (grace_ec || pending_ == 0) return;
        ::kill(-pid_, SIGKILL);
        ::kill(pid_, SIGKILL);
        poll_.expires_after(kKillGrace);
        poll_.async_wait([this](const boost::system::error_code& last_ec) {
          if (!last_ec && pending_ != 0) ClosePipes();
        });
      });
    });
  }

  void OnTimeout(const boost::system::error_code& ec) {
    // pending_ == 0: everything finished while this handler was already queued.
    if (ec || pending_ == 0) return;
    result_.timed_out = true;
    result_.timeout = spec_.timeout;
    ::kill(-pid_, SIGKILL);
    ::kill(pid_, SIGKILL);  // in case the child moved itself out of its group
    timer_.expires_after(kKillGrace);
    timer_.async_wait([this](const boost::system::error_code& grace_ec) {
      if (grace_ec || pending_ == 0) return;
      ClosePipes();
    });
  }

  // After SIGKILL and a grace: a descendant that left the group may still hold our pipes.
  void ClosePipes() {
    boost::system::error_code ignored;
    out_.close(ignored);
    err_.close(ignored);
    if (in_) in_->close(ignored);
    if (exit_watch_) exit_watch_->close(ignored);
  }

  const ProcessSpec& spec_;
  ProcessResult& result_;
  // Declared first so it outlives every I/O object below.
  asio::io_context io_;
  bp::async_pipe out_{io_};
  bp::async_pipe err_{io_};
  std::optional<bp::async_pipe> in_;
  std::optional<asio::posix::stream_descriptor> exit_watch_;
  asio::steady_timer timer_{io_};
  asio::steady_timer poll_{io_};  // spec_.cancelled, then the grace before SIGKILL
  std::vector<char> out_buf_;
  std::vector<char> err_buf_;
  int pending_ = 0;
  size_t line_start_ = 0;  // first stdout byte not yet handed to on_stdout_line
  pid_t pid_ = -1;
};

// If anything throws between spawn and reaping, take the descendants down with the child
// (bp::child's destructor only kills and reaps the child itself).
class GroupKillGuard {
 public:
  explicit GroupKillGuard(pid_t pgid) : pgid_(pgid) {}
  ~GroupKillGuard() {
    if (pgid_ > 0) ::kill(-pgid_, SIGKILL);
  }
  void Release() { pgid_ = -1; }
  GroupKillGuard(const GroupKillGuard&) = delete;
  GroupKillGuard& operator=(const GroupKillGuard&) = delete;

 private:
  pid_t pgid_;
};

// The child's process group is in the daemon's record (child_record.hpp) while it runs.
class ChildRecordGuard {
 public:
  ChildRecordGuard(pid_t pgid, const std::string& command) : pgid_(pgid) {
    RecordChildStarted(pgid, command);
  }
  ~ChildRecordGuard() { RecordChildEnded(pgid_); }
  ChildRecordGuard(const ChildRecordGuard&) = delete;
  ChildRecordGuard& operator=(const ChildRecordGuard&) = delete;

 private:
  pid_t pgid_;
};

void CheckCwd(const ProcessSpec& spec) {
  if (spec.cwd.empty()) return;
  std::error_code ec;
  if (!std::filesystem::is_directory(spec.cwd, ec)) {
    throw Error(Errc::kNotFound,
                spec.argv[0] + ": working directory " + spec.cwd.string() + " does not exist");
  }
}

// Boost hands back only an errno, so re-check what could have gone away since we validated.
[[noreturn]] void ThrowStartFailure(const ProcessSpec& spec, const std::error_code& ec) {
  CheckCwd(spec);
  if (ec.value() == ENOENT) throw NotFound(spec.argv[0]);
  throw Error(Errc::kProcess, spec.argv[0] + ": cannot start: " + ec.message());
}

}  // namespace

std::string ProcessResult::Describe() const {
  if (timed_out) {
    if (timeout.count() > 0) return "timed out after " + FormatDuration(timeout) + " (killed)";
    return "timed out (killed)";
  }
  if (cancelled) return "cancelled (stopped)";
  if (term_signal != 0) return "killed by signal " + std::to_string(term_signal);
  return "exited with status " + std::to_string(exit_code);
}

ProcessResult SystemProcessRunner::Run(const ProcessSpec& spec) {
  if (spec.argv.empty() || spec.argv[0].empty()) {
    throw Error(Errc::kInvalid, "cannot run a command with an empty argv");
  }
  for (const std::string& arg : spec.argv) {
    // exec would silently cut the argument at the NUL and run something else than asked.
    if (arg.find('\0') != std::string::npos) {
      throw Error(Errc::kInvalid, spec.argv[0] + ": argument contains a NUL byte");
    }
  }
  CheckCwd(spec);
  const boost::filesystem::path exe = ResolveExecutable(spec);
  const std::vector<std::string> args(spec.argv.begin() + 1, spec.argv.end());
  Envp envp(spec);
  const std::string cwd = spec.cwd.string();

  ProcessResult result;
  std::optional<Session> session;
  std::error_code spawn_ec;
  bp::child child;
  try {
    session.emplace(spec, result);
    if (bp::async_pipe* in = session->in()) {
      child =
          Spawn(exe, args, envp, cwd, session->out(), session->err(), bp::std_in < *in, spawn_ec);
    } else {
      child =
          Spawn(exe, args, envp, cwd, session->out(), session->err(), bp::std_in.null(), spawn_ec);
    }
  } catch (const std::system_error& e) {  // pipe() or open("/dev/null") failed, e.g. EMFILE
    throw Error(Errc::kProcess, spec.argv[0] + ": cannot start: " + e.what());
  }
  if (spawn_ec || !child.valid()) ThrowStartFailure(spec, spawn_ec);

  GroupKillGuard guard(child.id());
  ChildRecordGuard record(child.id(), spec.argv[0]);
  session->Pump(child.id());

  // Plain waitpid: never bp's async on_exit, whose SIGCHLD signal_set would steal other
  // threads' children.
  std::error_code wait_ec;
  child.wait(wait_ec);
  guard.Release();
  if (wait_ec) {
    throw Error(Errc::kInternal, spec.argv[0] + ": lost its exit status: " + wait_ec.message());
  }
  // exit_code() in 1.74 folds signals into small numbers (killed by 9 looks like exit 9), so
  // decode the raw wait status ourselves.
  const int status = child.native_exit_code();
  if (WIFSIGNALED(status)) {
    result.term_signal = WTERMSIG(status);
    result.exit_code = -1;
  } else if (WIFEXITED(status)) {
    result.exit_code = WEXITSTATUS(status);
  }
  return result;
}

ProcessResult RunChecked(ProcessRunner& runner, const ProcessSpec& spec) {
  ProcessResult result = runner.Run(spec);
  if (result.ok()) return result;
  std::string message = CommandForMessage(spec.argv) + ": " + result.Describe();
  std::string_view tail = result.stderr_tail;
  // The tail may start inside a multi-byte character; drop the orphaned continuation bytes.
  while (!tail.empty() && (static_cast<unsigned char>(tail.front()) & 0xC0) == 0x80) {
    tail.remove_prefix(1);
  }
  tail = Trim(tail);
  if (!tail.empty()) {
    message += ": ";
    message += tail;
  }
  throw Error(result.timed_out ? Errc::kTimeout : Errc::kProcess, message);
}

}  // namespace lca
