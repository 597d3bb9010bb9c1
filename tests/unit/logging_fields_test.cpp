// Journal fields on log records: the scoped context, LogEvent's MESSAGE_ID, the journal entry
// a record becomes, and the stderr rendering.
#include <gtest/gtest.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/ostream_sink.h>

#include <mutex>
#include <regex>
#include <sstream>
#include <thread>

#include "common/error.hpp"
#include "common/logging.hpp"

namespace lca {
namespace {

// Records the journal entry of every record, built as the journal sink builds it.
class CaptureSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  std::vector<std::vector<std::string>> entries;

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    entries.push_back(JournalEntry("lca-test", msg.level,
                                   std::string_view(msg.payload.data(), msg.payload.size()),
                                   CurrentLogFields()));
  }
  void flush_() override {}
};

class LoggingFieldsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    previous_ = spdlog::default_logger();
    sink_ = std::make_shared<CaptureSink>();
    auto logger = std::make_shared<spdlog::logger>("lca-test", sink_);
    logger->set_level(spdlog::level::debug);
    spdlog::set_default_logger(logger);
  }
  void TearDown() override { spdlog::set_default_logger(previous_); }

  std::shared_ptr<spdlog::logger> previous_;
  std::shared_ptr<CaptureSink> sink_;
};

TEST(MessageIds, AreDistinct128BitHex) {
  const std::regex hex("[0-9a-f]{32}");
  EXPECT_TRUE(std::regex_match(std::string(message_id::kStageTransition), hex));
  EXPECT_TRUE(std::regex_match(std::string(message_id::kRebootRequest), hex));
  EXPECT_NE(message_id::kStageTransition, message_id::kRebootRequest);
}

TEST_F(LoggingFieldsTest, ScopedFieldsNestAndAreRestored) {
  spdlog::info("before");
  {
    ScopedLogFields stage{{"LCA_STAGE", "Prep"}, {"LCA_DEPLOYMENT", "rhcos_4.15.2"}};
    spdlog::info("in stage");
    {
      ScopedLogFields step{{"LCA_STEP", "prep.fetch"}};
      spdlog::info("in step");
    }
    spdlog::info("after step");
  }
  spdlog::info("after");
  ASSERT_EQ(sink_->entries.size(), 5u);
  const std::vector<std::string> head = {"MESSAGE=before", "PRIORITY=6",
                                         "SYSLOG_IDENTIFIER=lca-test"};
  EXPECT_EQ(sink_->entries[0], head);
  EXPECT_EQ(sink_->entries[1], (std::vector<std::string>{
                                   "MESSAGE=in stage", "PRIORITY=6", "SYSLOG_IDENTIFIER=lca-test",
                                   "LCA_STAGE=Prep", "LCA_DEPLOYMENT=rhcos_4.15.2"}));
  EXPECT_EQ(sink_->entries[2],
            (std::vector<std::string>{"MESSAGE=in step", "PRIORITY=6", "SYSLOG_IDENTIFIER=lca-test",
                                      "LCA_STAGE=Prep", "LCA_DEPLOYMENT=rhcos_4.15.2",
                                      "LCA_STEP=prep.fetch"}));
  EXPECT_EQ(sink_->entries[3].size(), 5u);
  EXPECT_EQ(sink_->entries[4].size(), 3u);
}

TEST_F(LoggingFieldsTest, FieldsAreThreadLocal) {
  ScopedLogFields stage{{"LCA_STAGE", "Upgrade"}};
  std::thread([] { spdlog::info("other thread"); }).join();
  ASSERT_EQ(sink_->entries.size(), 1u);
  EXPECT_EQ(sink_->entries[0].size(), 3u);  // no LCA_STAGE from this thread's scope
}

TEST_F(LoggingFieldsTest, LogEventAddsMessageIdAndItsFieldsOnlyToItsRecord) {
  ScopedLogFields stage{{"LCA_STAGE", "Upgrade"}, {"LCA_STEP", "upgrade.reboot"}};
  LogEvent(spdlog::level::warn, message_id::kRebootRequest, {{"LCA_REBOOT_RATIONALE", "upgrade"}},
           "requesting a reboot (upgrade)");
  spdlog::info("next");
  ASSERT_EQ(sink_->entries.size(), 2u);
  EXPECT_EQ(sink_->entries[0],
            (std::vector<std::string>{"MESSAGE=requesting a reboot (upgrade)", "PRIORITY=4",
                                      "SYSLOG_IDENTIFIER=lca-test", "LCA_STAGE=Upgrade",
                                      "LCA_STEP=upgrade.reboot",
                                      "MESSAGE_ID=" + std::string(message_id::kRebootRequest),
                                      "LCA_REBOOT_RATIONALE=upgrade"}));
  for (const auto& f : sink_->entries[1]) EXPECT_EQ(f.find("MESSAGE_ID="), std::string::npos);
}

