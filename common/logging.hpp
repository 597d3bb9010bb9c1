#pragma once
// spdlog setup shared by the daemon and the CLI, and structured journal fields.
//
// Records can carry journal fields (LCA_STAGE, LCA_STEP, LCA_DEPLOYMENT, MESSAGE_ID, ...):
//  - ScopedLogFields adds fields to every record this thread logs while it lives (the
//    reconciler's worker sets the stage and deployment, a journaled step its name);
//  - LogEvent logs one record with a MESSAGE_ID and extra fields (stage transitions, reboots).
// The journal sink sends them as native fields (sd_journal_sendv), so
// `journalctl MESSAGE_ID=<id>` or `journalctl LCA_STAGE=Prep` select them; the stderr sink
// renders them after the message as " [LCA_STAGE=Prep LCA_STEP=prep.fetch]".
#include <spdlog/spdlog.h>

#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace lca {

enum class LogTarget {
  kAuto,     // journald when stderr is connected to it (JOURNAL_STREAM), else stderr
  kStderr,   // plain lines: colour on a terminal, timestamps otherwise; fields after the text
  kJournal,  // native journal entries with priorities, SYSLOG_IDENTIFIER and our fields
  kHuman,    // for a person reading a file: "15:04:05.000 info  <message>", no fields
};

// "auto", "stderr", "journal" or "human" (lifecycle-agent --log-format); anything else throws
// lca::Error kInvalid naming the choices.
LogTarget ParseLogTarget(std::string_view name);

// Installs the default logger named `ident`. `level` is trace|debug|info|warn|error|off;
// anything else throws lca::Error kInvalid.
void SetupLogging(std::string_view ident, std::string_view level,
                  LogTarget target = LogTarget::kAuto);

// True when stderr is the journal's stream for this process (systemd sets JOURNAL_STREAM to
// "<dev>:<ino>" of the stream it connected).
bool StderrIsJournal();

// A journal field: NAME is [A-Z0-9_], not starting with '_' (journald drops others; so do we).
using LogField = std::pair<std::string, std::string>;
using LogFields = std::vector<LogField>;

// Fixed MESSAGE_IDs (journalctl --new-id128 style, 32 lowercase hex digits). They never change:
// operators and alert rules select on them (documented in docs/ with the fields).
namespace message_id {
// A stage transition was accepted or a stage's work ended (LCA_STAGE, LCA_TRANSITION,
// LCA_OUTCOME, LCA_DEPLOYMENT).
inline constexpr std::string_view kStageTransition = "91c3ae9196ff40f0b1714c7b0e01aeea";
// A reboot was requested (LCA_REBOOT_RATIONALE, plus the stage/step context).
inline constexpr std::string_view kRebootRequest = "59e146309d4c4cdcad4e63e8d8d1f5c4";
}  // namespace message_id

// Fields added to every record this thread logs while the object lives. Nested scopes add to
// (and for the same name, override) the outer ones; destruction restores the outer set.
class ScopedLogFields {
 public:
  explicit ScopedLogFields(LogFields fields);
  // ScopedLogFields f{{"LCA_STEP", name}, {"LCA_WORK", "Prep"}};
  ScopedLogFields(std::initializer_list<LogField> fields) : ScopedLogFields(LogFields(fields)) {}
  ~ScopedLogFields();
  ScopedLogFields(const ScopedLogFields&) = delete;
  ScopedLogFields& operator=(const ScopedLogFields&) = delete;

 private:
  size_t restore_size_;
};

// Logs `message` at `level` with MESSAGE_ID=`id` and `fields` on top of the scoped ones.
void LogEvent(spdlog::level::level_enum level, std::string_view id, const LogFields& fields,
              std::string_view message);

// The fields the record being logged on this thread carries: the scoped ones, then the
// current LogEvent's (later names win). Sinks call it from inside their sink_it_.
LogFields CurrentLogFields();

// The journal entry for one record, as "NAME=value" strings in the order sent: MESSAGE,
// PRIORITY, SYSLOG_IDENTIFIER, then `fields` (invalid names dropped, duplicates: last wins).
std::vector<std::string> JournalEntry(std::string_view ident, spdlog::level::level_enum level,
                                      std::string_view message, const LogFields& fields);

// " [A=1 B=two words]" for the stderr sink ("" without fields); values with spaces or quotes
// are JSON-quoted so the line stays parseable.
std::string RenderLogFields(const LogFields& fields);

// LogTarget::kHuman's pattern: time of day, level padded to 5, the message; no journal fields
// (they are for journalctl's selectors, not for reading).
inline constexpr const char* kHumanLogPattern = "%H:%M:%S.%e %-5l %v";

// A formatter for `pattern` where the flag "%*" renders RenderLogFields(CurrentLogFields()).
std::unique_ptr<spdlog::formatter> MakeLogFormatter(const std::string& pattern);

}  // namespace lca
