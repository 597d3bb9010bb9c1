// lcactl's progress view: the bar at several widths, the plain lines, when lines are printed,
// the rate and ETA, and the state read from the object and /metrics. Exact strings.
#include "agent/cli/progress_view.hpp"

#include <gtest/gtest.h>

#include <sstream>

#include "agent/api/conditions.hpp"
#include "agent/api/history.hpp"

namespace lca::cli {
namespace {

using std::chrono::seconds;
constexpr uint64_t kMiB = 1024 * 1024;

ProgressState Precaching() {
  ProgressState s;
  s.stage = "Prep";
  s.phase = "Precache";
  s.state = "InProgress";
  s.message = "Precache job in progress";
  s.active = true;
  s.images_done = 5;
  s.images_total = 20;
  s.bytes_done = 512 * kMiB;
  s.bytes_total = 2048 * kMiB;
  return s;
}

TEST(FormatProgressBar, WideHasEveryField) {
  EXPECT_EQ(FormatProgressBar(Precaching(), 16.0 * kMiB, 100),
            "Prep/Precache [#####..................]  25%  5/20 images  512.0 MiB/2.0 GiB  "
            "16.0 MiB/s  ETA 1m36s");
}

TEST(FormatProgressBar, NarrowerDropsFieldsFromTheRight) {
  EXPECT_EQ(FormatProgressBar(Precaching(), 16.0 * kMiB, 60),
            "Prep/Precache [######...................]  25%  5/20 images");
  EXPECT_EQ(FormatProgressBar(Precaching(), 16.0 * kMiB, 30), "Prep/Precache  25%");
  for (int w : {20, 30, 45, 60, 80, 100, 200}) {
    EXPECT_LE(FormatProgressBar(Precaching(), 16.0 * kMiB, w).size(), static_cast<size_t>(w - 1))
        << "width " << w;
  }
}

TEST(FormatProgressBar, WithoutNumbersShowsTheMessageCut) {
  ProgressState s;
  s.stage = "Prep";
  s.phase = "Stateroot";
  s.state = "InProgress";
  s.message = "Stateroot setup in progress: fetching seed image quay.io/x";
  EXPECT_EQ(FormatProgressBar(s, std::nullopt, 40), "Prep/Stateroot InProgress: Stateroot...");
  s.message.clear();
  s.phase.clear();
  EXPECT_EQ(FormatProgressBar(s, std::nullopt, 40), "Prep InProgress");
}

TEST(FormatProgressBar, ImagesAloneGiveTheFraction) {
  ProgressState s = Precaching();
  s.bytes_done.reset();
  s.bytes_total.reset();
  EXPECT_EQ(FormatProgressBar(s, std::nullopt, 50),
            "Prep/Precache [###............]  25%  5/20 images");
}

TEST(FormatProgressLine, HasTimeAndEveryKnownField) {
  const TimePoint now = ParseTime("2025-03-01T10:00:00Z");
  EXPECT_EQ(FormatProgressLine(Precaching(), 16.0 * kMiB, now),
            "2025-03-01T10:00:00Z Prep/Precache InProgress 25% images 5/20 bytes 512.0 MiB/2.0 "
            "GiB 16.0 MiB/s ETA 1m36s: Precache job in progress");
}

TEST(ProgressPrinter, LinesOnlyWhenSomethingChanges) {
  std::ostringstream out;
  ProgressPrinter p(out, false, 0);
  const TimePoint t0 = ParseTime("2025-03-01T10:00:00Z");
  const auto m0 = std::chrono::steady_clock::time_point{} + std::chrono::hours(1);
  ProgressState s;
  s.stage = "Prep";
  s.phase = "Stateroot";
  s.state = "InProgress";
  s.active = true;
  s.message = "Stateroot setup in progress: fetching seed";
  p.Update(s, t0, m0);
  p.Update(s, t0 + seconds(1), m0 + seconds(1));  // nothing new
  s.message = "Stateroot setup in progress: extracting the seed (100 B written)";
  s.bytes_done = 100;
  s.bytes_total = 1000;
  p.Update(s, t0 + seconds(2), m0 + seconds(2));
  s.message = "Stateroot setup in progress: extracting the seed (150 B written)";
  s.bytes_done = 150;  // same tenth, same words: no line
  p.Update(s, t0 + seconds(3), m0 + seconds(3));
  s.message = "Stateroot setup in progress: extracting the seed (600 B written)";
  s.bytes_done = 600;
  p.Update(s, t0 + seconds(4), m0 + seconds(4));
  ProgressState done;
  done.stage = "Prep";
  done.state = "Completed";
  done.message = "Prep completed";
  p.Update(done, t0 + seconds(5), m0 + seconds(5));
  p.Finish();
  EXPECT_EQ(out.str(),
            "2025-03-01T10:00:00Z Prep/Stateroot InProgress: Stateroot setup in progress: "
            "fetching seed\n"
            "2025-03-01T10:00:02Z Prep/Stateroot InProgress 10% bytes 100 B/1000 B: Stateroot "
            "setup in progress: extracting the seed (100 B written)\n"
            "2025-03-01T10:00:04Z Prep/Stateroot InProgress 60% bytes 600 B/1000 B 250 B/s ETA "
            "2s: Stateroot setup in progress: extracting the seed (600 B written)\n"
            "2025-03-01T10:00:05Z Prep Completed: Prep completed\n");
}

TEST(ProgressPrinter, TerminalRedrawsOneLineInPlace) {
  std::ostringstream out;
  ProgressPrinter p(out, true, 60);
  const TimePoint t0 = ParseTime("2025-03-01T10:00:00Z");
  const auto m0 = std::chrono::steady_clock::time_point{} + std::chrono::hours(1);
  ProgressState s = Precaching();
  p.Update(s, t0, m0);
  s.images_done = 10;
  s.bytes_done = 1024 * kMiB;
  p.Update(s, t0 + seconds(2), m0 + seconds(2));
  p.Finish();
  EXPECT_EQ(out.str(),
            "\rPrep/Precache [######...................]  25%  5/20 images\x1b[K"
            "\rPrep/Precache [############............]  50%  10/20 images\x1b[K"
            "\r\x1b[K");
}

TEST(RateMeter, WindowedAndRestartsWhenTheCountDrops) {
  RateMeter r(seconds(10));
  const auto t = std::chrono::steady_clock::time_point{} + std::chrono::hours(1);
  r.Add(t, 0);
  EXPECT_FALSE(r.BytesPerSecond());
  r.Add(t + std::chrono::milliseconds(500), 100);
  EXPECT_FALSE(r.BytesPerSecond());  // under a second: no rate yet
  r.Add(t + seconds(2), 400);
  EXPECT_DOUBLE_EQ(*r.BytesPerSecond(), 200.0);
  r.Add(t + seconds(20), 4400);  // older samples leave the window
  EXPECT_DOUBLE_EQ(*r.BytesPerSecond(), 4000.0 / 18.0);
  r.Add(t + seconds(21), 10);  // the next phase starts from zero
  EXPECT_FALSE(r.BytesPerSecond());
}

TEST(HumanBytes, IecUnits) {
  EXPECT_EQ(HumanBytes(0), "0 B");
  EXPECT_EQ(HumanBytes(1023), "1023 B");
  EXPECT_EQ(HumanBytes(1536), "1.5 KiB");
  EXPECT_EQ(HumanBytes(3 * kMiB), "3.0 MiB");
}

TEST(ProgressFromObject, PhaseAndNumbersFromHistoryAndMetrics) {
  const TimePoint t0 = ParseTime("2025-03-01T10:00:00Z");
  api::ImageBasedUpgrade ibu = api::NewDefault(t0, "u");
  ibu.spec.stage = api::Stage::kPrep;
  ibu.status = api::Status{};
  api::ConditionWriter(*ibu.status, 1, t0).PrepInProgress("Precache job in progress");
  api::StartStageHistory(*ibu.status, api::Stage::kPrep, t0);
  api::StartPhaseHistory(*ibu.status, api::Stage::kPrep, api::phase::kStateroot, t0);
  api::StopPhaseHistory(*ibu.status, api::Stage::kPrep, api::phase::kStateroot, t0);
  api::StartPhaseHistory(*ibu.status, api::Stage::kPrep, api::phase::kPrecache, t0);
  const auto samples = metrics::ParseExposition(
      "lca_prep_bytes_done 99\nlca_prep_bytes_total 99\nlca_precache_images_done 5\n"
      "lca_precache_images_total 20\nlca_precache_bytes_done 536870912\n"
      "lca_precache_bytes_total 2147483648\n");
  EXPECT_EQ(ProgressFromObject(ibu, samples), Precaching());

  // Without /metrics: the words only.
  ProgressState words = Precaching();
  words.images_done.reset();
  words.images_total.reset();
  words.bytes_done.reset();
  words.bytes_total.reset();
  EXPECT_EQ(ProgressFromObject(ibu, {}), words);

  // The journaled step the daemon runs (lca_step) is named in the bar and the lines.
  const auto with_step = metrics::ParseExposition(
      "lca_step{step=\"prep.precache\"} 1\nlca_precache_images_done 5\n"
      "lca_precache_images_total 20\n");
  const ProgressState stepping = ProgressFromObject(ibu, with_step);
  EXPECT_EQ(stepping.step, "prep.precache");
  EXPECT_EQ(FormatProgressBar(stepping, std::nullopt, 80),
            "Prep/Precache step prep.precache [######....................]  25%  5/20 images");
  EXPECT_EQ(FormatProgressLine(stepping, std::nullopt, ParseTime("2025-03-01T10:00:00Z")),
            "2025-03-01T10:00:00Z Prep/Precache step prep.precache InProgress 25% images 5/20: "
            "Precache job in progress");
}

}  // namespace
}  // namespace lca::cli
