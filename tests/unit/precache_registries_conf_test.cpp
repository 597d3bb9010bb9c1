// The registries.conf reader that decides which images the in-process registry client may fetch
// itself: the TOML subset (and the line named when it refuses), containers/image's defaults and
// checks, prefix matching as containers/image's FindRegistry, and the files it loads, in order.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdlib>
#include <fstream>

#include "common/error.hpp"
#include "precache/mirrors.hpp"
#include "precache/registries_conf.hpp"
#include "tests/support/expect_error.hpp"
#include "tests/support/temp_dir.hpp"

namespace lca::precache {
namespace {
namespace fs = std::filesystem;
using test::InvalidMessage;

RegistriesConf Parse(const std::string& text) { return ParseRegistriesConf(text, "r.conf"); }

std::string ErrorOf(const std::string& text) {
  return InvalidMessage([&] { Parse(text); });
}

// The prefix of the entry FindRegistry picks, or "-".
std::string Picked(const RegistriesConf& conf, const std::string& repo) {
  const RegistryEntry* e = FindRegistry(conf, repo);
  return e == nullptr ? "-" : e->prefix;
}

std::vector<std::string> Prefixes(const RegistriesConf& conf) {
  std::vector<std::string> out;
  for (const auto& e : conf.registries) out.push_back(e.prefix);
  return out;
}

void Write(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << text;
}

std::string Entry(const std::string& prefix, const std::string& location,
                  const std::string& mirror = "") {
  std::string s = "[[registry]]\nprefix = \"" + prefix + "\"\nlocation = \"" + location + "\"\n";
  if (!mirror.empty()) s += "[[registry.mirror]]\nlocation = \"" + mirror + "\"\n";
  return s;
}

// Debian's /etc/containers/registries.conf.d/shortnames.conf style, with the Fedora defaults'
// global keys, an array over several lines with comments and a trailing comma, and CRLF.
const char kShortNames[] =
    "# Short-name aliases\n"
    "unqualified-search-registries = [\n"
    "  \"registry.fedoraproject.org\", # Fedora\n"
    "  # comment between items, with a [bracket] and a \"quote\"\n"
    "  'docker.io',\n"
    "]\n"
    "short-name-mode=\"enforcing\"\n"
    "credential-helpers = []\n"
    "\n"
    "[aliases]\n"
    "  # almalinux\n"
    "  \"almalinux\" = \"docker.io/library/almalinux\"\n"
    "  \"python3.11\" = \"docker.io/library/python\"  # a dot inside a quoted key\n"
    "  'ubi9/ubi' = 'registry.access.redhat.com/ubi9/ubi'\n"
    "  bare-key_1 = \"quay.io/x/y\"\n"
    "\t\"tab\\tescape\\n\\\\ \\\"q\\\"\" = \"\"\n";

TEST(RegistriesConf, DebianShortnamesStyleAliasesAndGlobalsAreIgnored) {
  EXPECT_TRUE(Parse(kShortNames).registries.empty());
  std::string crlf;
  for (const char c : std::string(kShortNames))
    crlf += c == '\n' ? std::string("\r\n") : std::string(1, c);
  EXPECT_TRUE(Parse(crlf).registries.empty());
  // A [[registry]] after the aliases is read, with CRLF too.
  const auto conf = Parse(crlf + "[[registry]]\r\nlocation = \"quay.io\"\r\n");
  EXPECT_EQ(Prefixes(conf), (std::vector<std::string>{"quay.io"}));
  // Lines are still counted right after a multi-line array and CRLF.
  EXPECT_EQ(ErrorOf(crlf + "bogus = 1\r\n"),
            "r.conf: line 17: 'bogus' must be a string, not an integer");
}

TEST(RegistriesConf, InsecureLoopbackRegistryIsDirect) {
  const auto conf = Parse("[[registry]]\nlocation = \"127.0.0.1:5000\"\ninsecure = true\n");
  ASSERT_EQ(conf.registries.size(), 1u);
  const RegistryEntry& e = conf.registries[0];
  EXPECT_EQ(e.prefix, "127.0.0.1:5000");
  EXPECT_EQ(e.location, "127.0.0.1:5000");
  EXPECT_TRUE(e.insecure);
  EXPECT_FALSE(e.blocked);
  EXPECT_TRUE(e.mirrors.empty());
  EXPECT_TRUE(e.Direct());
  EXPECT_EQ(FindRegistry(conf, "127.0.0.1:5000/ns/img"), &e);
  EXPECT_EQ(FindRegistry(conf, "127.0.0.1:5000"), &e);
  EXPECT_EQ(FindRegistry(conf, "127.0.0.1:5001/ns/img"), nullptr);
  EXPECT_EQ(FindRegistry(conf, "127.0.0.1/ns/img"), nullptr);
  EXPECT_EQ(FindRegistry(conf, "127.0.0.1:50001/ns/img"), nullptr);
}

TEST(RegistriesConf, LongestMatchingPrefixWins) {
  const auto conf =
      Parse(Entry("quay.io", "quay.io") + Entry("quay.io/openshift", "quay.io/openshift") +
            Entry("quay.io/openshift-release-dev", "m.local/ocp") +
            Entry("quay.io/openshift-release-dev/ocp-release",
                  "quay.io/openshift-release-dev/ocp-release"));
  EXPECT_EQ(Picked(conf, "quay.io/openshift-release-dev/ocp-release"),
            "quay.io/openshift-release-dev/ocp-release");
  EXPECT_EQ(Picked(conf, "quay.io/openshift-release-dev/ocp-v4.0-art-dev"),
            "quay.io/openshift-release-dev");
  EXPECT_EQ(Picked(conf, "quay.io/openshift-release-dev/ocp-release-nightly"),
            "quay.io/openshift-release-dev")
      << "a prefix ends at a path boundary";
  EXPECT_EQ(Picked(conf, "quay.io/openshift/origin"), "quay.io/openshift");
  EXPECT_EQ(Picked(conf, "quay.io/openshiftx/y"), "quay.io");
  EXPECT_EQ(Picked(conf, "quay.iox/a"), "-");
  EXPECT_EQ(Picked(conf, "docker.io/library/busybox"), "-");
  // Order in the file does not matter.
  const auto reversed =
      Parse(Entry("quay.io/openshift", "quay.io/openshift") + Entry("quay.io", "quay.io"));
  EXPECT_EQ(Picked(reversed, "quay.io/openshift/origin"), "quay.io/openshift");
}

TEST(RegistriesConf, WildcardMatchesSubdomainsButNotTheDomain) {
  const auto conf = Parse("[[registry]]\nprefix = \"*.example.com\"\n");
  ASSERT_EQ(conf.registries.size(), 1u);
  EXPECT_EQ(conf.registries[0].location, "");
  EXPECT_TRUE(conf.registries[0].Direct());
  EXPECT_EQ(Picked(conf, "foo.example.com/a/b"), "*.example.com");
  EXPECT_EQ(Picked(conf, "a.b.example.com/a"), "*.example.com");
  EXPECT_EQ(Picked(conf, "foo.example.com:5000/a"), "*.example.com");
  EXPECT_EQ(Picked(conf, "example.com/a"), "-");
  EXPECT_EQ(Picked(conf, "fooexample.com/a"), "-");
  EXPECT_EQ(Picked(conf, "foo.example.community/a"), "-");
  EXPECT_EQ(Picked(conf, "other.org/foo.example.com"), "-") << "only the host is matched";
}

TEST(RegistriesConf, ExactBeatsWildcardAndTiesGoLikeContainersImage) {
  const std::string wildcard =
      "[[registry]]\nprefix = \"*.example.com\"\nlocation = \"mirror.io\"\n";
  const std::string exact = Entry("registry.example.com", "registry.example.com");
  const std::string tie = Entry("a.example.com", "a.example.com");
  for (const auto& text : {wildcard + exact + tie, tie + exact + wildcard}) {
    const auto conf = Parse(text);
    EXPECT_EQ(Picked(conf, "registry.example.com/ns/img"), "registry.example.com");
    EXPECT_TRUE(FindRegistry(conf, "registry.example.com/ns/img")->Direct());
    EXPECT_EQ(Picked(conf, "other.example.com/ns/img"), "*.example.com");
    EXPECT_FALSE(FindRegistry(conf, "other.example.com/ns/img")->Direct());
    // Same length: containers/image keeps entries sorted by prefix and takes the first, and
    // '*' sorts before any host character.
    EXPECT_EQ(Picked(conf, "a.example.com/ns/img"), "*.example.com");
  }
}

TEST(RegistriesConf, PortIsPartOfTheHost) {
  const auto conf = Parse(Entry("example.com:5000", "example.com:5000", "m.local/x") +
                          Entry("example.com", "example.com"));
  EXPECT_EQ(Picked(conf, "example.com:5000/ns/img"), "example.com:5000");
  EXPECT_FALSE(FindRegistry(conf, "example.com:5000/ns/img")->Direct());
  EXPECT_EQ(Picked(conf, "example.com/ns/img"), "example.com");
  EXPECT_EQ(Picked(conf, "example.com:5001/ns/img"), "example.com")
      << "containers/image lets \"example.com\" match another port of the host";
  const auto only_port = Parse(Entry("example.com:5000", "example.com:5000"));
  EXPECT_EQ(Picked(only_port, "example.com/ns/img"), "-");
  EXPECT_EQ(Picked(only_port, "example.com:50001/ns/img"), "-");
}

TEST(RegistriesConf, DirectOnlyWithoutMirrorBlockOrRewrite) {
  const auto conf = Parse(
      "[[registry]]\nlocation = \"plain.io\"\n"
      "[[registry]]\nlocation = \"slash.io/ns/\"\n"
      "[[registry]]\nprefix = \"same.io/ns\"\nlocation = \"same.io/ns\"\n"
      "[[registry]]\nprefix = \"moved.io\"\nlocation = \"other.io/moved\"\n"
      "[[registry]]\nlocation = \"blocked.io\"\nblocked = true\n"
      "[[registry]]\nlocation = \"mirrored.io\"\nmirror-by-digest-only = true\n"
      "[[registry.mirror]]\nlocation = \"m1.local/\"\ninsecure = true\n"
      "[[registry.mirror]]\nlocation = \"m2.local\"\n"
      "[[registry]]\nlocation = \"pulled.io\"\n"
      "[[registry.mirror]]\nlocation = \"m3.local\"\npull-from-mirror = \"tag-only\"\n");
  const auto direct = [&](const std::string& repo) {
    const RegistryEntry* e = FindRegistry(conf, repo);
    EXPECT_NE(e, nullptr) << repo;
    return e != nullptr && e->Direct();
  };
  EXPECT_TRUE(direct("plain.io/a"));
  EXPECT_TRUE(direct("slash.io/ns/a"));
  EXPECT_EQ(Picked(conf, "slash.io/ns/a"), "slash.io/ns") << "trailing '/' dropped";
  EXPECT_TRUE(direct("same.io/ns/a"));
  EXPECT_FALSE(direct("moved.io/a"));
  EXPECT_FALSE(direct("blocked.io/a"));
  EXPECT_TRUE(FindRegistry(conf, "blocked.io/a")->blocked);
  EXPECT_FALSE(direct("mirrored.io/a"));
  EXPECT_TRUE(FindRegistry(conf, "mirrored.io/a")->mirror_by_digest_only);
  EXPECT_EQ(FindRegistry(conf, "mirrored.io/a")->mirrors,
            (std::vector<std::string>{"m1.local", "m2.local"}));
  EXPECT_FALSE(direct("pulled.io/a"));
}

TEST(RegistriesConf, ContainersImageDefaultsAndChecks) {
  // An empty prefix is no prefix (mirrors.cpp writes `prefix = ""`).
  EXPECT_EQ(Prefixes(Parse("[[registry]]\nprefix = \"\"\nlocation = \"a.io\"\n")),
            (std::vector<std::string>{"a.io"}));
  // The first entry for a prefix wins within one file.
  const auto dup = Parse(Entry("a.io", "a.io") + Entry("a.io", "b.io", "m.local"));
  ASSERT_EQ(dup.registries.size(), 1u);
  EXPECT_TRUE(dup.registries[0].Direct());
  EXPECT_EQ(ErrorOf("\n[[registry]]\ninsecure = true\n"),
            "r.conf: line 2: [[registry]] with neither prefix nor location");
  EXPECT_EQ(ErrorOf("[[registry]]\nprefix = \"\"\nlocation = \"\"\n"),
            "r.conf: line 1: [[registry]] with neither prefix nor location");
  EXPECT_EQ(
      ErrorOf("[[registry]]\nlocation = \"https://a.io\"\n"),
      "r.conf: line 1: location 'https://a.io' must not have a URL scheme (host[:port][/path])");
  EXPECT_EQ(ErrorOf("[[registry]]\nprefix = \"a.io\"\n"),
            "r.conf: line 1: [[registry]] without a location needs a prefix like *.example.com");
  EXPECT_EQ(ErrorOf("[[registry]]\nprefix = \"*.a.io/ns\"\n"),
            "r.conf: line 1: wildcard prefix '*.a.io/ns' must be just *.domain (no port, path, "
            "tag or digest)");
  EXPECT_EQ(ErrorOf("[[registry]]\nlocation = \"a.io\"\n[[registry.mirror]]\ninsecure = true\n"),
            "r.conf: line 3: [[registry.mirror]] without a location");
  EXPECT_EQ(ErrorOf("[[registry]]\nlocation = \"a.io\"\n[[registry.mirror]]\nlocation = \"m\"\n"
                    "pull-from-mirror = \"sometimes\"\n"),
            "r.conf: line 3: pull-from-mirror 'sometimes' is not all, digest-only or tag-only");
  EXPECT_EQ(ErrorOf("[[registry]]\nlocation = \"a.io\"\nmirror-by-digest-only = true\n"
                    "[[registry.mirror]]\nlocation = \"m\"\npull-from-mirror = \"all\"\n"),
            "r.conf: line 4: pull-from-mirror cannot be set when the [[registry]] has "
            "mirror-by-digest-only = true");
  EXPECT_EQ(ErrorOf(Entry("a.io/x", "a.io") + Entry("a.io/y", "a.io") + "insecure = true\n"),
            "r.conf: line 4: registry 'a.io' is also defined on line 1 with a different insecure "
            "or blocked setting");
}

TEST(RegistriesConf, RefusalsNameTheLine) {
  EXPECT_EQ(ErrorOf("# v1\n[registries.search]\nregistries = ['a.io']\n"),
            "r.conf: line 2: [registries.search] is version 1 syntax, which is not supported: "
            "write [[registry]] tables (containers-registries.conf(5) version 2)");
  EXPECT_EQ(ErrorOf("[[registry]]\nlocation = \"a.io\"\n\n[registries.insecure]\n"),
            "r.conf: line 4: [registries.insecure] is version 1 syntax, which is not supported: "
            "write [[registry]] tables (containers-registries.conf(5) version 2)");
  EXPECT_EQ(ErrorOf("[[registry]]\nlocation = \"a.io\"\nmirror = { location = \"m\" }\n"),
            "r.conf: line 3: inline tables ({...}) are not supported");
  EXPECT_EQ(ErrorOf("[[registry]]\nlocation = \"a\\u0041.io\"\n"),
            "r.conf: line 2: escape \\u is not supported (only \\\" \\\\ \\n \\t)");
  EXPECT_EQ(
      ErrorOf("short-name-mode = ''\nunqualified-search-registries = [\n  \"a.io\",\n  \"b.io\"\n"),
      "r.conf: line 2: unterminated array: no ']' before the end of the file");
  EXPECT_EQ(ErrorOf("unqualified-search-registries = [\"a\" \"b\"]\n"),
            "r.conf: line 1: expected ',' or ']' in the array opened on line 1, found '\"'");
  EXPECT_EQ(ErrorOf("unqualified-search-registries = [\n  true,\n]\n"),
            "r.conf: line 2: expected a string or ']' in the array opened on line 1, found 't' "
            "(only arrays of strings are supported)");
  EXPECT_EQ(ErrorOf("\n[[registry]]\nlocation = \"a.io\n"),
            "r.conf: line 3: unterminated string: no closing '\"' on this line");
  EXPECT_EQ(ErrorOf("[[registry]]\nlocation = 'a.io\n'\n"),
            "r.conf: line 2: unterminated string: no closing \"'\" on this line");
  EXPECT_EQ(ErrorOf("[[registry]]\nlocation = \"\"\"a.io\"\"\"\n"),
            "r.conf: line 2: multi-line strings are not supported");
  EXPECT_EQ(ErrorOf("[[registry]]\nmirror.location = \"m\"\n"),
            "r.conf: line 2: dotted keys ('mirror.…') are not supported");
  EXPECT_EQ(ErrorOf("[[registry]]\nlocation = \"a.io\" extra\n"),
            "r.conf: line 2: unexpected 'e' after the value of 'location'");
  EXPECT_EQ(ErrorOf("[[registry]]\nlocation = \"a.io\"\ninsecure = \"true\"\n"),
            "r.conf: line 3: 'insecure' must be a boolean, not a string");
  EXPECT_EQ(ErrorOf("[[registry]]\nlocation = \"a.io\"\ninsecure = 1\n"),
            "r.conf: line 3: 'insecure' must be a boolean, not an integer");
  EXPECT_EQ(ErrorOf("[[registry]]\nlocation = \"a.io\"\ninsecure = 1.5\n"),
            "r.conf: line 3: unsupported value: only true/false, strings, arrays of strings and "
            "plain decimal integers are supported");
  EXPECT_EQ(ErrorOf("short-name-mode = [\"x\"]\n"),
            "r.conf: line 1: 'short-name-mode' must be a string, not an array");
  EXPECT_EQ(ErrorOf("[[registry]]\nlocation = \"a.io\"\nlocation = \"b.io\"\n"),
            "r.conf: line 3: key 'location' is set twice in the same table (TOML forbids it)");
  EXPECT_EQ(ErrorOf("[[registry]]\nlocation = \"a.io\"\n\"location\" = \"b.io\"\n"),
            "r.conf: line 3: key 'location' is set twice in the same table (TOML forbids it)");
  EXPECT_EQ(ErrorOf("[[registry.mirror]]\nlocation = \"m\"\n"),
            "r.conf: line 1: [[registry.mirror]] before any [[registry]]");
  EXPECT_EQ(ErrorOf("[registry]\nlocation = \"a.io\"\n"),
            "r.conf: line 1: table [registry] is not supported (only [[registry]], "
            "[[registry.mirror]] and [aliases])");
  EXPECT_EQ(ErrorOf("[aliases]\n[aliases]\n"),
            "r.conf: line 2: [aliases] appears twice (TOML forbids it)");
  EXPECT_EQ(ErrorOf("additional-layer-store-auth-helper = \"h\"\nfuture-global = true\n"),
            "r.conf: line 2: unknown key 'future-global': this reader cannot tell whether it "
            "changes how images are resolved");
  EXPECT_EQ(ErrorOf("[[registry]]\nlocation = \"a.io\"\npull-from-mirror = \"all\"\n"),
            "r.conf: line 3: unknown key 'pull-from-mirror' in [[registry]] (known: prefix, "
            "location, insecure, blocked, mirror-by-digest-only)");
  EXPECT_EQ(ErrorOf("[[registry]]\nlocation = \"a.io\"\n[[registry.mirror]]\nlocation = \"m\"\n"
                    "blocked = false\n"),
            "r.conf: line 5: unknown key 'blocked' in [[registry.mirror]] (known: location, "
            "insecure, pull-from-mirror)");
  EXPECT_EQ(ErrorOf("[[registry]]\r\nlocation = \"a.io\"\rinsecure = true\r\n"),
            "r.conf: line 2: unexpected carriage return without a line feed after the value of "
            "'location'");
  EXPECT_EQ(ErrorOf("key =\n"), "r.conf: line 1: missing value after '='");
}

// TOML that toml++ reads but this reader cannot represent exactly is refused too, so the
// caller falls back to skopeo; what it can represent is read, non-ASCII included.
TEST(RegistriesConf, ValidTomlOutsideTheSubsetIsRefused) {
  EXPECT_EQ(ErrorOf("[[registry]]\nlocation = \"a.io\"\ninsecure = 0x1\n"),
            "r.conf: line 3: 'insecure' must be a boolean, not an integer");
  EXPECT_EQ(ErrorOf("short-name-mode = 1979-05-27\n"),
            "r.conf: line 1: unsupported value: only true/false, strings, arrays of strings and "
            "plain decimal integers are supported");
  EXPECT_EQ(ErrorOf("[[foo]]\nx = \"y\"\n"),
            "r.conf: line 1: table [[foo]] is not supported (only [[registry]], "
            "[[registry.mirror]] and [aliases])");
  EXPECT_EQ(ErrorOf("registry.location = \"a.io\"\n"),
            "r.conf: line 1: dotted keys ('registry.…') are not supported");
  EXPECT_EQ(ErrorOf("[[registry]]\nlocation = \"a.io\"\n[registry.mirror]\nlocation = \"m\"\n"),
            "r.conf: line 3: table [registry.mirror] is not supported (only [[registry]], "
            "[[registry.mirror]] and [aliases])");
  EXPECT_EQ(ErrorOf("[[registry]]\nlocation = \"a.io\"\nmirror = [{location = \"m\"}]\n"),
            "r.conf: line 3: expected a string or ']' in the array opened on line 3, found '{' "
            "(only arrays of strings are supported)");
  EXPECT_EQ(ErrorOf("[aliases.x]\ny = \"z\"\n"),
            "r.conf: line 1: table [aliases.x] is not supported (only [[registry]], "
            "[[registry.mirror]] and [aliases])");
  EXPECT_EQ(ErrorOf("[[registry]]\nlocation = '''a.io'''\n"),
            "r.conf: line 2: multi-line strings are not supported");
  // A literal string has no escapes; a comment and a header may be indented.
  const auto conf = Parse(
      "# ünïcode\n[[registry]]\nlocation = 'a\\u0041.io' # c\n\n  [[registry.mirror]]\n"
      "  location = \"mírror.io\"\n");
  ASSERT_EQ(conf.registries.size(), 1u);
  EXPECT_EQ(conf.registries[0].location, "a\\u0041.io");
  EXPECT_EQ(conf.registries[0].mirrors, (std::vector<std::string>{"mírror.io"}));
  EXPECT_EQ(ErrorOf("# ü\n[[registry]]\nlocation = \"ü.io\"\ninsecure = \"yes\"\n"),
            "r.conf: line 4: 'insecure' must be a boolean, not a string");
}

TEST(RegistriesConf, RoundTripOfMirrorsRendering) {
  const std::vector<MirrorRule> rules = {
      {"quay.io/openshift-release-dev/ocp-release", {"mirror.local:5000/ocp/release"}, false},
      {"registry.redhat.io", {"m1.local/rh", "m2.local/rh"}, true},
      {"insecure.local:5000/team", {"mirror.local:5000/team"}, false},
  };
  const std::string text =
      RenderRegistriesConf(rules, {"mirror.local:5000", "insecure.local:5000"});
  const auto conf = ParseRegistriesConf(text, "rendered");
  ASSERT_EQ(conf.registries.size(), 3u) << text;

  const RegistryEntry* ocp = FindRegistry(conf, "quay.io/openshift-release-dev/ocp-release");
  ASSERT_NE(ocp, nullptr);
  EXPECT_EQ(ocp->prefix, "quay.io/openshift-release-dev/ocp-release");
  EXPECT_EQ(ocp->mirrors, (std::vector<std::string>{"mirror.local:5000/ocp/release"}));
  EXPECT_TRUE(ocp->mirror_by_digest_only);
  EXPECT_FALSE(ocp->blocked);
  EXPECT_FALSE(ocp->insecure);
  EXPECT_FALSE(ocp->Direct());

  const RegistryEntry* rh = FindRegistry(conf, "registry.redhat.io/ubi9/ubi");
  ASSERT_NE(rh, nullptr);
  EXPECT_EQ(rh->mirrors, (std::vector<std::string>{"m1.local/rh", "m2.local/rh"}));
  EXPECT_TRUE(rh->blocked);

  const RegistryEntry* team = FindRegistry(conf, "insecure.local:5000/team/app");
  ASSERT_NE(team, nullptr);
  EXPECT_TRUE(team->insecure);

  EXPECT_EQ(FindRegistry(conf, "quay.io/openshift-release-dev/ocp-v4.0-art-dev"), nullptr);
  EXPECT_EQ(FindRegistry(conf, "insecure.local:5000/other"), nullptr);
}

// A fake root: <etc>/containers and a home directory.
class LoadTest : public ::testing::Test {
 protected:
  test::TempDir tmp_{"registries-conf"};
  fs::path etc_ = tmp_ / "etc/containers";
  fs::path home_ = tmp_ / "home";
  fs::path etc_d_ = etc_ / "registries.conf.d";
  fs::path user_ = home_ / ".config/containers";

