// Input the daemon parses must not crash it or come back as a 500: JSON nested too deep,
// numbers out of range, invalid UTF-8, and fields long enough to overflow a recursive matcher.
#include <gtest/gtest.h>

#include <string>

#include "agent/api/admission.hpp"
#include "agent/api/ibu.hpp"
#include "common/error.hpp"
#include "common/json_yaml.hpp"
#include "common/text_excerpt.hpp"
#include "common/timeutil.hpp"
#include "precache/image_list.hpp"

namespace lca {
namespace {

std::string ParseFailure(const std::string& text) {
  try {
    ParseJson(text, "patch");
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::kInvalid) << e.what();
    return e.what();
  }
  ADD_FAILURE() << "parsed: " << text.substr(0, 80);
  return "";
}

TEST(JsonLimitsTest, NestingDeeperThanTheLimitIsRefusedBeforeParsing) {
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  EXPECT_EQ(ParseFailure(deep), "patch: invalid JSON: nested deeper than 100 levels");
  std::string objects;
  for (int i = 0; i < 100000; ++i) objects += "{\"a\":";
  EXPECT_EQ(ParseFailure(objects + "1" + std::string(100000, '}')),
            "patch: invalid JSON: nested deeper than 100 levels");
  // Unterminated, too: the pre-scan stops at the limit, not at the end.
  EXPECT_EQ(ParseFailure(std::string(1 << 20, '{')),
            "patch: invalid JSON: nested deeper than 100 levels");
}

TEST(JsonLimitsTest, NestingUpToTheLimitAndBracketsInStringsAreFine) {
  const std::string at_limit = std::string(kMaxJsonDepth, '[') + std::string(kMaxJsonDepth, ']');
  EXPECT_NO_THROW(ParseJson(at_limit, "x"));
  const std::string over = "[" + at_limit + "]";
  EXPECT_NE(ParseFailure(over).find("nested deeper"), std::string::npos);
  // Brackets and escaped quotes inside strings do not count.
  const std::string in_string =
      "{\"a\":\"" + std::string(500, '[') + "\\\"" + std::string(500, '{') + "\"}";
  EXPECT_EQ(ParseJson(in_string, "x")["a"].get<std::string>().size(), 1001u);
}

TEST(JsonLimitsTest, NumberOutOfRangeIsInvalidInput) {
  EXPECT_EQ(ParseFailure(R"({"spec":{"x":1e99999}})"),
            "patch: invalid JSON: number overflow parsing '1e99999'");
  EXPECT_NE(ParseFailure("-1e99999").find("number overflow"), std::string::npos);
}

TEST(JsonLimitsTest, InvalidUtf8IsInvalidInputAndTheMessageIsPrintableUtf8) {
  for (const std::string& bad :
       {std::string("{\"a\":\"\xff\"}"), std::string("{\"a\":\"\xc0\xaf\"}"),
        std::string("{\"a\":\"\xed\xa0\x80\"}"), std::string("\"\xf8\"")}) {
    const std::string m = ParseFailure(bad);
    EXPECT_NE(m.find("patch: invalid JSON at line 1, column "), std::string::npos) << m;
    EXPECT_EQ(m.find("[json.exception"), std::string::npos) << m;
    EXPECT_TRUE(IsValidUtf8(m)) << m;
  }
  // A lone surrogate escape is refused by the parser too.
  EXPECT_FALSE(ParseFailure(R"({"a":"\udc00"})").empty());
}

TEST(JsonLimitsTest, MessagesQuotingInputAreCut) {
  const std::string m = ParseFailure("{\"a\":\"" + std::string(100000, 'x'));
  EXPECT_LT(m.size(), 400u) << m.size();
}

TEST(TextExcerptTest, ValidUtf8) {
  EXPECT_TRUE(IsValidUtf8("plain"));
  EXPECT_TRUE(IsValidUtf8("gr\xc3\xbc\xc3\x9f \xe2\x82\xac \xf0\x9f\x98\x80"));
  EXPECT_FALSE(IsValidUtf8("\xff"));
  EXPECT_FALSE(IsValidUtf8("\xc0\xaf"));          // overlong '/'
  EXPECT_FALSE(IsValidUtf8("\xed\xa0\x80"));      // a surrogate
  EXPECT_FALSE(IsValidUtf8("\xf4\x90\x80\x80"));  // above U+10FFFF
  EXPECT_FALSE(IsValidUtf8("\xe2\x82"));          // cut short
}

TEST(TextExcerptTest, EscapesBadBytesAndControlsAndCutsOnCharacterBoundaries) {
  EXPECT_EQ(Excerpt("a\xff"
                    "b\n"),
            "a\\xFFb\\x0A");
  EXPECT_EQ(Excerpt(std::string(10, 'x'), 4), "xxxx...");
  EXPECT_EQ(Excerpt("\xc3\xbc\xc3\xbc\xc3\xbc", 5), "\xc3\xbc\xc3\xbc...");
  EXPECT_EQ(Excerpt("short"), "short");
}

TEST(YamlScalarTest, TypingWithoutRegexesHandlesLongScalars) {
  EXPECT_EQ(ParseYaml("a: 12\nb: -1.5e3\nc: .5\nd: 1.\ne: 1e5x\nf: ~\ng: TRUE\nh: '7'\n", "y"),
            Json::parse(R"({"a":12,"b":-1500.0,"c":0.5,"d":1.0,"e":"1e5x","f":null,"g":true,)"
                        R"("h":"7"})"));
  const std::string digits(200000, '7');
  EXPECT_EQ(ParseYaml("a: " + digits + "\n", "y")["a"], digits);  // beyond int64: a string
  EXPECT_EQ(ParseYaml("a: x" + digits + "\n", "y")["a"], "x" + digits);
  EXPECT_EQ(ToYaml(Json{{"a", "yes"}, {"b", "1.5"}, {"c", digits + "x"}}),
            "a: \"yes\"\nb: \"1.5\"\nc: " + digits + "x\n");
}

TEST(YamlScalarTest, FloatOutOfRangeIsInvalid) {
  try {
    ParseYaml("a: 1e99999\n", "config.yaml");
    ADD_FAILURE() << "parsed";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::kInvalid);
    EXPECT_EQ(std::string(e.what()), "config.yaml: invalid YAML: number out of range: 1e99999");
  }
}

