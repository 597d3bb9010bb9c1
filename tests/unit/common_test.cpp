// Unit tests for the common library: atomic file replacement, failpoints, JSON/YAML conversion
// and time/duration formatting.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "common/atomic_file.hpp"
#include "common/base64.hpp"
#include "common/error.hpp"
#include "common/failpoint.hpp"
#include "common/json_yaml.hpp"
#include "common/timeutil.hpp"

namespace lca {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using std::chrono::seconds;

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "common_test.XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

// Restores the process umask when the test ends, pass or fail.
class ScopedUmask {
 public:
  explicit ScopedUmask(mode_t mask) : old_(::umask(mask)) {}
  ~ScopedUmask() { ::umask(old_); }
  ScopedUmask(const ScopedUmask&) = delete;
  ScopedUmask& operator=(const ScopedUmask&) = delete;

 private:
  mode_t old_;
};

mode_t ModeOf(const fs::path& p) {
  struct stat st {};
  if (::stat(p.c_str(), &st) != 0) return static_cast<mode_t>(-1);
  return st.st_mode & 07777;
}

std::set<std::string> Entries(const fs::path& dir) {
  std::set<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.insert(e.path().filename().string());
  return names;
}

void WritePlain(const fs::path& p, const std::string& data) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << data;
}

// Every test starts and ends with no failpoint armed and LCA_FAILPOINTS unset.
class FailpointFixture : public ::testing::Test {
 protected:
  void SetUp() override { Reset(); }
  void TearDown() override { Reset(); }
  static void Reset() {
    ::unsetenv("LCA_FAILPOINTS");
    ReloadFailpoints();
  }
};

// ---------------------------------------------------------------------------------------------
// WriteFileAtomic / ReadFileIfExists / EnsureDir

using AtomicFileTest = FailpointFixture;

TEST_F(AtomicFileTest, WritesContent) {
  TempDir tmp;
  const fs::path target = tmp.path() / "data.json";
  const std::string data = std::string("line1\nline2\n") + std::string(1, '\0') + "tail";
  WriteFileAtomic(target, data, 0644);
  EXPECT_EQ(ReadFile(target), data);
  EXPECT_EQ(ReadFileIfExists(target), data);
}

TEST_F(AtomicFileTest, WritesEmptyContent) {
  TempDir tmp;
  const fs::path target = tmp.path() / "empty";
  WriteFileAtomic(target, "", 0600);
  EXPECT_EQ(ReadFile(target), "");
}

TEST_F(AtomicFileTest, ModeIsExactWithUmaskZero) {
  ScopedUmask mask(0);
  TempDir tmp;
  WriteFileAtomic(tmp.path() / "a", "x", 0600);
  WriteFileAtomic(tmp.path() / "b", "x", 0644);
  EXPECT_EQ(ModeOf(tmp.path() / "a"), 0600u);
  EXPECT_EQ(ModeOf(tmp.path() / "b"), 0644u);
}

TEST_F(AtomicFileTest, ModeIsExactWithRestrictiveUmask) {
  ScopedUmask mask(077);
  TempDir tmp;
  WriteFileAtomic(tmp.path() / "a", "x", 0600);
  WriteFileAtomic(tmp.path() / "b", "x", 0644);
  EXPECT_EQ(ModeOf(tmp.path() / "a"), 0600u);
  EXPECT_EQ(ModeOf(tmp.path() / "b"), 0644u);
}

TEST_F(AtomicFileTest, ReplacesExistingFileContentAndMode) {
  ScopedUmask mask(022);
  TempDir tmp;
  const fs::path target = tmp.path() / "state";
  WritePlain(target, "old content that is longer than the new one");
  ASSERT_EQ(::chmod(target.c_str(), 0644), 0);
  WriteFileAtomic(target, "new", 0600);
  EXPECT_EQ(ReadFile(target), "new");
  EXPECT_EQ(ModeOf(target), 0600u);
  WriteFileAtomic(target, "newer", 0644);
  EXPECT_EQ(ReadFile(target), "newer");
  EXPECT_EQ(ModeOf(target), 0644u);
}

TEST_F(AtomicFileTest, LeavesNoTempFileAfterSuccess) {
  TempDir tmp;
  const fs::path target = tmp.path() / "state";
  for (int i = 0; i < 5; ++i) WriteFileAtomic(target, "v" + std::to_string(i), 0600);
  EXPECT_EQ(Entries(tmp.path()), std::set<std::string>{"state"});
  EXPECT_EQ(ReadFile(target), "v4");
}