  RegistriesConf Load(const std::optional<fs::path>& main = std::nullopt) {
    return LoadRegistriesConf(main, etc_, home_);
  }
};

TEST_F(LoadTest, MissingDefaultMainIsEmptyButAMissingExplicitMainThrows) {
  EXPECT_TRUE(Load().registries.empty());
  EXPECT_TRUE(LoadRegistriesConf(std::nullopt, etc_, std::nullopt).registries.empty());
  try {
    Load(tmp_ / "nope.conf");
    ADD_FAILURE() << "a missing --registries-conf file was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::kNotFound);
    EXPECT_NE(std::string(e.what()).find("nope.conf: no such file"), std::string::npos);
  }
  // An unreadable main file is not "missing".
  fs::create_directories(etc_ / "registries.conf");
  try {
    Load();
    ADD_FAILURE() << "a directory as registries.conf was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::kIo) << e.what();
  }
}

TEST_F(LoadTest, DropInsReplaceByPrefixInByteOrderOfName) {
  Write(etc_ / "registries.conf", Entry("a.io", "a.io") + Entry("b.io", "b.io", "m.local/b"));
  // Each of these sets chain.io, the last one read in byte order of name ("B" < "a") winning,
  // and adds its own prefix, which shows the order the files were read in.
  const std::vector<std::string> names = {"50", "05", "a", "10", "B", "0", "9", "_", "Z", "-"};
  for (const auto& name : names) {
    Write(etc_d_ / (name + ".conf"), Entry("chain.io", "chain.io", "from-" + name + ".local") +
                                         Entry("f" + name + ".io", "f" + name + ".io"));
  }
  Write(etc_d_ / "10.conf", Entry("chain.io", "chain.io", "from-10.local") +
                                Entry("f10.io", "f10.io") + Entry("b.io", "b.io"));
  Write(etc_d_ / "zz.conf.bak", "this is not TOML");
  fs::create_directories(etc_d_ / "sub.conf");
  Write(etc_d_ / "sub.conf" / "x.conf", "neither is this");
  fs::create_symlink(tmp_ / "missing", etc_d_ / "dangling.conf");

  const auto conf = Load();
  // Replaced entries keep their place; new ones are appended.
  EXPECT_EQ(Prefixes(conf), (std::vector<std::string>{"a.io", "b.io", "chain.io", "f-.io", "f0.io",
                                                      "f05.io", "f10.io", "f50.io", "f9.io",
                                                      "fB.io", "fZ.io", "f_.io", "fa.io"}));
  EXPECT_TRUE(FindRegistry(conf, "b.io/x")->Direct()) << "10.conf replaced the main file's b.io";
  EXPECT_EQ(FindRegistry(conf, "chain.io/x")->mirrors, (std::vector<std::string>{"from-a.local"}));

  // The user's drop-ins come after the system's, whatever their names.
  Write(user_ / "registries.conf.d" / "00.conf", Entry("chain.io", "chain.io"));
  EXPECT_TRUE(FindRegistry(Load(), "chain.io/x")->Direct());
  // Without a home, only the system directory counts.
  EXPECT_EQ(
      FindRegistry(LoadRegistriesConf(std::nullopt, etc_, std::nullopt), "chain.io/x")->mirrors,
      (std::vector<std::string>{"from-a.local"}));
}

TEST_F(LoadTest, UserMainFileReplacesTheSystemFileAndItsDropIns) {
  Write(etc_ / "registries.conf", Entry("a.io", "a.io", "m.local/a"));
  Write(etc_d_ / "10.conf", Entry("b.io", "b.io", "m.local/b"));
  Write(user_ / "registries.conf", Entry("c.io", "c.io"));
  Write(user_ / "registries.conf.d" / "10.conf", Entry("d.io", "d.io"));
  EXPECT_EQ(Prefixes(Load()), (std::vector<std::string>{"c.io", "d.io"}));
  // An explicit main file (skopeo --registries-conf) wins over the user's, and both drop-in
  // directories apply.
  Write(tmp_ / "explicit.conf", Entry("e.io", "e.io"));
  EXPECT_EQ(Prefixes(Load(tmp_ / "explicit.conf")),
            (std::vector<std::string>{"e.io", "b.io", "d.io"}));
}

TEST_F(LoadTest, SymlinkedDropInDirectoryIsIgnoredAsByContainersImage) {
  Write(tmp_ / "elsewhere" / "10.conf", Entry("b.io", "b.io", "m.local/b"));
  fs::create_directories(etc_);
  fs::create_directory_symlink(tmp_ / "elsewhere", etc_d_);
  EXPECT_TRUE(Load().registries.empty());
}

TEST_F(LoadTest, BadDropInNamesItsFile) {
  Write(etc_d_ / "10.conf", "[[registry]]\nlocation = \"a.io\"\n");
  Write(etc_d_ / "20.conf", "\n[registries.block]\nregistries = ['x']\n");
  const std::string msg = InvalidMessage([&] { Load(); });
  EXPECT_EQ(msg, (etc_d_ / "20.conf").string() +
                     ": line 2: [registries.block] is version 1 syntax, which is not supported: "
                     "write [[registry]] tables (containers-registries.conf(5) version 2)");
  fs::remove(etc_d_ / "20.conf");
  ASSERT_EQ(::mkfifo((etc_d_ / "30.conf").c_str(), 0600), 0);
  EXPECT_EQ(InvalidMessage([&] { Load(); }),
            (etc_d_ / "30.conf").string() +
                ": not a regular file; remove it or rename it so that it does not end in .conf");
}

TEST(RegistriesConfHome, HomeComesFromTheEnvironment) {
  const char* old = std::getenv("HOME");
  const std::string saved = old == nullptr ? "" : old;
  ::setenv("HOME", "/some/home", 1);
  EXPECT_EQ(DefaultHomeDir(), fs::path("/some/home"));
  ::setenv("HOME", "", 1);
  const auto fallback = DefaultHomeDir();  // the passwd entry, when there is one
  EXPECT_TRUE(!fallback || !fallback->empty());
  if (old == nullptr) {
    ::unsetenv("HOME");
  } else {
    ::setenv("HOME", saved.c_str(), 1);
  }
}

}  // namespace
}  // namespace lca::precache
