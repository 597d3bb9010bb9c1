#include "common/logging.hpp"

#include <spdlog/details/log_msg.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/ansicolor_sink.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <syslog.h>
#include <systemd/sd-journal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <mutex>

#include "common/error.hpp"

namespace lca {
namespace {

// The fields of the scopes open on this thread, outermost first.
thread_local LogFields tls_scoped;
// The fields of the LogEvent being logged on this thread, if any.
thread_local const LogFields* tls_event = nullptr;

bool ValidFieldName(std::string_view name) {
  if (name.empty() || name.size() > 64 || name[0] == '_') return false;
  if (name[0] >= '0' && name[0] <= '9') return false;
  for (char c : name) {
    if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_')) return false;
  }
  return true;
}

int SyslogPriority(spdlog::level::level_enum level) {
  switch (level) {
    case spdlog::level::trace:
    case spdlog::level::debug:
      return LOG_DEBUG;
    case spdlog::level::info:
      return LOG_INFO;
    case spdlog::level::warn:
      return LOG_WARNING;
    case spdlog::level::err:
      return LOG_ERR;
    case spdlog::level::critical:
      return LOG_CRIT;
    default:
      return LOG_INFO;
  }
}

// Native journal entries with our fields. spdlog's systemd_sink sends a fixed set of fields
// only; this one adds the thread's scoped and event fields.
class JournalSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  explicit JournalSink(std::string ident) : ident_(std::move(ident)) {}

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    const auto entry =
        JournalEntry(ident_, msg.level, std::string_view(msg.payload.data(), msg.payload.size()),
                     CurrentLogFields());
    std::vector<iovec> iov;
    iov.reserve(entry.size());
    for (const auto& f : entry) {
      iov.push_back(iovec{const_cast<char*>(f.data()), f.size()});
    }
    const int r = sd_journal_sendv(iov.data(), static_cast<int>(iov.size()));
    if (r < 0) {
      // The journal went away: keep the record on stderr rather than lose it.
      std::fprintf(stderr, "%.*s\n", static_cast<int>(msg.payload.size()), msg.payload.data());
    }
  }
  void flush_() override {}

 private:
  std::string ident_;
};

class FieldsFlag final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg&, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    const std::string text = RenderLogFields(CurrentLogFields());
    dest.append(text.data(), text.data() + text.size());
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<FieldsFlag>();
  }
};

}  // namespace

bool StderrIsJournal() {
  const char* js = std::getenv("JOURNAL_STREAM");
  if (js == nullptr) return false;
  struct stat st {};
  if (::fstat(STDERR_FILENO, &st) != 0) return false;
  unsigned long long dev = 0, ino = 0;
  if (std::sscanf(js, "%llu:%llu", &dev, &ino) != 2) return false;
  return dev == st.st_dev && ino == st.st_ino;
}

ScopedLogFields::ScopedLogFields(LogFields fields) : restore_size_(tls_scoped.size()) {
  for (auto& f : fields) tls_scoped.push_back(std::move(f));
}

ScopedLogFields::~ScopedLogFields() { tls_scoped.resize(restore_size_); }

void LogEvent(spdlog::level::level_enum level, std::string_view id, const LogFields& fields,
              std::string_view message) {
  LogFields all;
  all.reserve(fields.size() + 1);
  all.emplace_back("MESSAGE_ID", std::string(id));
  all.insert(all.end(), fields.begin(), fields.end());
  const LogFields* outer = tls_event;
  tls_event = &all;
  try {
    spdlog::log(level, "{}", message);
  } catch (...) {
    tls_event = outer;
    throw;
  }
  tls_event = outer;
}

LogFields CurrentLogFields() {
  LogFields out;
  auto add = [&](const LogField& f) {
    for (auto& existing : out) {
      if (existing.first == f.first) {
        existing.second = f.second;
        return;
      }
    }
    out.push_back(f);
  };
  for (const auto& f : tls_scoped) add(f);
  if (tls_event != nullptr) {
    for (const auto& f : *tls_event) add(f);
  }
  return out;
}

std::vector<std::string> JournalEntry(std::string_view ident, spdlog::level::level_enum level,
                                      std::string_view message, const LogFields& fields) {
  std::vector<std::string> out;
  out.push_back("MESSAGE=" + std::string(message));
  out.push_back("PRIORITY=" + std::to_string(SyslogPriority(level)));
  out.push_back("SYSLOG_IDENTIFIER=" + std::string(ident));
  std::vector<LogField> kept;
  for (const auto& f : fields) {
    // Ours never override what the sink sets itself.
    if (!ValidFieldName(f.first) || f.first == "MESSAGE" || f.first == "PRIORITY" ||
        f.first == "SYSLOG_IDENTIFIER") {
      continue;
    }
    bool replaced = false;
    for (auto& k : kept) {
      if (k.first == f.first) {
        k.second = f.second;
        replaced = true;
      }
    }
    if (!replaced) kept.push_back(f);
  }
  for (const auto& [name, value] : kept) out.push_back(name + "=" + value);
  return out;
}

std::string RenderLogFields(const LogFields& fields) {
  if (fields.empty()) return "";
  std::string out = " [";
  bool first = true;
  for (const auto& [name, value] : fields) {
    if (!first) out += ' ';
    first = false;
    out += name;
    out += '=';
    const bool quote = value.empty() || value.find_first_of(" \"\\\t\n=[]") != std::string::npos;
    if (!quote) {
      out += value;
      continue;
    }
    out += '"';
    for (char c : value) {
      if (c == '"' || c == '\\') {
        out += '\\';
        out += c;
      } else if (c == '\n') {
        out += "\\n";
      } else if (c == '\t') {
        out += "\\t";
      } else {
        out += c;
      }
    }
    out += '"';
  }
  out += ']';
  return out;
}

std::unique_ptr<spdlog::formatter> MakeLogFormatter(const std::string& pattern) {
  auto f = std::make_unique<spdlog::pattern_formatter>();
  f->add_flag<FieldsFlag>('*').set_pattern(pattern);
  return f;
}

LogTarget ParseLogTarget(std::string_view name) {
  if (name == "auto") return LogTarget::kAuto;
  if (name == "stderr") return LogTarget::kStderr;
  if (name == "journal") return LogTarget::kJournal;
  if (name == "human") return LogTarget::kHuman;
  throw Error(Errc::kInvalid,
              "log format '" + std::string(name) + "' is not one of auto, stderr, journal, human");
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
    auto sink = std::make_shared<JournalSink>(std::string(ident));
    logger = std::make_shared<spdlog::logger>(std::string(ident), sink);
    // journald stamps time, priority and identifier itself; the fields go as fields.
    logger->set_pattern("%v");
  } else if (target == LogTarget::kHuman) {
    auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
    logger = std::make_shared<spdlog::logger>(std::string(ident), sink);
    logger->set_formatter(MakeLogFormatter(kHumanLogPattern));
  } else if (::isatty(STDERR_FILENO)) {
    auto sink = std::make_shared<spdlog::sinks::ansicolor_stderr_sink_mt>();
    logger = std::make_shared<spdlog::logger>(std::string(ident), sink);
    logger->set_formatter(MakeLogFormatter("%^%l%$ %v%*"));
  } else {
    auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
    logger = std::make_shared<spdlog::logger>(std::string(ident), sink);
    logger->set_formatter(MakeLogFormatter("%Y-%m-%dT%H:%M:%S.%e %l %v%*"));
  }
  logger->set_level(lvl);
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);
}

}  // namespace lca
