#pragma once
// The step journal: before a host step runs it is recorded as "started" (atomically, fsynced);
// after, "done". A process killed in between finds the started step on restart and either runs
// it again (idempotent steps) or undoes it: the Mender "before/in" marker pattern with stable
// string names. Each start of a step that never finished counts as an attempt, so a step that
// kills the process every time can be given up on (common/step_runner.hpp).
//
// One format for the agent's journal.json and recovery's backup and restore journals; the two
// older recovery formats ({"step": ...} and {"running": ..., "done": [...]}) are still read, so
// a backup or restore interrupted by an older build resumes.
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "common/json_yaml.hpp"
#include "common/state_layout.hpp"
#include "common/timeutil.hpp"

namespace lca {

struct JournalStep {
  std::string name;   // stable, e.g. "stateroot.import"; never an enum ordinal
  std::string state;  // "started" | "done" | "failed"
  TimePoint started_at{};
  std::optional<TimePoint> finished_at;
  Json data = Json::object();  // what the step needs to resume or undo (paths, checksums)
  std::string error;           // for "failed"
  int attempts = 0;            // starts since it last finished (done or failed)
};

class StepJournal {
 public:
  static constexpr int kVersion = 1;
  static constexpr const char* kFileName = state_layout::kJournal;

  // Loads <state_dir>/journal.json if present. Start fires the failpoint "step.<name>" once the
  // step is persisted. An unknown version is an lca::Error kInvalid
  // ("journal version N is not supported by this agent") rather than a guess.
  explicit StepJournal(std::filesystem::path state_dir);
  // The same journal kept in <dir>/<file_name> (recovery's journals), without a failpoint of
  // its own (the step runner's policy names recovery's).
  StepJournal(const std::filesystem::path& dir, const std::string& file_name);

  // Steps of the current upgrade cycle, from Prep to the return to Idle, oldest first. Names
  // carry their stage ("prep.stateroot.import", "abort.stateroots") so one cycle's steps
  // never collide and abort can see what Prep made.
  const std::vector<JournalStep>& steps() const { return steps_; }
  // Records `name` as started (persisted before returning: call it before the host step). A
  // step still "started" from an earlier run counts one attempt more; otherwise attempts is 1.
  void Start(const std::string& name, Json data = Json::object());
  void Done(const std::string& name);
  void Fail(const std::string& name, const std::string& error);
  // Forgets everything: the cycle ended (back to Idle) and its effects are settled.
  void Clear();

  const JournalStep* Find(const std::string& name) const;
  bool IsDone(const std::string& name) const;
  // The step that was started and never finished: what a killed daemon was doing.
  const JournalStep* Interrupted() const;
  // How many times `name` was started without finishing (0: not started or finished).
  int UnfinishedAttempts(const std::string& name) const;

  // Journal-wide facts a resumed run needs (recovery: SELinux's mode before the restore, the
  // container ids seen before it). Persisted with the steps; Save() writes them now.
  Json& extra() { return extra_; }
  void Save() { Persist(); }

  const std::filesystem::path& path() const { return path_; }

 private:
  void Load(const std::string& text);
  void LoadLegacy(const Json& j);
  void Persist();
  JournalStep& Require(const std::string& name);
  JournalStep* FindMutable(const std::string& name);

  std::filesystem::path path_;
  std::string failpoint_prefix_;  // "step." for the agent's journal: Start fires step.<name>
  std::vector<JournalStep> steps_;
  Json extra_ = Json::object();
};

}  // namespace lca
