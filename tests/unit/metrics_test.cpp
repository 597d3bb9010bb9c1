// The Prometheus exposition: every line checked against the text format's grammar (written
// here independently of the writer), label escaping, the metrics derived from an object, the
// rollback counters and their persistence, the listen address rules and the TCP endpoint.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <regex>
#include <set>

#include "agent/api/conditions.hpp"
#include "agent/api/history.hpp"
#include "agent/metrics/collector.hpp"
#include "agent/metrics/exposition.hpp"
#include "agent/metrics/tcp_listener.hpp"
#include "agent/store/step_journal.hpp"
#include "common/atomic_file.hpp"
#include "common/error.hpp"
#include "tests/support/temp_dir.hpp"

namespace lca::metrics {
namespace {

// Checks the 0.0.4 text format line by line: HELP then TYPE once per family, before its samples;
// samples name{label="escaped",...} value; no family split. Returns the problems found.
std::vector<std::string> ValidateExposition(const std::string& text) {
  std::vector<std::string> problems;
  const std::regex help(R"(# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) (([^\\\n]|\\\\|\\n)*))");
  const std::regex type(
      R"(# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped))");
  const std::regex sample(
      R"(([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\\\|\\"|\\n)*")(,[a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\\\|\\"|\\n)*")*\})? (-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?|NaN|\+Inf|-Inf))");
  if (text.empty() || text.back() != '\n') problems.push_back("must end with a newline");
  std::set<std::string> done_families;
  std::string current, helped;
  std::istringstream in(text);
  int n = 0;
  for (std::string line; std::getline(in, line);) {
    ++n;
    const std::string at = "line " + std::to_string(n) + " '" + line + "': ";
    std::smatch m;
    if (std::regex_match(line, m, help)) {
      if (done_families.count(m[1]) != 0) problems.push_back(at + "family repeated");
      if (!current.empty()) done_families.insert(current);
      current.clear();
      helped = m[1];
    } else if (std::regex_match(line, m, type)) {
      if (m[1] != helped) problems.push_back(at + "TYPE without its HELP just before");
      current = m[1];
      helped.clear();
    } else if (std::regex_match(line, m, sample)) {
      if (m[1] != current) problems.push_back(at + "sample outside its family");
    } else {
      problems.push_back(at + "not HELP, TYPE or a sample");
    }
  }
  return problems;
}

api::ImageBasedUpgrade PrepInPrecache(TimePoint t0) {
  api::ImageBasedUpgrade ibu = api::NewDefault(t0, "uid-1");
  ibu.spec.stage = api::Stage::kPrep;
  ibu.status = api::Status{};
  api::ConditionWriter(*ibu.status, 1, t0).PrepInProgress("Precache job in progress");
  api::StartStageHistory(*ibu.status, api::Stage::kPrep, t0);
  api::StartPhaseHistory(*ibu.status, api::Stage::kPrep, api::phase::kStateroot, t0);
  api::StopPhaseHistory(*ibu.status, api::Stage::kPrep, api::phase::kStateroot,
                        t0 + std::chrono::seconds(42));
  api::StartPhaseHistory(*ibu.status, api::Stage::kPrep, api::phase::kPrecache,
                         t0 + std::chrono::seconds(42));
  return ibu;
}

TEST(Exposition, EscapesLabelValuesAndHelp) {
  ExpositionWriter w;
  w.Family("lca_x", "gauge", "help with \\ and\nnewline");
  w.Sample({{"a", "q\"uote"}, {"b", "back\\slash"}, {"c", "new\nline"}}, 1.5);
  w.Sample({}, 3);
  const std::string text = w.Text();
  EXPECT_EQ(text,
            "# HELP lca_x help with \\\\ and\\nnewline\n"
            "# TYPE lca_x gauge\n"
            "lca_x{a=\"q\\\"uote\",b=\"back\\\\slash\",c=\"new\\nline\"} 1.5\n"
            "lca_x 3\n");
  EXPECT_TRUE(ValidateExposition(text).empty());
  const auto parsed = ParseExposition(text);
  ASSERT_EQ(parsed.size(), 2u);
  EXPECT_EQ(parsed[0].labels.at("a"), "q\"uote");
  EXPECT_EQ(parsed[0].labels.at("b"), "back\\slash");
  EXPECT_EQ(parsed[0].labels.at("c"), "new\nline");
  EXPECT_EQ(parsed[0].value, 1.5);
}

