#pragma once
// Runs a command to completion for a test (argv vector, extra environment), keeping stdout and
// the end of stderr. Tests only.
#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/process.hpp"

namespace lca::test {

struct CmdResult {
  int code = -1;
  std::string out, err;
};

// argv with `env` added; a signal death is 128+signal, as a shell reports it.
inline CmdResult RunCmd(const std::vector<std::string>& argv,
                        const std::map<std::string, std::string>& env,
                        std::optional<std::string> stdin_data = std::nullopt,
                        std::chrono::milliseconds timeout = std::chrono::milliseconds(120000)) {
  SystemProcessRunner runner;
  const ProcessResult r = runner.Run(ProcessSpec{.argv = argv,
                                                 .env = env,
                                                 .timeout = timeout,
                                                 .stdin_data = std::move(stdin_data),
                                                 .stderr_tail_bytes = 1 << 16});
  return {r.term_signal != 0 ? 128 + r.term_signal : r.exit_code, r.stdout_data, r.stderr_tail};
}

}  // namespace lca::test