api::ImageBasedUpgrade WithImage(const std::string& image) {
  api::ImageBasedUpgrade ibu = api::NewDefault(ParseTime("2026-01-01T00:00:00Z"), "uid");
  ibu.spec.seed_image_ref.image = image;
  return ibu;
}

TEST(AdmissionLimitsTest, LongImagesAreCheckedInOnePass) {
  // 30,000 characters crashed std::regex; far longer ones are checked just as well.
  EXPECT_NO_THROW(api::ValidateObject(WithImage("quay.io/" + std::string(1 << 20, 'a'))));
  try {
    api::ValidateObject(WithImage(std::string(30000, 'a') + " b"));
    ADD_FAILURE() << "accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::kInvalid);
    const std::string m = e.what();
    EXPECT_EQ(m.rfind("spec.seedImageRef.image: Invalid value: \"aaaa", 0), 0u) << m;
    EXPECT_LT(m.size(), 400u);
  }
}

TEST(AdmissionLimitsTest, ThePatternAcceptsExactlyNonEmptyWithoutWhitespace) {
  for (const char* ok :
       {"quay.io/org/seed:4.15.2", "docker://r/x@sha256:ab", "oci:/x:y", "x", "\xc3\xbc"}) {
    EXPECT_NO_THROW(api::ValidateObject(WithImage(ok))) << ok;
  }
  for (const char* bad : {" x", "x y", "x\t", "x\n", "x\r", "x\f", "x\v"}) {
    EXPECT_THROW(api::ValidateObject(WithImage(bad)), Error) << bad;
  }
}

TEST(ImageListLimitsTest, ReferencesLongerThanAnyRealOneAreRefusedBeforeTheExcludeRegexes) {
  const std::string longest = "r/" + std::string(precache::kMaxImageReferenceBytes - 2, 'a');
  EXPECT_EQ(precache::ParseImageList(longest + "\n", "containers.list").size(), 1u);
  try {
    precache::ParseImageList("ok:1\n" + longest + "a\n", "containers.list");
    ADD_FAILURE() << "accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::kInvalid);
    EXPECT_EQ(std::string(e.what()).rfind("containers.list line 2: 'r/aaa", 0), 0u) << e.what();
    EXPECT_NE(std::string(e.what()).find("1025 bytes long"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace lca
