// Image-list sources without a registry: release image-references with TALM's exclude matching,
// file-based catalogs (channel heads as TALM's parse_index tests, plus skips), the
// packagesAndChannels format, and the registries.conf rendering of ICSP/IDMS (seed 002).
#include <gtest/gtest.h>

#include "common/error.hpp"
#include "common/json_yaml.hpp"
#include "formats/oci_layout.hpp"
#include "precache/image_list.hpp"
#include "precache/job.hpp"
#include "precache/mirrors.hpp"
#include "precache/sources.hpp"
#include "precache/space_plan.hpp"

namespace lca::precache {
namespace {

TEST(PrecacheSources, ReleaseExcludesMatchTagNameAndPullSpecTogether) {
  const auto tags = ParseImageReferences(R"({"kind":"ImageStream","spec":{"tags":[
      {"name":"bawsa","from":{"kind":"DockerImage","name":"quay.io/1"}},
      {"name":"etcd","from":{"kind":"DockerImage","name":"quay.io/2"}},
      {"name":"x","from":{"kind":"DockerImage","name":"quay.io/aws-thing"}},
      {"name":"dup","from":{"kind":"DockerImage","name":"quay.io/2"}},
      {"name":"nofrom"}]}})",
                                         "image-references");
  ASSERT_EQ(tags.size(), 4u);
  // TALM's test.sh: pattern "aws" drops tag "bawsa" (its image quay.io/1 with it) and any pull
  // spec containing "aws".
  EXPECT_EQ(ReleaseImages(tags, ExcludePatterns::Parse("aws\n", "p")),
            (std::vector<std::string>{"quay.io/2"}));
  EXPECT_EQ(ReleaseImages(tags, ExcludePatterns::Parse("", "p")),
            (std::vector<std::string>{"quay.io/1", "quay.io/2", "quay.io/aws-thing"}));
  // Only the "etcd" tag goes; the same image under tag "dup" stays.
  EXPECT_EQ(ReleaseImages(tags, ExcludePatterns::Parse("^etcd\\$", "p")),
            (std::vector<std::string>{"quay.io/1", "quay.io/aws-thing", "quay.io/2"}));
  EXPECT_THROW(ParseImageReferences(R"({"kind":"Pod"})", "x"), Error);
}

TEST(PrecacheSources, PackagesAndChannelsTolerateSpacesAndRejectMalformedLines) {
  EXPECT_EQ(ParsePackagesAndChannels(" pkg1 : stable \n\npkg2:fast\npkg1:candidate"),
            (std::map<std::string, std::string>{{"pkg1", "candidate"}, {"pkg2", "fast"}}));
  try {
    ParsePackagesAndChannels("pkg1:stable\nbroken\n");
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("line 2: 'broken'"), std::string::npos) << e.what();
  }
  EXPECT_THROW(ParsePackagesAndChannels("a:b:c"), Error);
}

std::vector<Json> Catalog(const std::string& text) { return ParseCatalogFile(text, "c.json"); }

std::string Channel(const std::string& pkg, const std::string& ch, const std::string& entries) {
  return R"({"schema":"olm.channel","package":")" + pkg + R"(","name":")" + ch +
         R"(","entries":[)" + entries + "]}\n";
}
std::string Bundle(const std::string& pkg, const std::string& name,
                   const std::vector<std::string>& related) {
  std::string r;
  for (const auto& x : related)
    r += std::string(r.empty() ? "" : ",") + R"({"image":")" + x + "\"}";
  return R"({"schema":"olm.bundle","package":")" + pkg + R"(","name":")" + name +
         R"(","image":"reg/)" + name + R"(","relatedImages":[)" + r + "]}";
}

