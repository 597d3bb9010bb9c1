#include "common/step_journal.hpp"

#include "common/atomic_file.hpp"
#include "common/error.hpp"
#include "common/failpoint.hpp"

namespace lca {

StepJournal::StepJournal(std::filesystem::path state_dir)
    : path_(state_dir / kFileName), failpoint_prefix_("step.") {
  if (auto data = ReadFileIfExists(path_)) Load(*data);
}

StepJournal::StepJournal(const std::filesystem::path& dir, const std::string& file_name)
    : path_(dir / file_name) {
  if (auto data = ReadFileIfExists(path_)) Load(*data);
}

void StepJournal::Load(const std::string& text) {
  WithContext("loading step journal " + path_.string(), [&] {
    Json j = ParseJson(text, "journal");
    if (j.is_object() && !j.contains("version") && (j.contains("done") || j.contains("step"))) {
      LoadLegacy(j);
      return;
    }
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
      // Journals written before attempts were counted: a started step was started once.
      step.attempts = s.value("attempts", step.state == "started" ? 1 : 0);
      steps_.push_back(std::move(step));
    }
    extra_ = j.value("extra", Json::object());
  });
}

// recovery's earlier formats: the backup's {"step": <running>} and the restore's
// {"running": <step>, "done": [<steps>], <facts>...}.
void StepJournal::LoadLegacy(const Json& j) {
  for (const auto& name : j.value("done", Json::array())) {
    steps_.push_back(JournalStep{name.get<std::string>(), "done", Now(), Now(), {}, "", 0});
  }
  for (const char* key : {"running", "step"}) {
    if (j.contains(key) && j[key].is_string()) {
      steps_.push_back(JournalStep{j[key].get<std::string>(), "started", Now(), {}, {}, "", 1});
    }
  }
  for (const auto& [key, value] : j.items()) {
    if (key != "done" && key != "running" && key != "step" && key != "startedAt") {
      extra_[key] = value;
    }
  }
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
    if (s.attempts > 0) sj["attempts"] = s.attempts;
    steps.push_back(std::move(sj));
  }
  j["steps"] = std::move(steps);
  if (!extra_.empty()) j["extra"] = extra_;
  WriteFileAtomic(path_, ToPrettyJson(j), 0600);
}

void StepJournal::Start(const std::string& name, Json data) {
  if (JournalStep* existing = FindMutable(name)) {
    existing->attempts = existing->state == "started" ? existing->attempts + 1 : 1;
    existing->state = "started";
    existing->started_at = Now();
    existing->finished_at.reset();
    existing->data = std::move(data);
    existing->error.clear();
  } else {
    steps_.push_back(JournalStep{name, "started", Now(), std::nullopt, std::move(data), "", 1});
  }
  Persist();
  // The crash matrix kills the daemon here: journaled, host step not yet run.
  if (!failpoint_prefix_.empty()) LCA_FAILPOINT(failpoint_prefix_ + name);
}

JournalStep& StepJournal::Require(const std::string& name) {
  if (JournalStep* s = FindMutable(name)) return *s;
  throw Error(Errc::kInternal, "step journal: step '" + name + "' was never started");
}

void StepJournal::Done(const std::string& name) {
  JournalStep& s = Require(name);
  s.state = "done";
  s.finished_at = Now();
  s.attempts = 0;
  Persist();
}

void StepJournal::Fail(const std::string& name, const std::string& error) {
  JournalStep& s = Require(name);
  s.state = "failed";
  s.finished_at = Now();
  s.error = error;
  s.attempts = 0;
  Persist();
}

void StepJournal::Clear() {
  steps_.clear();
  extra_ = Json::object();
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

int StepJournal::UnfinishedAttempts(const std::string& name) const {
  const JournalStep* s = Find(name);
  return s != nullptr && s->state == "started" ? s->attempts : 0;
}

}  // namespace lca
