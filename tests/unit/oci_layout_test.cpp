// Tests for formats/oci_layout: layouts made by umoci read back, layouts we write are read by
// skopeo, corrupted blobs and path-like digests are refused.
#include "formats/oci_layout.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "common/atomic_file.hpp"
#include "common/error.hpp"
#include "common/json_yaml.hpp"
#include "common/process.hpp"
#include "formats/archive.hpp"

namespace lca::stateroot {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

// skopeo run as root keeps a blob-info cache in /var/lib/containers and reads credentials from
// $HOME: run it in a private mount namespace with a tmpfs over /var/lib, so the machine's own
// /var/lib/containers is never created or touched.
ProcessResult RunTool(std::vector<std::string> argv) {
  SystemProcessRunner runner;
  if (!argv.empty() && argv[0] == "skopeo") {
    argv.insert(argv.begin(), {"unshare", "--mount", "--propagation", "private", "sh", "-c",
                               "mount -t tmpfs tmpfs /var/lib && exec \"$0\" \"$@\""});
  }
  return RunChecked(runner, ProcessSpec{.argv = std::move(argv)});
}

// Calls f, expects an lca::Error with `code` whose message contains every one of `parts`.
template <class F>
void ExpectError(F&& f, Errc code, const std::vector<std::string>& parts) {
  try {
    f();
    ADD_FAILURE() << "no error; expected one containing " << parts.front();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), code) << e.what();
    for (const std::string& p : parts) EXPECT_THAT(e.what(), HasSubstr(p));
  }
}

const std::map<std::string, std::string> kLabels = {
    {"com.openshift.lifecycle-agent.seed_format_version", "4"},
    {"com.openshift.lifecycle-agent.seed_cluster_info", R"({"seed_cluster_ocp_version":"4.16.1"})"},
};

class OciTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "lca-oci-test-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    root_ = tmpl;
  }
  void TearDown() override { fs::remove_all(root_); }

  // A seed-like layout written by OciLayoutWriter, its single layer made by TarWriter.
  OciDescriptor WriteSeedLayout(const fs::path& layout, OciLayer* layer_out = nullptr) {
    fs::path files = root_ / "files";
    fs::create_directories(files);
    WriteFileAtomic(files / "ostree.tgz", std::string(200000, 'o'), 0644);
    WriteFileAtomic(files / "manifest.json", R"({"seed_cluster_ocp_version":"4.16.1"})", 0644);
    fs::path layer_tgz = root_ / "layer.tar.gz";
    {
      TarWriter w(layer_tgz, Compression::kGzip);
      w.AddFile("ostree.tgz", files / "ostree.tgz");
      w.AddFile("manifest.json", files / "manifest.json");
      w.Close();
    }
    {
      TarWriter w(root_ / "layer.tar", Compression::kNone);
      w.AddFile("ostree.tgz", files / "ostree.tgz");
      w.AddFile("manifest.json", files / "manifest.json");
      w.Close();
    }
    OciLayoutWriter writer(layout);
    OciLayer layer = writer.AddLayerFile(layer_tgz, kOciLayerGzipMediaType, /*move=*/true);
    EXPECT_FALSE(fs::exists(layer_tgz));
    if (layer_out != nullptr) *layer_out = layer;
    return writer.AddImage("seed", {layer}, kLabels);
  }

  // Reads the layer of `image` through a VerifyingSource: manifest.json's content.
  static std::string ReadManifestFromLayer(const fs::path& layout, const OciImage& image) {
    VerifyingSource src(layout, image.layers.at(0), "the seed image");
    TarReader reader(src, "seed layer");
    std::string manifest;
    while (auto e = reader.Next()) {
      if (e->name == "manifest.json") manifest = reader.ReadAll();
    }
    reader.Finish();
    return manifest;
  }

  static void FlipByte(const fs::path& file, std::uint64_t at) {
    std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(static_cast<std::streamoff>(at));
    char c = 0;
    f.get(c);
    f.seekp(static_cast<std::streamoff>(at));
    f.put(static_cast<char>(c ^ 0x5a));
  }

  fs::path root_;
};

