#pragma once
// The step journal: before a handler touches the host it records the step as "started"
// (atomically, fsynced); after, "done". A daemon killed in between finds the started step on
// restart and either runs it again (idempotent steps) or undoes it: the Mender "before/in"
// marker pattern with stable string names.
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "common/json_yaml.hpp"
#include "common/timeutil.hpp"

namespace lca {

struct JournalStep {
  std::string name;   // stable, e.g. "stateroot.import"; never an enum ordinal
  std::string state;  // "started" | "done" | "failed"
  TimePoint started_at{};
  std::optional<TimePoint> finished_at;
  Json data = Json::object();  // what the step needs to resume or undo (paths, checksums)
  std::string error;           // for "failed"
};

class StepJournal {
 public:
  static constexpr int kVersion = 1;
  static constexpr const char* kFileName = "journal.json";

  // Loads <state_dir>/journal.json if present. An unknown version is an lca::Error kInvalid
  // ("journal version N is not supported by this agent") rather than a guess.
  explicit StepJournal(std::filesystem::path state_dir);

  // Steps of the current upgrade cycle, from Prep to the return to Idle, oldest first. Names
  // carry their stage ("prep.stateroot.import", "abort.stateroots") so one cycle's steps
  // never collide and abort can see what Prep made.
  const std::vector<JournalStep>& steps() const { return steps_; }
  // Records `name` as started (persisted before returning: call it before the host step).
  void Start(const std::string& name, Json data = Json::object());
  void Done(const std::string& name);
  void Fail(const std::string& name, const std::string& error);
  // Forgets everything: the cycle ended (back to Idle) and its effects are settled.
  void Clear();

  const JournalStep* Find(const std::string& name) const;
  bool IsDone(const std::string& name) const;
  // The step that was started and never finished: what a killed daemon was doing.
  const JournalStep* Interrupted() const;

 private:
  void Persist();
  JournalStep& Require(const std::string& name);
  JournalStep* FindMutable(const std::string& name);

  std::filesystem::path path_;
  std::vector<JournalStep> steps_;
};

}  // namespace lca