TEST_F(AtomicFileTest, ErrorBeforeRenameKeepsOldContentAndRemovesTemp) {
  TempDir tmp;
  const fs::path target = tmp.path() / "state";
  WriteFileAtomic(target, "original", 0600);
  SetFailpoint("atomic-write.before-rename", "error");
  try {
    WriteFileAtomic(target, "replacement", 0644);
    FAIL() << "WriteFileAtomic did not throw with the failpoint armed";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::kInternal);
    EXPECT_NE(std::string(e.what()).find("atomic-write.before-rename"), std::string::npos)
        << e.what();
  }
  EXPECT_EQ(ReadFile(target), "original");
  EXPECT_EQ(ModeOf(target), 0600u);
  EXPECT_EQ(Entries(tmp.path()), std::set<std::string>{"state"});

  SetFailpoint("atomic-write.before-rename", "");
  WriteFileAtomic(target, "replacement", 0644);
  EXPECT_EQ(ReadFile(target), "replacement");
}

TEST_F(AtomicFileTest, ErrorAfterRenameHasAlreadyReplaced) {
  TempDir tmp;
  const fs::path target = tmp.path() / "state";
  WriteFileAtomic(target, "original", 0600);
  SetFailpoint("atomic-write.after-rename", "error");
  EXPECT_THROW(WriteFileAtomic(target, "replacement", 0600), Error);
  EXPECT_EQ(ReadFile(target), "replacement");
  EXPECT_EQ(Entries(tmp.path()), std::set<std::string>{"state"});
}

TEST_F(AtomicFileTest, MissingDirectoryThrowsIo) {
  TempDir tmp;
  try {
    WriteFileAtomic(tmp.path() / "no" / "such" / "file", "x", 0600);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::kIo);
  }
}

// A crash (the failpoint _exits with 137, as SIGKILL or power loss would leave things) between
// writing the temp file and renaming it leaves the target untouched. The temp file may remain:
// that is expected, and readers never look at it.
TEST_F(AtomicFileTest, CrashBeforeRenameKeepsOriginal) {
  TempDir tmp;
  const fs::path target = tmp.path() / "state";
  WriteFileAtomic(target, "original", 0600);

  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0) << "fork failed";
  if (pid == 0) {
    // Child: only _exit from here on, so gtest's state in the parent is never disturbed.
    try {
      ::setenv("LCA_FAILPOINTS", "atomic-write.before-rename=crash", 1);
      ReloadFailpoints();
      WriteFileAtomic(target, "replacement", 0600);
    } catch (...) {
      ::_exit(2);
    }
    ::_exit(1);  // the failpoint did not fire
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status)) << "child status " << status;
  EXPECT_EQ(WEXITSTATUS(status), 137);

  EXPECT_EQ(ReadFile(target), "original");
  EXPECT_EQ(ModeOf(target), 0600u);
  // Whatever else is in the directory is a leftover temp file, never the target's content.
  for (const auto& name : Entries(tmp.path())) {
    if (name == "state") continue;
    EXPECT_EQ(name.rfind(".state.tmp.", 0), 0u) << "unexpected file " << name;
  }
  // The parent's failpoints were never armed by the child.
  WriteFileAtomic(target, "after", 0600);
  EXPECT_EQ(ReadFile(target), "after");
}

TEST(ReadFileTest, MissingFileIsNullopt) {
  TempDir tmp;
  EXPECT_EQ(ReadFileIfExists(tmp.path() / "missing"), std::nullopt);
  EXPECT_EQ(ReadFileIfExists(tmp.path() / "missing-dir" / "file"), std::nullopt);
}

TEST(ReadFileTest, ReadFileOfMissingIsNotFound) {
  TempDir tmp;
  try {
    ReadFile(tmp.path() / "missing");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::kNotFound);
  }
}

TEST(ReadFileTest, DirectoryIsAnErrorNotEmptyContent) {
  TempDir tmp;
  EXPECT_THROW(ReadFileIfExists(tmp.path()), Error);
}

TEST(EnsureDirTest, CreatesNestedDirectoriesWithMode) {
  ScopedUmask mask(022);
  TempDir tmp;
  const fs::path dir = tmp.path() / "a" / "b" / "c";
  EnsureDir(dir, 0700);
  EXPECT_TRUE(fs::is_directory(dir));
  EXPECT_EQ(ModeOf(dir), 0700u);
  // Idempotent.
  EnsureDir(dir, 0700);
  EXPECT_EQ(ModeOf(dir), 0700u);
}

