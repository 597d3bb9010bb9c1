#include "agent/store/step_journal.hpp"

#include <unistd.h>

#include "common/atomic_file.hpp"
#include "common/error.hpp"
#include "common/failpoint.hpp"

namespace lca {

StepJournal::StepJournal(std::filesystem::path state_dir) : path_(state_dir / kFileName) {
  auto data = ReadFileIfExists(path_);
  if (!data) return;
  WithContext("loading step journal " + path_.string(), [&] {
    Json j = ParseJson(*data, "journal");
    const int version = j.value("version", 0);
    if (version != kVersion) {
      throw Error(Errc::kInvalid, "journal version " + std::to_string(version) +
                                      " is not supported by this agent (it reads version " +
                                      std::to_string(kVersion) + ")");
    }
    for (const auto& s : j.value("steps", Json::array())) {
      JournalStep step;
      step.name = s.at("name").get<std::string>();
      step.state = s.at("state").get<std::string>();
      step.started_at = ParseTime(s.at("startedAt").get<std::string>());
      if (s.contains("finishedAt"))
        step.finished_at = ParseTime(s["finishedAt"].get<std::string>());
      step.data = s.value("data", Json::object());
      step.error = s.value("error", "");
      steps_.push_back(std::move(step));
    }
  });
}

void StepJournal::Persist() {
  Json j = Json::object();
  j["version"] = kVersion;
  Json steps = Json::array();
  for (const auto& s : steps_) {
    Json sj = Json::object();
    sj["name"] = s.name;
    sj["state"] = s.state;
    sj["startedAt"] = FormatTime(s.started_at);
    if (s.finished_at) sj["finishedAt"] = FormatTime(*s.finished_at);
    if (!s.data.empty()) sj["data"] = s.data;
    if (!s.error.empty()) sj["error"] = s.error;
    steps.push_back(std::move(sj));
  }
  j["steps"] = std::move(steps);
  WriteFileAtomic(path_, ToPrettyJson(j), 0600);
}

void StepJournal::Start(const std::string& name, Json data) {
  if (JournalStep* existing = FindMutable(name)) {
    existing->state = "started";
    existing->started_at = Now();
    existing->finished_at.reset();
    existing->data = std::move(data);
    existing->error.clear();
  } else {
    steps_.push_back(JournalStep{name, "started", Now(), std::nullopt, std::move(data), ""});
  }
  Persist();
  // The crash matrix kills the daemon here: journaled, host step not yet run.
  LCA_FAILPOINT("step." + name);
}

JournalStep& StepJournal::Require(const std::string& name) {
  if (JournalStep* s = FindMutable(name)) return *s;
  throw Error(Errc::kInternal, "step journal: step '" + name + "' was never started");
}

void StepJournal::Done(const std::string& name) {
  JournalStep& s = Require(name);
  s.state = "done";
  s.finished_at = Now();
  Persist();
}

void StepJournal::Fail(const std::string& name, const std::string& error) {
  JournalStep& s = Require(name);
  s.state = "failed";
  s.finished_at = Now();
  s.error = error;
  Persist();
}

void StepJournal::Clear() {
  steps_.clear();
  std::error_code ec;
  std::filesystem::remove(path_, ec);
  if (ec) throw Error(Errc::kIo, "removing " + path_.string() + ": " + ec.message());
  FsyncDir(path_.parent_path());
}

JournalStep* StepJournal::FindMutable(const std::string& name) {
  for (auto& s : steps_) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

const JournalStep* StepJournal::Find(const std::string& name) const {
  for (const auto& s : steps_) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

bool StepJournal::IsDone(const std::string& name) const {
  const JournalStep* s = Find(name);
  return s != nullptr && s->state == "done";
}

const JournalStep* StepJournal::Interrupted() const {
  for (const auto& s : steps_) {
    if (s.state == "started") return &s;
  }
  return nullptr;
}

}  // namespace lca