TEST(Exposition, RefusesBadNamesAndMalformedLines) {
  ExpositionWriter w;
  EXPECT_THROW(w.Family("lca-bad", "gauge", "x"), Error);
  EXPECT_THROW(w.Family("lca_x", "histogramm", "x"), Error);
  w.Family("lca_ok", "gauge", "x");
  EXPECT_THROW(w.Sample({{"bad-label", "v"}}, 1), Error);
  EXPECT_THROW(ParseExposition("lca_x{a=\"unterminated} 1\n"), Error);
  EXPECT_THROW(ParseExposition("lca_x one\n"), Error);
  EXPECT_THROW(ParseExposition("lca_x{a=\"\\q\"} 1\n"), Error);
  EXPECT_EQ(FormatValue(1e20), "1e+20");
  EXPECT_EQ(FormatValue(-7), "-7");
}

TEST(RenderMetrics, EveryLineIsValidAndTheValuesFollowTheObject) {
  const TimePoint t0 = ParseTime("2025-03-01T10:00:00Z");
  MetricsInput in;
  in.object = PrepInPrecache(t0);
  // A phase name with every character that needs escaping.
  api::StartPhaseHistory(*in.object.status, api::Stage::kPrep, "we\"ird\\phase\nname", t0);
  in.now = t0 + std::chrono::seconds(100);
  in.progress.prep_reported = true;
  in.progress.prep_bytes_done = 2048;
  in.progress.prep_bytes_total = 2048;
  in.progress.precache_reported = true;
  in.progress.precache_bytes_done = 500;
  in.progress.precache_bytes_total = 1000;
  in.precache = precache::PrecacheStatus{20, 5, 1, {"quay.io/x/y:1"}};
  in.counters.rollbacks["post-pivot"] = 2;
  in.counters.last_error = 1700000000;

  const std::string text = RenderMetrics(in);
  const auto problems = ValidateExposition(text);
  EXPECT_TRUE(problems.empty()) << ::testing::PrintToString(problems) << "\n" << text;

  const auto s = ParseExposition(text);
  EXPECT_EQ(FindSample(s, "lca_stage", {{"stage", "Prep"}}), 1);
  EXPECT_EQ(FindSample(s, "lca_stage", {{"stage", "Idle"}}), 0);
  EXPECT_EQ(FindSample(s, "lca_condition",
                       {{"type", "PrepInProgress"}, {"status", "True"}, {"reason", "InProgress"}}),
            1);
  EXPECT_EQ(FindSample(s, "lca_prep_bytes_done"), 2048);
  EXPECT_EQ(FindSample(s, "lca_prep_bytes_total"), 2048);
  EXPECT_EQ(FindSample(s, "lca_precache_images_done"), 6);
  EXPECT_EQ(FindSample(s, "lca_precache_images_failed"), 1);
  EXPECT_EQ(FindSample(s, "lca_precache_images_total"), 20);
  EXPECT_EQ(FindSample(s, "lca_precache_bytes_done"), 500);
  EXPECT_EQ(FindSample(s, "lca_precache_bytes_total"), 1000);
  EXPECT_EQ(FindSample(s, "lca_stage_duration_seconds", {{"stage", "Prep"}}), 100);
  EXPECT_EQ(
      FindSample(s, "lca_phase_duration_seconds", {{"stage", "Prep"}, {"phase", "Stateroot"}}), 42);
  EXPECT_EQ(FindSample(s, "lca_phase_duration_seconds", {{"stage", "Prep"}, {"phase", "Precache"}}),
            58);  // running: so far
  EXPECT_EQ(FindSample(s, "lca_phase_duration_seconds", {{"phase", "we\"ird\\phase\nname"}}), 100);
  EXPECT_EQ(FindSample(s, "lca_rollbacks_total", {{"cause", "post-pivot"}}), 2);
  EXPECT_EQ(FindSample(s, "lca_rollbacks_total", {{"cause", "init-monitor"}}), 0);
  EXPECT_EQ(FindSample(s, "lca_rollbacks_total", {{"cause", "manual"}}), 0);
  EXPECT_EQ(FindSample(s, "lca_last_error_timestamp_seconds"), 1700000000);
  EXPECT_NE(text.find("# TYPE lca_rollbacks_total counter\n"), std::string::npos);
}