TEST(EnsureDirTest, TightensExistingDirectory) {
  TempDir tmp;
  const fs::path dir = tmp.path() / "existing";
  ASSERT_TRUE(fs::create_directory(dir));
  ASSERT_EQ(::chmod(dir.c_str(), 0777), 0);
  WritePlain(dir / "keep", "kept");
  EnsureDir(dir, 0700);
  EXPECT_EQ(ModeOf(dir), 0700u);
  EXPECT_EQ(ReadFile(dir / "keep"), "kept");
}

TEST(EnsureDirTest, FileInTheWayIsAnError) {
  TempDir tmp;
  WritePlain(tmp.path() / "file", "x");
  EXPECT_THROW(EnsureDir(tmp.path() / "file" / "sub", 0700), Error);
}

// ---------------------------------------------------------------------------------------------
// Failpoints

using FailpointTest = FailpointFixture;

TEST_F(FailpointTest, ErrorThrowsWithName) {
  SetFailpoint("test.error-point", "error");
  try {
    HitFailpoint("test.error-point");
    FAIL() << "failpoint did not throw";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::kInternal);
    EXPECT_NE(std::string(e.what()).find("test.error-point"), std::string::npos) << e.what();
  }
  // Fires on every hit when there is no N* prefix.
  EXPECT_THROW(HitFailpoint("test.error-point"), Error);
}

TEST_F(FailpointTest, MacroHitsTheNamedPoint) {
  SetFailpoint("test.macro", "error");
  EXPECT_THROW(LCA_FAILPOINT("test.macro"), Error);
}

TEST_F(FailpointTest, SleepSleepsAtLeastThatLong) {
  SetFailpoint("test.sleep", "sleep(50)");
  const auto start = std::chrono::steady_clock::now();
  HitFailpoint("test.sleep");
  const auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_GE(elapsed, milliseconds(50));
}

TEST_F(FailpointTest, NthHitFiresOnlyOnThatHit) {
  SetFailpoint("test.second", "2*error");
  EXPECT_NO_THROW(HitFailpoint("test.second"));
  EXPECT_THROW(HitFailpoint("test.second"), Error);
  EXPECT_NO_THROW(HitFailpoint("test.second"));
  EXPECT_NO_THROW(HitFailpoint("test.second"));
}

TEST_F(FailpointTest, ArmedThroughEnvironment) {
  ::setenv("LCA_FAILPOINTS", "test.env-a=error,test.env-b=sleep(1),test.env-c=2*error", 1);
  ReloadFailpoints();
  EXPECT_THROW(HitFailpoint("test.env-a"), Error);
  EXPECT_NO_THROW(HitFailpoint("test.env-b"));
  EXPECT_NO_THROW(HitFailpoint("test.env-c"));
  EXPECT_THROW(HitFailpoint("test.env-c"), Error);
  // Reloading with the variable gone disarms everything.
  ::unsetenv("LCA_FAILPOINTS");
  ReloadFailpoints();
  EXPECT_NO_THROW(HitFailpoint("test.env-a"));
}

TEST_F(FailpointTest, UnknownActionInEnvironmentIsInvalid) {
  ::setenv("LCA_FAILPOINTS", "test.bad=explode", 1);
  try {
    ReloadFailpoints();
    FAIL() << "ReloadFailpoints accepted an unknown action";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::kInvalid);
    EXPECT_NE(std::string(e.what()).find("explode"), std::string::npos) << e.what();
  }
}

TEST_F(FailpointTest, MissingEqualsInEnvironmentIsInvalid) {
  ::setenv("LCA_FAILPOINTS", "test.noaction", 1);
  try {
    ReloadFailpoints();
    FAIL() << "ReloadFailpoints accepted an item without '='";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::kInvalid);
  }
}

TEST_F(FailpointTest, UnknownActionProgrammaticallyIsInvalid) {
  try {
    SetFailpoint("test.bad", "panic");
    FAIL() << "SetFailpoint accepted an unknown action";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::kInvalid);
  }
  EXPECT_NO_THROW(HitFailpoint("test.bad"));
}

TEST_F(FailpointTest, EmptyActionDisarms) {
  SetFailpoint("test.disarm", "error");
  EXPECT_THROW(HitFailpoint("test.disarm"), Error);
  SetFailpoint("test.disarm", "");
  EXPECT_NO_THROW(HitFailpoint("test.disarm"));
  // Disarming something never armed is fine.
  EXPECT_NO_THROW(SetFailpoint("test.never-armed", ""));
}