TEST_F(LoggingFieldsTest, EventFieldsOverrideScopedOnes) {
  ScopedLogFields stage{{"LCA_STAGE", "Idle"}};
  LogEvent(spdlog::level::info, message_id::kStageTransition, {{"LCA_STAGE", "Prep"}},
           "transition to Prep requested: accepted");
  ASSERT_EQ(sink_->entries.size(), 1u);
  const auto& e = sink_->entries[0];
  EXPECT_EQ(std::count(e.begin(), e.end(), "LCA_STAGE=Prep"), 1);
  EXPECT_EQ(std::count(e.begin(), e.end(), "LCA_STAGE=Idle"), 0);
}

TEST(JournalEntry, DropsInvalidNamesAndNeverOverridesTheSinkFields) {
  const auto e = JournalEntry("lifecycle-agent", spdlog::level::err, "boom",
                              {{"lca_lower", "x"},
                               {"_TRUSTED", "x"},
                               {"9LEADING_DIGIT", "x"},
                               {"WITH-DASH", "x"},
                               {"", "x"},
                               {"MESSAGE", "spoofed"},
                               {"PRIORITY", "0"},
                               {"LCA_OK", "multi\nline value"}});
  EXPECT_EQ(e, (std::vector<std::string>{"MESSAGE=boom", "PRIORITY=3",
                                         "SYSLOG_IDENTIFIER=lifecycle-agent",
                                         "LCA_OK=multi\nline value"}));
}

TEST(RenderLogFields, QuotesValuesThatWouldBreakTheLine) {
  EXPECT_EQ(RenderLogFields({}), "");
  EXPECT_EQ(RenderLogFields({{"LCA_STAGE", "Prep"}, {"LCA_STEP", "prep.fetch"}}),
            " [LCA_STAGE=Prep LCA_STEP=prep.fetch]");
  EXPECT_EQ(RenderLogFields({{"A", "two words"}, {"B", "q\"uote\\"}, {"C", ""}, {"D", "l1\nl2"}}),
            " [A=\"two words\" B=\"q\\\"uote\\\\\" C=\"\" D=\"l1\\nl2\"]");
}

TEST(MakeLogFormatter, StderrLinesCarryTheFields) {
  std::ostringstream out;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out);
  sink->set_formatter(MakeLogFormatter("%l %v%*"));
  spdlog::logger logger("fmt-test", sink);
  logger.info("plain");
  {
    ScopedLogFields stage{{"LCA_STAGE", "Prep"}};
    logger.info("step {} done", "prep.fetch");
  }
  EXPECT_EQ(out.str(), "info plain\ninfo step prep.fetch done [LCA_STAGE=Prep]\n");
}

TEST(MakeLogFormatter, HumanLinesHaveTimeLevelAndMessageOnly) {
  std::ostringstream out;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out);
  sink->set_formatter(MakeLogFormatter(kHumanLogPattern));
  spdlog::logger logger("fmt-test", sink);
  {
    ScopedLogFields stage{{"LCA_STAGE", "Prep"}, {"LCA_STEP", "prep.fetch"}};
    logger.info("step {} done", "prep.fetch");
    logger.warn("careful");
  }
  const std::regex line(R"(\d\d:\d\d:\d\d\.\d\d\d (info |warning) (.*)\n)");
  std::string rest = out.str();
  std::vector<std::string> messages;
  std::smatch m;
  while (std::regex_search(rest, m, line, std::regex_constants::match_continuous)) {
    messages.push_back(m[1].str() + "|" + m[2].str());
    rest = m.suffix();
  }
  EXPECT_EQ(rest, "") << out.str();
  EXPECT_EQ(messages, (std::vector<std::string>{"info |step prep.fetch done", "warning|careful"}));
}

TEST(ParseLogTarget, KnowsTheFourNames) {
  EXPECT_EQ(ParseLogTarget("auto"), LogTarget::kAuto);
  EXPECT_EQ(ParseLogTarget("stderr"), LogTarget::kStderr);
  EXPECT_EQ(ParseLogTarget("journal"), LogTarget::kJournal);
  EXPECT_EQ(ParseLogTarget("human"), LogTarget::kHuman);
  try {
    ParseLogTarget("fancy");
    ADD_FAILURE() << "accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::kInvalid);
    EXPECT_STREQ(e.what(), "log format 'fancy' is not one of auto, stderr, journal, human");
  }
}

TEST(SetupLogging, RejectsUnknownLevels) {
  EXPECT_THROW(SetupLogging("t", "loud", LogTarget::kStderr), std::exception);
}

}  // namespace
}  // namespace lca