TEST(PrecacheSources, ChannelHeadIsTheEntryNobodyReplacesAsInTalmsTests) {
  const std::string bundles = Bundle("p", "v1", {"r/op:1"}) + Bundle("p", "v2", {"r/op:2"}) +
                              Bundle("p", "v3", {"r/op:3", "r/operand:3"});
  // simple chain
  auto s = SelectCatalogImages(
      Catalog(
          Channel("p", "stable",
                  R"({"name":"v1"},{"name":"v2","replaces":"v1"},{"name":"v3","replaces":"v2"})") +
          bundles),
      {{"p", "stable"}});
  EXPECT_EQ(s.images, (std::vector<std::string>{"reg/v3", "r/op:3", "r/operand:3"}));
  EXPECT_TRUE(s.warnings.empty());
  // out of order entries
  s = SelectCatalogImages(
      Catalog(
          Channel("p", "stable",
                  R"({"name":"v3","replaces":"v2"},{"name":"v1"},{"name":"v2","replaces":"v1"})") +
          bundles),
      {{"p", "stable"}});
  EXPECT_EQ(s.images.front(), "reg/v3");
  // skips: TALM sees two heads (v1 skipped, v3 not replaced by anyone); skips count here
  s = SelectCatalogImages(
      Catalog(Channel("p", "stable", R"({"name":"v3","skips":["v1"]},{"name":"v1"})") + bundles),
      {{"p", "stable"}});
  EXPECT_EQ(s.images.front(), "reg/v3");
  EXPECT_TRUE(s.warnings.empty());
  // single entry
  s = SelectCatalogImages(Catalog(Channel("p", "stable", R"({"name":"v2"})") + bundles),
                          {{"p", "stable"}});
  EXPECT_EQ(s.images, (std::vector<std::string>{"reg/v2", "r/op:2"}));
  // empty entries: warning, nothing
  s = SelectCatalogImages(Catalog(Channel("p", "stable", "") + bundles), {{"p", "stable"}});
  EXPECT_TRUE(s.images.empty());
  EXPECT_EQ(s.warnings.size(), 1u);
  // two real heads: the last listed wins, with a warning
  s = SelectCatalogImages(
      Catalog(Channel("p", "stable", R"({"name":"v1"},{"name":"v2"})") + bundles),
      {{"p", "stable"}});
  EXPECT_EQ(s.images.front(), "reg/v2");
  EXPECT_EQ(s.warnings.size(), 1u);
  // another channel, or a package not requested, or absent: nothing and no empty entry
  s = SelectCatalogImages(Catalog(Channel("p", "fast", R"({"name":"v1"})") + bundles),
                          {{"p", "stable"}, {"q", "stable"}});
  EXPECT_TRUE(s.images.empty());
  EXPECT_EQ(s.missing, (std::vector<std::string>{"p:stable", "q:stable"}));
}

TEST(PrecacheSources, CatalogFilesAreConcatenatedJsonOrYamlDocuments) {
  const auto objs = ParseCatalogFile(R"({"schema":"olm.package","name":"a"}
{"schema":"olm.channel","name":"s","package":"a","entries":[{"name":"x","skipRange":"<1.0 \"}"}]}
  {"a":[1,{"b":"}"}]})",
                                     "catalog.json");
  ASSERT_EQ(objs.size(), 3u);
  EXPECT_EQ(objs[1]["entries"][0]["skipRange"], "<1.0 \"}");
  const auto y = ParseCatalogFile(
      "schema: olm.package\nname: a\n---\nschema: olm.bundle\nname: b\n", "c.yaml");
  ASSERT_EQ(y.size(), 2u);
  EXPECT_EQ(y[1]["name"], "b");
  EXPECT_THROW(ParseCatalogFile("{\"a\":1", "bad.json"), Error);
}

TEST(PrecacheMirrors, IcspRendersAsTheSeedsRegistriesConf) {
  // The ImageContentSourcePolicy and registries.conf of seed 002 (13.4.5).
  const std::string icsp = R"(apiVersion: operator.openshift.io/v1alpha1
kind: ImageContentSourcePolicy
metadata:
  name: ubi8repo
spec:
  repositoryDigestMirrors:
  - mirrors:
    - example.io/example/ubi-minimal
    - example.com/example/ubi-minimal
    source: registry.access.redhat.com/ubi8/ubi-minimal
  - mirrors:
    - mirror.example.com/redhat
    source: registry.redhat.io/openshift4
  - mirrors:
    - mirror.example.com
    source: registry.redhat.io
  - mirrors:
    - mirror.example.net/image
    source: registry.example.com/example/myimage
  - mirrors:
    - mirror.example.net
    source: registry.example.com/example
  - mirrors:
    - mirror.example.net/registry-example-com
    source: registry.example.com
)";
  const std::string want_body = R"(
[[registry]]
  prefix = ""
  location = "registry.access.redhat.com/ubi8/ubi-minimal"
  mirror-by-digest-only = true

  [[registry.mirror]]
    location = "example.io/example/ubi-minimal"

  [[registry.mirror]]
    location = "example.com/example/ubi-minimal"