TEST(BlobPathTest, AcceptsOnlySha256Hex) {
  const std::string hex(64, 'a');
  EXPECT_EQ(BlobPath("/l", "sha256:" + hex), fs::path("/l/blobs/sha256") / hex);
  for (const std::string& bad : std::vector<std::string>{
           "sha256:../../x", "sha256:" + std::string(63, 'a'), "sha256:" + std::string(65, 'a'),
           "sha256:" + std::string(64, 'A'), "sha512:" + std::string(128, 'a'), hex, "",
           "sha256:" + std::string(62, 'a') + "/x", "sha256:" + std::string(61, 'a') + "/.."}) {
    ExpectError([&] { BlobPath("/l", bad); }, Errc::kInvalid, {"invalid blob digest"});
  }
}

TEST_F(OciTest, Sha256OfFiles) {
  WriteFileAtomic(root_ / "abc", "abc", 0644);
  EXPECT_EQ(Sha256File(root_ / "abc"),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  WriteFileAtomic(root_ / "empty", "", 0644);
  EXPECT_EQ(Sha256File(root_ / "empty"),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  Sha256 h;
  h.Update("a");
  h.Update("bc");
  EXPECT_EQ(h.Digest(), Sha256File(root_ / "abc"));
}

TEST_F(OciTest, ReadsALayoutBuiltByUmoci) {
  const fs::path layout = root_ / "umoci";
  const std::string image = layout.string() + ":seed";
  RunTool({"umoci", "init", "--layout", layout.string()});
  RunTool({"umoci", "new", "--image", image});
  const fs::path bundle = root_ / "bundle";
  RunTool({"umoci", "unpack", "--image", image, bundle.string()});
  WriteFileAtomic(bundle / "rootfs/manifest.json", R"({"seed_cluster_ocp_version":"4.16.1"})",
                  0644);
  WriteFileAtomic(bundle / "rootfs/containers.list", "quay.io/a\n", 0644);
  RunTool({"umoci", "repack", "--image", image, bundle.string()});
  RunTool({"umoci", "config", "--image", image, "--config.label", "k=v", "--config.label",
           "com.openshift.lifecycle-agent.seed_format_version=4"});

  OciImage img = ReadOciImage(layout, "seed");
  EXPECT_EQ(img.manifest.media_type, kOciManifestMediaType);
  EXPECT_EQ(img.labels.at("k"), "v");
  EXPECT_EQ(img.labels.at("com.openshift.lifecycle-agent.seed_format_version"), "4");
  ASSERT_EQ(img.layers.size(), 1u);
  EXPECT_EQ(img.layers[0].media_type, kOciLayerGzipMediaType);
  EXPECT_EQ(Sha256File(BlobPath(layout, img.layers[0].digest)), img.layers[0].digest);
  EXPECT_EQ(ReadManifestFromLayer(layout, img), R"({"seed_cluster_ocp_version":"4.16.1"})");

  // The only image may be read without naming its tag.
  EXPECT_EQ(ReadOciImage(layout, "").manifest.digest, img.manifest.digest);
  ExpectError([&] { ReadOciImage(layout, "other"); }, Errc::kNotFound,
              {"no image tagged \"other\"", "index.json", "tags: seed"});
}

TEST_F(OciTest, LayoutWrittenByUsIsReadBySkopeo) {
  const fs::path layout = root_ / "ours";
  OciLayer layer;
  OciDescriptor manifest = WriteSeedLayout(layout, &layer);
  // The config's diff_id is the digest of the uncompressed layer.
  EXPECT_EQ(layer.diff_id, Sha256File(root_ / "layer.tar"));
  EXPECT_NE(layer.diff_id, layer.descriptor.digest);

  Json inspect = ParseJson(
      RunTool({"skopeo", "inspect", "oci:" + layout.string() + ":seed"}).stdout_data, "skopeo");
  EXPECT_EQ(inspect["Digest"], manifest.digest);
  EXPECT_EQ(inspect["Architecture"], HostOciArchitecture());
  EXPECT_EQ(inspect["Os"], "linux");
  std::map<std::string, std::string> labels;
  for (const auto& [k, v] : inspect["Labels"].items()) labels[k] = v.get<std::string>();
  EXPECT_EQ(labels, kLabels);
  ASSERT_EQ(inspect["Layers"].size(), 1u);
  EXPECT_EQ(inspect["Layers"][0], layer.descriptor.digest);

  // skopeo copies it (checking every blob's digest), and the copy reads back the same.
  const fs::path copy = root_ / "copy";
  RunTool({"skopeo", "--insecure-policy", "copy", "oci:" + layout.string() + ":seed",
           "oci:" + copy.string() + ":copied"});
  OciImage img = ReadOciImage(copy, "copied");
  EXPECT_EQ(img.labels, kLabels);
  ASSERT_EQ(img.layers.size(), 1u);
  EXPECT_EQ(img.layers[0].digest, layer.descriptor.digest);
  EXPECT_EQ(ReadManifestFromLayer(copy, img), R"({"seed_cluster_ocp_version":"4.16.1"})");

  // Tagging again replaces the old entry and keeps other tags.
  OciLayoutWriter writer(layout);
  writer.AddImage("other", {layer}, {{"a", "b"}});
  writer.AddImage("seed", {layer}, {{"c", "d"}});
  EXPECT_EQ(ReadOciImage(layout, "seed").labels, (std::map<std::string, std::string>{{"c", "d"}}));
  EXPECT_EQ(ReadOciImage(layout, "other").labels, (std::map<std::string, std::string>{{"a", "b"}}));
  ExpectError([&] { ReadOciImage(layout, ""); }, Errc::kInvalid, {"lists 2 images", "tag"});
}

TEST_F(OciTest, CorruptedLayerFailsWithDigestMismatch) {
  const fs::path layout = root_ / "l";
  OciLayer layer;
  WriteSeedLayout(layout, &layer);
  const fs::path blob = BlobPath(layout, layer.descriptor.digest);
  FlipByte(blob, fs::file_size(blob) / 2);
  OciImage img = ReadOciImage(layout, "seed");
  const std::vector<std::string> expected = {
      "blob " + layer.descriptor.digest +
      " of the seed image is corrupted: digest mismatch (got "
      "sha256:"};

  // Iterating the layer: the flipped byte breaks the gzip stream, and the source's digest
  // explains why.
  ExpectError([&] { ReadManifestFromLayer(layout, img); }, Errc::kInvalid, expected);
  // Reading the raw blob to its end.
  ExpectError(
      [&] {
        VerifyingSource src(layout, img.layers[0], "the seed image");
        while (!src.Read().empty()) {
        }
      },
      Errc::kInvalid, expected);
  ExpectError(
      [&] {
        VerifyingSource src(layout, img.layers[0], "the seed image");
        src.Finish();
      },
      Errc::kInvalid, expected);
  // Extracting it.
  fs::create_directories(root_ / "out");
  ExpectError(
      [&] {
        VerifyingSource src(layout, img.layers[0], "the seed image");
        ExtractTar(src, "seed layer", root_ / "out");
      },
      Errc::kInvalid, expected);
}

TEST_F(OciTest, WrongSizeIsReported) {
  const fs::path layout = root_ / "l";
  OciLayer layer;
  WriteSeedLayout(layout, &layer);
  const fs::path blob = BlobPath(layout, layer.descriptor.digest);
  std::ofstream(blob, std::ios::app | std::ios::binary) << "trailing junk";
  ExpectError(
      [&] {
        VerifyingSource src(layout, layer.descriptor, "seed");
        src.Finish();
      },
      Errc::kInvalid, {"of seed is corrupted: size mismatch (expected"});
  fs::resize_file(blob, static_cast<std::uintmax_t>(layer.descriptor.size) / 2);
  ExpectError([&] { ReadManifestFromLayer(layout, ReadOciImage(layout, "seed")); }, Errc::kInvalid,
              {"is corrupted: size mismatch"});
  fs::remove(blob);
  ExpectError([&] { VerifyingSource src(layout, layer.descriptor, "seed"); }, Errc::kInvalid,
              {"blob " + layer.descriptor.digest + " of seed is missing"});
}

TEST_F(OciTest, DigestsThatArePathsAreRefused) {
  const fs::path layout = root_ / "l";
  WriteSeedLayout(layout);
  OciDescriptor evil{.media_type = std::string(kOciLayerGzipMediaType),
                     .digest = "sha256:../../x",
                     .size = 1,
                     .annotations = {}};
  ExpectError([&] { VerifyingSource src(layout, evil, "seed"); }, Errc::kInvalid,
              {"invalid blob digest \"sha256:../../x\""});
  // The same in index.json.
  Json index = ParseJson(ReadFile(layout / "index.json"), "index");
  index["manifests"][0]["digest"] = "sha256:../../../../etc/passwd";
  WriteFileAtomic(layout / "index.json", index.dump(), 0644);
  ExpectError([&] { ReadOciImage(layout, "seed"); }, Errc::kInvalid, {"invalid blob digest"});
}

TEST_F(OciTest, CorruptedManifestOrConfig) {
  const fs::path layout = root_ / "l";
  OciDescriptor manifest = WriteSeedLayout(layout);
  OciImage img = ReadOciImage(layout, "seed");
  const fs::path config = BlobPath(layout, img.config_digest);
  FlipByte(config, 5);
  ExpectError([&] { ReadOciImage(layout, "seed"); }, Errc::kInvalid,
              {"blob " + img.config_digest + " of config of " + layout.string() +
                   ":seed is corrupted: digest mismatch",
               "fetch the seed image again"});
  FlipByte(BlobPath(layout, manifest.digest), 3);
  ExpectError([&] { ReadOciImage(layout, "seed"); }, Errc::kInvalid,
              {"blob " + manifest.digest + " of manifest of", "digest mismatch"});
}

TEST_F(OciTest, MissingOrGarbledLayoutFiles) {
  const fs::path layout = root_ / "l";
  WriteSeedLayout(layout);

  fs::rename(layout / "index.json", root_ / "index.json");
  ExpectError([&] { ReadOciImage(layout, "seed"); }, Errc::kInvalid,
              {(layout / "index.json").string(), "not a complete OCI layout"});
  WriteFileAtomic(layout / "index.json", "{\"manifests\": [", 0644);
  ExpectError([&] { ReadOciImage(layout, "seed"); }, Errc::kInvalid,
              {(layout / "index.json").string()});
  WriteFileAtomic(layout / "index.json",
                  R"({"manifests":[{"mediaType":"x","digest":"sha256:00","size":"12"}]})", 0644);
  ExpectError([&] { ReadOciImage(layout, "seed"); }, Errc::kInvalid,
              {(layout / "index.json").string(), "\"size\""});
  fs::rename(root_ / "index.json", layout / "index.json");

  WriteFileAtomic(layout / "oci-layout", R"({"imageLayoutVersion":"2.0.0"})", 0644);
  ExpectError([&] { ReadOciImage(layout, "seed"); }, Errc::kInvalid,
              {(layout / "oci-layout").string(), "unsupported imageLayoutVersion \"2.0.0\""});
  fs::remove(layout / "oci-layout");
  ExpectError([&] { ReadOciImage(layout, "seed"); }, Errc::kInvalid,
              {(layout / "oci-layout").string()});
  ExpectError([&] { ReadOciImage(root_ / "nothing", "seed"); }, Errc::kInvalid,
              {"oci-layout", "not a complete OCI layout"});
}

TEST_F(OciTest, DockerSchema2MediaTypes) {
  const fs::path layout = root_ / "docker";
  OciLayer layer;
  WriteSeedLayout(layout, &layer);
  OciLayoutWriter writer(layout);
  Json config = {{"architecture", HostOciArchitecture()},
                 {"os", "linux"},
                 {"config", {{"Labels", {{"k", "v"}}}}},
                 {"rootfs", {{"type", "layers"}, {"diff_ids", {layer.diff_id}}}}};
  OciDescriptor config_desc = writer.AddBlob(config.dump(), kDockerConfigMediaType);
  Json manifest = {{"schemaVersion", 2},
                   {"mediaType", kDockerManifestMediaType},
                   {"config",
                    {{"mediaType", kDockerConfigMediaType},
                     {"digest", config_desc.digest},
                     {"size", config_desc.size}}},
                   {"layers",
                    {{{"mediaType", kDockerLayerGzipMediaType},
                      {"digest", layer.descriptor.digest},
                      {"size", layer.descriptor.size}}}}};
  OciDescriptor m = writer.AddBlob(manifest.dump(), kDockerManifestMediaType);
  Json index = {{"schemaVersion", 2},
                {"manifests",
                 {{{"mediaType", kDockerManifestMediaType},
                   {"digest", m.digest},
                   {"size", m.size},
                   {"annotations", {{kRefNameAnnotation, "docker"}}}}}}};
  WriteFileAtomic(layout / "index.json", index.dump(), 0644);
  OciImage img = ReadOciImage(layout, "docker");
  EXPECT_EQ(img.manifest.media_type, kDockerManifestMediaType);
  EXPECT_EQ(img.labels, (std::map<std::string, std::string>{{"k", "v"}}));
  ASSERT_EQ(img.layers.size(), 1u);
  EXPECT_EQ(img.layers[0].media_type, kDockerLayerGzipMediaType);
  EXPECT_EQ(ReadManifestFromLayer(layout, img), R"({"seed_cluster_ocp_version":"4.16.1"})");
}

TEST_F(OciTest, ImageIndexResolvesToThisArchitecture) {
  const fs::path layout = root_ / "multi";
  OciDescriptor ours = WriteSeedLayout(layout);
  OciLayoutWriter writer(layout);
  OciDescriptor other =
      writer.AddBlob(ReadFile(BlobPath(layout, ours.digest)) + " ", kOciManifestMediaType);
  Json child = {
      {"schemaVersion", 2},
      {"mediaType", kOciIndexMediaType},
      {"manifests",
       {{{"mediaType", kOciManifestMediaType},
         {"digest", other.digest},
         {"size", other.size},
         {"platform", {{"os", "linux"}, {"architecture", "not-" + HostOciArchitecture()}}}},
        {{"mediaType", kOciManifestMediaType},
         {"digest", ours.digest},
         {"size", ours.size},
         {"platform", {{"os", "linux"}, {"architecture", HostOciArchitecture()}}}}}}};
  OciDescriptor idx = writer.AddBlob(child.dump(), kOciIndexMediaType);
  Json index = {{"schemaVersion", 2},
                {"manifests",
                 {{{"mediaType", kOciIndexMediaType},
                   {"digest", idx.digest},
                   {"size", idx.size},
                   {"annotations", {{kRefNameAnnotation, "multi"}}}}}}};
  WriteFileAtomic(layout / "index.json", index.dump(), 0644);
  OciImage img = ReadOciImage(layout, "multi");
  EXPECT_EQ(img.manifest.digest, ours.digest);
  EXPECT_EQ(img.labels, kLabels);
}

}  // namespace
}  // namespace lca::stateroot
