#pragma once
// Small helpers for tests that build fixtures with command-line tools (the ostree CLI, tar).
// Commands go through the product's runner (argv only), so a fixture command fails the same
// way a product one does.
#include <cctype>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "common/process.hpp"

namespace lca::test {

struct RunResult {
  int exit_code = -1;  // 127 when the program could not be started
  std::string out;     // stdout, then the stderr tail
};

inline RunResult RunArgv(const std::vector<std::string>& argv) {
  SystemProcessRunner runner;
  ProcessSpec spec;
  spec.argv = argv;
  spec.stderr_tail_bytes = 1 << 16;
  try {
    const ProcessResult r = runner.Run(spec);
    return {r.term_signal != 0 ? 128 + r.term_signal : r.exit_code, r.stdout_data + r.stderr_tail};
  } catch (const Error& e) {
    return {127, std::string("cannot start ") + argv[0] + ": " + e.what()};
  }
}

inline std::string Join(const std::vector<std::string>& argv) {
  std::string s;
  for (const auto& a : argv) s += (s.empty() ? "" : " ") + a;
  return s;
}

// Runs argv and throws, with the command and its output, unless it exits 0.
inline std::string MustRun(const std::vector<std::string>& argv) {
  RunResult r = RunArgv(argv);
  if (r.exit_code != 0) {
    throw std::runtime_error("`" + Join(argv) + "` exited " + std::to_string(r.exit_code) + ": " +
                             r.out);
  }
  return r.out;
}

inline std::string Trim(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.erase(0, 1);
  return s;
}

// Writes `text` to `p`, creating its parent directories.
inline void WriteText(const std::filesystem::path& p, const std::string& text) {
  std::filesystem::create_directories(p.parent_path());
  std::ofstream out(p);
  out << text;
  if (!out) throw std::runtime_error("writing " + p.string());
}

}  // namespace lca::test