[[registry]]
  prefix = ""
  location = "registry.example.com"
  mirror-by-digest-only = true

  [[registry.mirror]]
    location = "mirror.example.net/registry-example-com"

[[registry]]
  prefix = ""
  location = "registry.example.com/example"
  mirror-by-digest-only = true

  [[registry.mirror]]
    location = "mirror.example.net"

[[registry]]
  prefix = ""
  location = "registry.example.com/example/myimage"
  mirror-by-digest-only = true

  [[registry.mirror]]
    location = "mirror.example.net/image"

[[registry]]
  prefix = ""
  location = "registry.redhat.io"
  mirror-by-digest-only = true

  [[registry.mirror]]
    location = "mirror.example.com"

[[registry]]
  prefix = ""
  location = "registry.redhat.io/openshift4"
  mirror-by-digest-only = true

  [[registry.mirror]]
    location = "mirror.example.com/redhat"
)";
  const auto rules = ParseMirrorManifests(icsp, "icsp.yaml");
  const std::string text = RenderRegistriesConf(rules);
  ASSERT_NE(text.find("\n[[registry]]"), std::string::npos);
  EXPECT_EQ(text.substr(text.find("\n[[registry]]")), want_body);
  EXPECT_EQ(MirrorSources(rules).size(), 6u);
}

TEST(PrecacheMirrors, IdmsListsMergeAndNeverContactSourceBlocks) {
  const std::string idms = R"(apiVersion: v1
kind: List
items:
- apiVersion: config.openshift.io/v1
  kind: ImageDigestMirrorSet
  metadata: {name: a}
  spec:
    imageDigestMirrors:
    - source: quay.io/ocp
      mirrors: [m1.local:5000/ocp]
      mirrorSourcePolicy: NeverContactSource
- apiVersion: config.openshift.io/v1
  kind: ImageDigestMirrorSet
  metadata: {name: b}
  spec:
    imageDigestMirrors:
    - source: quay.io/ocp
      mirrors: [m2.local/ocp, m1.local:5000/ocp]
)";
  const auto text =
      RenderRegistriesConf(ParseMirrorManifests(idms, "idms.yaml"), {"m1.local:5000"});
  EXPECT_NE(text.find(R"(  location = "quay.io/ocp"
  blocked = true
  mirror-by-digest-only = true

  [[registry.mirror]]
    location = "m1.local:5000/ocp"
    insecure = true

  [[registry.mirror]]
    location = "m2.local/ocp"
)"),
            std::string::npos)
      << text;
  EXPECT_THROW(ParseMirrorManifests("kind: ImageTagMirrorSet\nspec: {}\n", "itms.yaml"), Error);
  EXPECT_THROW(ParseMirrorManifests(R"(kind: ImageDigestMirrorSet
spec: {imageDigestMirrors: [{source: "https://x", mirrors: [a]}]})",
                                    "bad.yaml"),
               Error);
}

TEST(PrecacheSources, ManifestListIsResolvedToThisMachinesImage) {
  const std::string list =
      R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json",
    "manifests":[{"digest":"sha256:aa","platform":{"os":"linux","architecture":"s390x-other"}},
                 {"digest":"sha256:bb","platform":{"os":"linux","architecture":")" +
      stateroot::HostOciArchitecture() + R"("}}]})";
  std::string platform;
  const ImageLayers l = ParseManifest("x/y:z", list, stateroot::HostOciArchitecture(), &platform);
  EXPECT_EQ(platform, "sha256:bb");
  EXPECT_TRUE(l.digests.empty());
  EXPECT_THROW(ParseManifest("x/y:z", list, "riscv-none", &platform), Error);
}

TEST(PrecacheJob, StatesAndExitCodes) {
  EXPECT_EQ(JobStateName(JobState::kPreparingToStart), "PreparingToStart");
  EXPECT_EQ(JobStateName(JobState::kPrecacheTimeout), "PrecacheTimeout");
  EXPECT_EQ(JobExitCode(JobState::kSucceeded), 0);
  EXPECT_EQ(JobExitCode(JobState::kPrecacheTimeout), 3);
  EXPECT_EQ(JobExitCode(JobState::kUnrecoverableError), 1);
}

}  // namespace
}  // namespace lca::precache