TEST_F(FailpointTest, UnarmedNamesAreNoOps) {
  EXPECT_NO_THROW(HitFailpoint("test.unarmed"));
  SetFailpoint("test.other", "error");
  EXPECT_NO_THROW(HitFailpoint("test.unarmed"));
  EXPECT_NO_THROW(HitFailpoint(""));
  EXPECT_NO_THROW(HitFailpoint("test.othe"));
}

// ---------------------------------------------------------------------------------------------
// JSON / YAML

TEST(JsonTest, ParsesValidJson) {
  const Json j = ParseJson(R"({"b": 1, "a": [true, null, "x"]})", "config");
  EXPECT_EQ(j["b"], 1);
  EXPECT_EQ(j["a"][0], true);
  EXPECT_TRUE(j["a"][1].is_null());
  // ordered_json keeps document order.
  EXPECT_EQ(j.begin().key(), "b");
}

TEST(JsonTest, ParseErrorIsInvalidAndNamesWhat) {
  try {
    ParseJson("{\"a\": ", "/var/lib/lca/state.json");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::kInvalid);
    EXPECT_EQ(std::string(e.what()).rfind("/var/lib/lca/state.json", 0), 0u) << e.what();
  }
}

TEST(JsonTest, PrettyJsonHasTrailingNewline) {
  const std::string s = ToPrettyJson(Json{{"a", 1}});
  EXPECT_EQ(s, "{\n  \"a\": 1\n}\n");
}

TEST(YamlTest, TypesPlainScalars) {
  const Json j = ParseYaml(R"(
int: 42
neg: -7
float: 4.15
exp: 1e3
yes: true
no: False
nothing: null
tilde: ~
empty:
word: hello
version: 4.15.2
)",
                           "test");
  EXPECT_TRUE(j["int"].is_number_integer());
  EXPECT_EQ(j["int"], 42);
  EXPECT_EQ(j["neg"], -7);
  EXPECT_TRUE(j["float"].is_number_float());
  EXPECT_DOUBLE_EQ(j["float"].get<double>(), 4.15);
  EXPECT_TRUE(j["exp"].is_number_float());
  EXPECT_DOUBLE_EQ(j["exp"].get<double>(), 1000.0);
  EXPECT_EQ(j["yes"], true);
  EXPECT_EQ(j["no"], false);
  EXPECT_TRUE(j["nothing"].is_null());
  EXPECT_TRUE(j["tilde"].is_null());
  EXPECT_TRUE(j["empty"].is_null());
  EXPECT_EQ(j["word"], "hello");
  EXPECT_EQ(j["version"], "4.15.2");
}

TEST(YamlTest, QuotedScalarsStayStrings) {
  const Json j = ParseYaml(R"(
a: "4.15"
b: 'true'
c: "123"
d: "null"
e: ""
f: '~'
)",
                           "test");
  EXPECT_EQ(j["a"], "4.15");
  EXPECT_EQ(j["b"], "true");
  EXPECT_EQ(j["c"], "123");
  EXPECT_EQ(j["d"], "null");
  EXPECT_EQ(j["e"], "");
  EXPECT_EQ(j["f"], "~");
  for (const auto& [k, v] : j.items()) EXPECT_TRUE(v.is_string()) << k;
}

TEST(YamlTest, SequencesAndNesting) {
  const Json j = ParseYaml("spec:\n  items:\n  - 1\n  - two\n  - {x: 3}\n", "test");
  const Json want = {{"spec", {{"items", Json::array({1, "two", Json{{"x", 3}}})}}}};
  EXPECT_EQ(j, want);
}

TEST(YamlTest, ParseErrorIsInvalidAndNamesWhat) {
  try {
    ParseYaml("a: [1, 2\n", "manifest.yaml");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::kInvalid);
    EXPECT_EQ(std::string(e.what()).rfind("manifest.yaml", 0), 0u) << e.what();
  }
}