TEST(RenderMetrics, AFreshIdleObjectHasNoProgressFamilies) {
  MetricsInput in;
  in.object = api::NewDefault(ParseTime("2025-03-01T10:00:00Z"), "u");
  in.now = ParseTime("2025-03-01T10:00:00Z");
  const std::string text = RenderMetrics(in);
  EXPECT_TRUE(ValidateExposition(text).empty()) << text;
  EXPECT_EQ(text.find("lca_prep_bytes"), std::string::npos);
  EXPECT_EQ(text.find("lca_precache_"), std::string::npos);
  EXPECT_EQ(text.find("lca_phase_duration_seconds{"), std::string::npos);
  EXPECT_NE(text.find("lca_stage{stage=\"Idle\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("lca_last_error_timestamp_seconds 0\n"), std::string::npos);
}

api::ImageBasedUpgrade UpgradeFailedWith(const std::string& message, TimePoint t) {
  api::ImageBasedUpgrade ibu = api::NewDefault(t, "uid-7");
  ibu.spec.stage = api::Stage::kUpgrade;
  ibu.status = api::Status{};
  api::ConditionWriter(*ibu.status, 1, t).UpgradeFailed(message);
  return ibu;
}

std::string Cause(const api::ImageBasedUpgrade& ibu) {
  const auto rb = RollbackInObject(ibu);
  return rb ? rb->cause : "(none)";
}

TEST(RollbackInObject, NamesTheCause) {
  const TimePoint t = ParseTime("2025-03-01T10:00:00Z");
  EXPECT_EQ(Cause(UpgradeFailedWith("Rollback due to LCA Init Monitor timeout, after 5s", t)),
            "init-monitor");
  EXPECT_EQ(Cause(UpgradeFailedWith("Rollback due to postpivot failure: hook x", t)), "post-pivot");
  api::ImageBasedUpgrade manual = api::NewDefault(t, "u");
  manual.status = api::Status{};
  api::ConditionWriter(*manual.status, 1, t).RollbackRequested();
  EXPECT_EQ(Cause(manual), "manual");
  EXPECT_FALSE(RollbackInObject(UpgradeFailedWith("pre-pivot hook failed", t)));
  EXPECT_FALSE(RollbackInObject(api::NewDefault(t, "u")));
}

TEST(MetricsRecorder, CountsEachRollbackOnceAndKeepsCountsAcrossRestarts) {
  test::TempDir dir;
  const TimePoint t = ParseTime("2025-03-01T10:00:00Z");
  const auto first = UpgradeFailedWith("Rollback due to LCA Init Monitor timeout, after 5s", t);
  {
    MetricsRecorder r(dir.path());
    r.Observe(first);
    r.Observe(first);  // the same rollback seen again
    EXPECT_EQ(r.Snapshot().rollbacks.at("init-monitor"), 1u);
    EXPECT_EQ(r.Snapshot().last_error, t.time_since_epoch().count());
    // Idle empties the object; the counter stays.
    r.Observe(api::NewDefault(t, "uid-7"));
    EXPECT_EQ(r.Snapshot().rollbacks.at("init-monitor"), 1u);
  }
  EXPECT_EQ(
      std::filesystem::status(dir / "metrics.json").permissions() & std::filesystem::perms::all,
      std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  MetricsRecorder again(dir.path());
  again.Observe(first);  // not a new rollback after a restart either
  const auto second = UpgradeFailedWith("Rollback due to LCA Init Monitor timeout, after 5s",
                                        t + std::chrono::hours(1));
  again.Observe(second);
  EXPECT_EQ(again.Snapshot().rollbacks.at("init-monitor"), 2u);
  const auto s = ParseExposition(again.Render(api::NewDefault(t, "uid-7"), t));
  EXPECT_EQ(FindSample(s, "lca_rollbacks_total", {{"cause", "init-monitor"}}), 2);
}

TEST(MetricsRecorder, TheStepTheJournalHasStartedIsLcaStep) {
  test::TempDir dir;
  const TimePoint t = ParseTime("2025-03-01T10:00:00Z");
  MetricsRecorder r(dir.path());
  auto step = [&] {
    const auto samples = ParseExposition(r.Render(api::NewDefault(t, "u"), t));
    for (const auto& sm : samples) {
      if (sm.name == "lca_step") return sm.labels.at("step") + "=" + std::to_string(sm.value);
    }
    return std::string("(none)");
  };
  EXPECT_EQ(step(), "(none)");
  StepJournal journal(dir.path());
  journal.Start("prep.validate-seed");
  journal.Done("prep.validate-seed");
  EXPECT_EQ(step(), "(none)");  // between steps
  journal.Start("prep.stateroot.import");
  EXPECT_EQ(step(), "prep.stateroot.import=1.000000");
  EXPECT_TRUE(ValidateExposition(r.Render(api::NewDefault(t, "u"), t)).empty());
  journal.Fail("prep.stateroot.import", "boom");
  EXPECT_EQ(step(), "(none)");
}

TEST(ParseListenAddress, LoopbackByDefaultAndIpLiteralsOnly) {
  auto a = ParseListenAddress(":9101");
  EXPECT_EQ(a.host, "127.0.0.1");
  EXPECT_EQ(a.port, 9101);
  EXPECT_TRUE(a.loopback);
  a = ParseListenAddress("[::1]:9102");
  EXPECT_EQ(a.host, "::1");
  EXPECT_TRUE(a.loopback);
  a = ParseListenAddress("0.0.0.0:9101");
  EXPECT_FALSE(a.loopback);
  EXPECT_THROW(ParseListenAddress("localhost:9101"), Error);
  EXPECT_THROW(ParseListenAddress("127.0.0.1"), Error);
  EXPECT_THROW(ParseListenAddress("127.0.0.1:99999"), Error);
}

std::string HttpGet(uint16_t port, const std::string& request) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_port = htons(port);
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&sin), sizeof sin) != 0) {
    ::close(fd);
    return "connect failed";
  }
  (void)!::write(fd, request.data(), request.size());
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) out.append(buf, static_cast<size_t>(n));
  ::close(fd);
  return out;
}

TEST(TcpMetricsListener, ServesMetricsOnLoopback) {
  TcpMetricsListener l(ParseListenAddress("127.0.0.1:0"), [] { return std::string("lca_x 1\n"); });
  l.Start();
  ASSERT_NE(l.port(), 0);
  const auto ok = HttpGet(l.port(), "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(ok.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << ok;
  EXPECT_NE(ok.find("Content-Type: text/plain; version=0.0.4"), std::string::npos);
  EXPECT_EQ(ok.substr(ok.size() - 8), "lca_x 1\n");
  EXPECT_EQ(HttpGet(l.port(), "GET /other HTTP/1.1\r\n\r\n").rfind("HTTP/1.1 404", 0), 0u);
  EXPECT_EQ(HttpGet(l.port(), "POST /metrics HTTP/1.1\r\n\r\n").rfind("HTTP/1.1 405", 0), 0u);
  l.Stop();
  EXPECT_EQ(HttpGet(l.port(), "GET /metrics HTTP/1.1\r\n\r\n"), "connect failed");
}

}  // namespace
}  // namespace lca::metrics
