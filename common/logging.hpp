#pragma once
// spdlog setup shared by the daemon and the CLI.
#include <spdlog/spdlog.h>

#include <string>
#include <string_view>

namespace lca {

enum class LogTarget {
  kAuto,     // journald when stderr is connected to it (JOURNAL_STREAM), else stderr
  kStderr,   // plain lines: colour on a terminal, timestamps otherwise
  kJournal,  // native journal entries with priorities and SYSLOG_IDENTIFIER
};

// Installs the default logger named `ident`. `level` is trace|debug|info|warn|error|off;
// anything else throws lca::Error kInvalid.
void SetupLogging(std::string_view ident, std::string_view level,
                  LogTarget target = LogTarget::kAuto);

// True when stderr is the journal's stream for this process (systemd sets JOURNAL_STREAM to
// "<dev>:<ino>" of the stream it connected).
bool StderrIsJournal();

}  // namespace lca