TEST(YamlTest, ToYamlRoundTrips) {
  Json j = Json::object();
  j["apiVersion"] = "lca.openshift.io/v1";
  j["strings"] = {
      {"version", "4.15.2"}, {"float-like", "4.15"}, {"int-like", "123"},     {"bool-like", "true"},
      {"yes-like", "yes"},   {"empty", ""},          {"colon", "a: b"},       {"dash", "- x"},
      {"null-like", "null"}, {"tilde", "~"},         {"lead", " lead"},       {"trail", "trail "},
      {"hash", "a #b"},      {"brace", "{x}"},       {"quote", "say \"hi\""}, {"multi", "l1\nl2"},
      {"star", "*ref"},      {"colon-end", "key:"},  {"plain", "hello world"}};
  j["numbers"] = {{"int", 42}, {"neg", -7}, {"float", 1.5}, {"big", 9007199254740993LL}};
  j["bools"] = {{"t", true}, {"f", false}};
  j["nothing"] = nullptr;
  j["emptyObject"] = Json::object();
  j["emptyArray"] = Json::array();
  j["list"] = Json::array(
      {"4.15", 1, true, nullptr, Json{{"name", "x"}, {"v", "1.0"}}, Json::array({"nested", ""})});
  j["deep"] = {{"a", {{"b", {{"c", "true"}}}}}};

  const std::string yaml = ToYaml(j);
  ASSERT_FALSE(yaml.empty());
  EXPECT_EQ(yaml.back(), '\n');
  const Json back = ParseYaml(yaml, "round trip");
  EXPECT_EQ(back, j) << "YAML was:\n" << yaml << "\nparsed back:\n" << back.dump(2);
}

TEST(YamlTest, ToYamlOfScalarsAndEmpties) {
  EXPECT_EQ(ParseYaml(ToYaml(Json::object()), "t"), Json::object());
  EXPECT_EQ(ParseYaml(ToYaml(Json::array()), "t"), Json::array());
  EXPECT_EQ(ParseYaml(ToYaml(Json("4.15")), "t"), Json("4.15"));
  EXPECT_EQ(ParseYaml(ToYaml(Json(3)), "t"), Json(3));
}

TEST(YamlTest, ParseYamlDocumentsSplitsStream) {
  const std::vector<Json> docs = ParseYamlDocuments(R"(---
kind: A
name: "1"
---
kind: B
count: 2
---
- x
- y
)",
                                                    "stream");
  ASSERT_EQ(docs.size(), 3u);
  EXPECT_EQ(docs[0], (Json{{"kind", "A"}, {"name", "1"}}));
  EXPECT_EQ(docs[1], (Json{{"kind", "B"}, {"count", 2}}));
  EXPECT_EQ(docs[2], Json::array({"x", "y"}));
}

TEST(YamlTest, ParseYamlDocumentsSkipsEmptyDocuments) {
  const std::vector<Json> docs = ParseYamlDocuments("---\n---\na: 1\n---\n", "stream");
  ASSERT_EQ(docs.size(), 1u);
  EXPECT_EQ(docs[0], (Json{{"a", 1}}));
}

TEST(YamlTest, ParseYamlDocumentsErrorIsInvalid) {
  try {
    ParseYamlDocuments("a: 1\n---\nb: [\n", "stream.yaml");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::kInvalid);
    EXPECT_NE(std::string(e.what()).find("stream.yaml"), std::string::npos) << e.what();
  }
}

// ---------------------------------------------------------------------------------------------
// Time and durations

TEST(TimeTest, FormatsKnownInstants) {
  EXPECT_EQ(FormatTime(TimePoint(seconds(0))), "1970-01-01T00:00:00Z");
  EXPECT_EQ(FormatTime(TimePoint(seconds(1700000000))), "2023-11-14T22:13:20Z");
}

TEST(TimeTest, ParseFormatRoundTrip) {
  for (long long t : {0LL, 1LL, 951782400LL /* 2000-02-29 */, 1700000000LL, 4102444799LL}) {
    const TimePoint tp{seconds(t)};
    EXPECT_EQ(ParseTime(FormatTime(tp)), tp) << FormatTime(tp);
  }
  const TimePoint now = Now();
  EXPECT_EQ(ParseTime(FormatTime(now)), now);
  EXPECT_EQ(FormatTime(ParseTime("2024-01-31T10:00:00Z")), "2024-01-31T10:00:00Z");
}

TEST(TimeTest, ParseTimeRejectsGarbageAndOffsets) {
  for (const char* bad :
       {"", "garbage", "2024-01-31", "2024-01-31 10:00:00Z", "2024-01-31T10:00:00+01:00",
        "2024-01-31T10:00:00-05:00", "2024-01-31T10:00:00+00:00", "2024-01-31T10:00:00Zjunk"}) {
    try {
      ParseTime(bad);
      ADD_FAILURE() << "ParseTime accepted '" << bad << "'";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), Errc::kInvalid) << bad;
    }
  }
}

