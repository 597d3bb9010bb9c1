// Pre-cache image lists, spaceRequired and the progress file (reference-lca §4.1, §4.4;
// reference-talm-spoke §1.2, §1.5, §1.7).
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <functional>

#include "common/atomic_file.hpp"
#include "common/error.hpp"
#include "precache/image_list.hpp"
#include "precache/progress.hpp"
#include "precache/space.hpp"
#include "tests/support/expect_error.hpp"

namespace lca::precache {
namespace {

using Images = std::vector<std::string>;

std::string ErrorOf(const std::function<void()>& f) { return test::InvalidMessage(f); }

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// --- Parsing -------------------------------------------------------------------------------

TEST(ParseImageList, TrimsSkipsAndDedupesKeepingOrder) {
  EXPECT_EQ(ParseImageList("b:1\n\na:1\n  b:1  \n# a comment\n\t\nc@sha256:ab\na:1\n", "x"),
            (Images{"b:1", "a:1", "c@sha256:ab"}));
}

TEST(ParseImageList, LastLineCountsWithOrWithoutNewline) {
  // TALM's pull.sh lost an unterminated last line (reference-talm-spoke §1.7 [bug]).
  EXPECT_EQ(ParseImageList("img1:tag\nimg2:tag", "x"), (Images{"img1:tag", "img2:tag"}));
  EXPECT_EQ(ParseImageList("img1:tag\nimg2:tag\n\n\n", "x"), (Images{"img1:tag", "img2:tag"}));
}

TEST(ParseImageList, CrlfAndEmpty) {
  EXPECT_EQ(ParseImageList("a:1\r\nb:2\r\n\r\n", "x"), (Images{"a:1", "b:2"}));
  EXPECT_TRUE(ParseImageList("", "x").empty());
  EXPECT_TRUE(ParseImageList("\n\n  \n# only a comment", "x").empty());
}

TEST(ParseImageList, DedupeIsExact) {
  // Same image under another name is not ours to judge: only identical text is a duplicate.
  EXPECT_EQ(ParseImageList("quay.io/a:1\nQuay.io/a:1\nquay.io/a:1", "x"),
            (Images{"quay.io/a:1", "Quay.io/a:1"}));
}

TEST(ParseImageList, WhitespaceInsideARefNamesTheLine) {
  EXPECT_EQ(ErrorOf([] { ParseImageList("a:1\n\nquay.io/a b:1\n", "additionalImages"); }),
            "additionalImages line 3: 'quay.io/a b:1' is not an image reference (it contains "
            "whitespace or a control character); put exactly one image per line");
  EXPECT_TRUE(Contains(ErrorOf([] { ParseImageList("a\x01:1", "x"); }), "x line 1:"));
}

TEST(MergeImageLists, FirstOccurrenceWins) {
  EXPECT_EQ(MergeImageLists({{"a", "b"}, {}, {"c", "a"}, {"b", "d"}}),
            (Images{"a", "b", "c", "d"}));
}

TEST(RenderImageList, EveryLineEndsInNewline) {
  EXPECT_EQ(RenderImageList({"a:1", "b:2"}), "a:1\nb:2\n");
  EXPECT_EQ(RenderImageList({}), "");
  EXPECT_EQ(ParseImageList(RenderImageList({"a:1", "b:2"}), "x"), (Images{"a:1", "b:2"}));
}

// --- Registry override (reference-lca §4.1) ------------------------------------------------

RegistryOverrideInput Override(std::string seed, bool seed_mirror, std::string cluster,
                               Images sources) {
  return {std::move(seed), seed_mirror, std::move(cluster), std::move(sources)};
}

TEST(RegistryOf, TextBeforeFirstSlash) {
  EXPECT_EQ(RegistryOf("quay.io/openshift-release-dev/ocp-release"), "quay.io");
  EXPECT_EQ(RegistryOf("mirror.local:5000/ocp/release@sha256:ab"), "mirror.local:5000");
  EXPECT_EQ(RegistryOf("mirror.local:5000"), "mirror.local:5000");
}

TEST(RegistryOverride, DecisionTable) {
  // No cluster mirrors: follow the seed's mirror flag.
  EXPECT_TRUE(ShouldOverrideRegistry(Override("seed.reg", true, "quay.io", {})));
  EXPECT_FALSE(ShouldOverrideRegistry(Override("seed.reg", false, "quay.io", {})));
  // Cluster mirrors the seed registry: images resolve through the mirror, keep them.
  EXPECT_FALSE(ShouldOverrideRegistry(
      Override("quay.io", false, "mirror:5000", {"other/x", "quay.io/openshift-release-dev/ocp"})));
  EXPECT_FALSE(ShouldOverrideRegistry(Override("quay.io", true, "mirror:5000", {"quay.io"})));
  // Mirrors exist but not for the seed registry: override, whatever the seed flag says.
  EXPECT_TRUE(ShouldOverrideRegistry(
      Override("seed.reg", false, "mirror:5000", {"quay.io/openshift-release-dev/ocp"})));
  EXPECT_TRUE(ShouldOverrideRegistry(Override("seed.reg", true, "mirror:5000", {"quay.io/x"})));
  // A source merely starting with the seed registry is another registry.
  EXPECT_TRUE(ShouldOverrideRegistry(
      Override("quay.io", false, "mirror:5000", {"quay.io:443/x", "quay.io.evil/x"})));
  // Empty or equal registries: nothing to rewrite.
  EXPECT_FALSE(ShouldOverrideRegistry(Override("", true, "quay.io", {})));
  EXPECT_FALSE(ShouldOverrideRegistry(Override("seed.reg", true, "", {})));
  EXPECT_FALSE(ShouldOverrideRegistry(Override("quay.io", true, "quay.io", {})));
}

TEST(RegistryOverride, ReplacesOnlyTheLeadingRegistry) {
  const Images in = {"seed.reg/ocp/release@sha256:aa", "registry.redhat.io/ubi9:latest",
                     "other/seed.reg/x:1", "seed.reg:5000/y:1", "seed.registry/z:1"};
  EXPECT_EQ(ApplyRegistryOverride(in, Override("seed.reg", true, "mirror.local:5000", {})),
            (Images{"mirror.local:5000/ocp/release@sha256:aa", "registry.redhat.io/ubi9:latest",
                    "other/seed.reg/x:1", "seed.reg:5000/y:1", "seed.registry/z:1"}));
  // Not overriding: untouched.
  EXPECT_EQ(ApplyRegistryOverride(in, Override("seed.reg", false, "mirror.local:5000", {})), in);
}

TEST(RegistryOverride, DotIsLiteralNotARegexWildcard) {
  // The reference builds the regex "^quay.io", which also rewrites "quayXio/..." (reference bug).
  const Images in = {"quayXio/a:1", "quay-io/b:1", "quay.io/c:1", "quay.iox/d:1"};
  EXPECT_EQ(ApplyRegistryOverride(in, Override("quay.io", true, "mirror:5000", {})),
            (Images{"quayXio/a:1", "quay-io/b:1", "mirror:5000/c:1", "quay.iox/d:1"}));
}

TEST(RegistryOverride, DedupesAfterRewrite) {
  EXPECT_EQ(ApplyRegistryOverride({"seed.reg/a:1", "mirror/a:1", "b:1"},
                                  Override("seed.reg", true, "mirror", {})),
            (Images{"mirror/a:1", "b:1"}));
}

// --- Exclude patterns -----------------------------------------------------------------------

TEST(ExcludePatterns, SearchAnywhereLikeGrep) {
  const auto ex =
      ExcludePatterns::Parse("  aws \n\n\t\n-for-gcp$\n^registry\\.redhat\\.io/\n", "e");
  EXPECT_EQ(ex.size(), 3u);
  EXPECT_TRUE(ex.Matches("quay.io/ocp/bawsa@sha256:1"));  // unanchored, as in TALM's test.sh
  EXPECT_TRUE(ex.Matches("quay.io/x/driver-for-gcp"));
  EXPECT_FALSE(ex.Matches("quay.io/x/driver-for-gcp:1"));
  EXPECT_TRUE(ex.Matches("registry.redhat.io/ubi9:latest"));
  EXPECT_FALSE(ex.Matches("quay.io/registry.redhat.io/ubi9"));
  EXPECT_EQ(ApplyExcludes({"quay.io/1", "quay.io/aws-1", "quay.io/2"}, ex),
            (Images{"quay.io/1", "quay.io/2"}));
}

TEST(ExcludePatterns, EmptyFiltersNothing) {
  const auto ex = ExcludePatterns::Parse("\n \r\n", "e");
  EXPECT_TRUE(ex.empty());
  EXPECT_EQ(ApplyExcludes({"a", "b"}, ex), (Images{"a", "b"}));
}

TEST(ExcludePatterns, HashIsAnOrdinaryCharacter) {
  const auto ex = ExcludePatterns::Parse("#x", "e");
  EXPECT_TRUE(ex.Matches("a#x"));
  EXPECT_FALSE(ex.Matches("a"));
}

TEST(ExcludePatterns, InvalidPatternNamesPatternAndLine) {
  const auto msg = ErrorOf([] { ExcludePatterns::Parse("aws\n\nfoo(bar\n", "excludePatterns"); });
  EXPECT_TRUE(Contains(msg,
                       "excludePatterns line 3: pattern 'foo(bar' is not a valid "
                       "ECMAScript regular expression"))
      << msg;
}

// --- The whole list --------------------------------------------------------------------------

TEST(BuildPrecacheList, OverrideExcludeMergeInOrder) {
  ImageListInput in;
  in.containers_list = "seed.reg/ocp/a@sha256:1\nquay.io/x/aws-driver:1\n\nseed.reg/ocp/b:2\n";
  in.additional_images = "extra/one:1\nmirror/ocp/a@sha256:1\nextra/aws:2";
  in.exclude_patterns = "aws\n";
  in.registry = Override("seed.reg", true, "mirror", {});
  // Excludes filter the seed's list only; additional images are used as given.
  EXPECT_EQ(BuildPrecacheList(in),
            (Images{"mirror/ocp/a@sha256:1", "mirror/ocp/b:2", "extra/one:1", "extra/aws:2"}));
}

TEST(BuildPrecacheList, EmptyResultIsAClearFailure) {
  const std::string expected =
      "no images specified for precaching: the seed's containers.list and additionalImages are "
      "empty, or excludePrecachePatterns removed every image; check the seed image and the "
      "exclude patterns";
  ImageListInput in;
  in.containers_list = "\n\n";
  EXPECT_EQ(ErrorOf([&] { BuildPrecacheList(in); }), expected);
  in.containers_list = "quay.io/a:1\nquay.io/b:1\n";
  in.exclude_patterns = "quay";
  EXPECT_EQ(ErrorOf([&] { BuildPrecacheList(in); }), expected);
  in.additional_images = "quay.io/c:1";
  EXPECT_EQ(BuildPrecacheList(in), (Images{"quay.io/c:1"}));
}

TEST(BuildPrecacheList, ErrorsNameTheSource) {
  ImageListInput in;
  in.containers_list = "a:1\nb c\n";
  EXPECT_TRUE(Contains(ErrorOf([&] { BuildPrecacheList(in); }), "containers.list line 2:"));
  in.containers_list = "a:1";
  in.exclude_patterns = "[";
  EXPECT_TRUE(Contains(ErrorOf([&] { BuildPrecacheList(in); }), "excludePrecachePatterns line 1:"));
}

// --- spaceRequired (reference-talm-spoke §1.2 test vectors) --------------------------------

TEST(SpaceRequired, TalmTestVectors) {
  const std::vector<std::pair<std::string, uint64_t>> vectors = {
      {"1073741824", 1}, {"2500000 KB", 3}, {"3100 MB", 3},   {"40 GB", 38},
      {"38.5 GB", 36},   {"2 TB", 1863},    {"1 PB", 931323}, {"2500000 KiB", 3},
      {"3100 MiB", 4},   {"38.5 GiB", 39},  {"2 TiB", 2048},  {"1 PiB", 1048576},
  };
  for (const auto& [text, gib] : vectors) EXPECT_EQ(SpaceRequiredGiB(text), gib) << text;
}

TEST(SpaceRequired, ExactBytes) {
  EXPECT_EQ(ParseSpaceRequired("0"), 0u);
  EXPECT_EQ(ParseSpaceRequired("512"), 512u);
  EXPECT_EQ(ParseSpaceRequired("512B"), 512u);
  EXPECT_EQ(ParseSpaceRequired("38.5 GB"), 38500000000u);
  EXPECT_EQ(ParseSpaceRequired("38.5 GiB"), 41339060224u);
  EXPECT_EQ(ParseSpaceRequired("1.5k"), 1500u);
  EXPECT_EQ(ParseSpaceRequired("1.5Ki"), 1536u);
  EXPECT_EQ(ParseSpaceRequired("35gib"), 35 * kGiB);
  EXPECT_EQ(ParseSpaceRequired("  35GiB \n"), 35 * kGiB);
  EXPECT_EQ(ParseSpaceRequired("1.0009 KB"), 1000u);  // fractions of a byte are truncated
  EXPECT_EQ(ParseSpaceRequired("16 PiB"), uint64_t{16} << 50);
}

TEST(SpaceRequired, BadInputIsRejected) {
  for (const char* bad :
       {"", "  ", "-1", "-1 GiB", "GiB", "1.", ".5 GB", "1,5 GB", "1 XB", "1 iB", "1 GBB", "1 G iB",
        "1 GB extra", "1e9", "abc", "99999999999999999999", "20000 PB", "16385 PiB"}) {
    const auto msg = ErrorOf([&] { ParseSpaceRequired(bad); });
    EXPECT_TRUE(msg.starts_with("spaceRequired '")) << bad << ": " << msg;
  }
  EXPECT_EQ(ErrorOf([] { ParseSpaceRequired("-5 GiB"); }),
            "spaceRequired '-5 GiB': negative sizes are not allowed; use a size like \"35 GiB\", "
            "\"40 GB\" or \"1073741824\"");
  EXPECT_TRUE(Contains(ErrorOf([] { ParseSpaceRequired("3 XB"); }), "unknown unit 'XB'"));
}

TEST(SpaceRequired, RoundsUpToGiB) {
  EXPECT_EQ(BytesToGiBRoundedUp(0), 0u);
  EXPECT_EQ(BytesToGiBRoundedUp(1), 1u);
  EXPECT_EQ(BytesToGiBRoundedUp(kGiB), 1u);
  EXPECT_EQ(BytesToGiBRoundedUp(kGiB + 1), 2u);
}

TEST(SpaceRequired, ConfigMapBareIntegerIsGiB) {
  // The hub writes the rounded GiB count, e.g. the default "35 GiB" arrives as "35".
  EXPECT_EQ(ParseConfigMapSpaceRequired("35"), 35 * kGiB);
  EXPECT_EQ(ParseConfigMapSpaceRequired(" 35\n"), 35 * kGiB);
  EXPECT_EQ(ParseConfigMapSpaceRequired("40 GB"), 40000000000u);
  EXPECT_EQ(ParseConfigMapSpaceRequired("35 GiB"), 35 * kGiB);
  EXPECT_TRUE(Contains(ErrorOf([] { ParseConfigMapSpaceRequired("17179869184"); }), "too large"));
  EXPECT_TRUE(Contains(ErrorOf([] { ParseConfigMapSpaceRequired("-3"); }), "negative"));
}

// --- Progress file (reference-lca §4.4) -----------------------------------------------------

TEST(PrecacheStatus, ExactFormat) {
  EXPECT_EQ(StatusToText({3, 0, 0, {}}),
            R"({"total":3,"pulled":0,"failed":0,"failed_pulls":null})");
  EXPECT_EQ(
      StatusToText({3, 1, 2, {"quay.io/a:1", "quay.io/b@sha256:2"}}),
      R"({"total":3,"pulled":1,"failed":2,"failed_pulls":["quay.io/a:1","quay.io/b@sha256:2"]})");
  EXPECT_EQ(ProgressMessage({10, 7, 1, {"x"}}), "total: 10 (pulled: 7, failed: 1)");
}

TEST(PrecacheStatus, JsonRoundTrip) {
  for (const PrecacheStatus& s :
       {PrecacheStatus{0, 0, 0, {}}, PrecacheStatus{5, 3, 2, {"a", "b"}}}) {
    EXPECT_EQ(StatusFromJson(ParseJson(StatusToText(s), "t"), "t"), s);
  }
  // An empty array (a writer that never nils the slice) reads the same as null or absent.
  EXPECT_EQ(
      StatusFromJson(ParseJson(R"({"total":1,"pulled":1,"failed":0,"failed_pulls":[]})", "t"), "t"),
      (PrecacheStatus{1, 1, 0, {}}));
  EXPECT_EQ(StatusFromJson(ParseJson(R"({"total":1,"pulled":1,"failed":0})", "t"), "t"),
            (PrecacheStatus{1, 1, 0, {}}));
}

TEST(PrecacheStatus, BadJsonNamesField) {
  EXPECT_EQ(ErrorOf([] { StatusFromJson(Json::array(), "f"); }), "f: must be a JSON object");
  EXPECT_EQ(ErrorOf([] { StatusFromJson(ParseJson(R"({"pulled":0,"failed":0})", "f"), "f"); }),
            "f: total is missing");
  EXPECT_EQ(
      ErrorOf([] { StatusFromJson(ParseJson(R"({"total":-1,"pulled":0,"failed":0})", "f"), "f"); }),
      "f: total must be a non-negative integer");
  EXPECT_EQ(ErrorOf([] {
              StatusFromJson(ParseJson(R"({"total":1,"pulled":"0","failed":0})", "f"), "f");
            }),
            "f: pulled must be a non-negative integer");
  EXPECT_EQ(ErrorOf([] {
              StatusFromJson(
                  ParseJson(R"({"total":1,"pulled":0,"failed":1,"failed_pulls":[1]})", "f"), "f");
            }),
            "f: failed_pulls must hold only strings");
}

class StatusFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("precache_test." + std::to_string(::getpid()) + "." +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::filesystem::path dir_;
};

TEST_F(StatusFileTest, WriteIsExactAnd0600) {
  const auto path = dir_ / kStatusFileName;
  EXPECT_FALSE(ReadStatusFile(path));
  ::umask(0);  // the mode must not depend on the umask
  WriteStatusFile(path, {2, 1, 1, {"b:1"}});
  ::umask(022);
  EXPECT_EQ(ReadFile(path), R"({"total":2,"pulled":1,"failed":1,"failed_pulls":["b:1"]})");
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_EQ(ReadStatusFile(path), (PrecacheStatus{2, 1, 1, {"b:1"}}));
  WriteFileAtomic(path, "{not json", 0600);
  EXPECT_TRUE(Contains(ErrorOf([&] { ReadStatusFile(path); }), path.string()));
}

TEST_F(StatusFileTest, RecorderRewritesAfterEveryImage) {
  const auto path = dir_ / kStatusFileName;
  ProgressRecorder rec(path, 3);
  EXPECT_EQ(ReadStatusFile(path), (PrecacheStatus{3, 0, 0, {}}));
  rec.RecordPulled();
  EXPECT_EQ(ReadStatusFile(path), (PrecacheStatus{3, 1, 0, {}}));
  rec.RecordFailed("quay.io/b:1");
  EXPECT_EQ(ReadStatusFile(path), (PrecacheStatus{3, 1, 1, {"quay.io/b:1"}}));
  rec.RecordPulled();
  rec.Flush();
  EXPECT_EQ(ReadStatusFile(path), rec.Snapshot());
  EXPECT_EQ(ProgressMessage(*ReadStatusFile(path)), "total: 3 (pulled: 2, failed: 1)");
}

}  // namespace
}  // namespace lca::precache
