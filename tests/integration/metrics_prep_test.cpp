// The metrics of a real Prep: lifecycle-agent on the seed bed with metricsAddress set, scraped
// over TCP (what Prometheus does) and over the socket's /metrics while Prep runs and after.
// The Prep numbers must move (stage, condition, extraction bytes, phase durations), and the
// daemon's log lines carry the journal fields (stage, step, deployment, MESSAGE_ID).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent/client/unix_http_client.hpp"
#include "agent/metrics/exposition.hpp"
#include "common/atomic_file.hpp"
#include "common/logging.hpp"
#include "tests/support/agent_host.hpp"
#include "tests/support/free_port.hpp"

namespace lca {
namespace {

// GET /metrics over TCP; "" when nothing answers.
std::string ScrapeTcp(uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_port = htons(port);
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&sin), sizeof sin) != 0) {
    ::close(fd);
    return "";
  }
  const std::string req = "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
  (void)!::write(fd, req.data(), req.size());
  std::string out;
  char buf[8192];
  for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) out.append(buf, static_cast<size_t>(n));
  ::close(fd);
  if (out.rfind("HTTP/1.1 200", 0) != 0) return "";
  return out.substr(out.find("\r\n\r\n") + 4);
}

class MetricsPrepTest : public test::SeedBedSuite {
 protected:
  test::TempDir tmp_{"lca-metrics-prep"};
};

TEST_F(MetricsPrepTest, PrepCountersMoveDuringARealPrep) {
  test::AgentHost host(tmp_.path(), *bed);
  const uint16_t port = test::FreePort();
  // AgentHost passes --config <dir>/none.yaml: the metrics address goes there.
  WriteFileAtomic(tmp_ / "none.yaml", "metricsAddress: 127.0.0.1:" + std::to_string(port) + "\n",
                  0644);
  host.Start();

  using metrics::FindSample;
  const auto before = metrics::ParseExposition(ScrapeTcp(port));
  ASSERT_EQ(FindSample(before, "lca_stage", {{"stage", "Idle"}}), 1);
  EXPECT_FALSE(FindSample(before, "lca_prep_bytes_done"));
  EXPECT_FALSE(FindSample(before, "lca_phase_duration_seconds"));

  host.Patch(
      Json{{"spec",
            {{"stage", "Prep"},
             {"seedImageRef", {{"version", test::SeedBed::kVersion}, {"image", bed->image}}}}}});
  bool saw_prep_in_progress = false;
  double max_bytes_seen_during = 0;
  std::vector<double> totals_seen_during;  // lca_prep_bytes_total while Prep ran
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(50);
  std::vector<metrics::ParsedSample> after;
  while (std::chrono::steady_clock::now() < deadline) {
    const auto s = metrics::ParseExposition(ScrapeTcp(port));
    const bool in_progress =
        FindSample(s, "lca_condition",
                   {{"type", "PrepInProgress"}, {"status", "True"}, {"reason", "InProgress"}})
            .has_value();
    if (in_progress && FindSample(s, "lca_stage", {{"stage", "Prep"}}) == 1) {
      saw_prep_in_progress = true;
      max_bytes_seen_during =
          std::max(max_bytes_seen_during, FindSample(s, "lca_prep_bytes_done").value_or(0));
      totals_seen_during.push_back(FindSample(s, "lca_prep_bytes_total").value_or(0));
    }
    if (FindSample(s, "lca_condition", {{"type", "PrepCompleted"}, {"status", "True"}})) {
      after = s;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_FALSE(after.empty()) << "Prep did not complete in time; log:\n" << host.DaemonLog();
  EXPECT_TRUE(saw_prep_in_progress);
  const double done = FindSample(after, "lca_prep_bytes_done").value_or(0);
  EXPECT_GT(done, 0);
  EXPECT_GE(done, max_bytes_seen_during);
  EXPECT_EQ(FindSample(after, "lca_prep_bytes_total"), done);  // exact once extracted
  // The total shown while Prep runs is unknown (0) or the exact one: it never shrinks.
  for (const double t : totals_seen_during) EXPECT_TRUE(t == 0 || t == done) << t;
  EXPECT_TRUE(
      FindSample(after, "lca_phase_duration_seconds", {{"stage", "Prep"}, {"phase", "Stateroot"}}));
  EXPECT_TRUE(FindSample(after, "lca_stage_duration_seconds", {{"stage", "Prep"}}));
  EXPECT_EQ(FindSample(after, "lca_stage", {{"stage", "Prep"}}), 1);

  // The socket serves the same exposition.
  http::UnixHttpClient client(host.dir() / "run/lca.sock");
  const auto reply = client.Request("GET", "/metrics", "", "", std::chrono::seconds(10));
  ASSERT_EQ(reply.status, 200);
  EXPECT_EQ(reply.headers.at("content-type").at(0), "text/plain; version=0.0.4; charset=utf-8");
  const auto via_socket = metrics::ParseExposition(reply.body);
  EXPECT_EQ(FindSample(via_socket, "lca_prep_bytes_done"), done);

  // Journal fields as the stderr sink renders them.
  const std::string log = host.DaemonLog();
  const std::string id = std::string(message_id::kStageTransition);
  EXPECT_NE(log.find("transition to Prep requested: accepted [MESSAGE_ID=" + id +
                     " LCA_STAGE=Prep LCA_DEPLOYMENT=" + std::string(test::AgentHost::kTarget) +
                     " LCA_TRANSITION=accepted]"),
            std::string::npos)
      << log;
  EXPECT_NE(log.find("LCA_WORK=Prep LCA_STEP=prep.extract]"), std::string::npos) << log;
  EXPECT_NE(log.find("LCA_OUTCOME=Completed LCA_TRANSITION="), std::string::npos) << log;
  host.Stop();
}

}  // namespace
}  // namespace lca
