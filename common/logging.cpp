#include "common/logging.hpp"

#include <spdlog/sinks/ansicolor_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/sinks/systemd_sink.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include "common/error.hpp"

namespace lca {

bool StderrIsJournal() {
  const char* js = std::getenv("JOURNAL_STREAM");
  if (js == nullptr) return false;
  struct stat st {};
  if (::fstat(STDERR_FILENO, &st) != 0) return false;
  unsigned long long dev = 0, ino = 0;
  if (std::sscanf(js, "%llu:%llu", &dev, &ino) != 2) return false;
  return dev == st.st_dev && ino == st.st_ino;
}

void SetupLogging(std::string_view ident, std::string_view level, LogTarget target) {
  const auto lvl = spdlog::level::from_str(std::string(level));
  // from_str maps unknown names to "off"; only accept "off" when asked for.
  if (lvl == spdlog::level::off && level != "off") {
    throw Error(Errc::kInvalid, "log level '" + std::string(level) +
                                    "' is not one of trace, debug, info, warn, error, off");
  }
  if (target == LogTarget::kAuto)
    target = StderrIsJournal() ? LogTarget::kJournal : LogTarget::kStderr;

  std::shared_ptr<spdlog::logger> logger;
  if (target == LogTarget::kJournal) {
    auto sink = std::make_shared<spdlog::sinks::systemd_sink_mt>(std::string(ident));
    logger = std::make_shared<spdlog::logger>(std::string(ident), sink);
    logger->set_pattern("%v");  // journald stamps time, priority and identifier itself
  } else if (::isatty(STDERR_FILENO)) {
    auto sink = std::make_shared<spdlog::sinks::ansicolor_stderr_sink_mt>();
    logger = std::make_shared<spdlog::logger>(std::string(ident), sink);
    logger->set_pattern("%^%l%$ %v");
  } else {
    auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
    logger = std::make_shared<spdlog::logger>(std::string(ident), sink);
    logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %l %v");
  }
  logger->set_level(lvl);
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);
}

}  // namespace lca
