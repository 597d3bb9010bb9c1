// must-gather's redaction and member-name rules.
#include <gtest/gtest.h>

#include "agent/cli/must_gather.hpp"

namespace lca::cli {
namespace {

TEST(RedactJson, ReplacesSecretValuesAtAnyDepthAnyCase) {
  Json j = Json::parse(R"({"auths":{"r.example":{"auth":"dXNlcjpwYXNz","Password":"p",
      "email":"e@x","identityToken":"i","RegistryToken":"r"}},"token":["not","a","scalar"],
      "list":[{"token":"t"}],"authorization_mode":"keep"})");
  RedactJson(j);
  EXPECT_EQ(j.dump(),
            R"({"auths":{"r.example":{"auth":"REDACTED","Password":"REDACTED","email":"e@x",)"
            R"("identityToken":"REDACTED","RegistryToken":"REDACTED"}},)"
            R"("token":["not","a","scalar"],"list":[{"token":"REDACTED"}],)"
            R"("authorization_mode":"keep"})");
}

TEST(RedactText, JsonYamlHeadersAndBearerTokens) {
  EXPECT_EQ(RedactText(R"(x {"auth": "abc=", "user":"u"} {"TOKEN":"t\"q"})"),
            R"(x {"auth": "REDACTED", "user":"u"} {"TOKEN":"REDACTED"})");
  EXPECT_EQ(RedactText("registryToken: s3cret\n  password: hunter2\ntoken=abc def\n"),
            "registryToken: REDACTED\n  password: REDACTED\ntoken=REDACTED def\n");
  EXPECT_EQ(RedactText("GET / Authorization: Basic dXNlcjpw\n"), "GET / Authorization: REDACTED\n");
  EXPECT_EQ(RedactText("curl -H 'x: Bearer abc.def' ok"), "curl -H 'x: Bearer REDACTED' ok");
  // Words that merely contain a key are left alone.
  EXPECT_EQ(RedactText("tokenizer: on\nmyauth: x\nauthors: me\n"),
            "tokenizer: on\nmyauth: x\nauthors: me\n");
}

TEST(RedactText, LongValuesAfterAKeyAreRedactedWithoutRecursion) {
  // std::regex recursed once per character here: this crashed lcactl must-gather.
  const std::string long_value(300000, 'x');
  EXPECT_EQ(RedactText("{\"token\": \"" + long_value + "\"}\n"), "{\"token\": \"REDACTED\"}\n");
  EXPECT_EQ(RedactText("password=" + long_value + " next"), "password=REDACTED next");
  EXPECT_EQ(RedactText("Authorization: " + long_value), "Authorization: REDACTED");
  EXPECT_EQ(RedactText("Bearer " + long_value), "Bearer REDACTED");
}

TEST(RedactText, EdgeCasesKeepTheRegexSemantics) {
  EXPECT_EQ(RedactText("auth: \"a\\\"b\" tail"), "auth: \"REDACTED\" tail");
  // Neither quoted (no closing quote on the line) nor bare (starts with a quote): kept.
  EXPECT_EQ(RedactText("token: \"unterminated\nnext"), "token: \"unterminated\nnext");
  EXPECT_EQ(RedactText("\"Password\"=\"p\",x"), "\"Password\"=\"REDACTED\",x");
  EXPECT_EQ(RedactText("identitytoken:abc}"), "identitytoken:REDACTED}");
  EXPECT_EQ(RedactText("x_token: a"), "x_token: a");
  EXPECT_EQ(RedactText("authorization = \n"), "authorization =REDACTED\n");
  EXPECT_EQ(RedactText("bearer\tA+b/c= d"), "bearer\tREDACTED d");
  EXPECT_EQ(RedactText("bearer: x"), "bearer: x");
  EXPECT_EQ(RedactText("a,token=\"q\" AUTH=z registrytoken :  \"v\\\\\""),
            "a,token=\"REDACTED\" AUTH=REDACTED registrytoken :  \"REDACTED\"");
}

TEST(SafeMemberName, RelativeAndPlain) {
  EXPECT_TRUE(SafeMemberName("object.json"));
  EXPECT_TRUE(SafeMemberName("config/lifecycle-agent.yaml"));
  for (const char* bad :
       {"", "/etc/passwd", "../x", "a/../b", "a//b", "a/", "./a", "a b", "a\nb", "sub/.."}) {
    EXPECT_FALSE(SafeMemberName(bad)) << bad;
  }
}

}  // namespace
}  // namespace lca::cli