TEST(DurationTest, FormatLikeGo) {
  EXPECT_EQ(FormatDuration(seconds(0)), "0s");
  EXPECT_EQ(FormatDuration(seconds(45)), "45s");
  EXPECT_EQ(FormatDuration(seconds(60)), "1m0s");
  EXPECT_EQ(FormatDuration(seconds(3600)), "1h0m0s");
  EXPECT_EQ(FormatDuration(seconds(3723)), "1h2m3s");
  EXPECT_EQ(FormatDuration(seconds(-90)), "-1m30s");
}

TEST(DurationTest, ParsesKubectlSyntax) {
  EXPECT_EQ(ParseDuration("90s"), milliseconds(90'000));
  EXPECT_EQ(ParseDuration("5m"), milliseconds(300'000));
  EXPECT_EQ(ParseDuration("1h30m"), milliseconds(5'400'000));
  EXPECT_EQ(ParseDuration("2h"), milliseconds(7'200'000));
  EXPECT_EQ(ParseDuration("1.5h"), milliseconds(5'400'000));
  EXPECT_EQ(ParseDuration("500ms"), milliseconds(500));
  EXPECT_EQ(ParseDuration("30"), milliseconds(30'000));
  EXPECT_EQ(ParseDuration("0"), milliseconds(0));
  EXPECT_EQ(ParseDuration("1m30s"), milliseconds(90'000));
  EXPECT_EQ(ParseDuration(".5s"), milliseconds(500));
  EXPECT_EQ(ParseDuration("1500us"), milliseconds(2));  // rounded to the nearest millisecond
}

TEST(DurationTest, RejectsMalformed) {
  for (const char* bad :
       {"", "5x", "m5", "1h-", "-", "5m30", "1h 30m", " 5m", "5m ", "s", ".", ".s", "1.2.3s"}) {
    try {
      ParseDuration(bad);
      ADD_FAILURE() << "ParseDuration accepted '" << bad << "'";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), Errc::kInvalid) << bad;
    } catch (const std::exception& e) {
      ADD_FAILURE() << "ParseDuration('" << bad << "') threw a non-lca exception: " << e.what();
    }
  }
}

TEST(DurationTest, RejectsOverflow) {
  for (const std::string& bad : {std::string(400, '9') + "h", std::string("99999999999999h")}) {
    try {
      ParseDuration(bad);
      ADD_FAILURE() << "ParseDuration accepted '" << bad << "'";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), Errc::kInvalid);
    } catch (const std::exception& e) {
      ADD_FAILURE() << "ParseDuration threw a non-lca exception: " << e.what();
    }
  }
}

TEST(AgeTest, FormatsLikeKubectl) {
  EXPECT_EQ(FormatAge(seconds(0)), "0s");
  EXPECT_EQ(FormatAge(seconds(59)), "59s");
  EXPECT_EQ(FormatAge(seconds(119)), "119s");
  EXPECT_EQ(FormatAge(seconds(120)), "2m");
  EXPECT_EQ(FormatAge(seconds(300)), "5m");
  EXPECT_EQ(FormatAge(seconds(3 * 3600)), "3h");
  EXPECT_EQ(FormatAge(seconds(47 * 3600)), "47h");
  EXPECT_EQ(FormatAge(seconds(2 * 86400)), "2d");
  EXPECT_EQ(FormatAge(seconds(-5)), "0s");  // clock skew never prints a negative age
}

}  // namespace
}  // namespace lca

// RFC 4648 §10's test vectors, both ways; decoding tolerates what hand-written auth files have.
TEST(Base64, Rfc4648VectorsRoundTrip) {
  const std::pair<const char*, const char*> vectors[] = {{"", ""},
                                                         {"f", "Zg=="},
                                                         {"fo", "Zm8="},
                                                         {"foo", "Zm9v"},
                                                         {"foob", "Zm9vYg=="},
                                                         {"fooba", "Zm9vYmE="},
                                                         {"foobar", "Zm9vYmFy"}};
  for (const auto& [plain, encoded] : vectors) {
    EXPECT_EQ(lca::Base64Encode(plain), encoded) << plain;
    EXPECT_EQ(lca::Base64Decode(encoded), plain) << encoded;
  }
  EXPECT_EQ(lca::Base64Encode(std::string("\xff\x00\x10", 3)), "/wAQ");
  EXPECT_EQ(lca::Base64Decode("Zm9v\r\nYmFy"), "foobar");
  EXPECT_EQ(lca::Base64Decode("Zm8"), "fo") << "unpadded";
  EXPECT_THROW(lca::Base64Decode("Zm9v YmFy"), lca::Error);
}
