// ExtractTar against GNU `tar xzf` on the same ~260 MiB tar.gz of ~20k files. Printed, never
// asserted; not part of the test run.
//
//   build/tests/bench/extract_bench [DIR]      (DIR: where to work, default /var/tmp)
#include <stdlib.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>

#include "common/process.hpp"
#include "formats/archive.hpp"

namespace fs = std::filesystem;
using namespace lca;
using namespace lca::stateroot;

int main(int argc, char** argv) {
  std::string tmpl =
      (fs::path(argc > 1 ? argv[1] : "/var/tmp") / "lca-extract-bench.XXXXXX").string();
  if (::mkdtemp(tmpl.data()) == nullptr) return 1;
  const fs::path root = tmpl;
  SystemProcessRunner runner;
  auto run = [&](std::vector<std::string> args) {
    RunChecked(runner, ProcessSpec{.argv = std::move(args)});
  };

  // ~20k files of 1-25 KiB in 256 directories, every other one random bytes (incompressible,
  // like a repo's compressed objects), the rest text: about 260 MiB raw.
  const fs::path src = root / "tree";
  std::mt19937_64 rng(42);
  std::string random_block(1 << 20, '\0');
  for (char& c : random_block) c = static_cast<char>(rng());
  std::string text;
  while (text.size() < (1u << 20))
    text += "the quick brown fox jumps over the lazy dog 0123456789\n";
  uint64_t total = 0;
  size_t files = 0;
  for (int i = 0; total < (260ull << 20); ++i, ++files) {
    const fs::path dir = src / std::to_string(i % 256);
    if (i < 256) fs::create_directories(dir);
    const size_t size = 1024 + rng() % (24 * 1024);
    const size_t off = rng() % ((1 << 20) - size);
    const std::string& pool = (i % 2 == 0) ? random_block : text;
    std::ofstream(dir / ("f" + std::to_string(i)), std::ios::binary)
        .write(pool.data() + off, static_cast<std::streamsize>(size));
    total += size;
  }
  const fs::path tgz = root / "bench.tgz";
  run({"tar", "-czf", tgz.string(), "-C", src.string(), "."});
  fs::remove_all(src);
  const double mb = static_cast<double>(fs::file_size(tgz)) / (1 << 20);
  std::printf("extract_bench: %zu files, %.0f MiB raw, %.0f MiB tar.gz, %ld cores\n", files,
              static_cast<double>(total) / (1 << 20), mb, ::sysconf(_SC_NPROCESSORS_ONLN));

  // Each timing starts after a sync so neither pays for the other's writeback; the order
  // alternates, as later rounds run on a filesystem busier with freed inodes.
  auto seconds = [](auto&& f) {
    ::sync();
    const auto t0 = std::chrono::steady_clock::now();
    f();
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };
  for (int round = 0; round < 4; ++round) {
    const fs::path a = root / ("ours" + std::to_string(round));
    const fs::path b = root / ("gnu" + std::to_string(round));
    fs::create_directories(a);
    fs::create_directories(b);
    auto ours = [&] {
      FileSource in(tgz);
      ExtractTar(in, "bench.tgz", a);
    };
    auto gnu = [&] { run({"tar", "-xzf", tgz.string(), "-C", b.string()}); };
    double t_ours = 0, t_gnu = 0;
    if (round % 2 == 0) {
      t_ours = seconds(ours);
      t_gnu = seconds(gnu);
    } else {
      t_gnu = seconds(gnu);
      t_ours = seconds(ours);
    }
    std::printf("round %d: ExtractTar %.2fs | tar xzf %.2fs | ratio %.2f\n", round, t_ours, t_gnu,
                t_ours / t_gnu);
    fs::remove_all(a);
    fs::remove_all(b);
  }
  fs::remove_all(root);
  return 0;
}
