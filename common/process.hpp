#pragma once
// Running host commands. Everything that starts a process goes through ProcessRunner so tests can
// substitute a fake and so there is exactly one place that knows about fork/exec, pipes and
// process groups. Commands are argv vectors, never shell strings.
#include <chrono>
#include <cstddef>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace lca {

// Every member has an initializer so designated initializers (ProcessSpec{.argv = {...}}) stay
// clean under -Wextra's missing-field-initializers.
struct ProcessSpec {
  // argv[0] without a '/' is looked up in PATH: spec.env's PATH if it sets one, else ours.
  // A relative argv[0] with a '/' is relative to `cwd` (the child changes directory first).
  std::vector<std::string> argv{};
  std::map<std::string, std::string> env{};  // added to / overriding the environment
  bool inherit_env = true;                   // false: the child sees only `env`
  std::filesystem::path cwd{};               // empty: inherit
  std::chrono::milliseconds timeout{0};      // 0: none. On expiry SIGKILL the whole process group
  std::optional<std::string> stdin_data{};   // written to stdin then closed; nullopt: /dev/null
  std::size_t stderr_tail_bytes = 4096;      // how much of stderr's END to keep
  // When set, called with each line of stdout (without its '\n'; a last line without one at
  // EOF too) as it arrives, on the thread inside Run. For progress from long-running children;
  // stdout_data still gets everything. Must not throw.
  std::function<void(const std::string&)> on_stdout_line{};
  // When set, polled every 100 ms on the thread inside Run; once it returns true the process
  // group gets SIGTERM, then SIGKILL if it is still there after the kill grace. For an abort that
  // must not wait for a long pull. Must not throw.
  std::function<bool()> cancelled{};
};

struct ProcessResult {
  int exit_code = -1;         // valid when term_signal == 0
  int term_signal = 0;        // signal that ended it, or 0
  bool timed_out = false;     // the timeout expired and the process group was killed
  bool cancelled = false;     // spec.cancelled said so and the process group was stopped
  std::string stdout_data{};  // all of stdout
  std::string stderr_tail{};  // the last stderr_tail_bytes of stderr
  // The limit that expired; only Describe() reads it, so fakes may leave it 0.
  std::chrono::milliseconds timeout{0};

  bool ok() const { return !timed_out && !cancelled && term_signal == 0 && exit_code == 0; }
  // "exited with status 3" / "killed by signal 9" / "timed out after 2s (killed)"
  std::string Describe() const;
};

// The one seam for running host commands; tests inject fakes.
class ProcessRunner {
 public:
  virtual ~ProcessRunner() = default;
  // Returns whatever the process did (non-zero exit, signal, timeout are results, not errors).
  // Throws lca::Error only when no process could be started: kNotFound "<argv0>: command not
  // found", kNotFound for a missing cwd, kInvalid for an empty argv, a NUL byte in argv/env or
  // an env name containing '=', kProcess otherwise.
  virtual ProcessResult Run(const ProcessSpec& spec) = 0;
};

// Runs real processes. Stateless, so one instance may be shared by any number of threads.
class SystemProcessRunner final : public ProcessRunner {
 public:
  ProcessResult Run(const ProcessSpec& spec) override;
};

// Runs and throws lca::Error(Errc::kProcess, or kTimeout if it timed out) when !ok():
//   "<argv0 basename> <args, each cut to 200 chars>: <Describe()>: <stderr tail, trimmed>"
// A missing executable throws Errc::kNotFound "<argv0>: command not found" (from Run).
ProcessResult RunChecked(ProcessRunner& runner, const ProcessSpec& spec);

}  // namespace lca
