// Extra manifests (reference-lca §3.2 item 3, §5.1 item 6) and rollbackAvailabilityExpiration
// (§6.3).
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <sys/stat.h>

#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "agent/pivot/extra_manifests.hpp"
#include "agent/pivot/kubelet_certs.hpp"
#include "common/atomic_file.hpp"
#include "common/error.hpp"
#include "common/json_yaml.hpp"
#include "tests/support/expect_error.hpp"
#include "tests/support/temp_dir.hpp"

namespace lca::pivot {
namespace {

namespace fs = std::filesystem;
using Strings = std::vector<std::string>;

// A ConfigMap file as the embedded default keeps it, holding `data` (key -> YAML text).
void WriteConfigMap(const fs::path& config_dir, const std::string& ns, const std::string& name,
                    const std::vector<std::pair<std::string, std::string>>& data) {
  Json cm = {{"apiVersion", "v1"},
             {"kind", "ConfigMap"},
             {"metadata", {{"name", name}, {"namespace", ns}}},
             {"data", Json::object()}};
  for (const auto& [k, v] : data) cm["data"][k] = v;
  EnsureDir(config_dir / "configmaps" / ns, 0755);
  WriteFileAtomic(config_dir / "configmaps" / ns / (name + ".yaml"), ToYaml(cm), 0644);
}

std::string Obj(const std::string& kind, const std::string& name, const std::string& ns = "",
                const std::string& wave = "", const std::string& api = "v1") {
  std::string y = "apiVersion: " + api + "\nkind: " + kind + "\nmetadata:\n  name: " + name + "\n";
  if (!ns.empty()) y += "  namespace: " + ns + "\n";
  if (!wave.empty()) y += "  annotations:\n    lca.openshift.io/apply-wave: \"" + wave + "\"\n";
  return y;
}

// "Kind/name" of every manifest, group by group.
std::vector<Strings> Names(const std::vector<ManifestGroup>& groups) {
  std::vector<Strings> out;
  for (const auto& g : groups) {
    out.emplace_back();
    for (const auto& m : g.manifests) {
      out.back().push_back(m.object["kind"].get<std::string>() + "/" +
                           m.object["metadata"]["name"].get<std::string>());
    }
  }
  return out;
}

Strings ListDir(const fs::path& dir) {
  Strings out;
  for (const auto& e : fs::directory_iterator(dir)) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

Errc CodeOf(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.code();
  }
  ADD_FAILURE() << "no lca::Error thrown";
  return Errc::kInternal;
}

ExtraManifest Manifest(const std::string& yaml) {
  return ExtraManifest{.object = ParseYaml(yaml, "test"),
                       .configmap = "ns/cm",
                       .key = "k",
                       .index = 1,
                       .wave = kDefaultApplyWave};
}

std::vector<ManifestGroup> OneGroup(const Strings& yamls) {
  ManifestGroup g;
  for (const auto& y : yamls) g.manifests.push_back(Manifest(y));
  return {g};
}

// --- Loading and ordering ------------------------------------------------------------------

TEST(LoadExtraManifests, GroupsByWaveAcrossConfigMapsTiesByName) {
  test::TempDir dir;
  WriteConfigMap(
      dir.path(), "ns1", "first",
      {{"a.yaml", Obj("ConfigMap", "late") + "---\n" + Obj("ConfigMap", "w10", "", "10")},
       {"b.yaml", Obj("Secret", "zeta", "", "1") + "---\n" + Obj("Secret", "empty", "", "")}});
  WriteConfigMap(dir.path(), "ns2", "second", {{"x.yaml", Obj("Namespace", "alpha", "", "1")}});
  WriteConfigMap(dir.path(), "ns2", "third", {{"y.yaml", Obj("Service", "neg", "", "-5")}});

  const auto groups = LoadExtraManifests(dir.path(), {{.name = "first", .ns = "ns1"},
                                                      {.name = "second", .ns = "ns2"},
                                                      {.name = "third", .ns = "ns2"},
                                                      {.name = "first", .ns = "ns1"}});
  ASSERT_EQ(groups.size(), 4u);
  EXPECT_EQ(groups[0].wave, -5);
  EXPECT_EQ(groups[1].wave, 1);
  EXPECT_EQ(groups[2].wave, 10);
  EXPECT_EQ(groups[3].wave, kDefaultApplyWave);
  // Wave 1 mixes ConfigMaps and sorts by name; absent and "" both mean last. The duplicate
  // reference to "first" adds nothing.
  EXPECT_EQ(Names(groups), (std::vector<Strings>{{"Service/neg"},
                                                 {"Namespace/alpha", "Secret/zeta"},
                                                 {"ConfigMap/w10"},
                                                 {"Secret/empty", "ConfigMap/late"}}));
  const ExtraManifest& w10 = groups[2].manifests[0];
  EXPECT_EQ(w10.Origin(), "ConfigMap ns1/first key a.yaml manifest 2");
}

TEST(LoadExtraManifests, KeysInOrderMultiDocumentAndListsStripServerFields) {
  test::TempDir dir;
  const std::string list =
      "apiVersion: v1\nkind: List\nitems:\n"
      "- apiVersion: v1\n  kind: ConfigMap\n  metadata:\n    name: same\n    namespace: l1\n"
      "- apiVersion: v1\n  kind: ConfigMap\n  metadata:\n    name: same\n    namespace: l2\n";
  const std::string with_server_fields =
      "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: same\n  namespace: s\n"
      "  uid: 0f0e\n  resourceVersion: \"42\"\n";
  // Keys deliberately out of order in the file: data is a map, so key order is sorted order.
  WriteConfigMap(dir.path(), "ns", "cm",
                 {{"z.yaml", with_server_fields},
                  {"m.yaml", "---\n" + Obj("ConfigMap", "same", "d1") + "---\n---\n" +
                                 Obj("ConfigMap", "same", "d2") + "...\n"},
                  {"a.yaml", list}});
  const auto groups = LoadExtraManifests(dir.path(), {{.name = "cm", .ns = "ns"}});
  ASSERT_EQ(groups.size(), 1u);
  Strings order;
  for (const auto& m : groups[0].manifests) {
    order.push_back(m.key + "#" + std::to_string(m.index) + ":" +
                    m.object["metadata"]["namespace"].get<std::string>());
  }
  EXPECT_EQ(order,
            (Strings{"a.yaml#1:l1", "a.yaml#2:l2", "m.yaml#1:d1", "m.yaml#2:d2", "z.yaml#1:s"}));
  const Json& meta = groups[0].manifests.back().object["metadata"];
  EXPECT_FALSE(meta.contains("uid"));
  EXPECT_FALSE(meta.contains("resourceVersion"));
}

TEST(LoadExtraManifests, BadInput) {
  test::TempDir dir;
  EXPECT_EQ(CodeOf([&] { LoadExtraManifests(dir.path(), {{.name = "nope", .ns = "ns"}}); }),
            Errc::kNotFound);
  try {
    LoadExtraManifests(dir.path(), {{.name = "nope", .ns = "ns"}});
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()),
              "the extraManifests configMap is not found, error: configmaps \"nope\" not found (" +
                  (dir.path() / "configmaps/ns/nope.yaml").string() +
                  "). Please create the configMap.");
  }

  EnsureDir(dir / "configmaps/ns", 0755);
  WriteFileAtomic(dir / "configmaps/ns/secret.yaml",
                  "apiVersion: v1\nkind: Secret\nmetadata:\n  name: secret\n", 0644);
  EXPECT_EQ(test::InvalidMessage(
                [&] { LoadExtraManifests(dir.path(), {{.name = "secret", .ns = "ns"}}); }),
            (dir / "configmaps/ns/secret.yaml").string() + ": kind must be ConfigMap");

  WriteConfigMap(dir.path(), "ns", "wave", {{"k", Obj("ConfigMap", "x", "", "soon")}});
  EXPECT_EQ(
      test::InvalidMessage([&] { LoadExtraManifests(dir.path(), {{.name = "wave", .ns = "ns"}}); }),
      "ConfigMap ns/wave key k manifest 1: annotation lca.openshift.io/apply-wave \"soon\" "
      "is not an integer");

  WriteConfigMap(dir.path(), "ns", "scalar", {{"k", "just text\n"}});
  EXPECT_EQ(test::InvalidMessage(
                [&] { LoadExtraManifests(dir.path(), {{.name = "scalar", .ns = "ns"}}); }),
            "ConfigMap ns/scalar key k: document is not a Kubernetes object");

  // A reference must not reach outside <config_dir>/configmaps.
  EXPECT_EQ(
      test::InvalidMessage([&] { LoadExtraManifests(dir.path(), {{.name = "x", .ns = ".."}}); }),
      "extraManifests: \"../x\" is not a valid ConfigMap reference");

  WriteConfigMap(dir.path(), "ns", "nodata", {});
  EXPECT_TRUE(LoadExtraManifests(dir.path(), {{.name = "nodata", .ns = "ns"}}).empty());
}

// --- Validation ----------------------------------------------------------------------------

TEST(ValidateExtraManifests, ErrorsForDisallowedKindsAndMissingFields) {
  const auto r = ValidateExtraManifests(OneGroup({
      Obj("MachineConfig", "99-extra", "", "", "machineconfiguration.openshift.io/v1"),
      Obj("Subscription", "sub", "openshift-operators", "", "operators.coreos.com/v1alpha1"),
      Obj("ClusterServiceVersion", "csv", "openshift-operators", "",
          "operators.coreos.com/v1alpha1"),
      Obj("InstallPlan", "ip", "openshift-operators", "", "operators.coreos.com/v1alpha1"),
      "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  namespace: default\n",
      "kind: ConfigMap\nmetadata:\n  name: x\n",
      "metadata:\n  name: x\n",
      // Allowed: the Go operator lets these through, and post-pivot deletes every
      // CatalogSource, so re-creating one is what extra manifests are for.
      Obj("CatalogSource", "cs", "openshift-marketplace", "", "operators.coreos.com/v1alpha1"),
      Obj("OperatorGroup", "og", "openshift-operators", "", "operators.coreos.com/v1"),
  }));
  EXPECT_EQ(r.errors,
            (Strings{"MachineConfig[99-extra] in extramanifests is not allowed",
                     "Subscription[sub] in extramanifests is not allowed",
                     "ClusterServiceVersion[csv] in extramanifests is not allowed",
                     "InstallPlan[ip] in extramanifests is not allowed",
                     "ConfigMap resource name is empty (ConfigMap ns/cm key k manifest 1)",
                     "ConfigMap ns/cm key k manifest 1: apiVersion is missing",
                     "ConfigMap ns/cm key k manifest 1: apiVersion and kind are missing"}));
  EXPECT_TRUE(r.warnings.empty()) << r.WarningText();
  EXPECT_EQ(r.ErrorText().substr(0, 60),
            "MachineConfig[99-extra] in extramanifests is not allowed; Su");
}

TEST(ValidateExtraManifests, WarningsForNamespacesAndUnknownKinds) {
  const std::string crd =
      "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n"
      "  name: widgets.example.com\nspec:\n  group: example.com\n  names:\n    kind: Widget\n";
  const auto r = ValidateExtraManifests(OneGroup({
      Obj("ConfigMap", "before", "app"),  // its Namespace comes later: wrong order
      Obj("Namespace", "app"),
      Obj("ConfigMap", "after", "app"),
      Obj("ConfigMap", "sys", "openshift-config"),
      Obj("ConfigMap", "dflt", "default"),
      Obj("Gadget", "g1", "app", "", "example.com/v1"),
      crd,
      Obj("Widget", "w1", "app", "", "example.com/v1"),
      Obj("Widget", "w2", "app", "", "other.com/v1"),  // same kind, other group
      Obj("SriovNetwork", "net", "nowhere", "", "sriovnetwork.openshift.io/v1"),
      Obj("PerformanceProfile", "pp", "", "", "performance.openshift.io/v2"),
  }));
  EXPECT_TRUE(r.errors.empty()) << r.ErrorText();
  EXPECT_EQ(r.WarningText(),
            "ConfigMap[before] - namespace app not found on cluster or not added in configmap in "
            "right order; Gadget[g1] - CRD not deployed on cluster; Widget[w2] - CRD not deployed "
            "on cluster; SriovNetwork[net] - namespace nowhere not found on cluster or not added "
            "in configmap in right order");

  // Known namespaces and kinds are configurable.
  ValidationOptions opts;
  opts.known_namespaces = {"nowhere"};
  opts.known_kinds = {{.group = "sriovnetwork.openshift.io", .kind = "SriovNetwork"}};
  const auto r2 = ValidateExtraManifests(
      OneGroup({Obj("SriovNetwork", "net", "nowhere", "", "sriovnetwork.openshift.io/v1"),
                Obj("ConfigMap", "sys", "openshift-config"), Obj("ConfigMap", "d", "default")}),
      opts);
  EXPECT_EQ(r2.warnings, (Strings{"ConfigMap[sys] - namespace openshift-config not found on "
                                  "cluster or not added in configmap in right order"}));
}

TEST(ValidateExtraManifests, EarlierGroupsCountAsEarlier) {
  std::vector<ManifestGroup> groups(2);
  groups[0].manifests.push_back(Manifest(Obj("Namespace", "app")));
  groups[1].manifests.push_back(Manifest(Obj("Deployment", "d", "app", "", "apps/v1")));
  EXPECT_TRUE(ValidateExtraManifests(groups).warnings.empty());
  std::swap(groups[0], groups[1]);
  EXPECT_EQ(ValidateExtraManifests(groups).warnings.size(), 1u);
}

// --- Export --------------------------------------------------------------------------------

TEST(ExportExtraManifests, FileNamesModesAndContent) {
  test::TempDir dir;
  std::vector<ManifestGroup> groups(2);
  groups[0].manifests.push_back(Manifest(Obj("Namespace", "app")));
  groups[0].manifests.push_back(Manifest(Obj("ConfigMap", "cfg", "app")));
  for (int i = 1; i <= 12; ++i) {
    groups[1].manifests.push_back(Manifest(Obj("Secret", "s" + std::to_string(i), "app")));
  }
  const fs::path dest = dir / "var/opt/extra-manifests";
  ExportExtraManifests(groups, dest);

  EXPECT_EQ(ListDir(dest), (Strings{"group1", "group2"}));
  EXPECT_EQ(ListDir(dest / "group1"),
            (Strings{"01_Namespace_app_.yaml", "02_ConfigMap_cfg_app.yaml"}));
  const Strings g2 = ListDir(dest / "group2");
  ASSERT_EQ(g2.size(), 12u);
  EXPECT_EQ(g2.front(), "01_Secret_s1_app.yaml");
  EXPECT_EQ(g2[8], "09_Secret_s9_app.yaml");
  EXPECT_EQ(g2.back(), "12_Secret_s12_app.yaml");  // name order is apply order

  struct stat st {};
  ASSERT_EQ(::stat((dest / "group1/02_ConfigMap_cfg_app.yaml").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  ASSERT_EQ(::stat((dest / "group2").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u);
  ASSERT_EQ(::stat(dest.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u);
  EXPECT_EQ(ParseYaml(ReadFile(dest / "group1/02_ConfigMap_cfg_app.yaml"), "x"),
            groups[0].manifests[1].object);

  // A hundred manifests widen the index to three digits.
  std::vector<ManifestGroup> big(1);
  for (int i = 1; i <= 100; ++i)
    big[0].manifests.push_back(Manifest(Obj("Secret", "b" + std::to_string(i))));
  ExportExtraManifests(big, dir / "big");
  const Strings b = ListDir(dir / "big/group1");
  EXPECT_EQ(b.front(), "001_Secret_b1_.yaml");
  EXPECT_EQ(b.back(), "100_Secret_b100_.yaml");
}

TEST(ExportExtraManifests, RerunReplacesFilesAndDropsLeftovers) {
  test::TempDir dir;
  const fs::path dest = dir / "out";
  std::vector<ManifestGroup> groups(3);
  groups[0].manifests.push_back(Manifest(Obj("Namespace", "app")));
  groups[0].manifests.push_back(Manifest(Obj("ConfigMap", "old", "app")));
  groups[1].manifests.push_back(Manifest(Obj("ConfigMap", "two", "app")));
  groups[2].manifests.push_back(Manifest(Obj("ConfigMap", "three", "app")));
  ExportExtraManifests(groups, dest);
  // Leftovers of an interrupted write and a file nobody exported; a stranger outside group dirs.
  WriteFileAtomic(dest / "group1/.01_Namespace_app_.yaml.tmp.1234", "partial", 0600);
  WriteFileAtomic(dest / "README", "not ours", 0600);

  groups.pop_back();
  groups[0].manifests[1] = Manifest(Obj("ConfigMap", "new", "app"));
  groups[0].manifests[0].object["metadata"]["labels"] = {{"rerun", "yes"}};
  ExportExtraManifests(groups, dest);

  EXPECT_EQ(ListDir(dest), (Strings{"README", "group1", "group2"}));
  EXPECT_EQ(ListDir(dest / "group1"),
            (Strings{"01_Namespace_app_.yaml", "02_ConfigMap_new_app.yaml"}));
  EXPECT_EQ(ParseYaml(ReadFile(dest / "group1/01_Namespace_app_.yaml"),
                      "x")["metadata"]["labels"]["rerun"],
            "yes");

  // Nothing to export any more: the groups go, the directory and strangers stay.
  ExportExtraManifests({}, dest);
  EXPECT_EQ(ListDir(dest), (Strings{"README"}));
}

TEST(ExportExtraManifests, RefusesNamesThatEscape) {
  test::TempDir dir;
  const fs::path dest = dir / "out";
  auto group_with = [](const std::string& yaml) {
    std::vector<ManifestGroup> g = OneGroup({Obj("Namespace", "fine")});
    g[0].manifests.push_back(Manifest(yaml));
    return g;
  };
  EXPECT_EQ(test::InvalidMessage([&] {
              ExportExtraManifests(group_with(Obj("ConfigMap", "../../etc/passwd", "app")), dest);
            }),
            "exporting ConfigMap ns/cm key k manifest 1: name \"../../etc/passwd\" cannot be used "
            "in a file name");
  EXPECT_EQ(test::InvalidMessage(
                [&] { ExportExtraManifests(group_with(Obj("ConfigMap", "x", "a/b")), dest); }),
            "exporting ConfigMap ns/cm key k manifest 1: namespace \"a/b\" cannot be used in a "
            "file name");
  EXPECT_EQ(test::InvalidMessage([&] {
              ExportExtraManifests(group_with("apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n"),
                                   dest);
            }),
            "exporting ConfigMap ns/cm key k manifest 1: name \"\" cannot be used in a file name");
  EXPECT_FALSE(fs::exists(dest));  // refused before anything was written
}

// The export goes into the new stateroot's /var, which the seed provided: a var/opt (or an
// extra-manifests, or a group directory) the seed planted as a symlink to a host directory must
// not take the manifests, or the removal of stale ones, out of the stateroot.
TEST(ExportExtraManifests, NeverWritesOrRemovesThroughALinkTheSeedPlanted) {
  test::TempDir dir;
  const fs::path stateroot = dir / "stateroot";
  const fs::path host = dir / "host-etc";
  fs::create_directories(stateroot / "var");
  fs::create_directories(host / "group1");
  WriteFileAtomic(host / "group1/passwd", "root:x:0:0\n", 0644);
  fs::create_directory_symlink(host, stateroot / "var/opt");
  const auto groups = OneGroup({Obj("Namespace", "app")});

  const std::string message = test::InvalidMessage(
      [&] { ExportExtraManifests(groups, stateroot, "var/opt/extra-manifests"); });
  EXPECT_NE(message.find("exporting extra manifests to " +
                         (stateroot / "var/opt/extra-manifests").string()),
            std::string::npos)
      << message;
  EXPECT_NE(message.find("refused"), std::string::npos) << message;
  EXPECT_NE(message.find("symlink"), std::string::npos) << message;
  // Nothing exported, with no groups either (the stale-export cleanup must not reach it).
  EXPECT_EQ(test::InvalidMessage([&] {
              ExportExtraManifests({}, stateroot, "var/opt/extra-manifests");
            }).find("refused") != std::string::npos,
            true);
  fs::remove(stateroot / "var/opt");
  fs::create_directories(stateroot / "var/opt");
  fs::create_directory_symlink(host, stateroot / "var/opt/extra-manifests");
  EXPECT_NE(test::InvalidMessage([&] {
              ExportExtraManifests(groups, stateroot, "var/opt/extra-manifests");
            }).find("refused"),
            std::string::npos);
  EXPECT_EQ(ListDir(host), (Strings{"group1"}));
  EXPECT_EQ(ListDir(host / "group1"), (Strings{"passwd"}));
  EXPECT_EQ(ReadFile(host / "group1/passwd"), "root:x:0:0\n");

  // A group directory planted as a link is replaced by a real one, the host left alone.
  fs::remove(stateroot / "var/opt/extra-manifests");
  fs::create_directories(stateroot / "var/opt/extra-manifests");
  fs::create_directory_symlink(host / "group1", stateroot / "var/opt/extra-manifests/group1");
  ExportExtraManifests(groups, stateroot, "var/opt/extra-manifests");
  EXPECT_FALSE(fs::is_symlink(stateroot / "var/opt/extra-manifests/group1"));
  EXPECT_EQ(ListDir(stateroot / "var/opt/extra-manifests/group1"),
            (Strings{"01_Namespace_app_.yaml"}));
  EXPECT_EQ(ListDir(host / "group1"), (Strings{"passwd"}));
}

// --- rollbackAvailabilityExpiration --------------------------------------------------------

struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};

std::string BioText(BIO* bio) {
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<size_t>(n));
}

// A self-signed certificate expiring at `not_after`, as PEM; with_key puts its key first, the
// way the kubelet writes *-current.pem.
std::string CertPem(const std::string& not_after, bool with_key = false) {
  std::unique_ptr<EVP_PKEY, PkeyFree> key(EVP_EC_gen("P-256"));
  std::unique_ptr<X509, X509Free> cert(X509_new());
  X509_set_version(cert.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), 1);
  ASN1_TIME_set(X509_getm_notBefore(cert.get()), 0);
  ASN1_TIME_set(X509_getm_notAfter(cert.get()), ParseTime(not_after).time_since_epoch().count());
  X509_NAME_add_entry_by_txt(X509_get_subject_name(cert.get()), "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("system:node:sno"), -1, -1, 0);
  X509_set_issuer_name(cert.get(), X509_get_subject_name(cert.get()));
  X509_set_pubkey(cert.get(), key.get());
  EXPECT_GT(X509_sign(cert.get(), key.get(), EVP_sha256()), 0);
  std::unique_ptr<BIO, BioFree> bio(BIO_new(BIO_s_mem()));
  if (with_key) {
    PEM_write_bio_PrivateKey(bio.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr);
  }
  PEM_write_bio_X509(bio.get(), cert.get());
  return BioText(bio.get());
}

class KubeletCerts : public ::testing::Test {
 protected:
  test::TempDir dir_;
  fs::path root_ = dir_ / "ostree/deploy/rhcos";
  fs::path pki_ = root_ / "var/lib/kubelet/pki";
  void SetUp() override { EnsureDir(pki_, 0700); }
};

TEST_F(KubeletCerts, EarliestNotAfterOfEveryCertMinus30Minutes) {
  // The client file holds a key and two certificates; the server file's is not the earliest.
  WriteFileAtomic(pki_ / "kubelet-client-current.pem",
                  CertPem("2031-05-01T00:00:00Z", true) + CertPem("2031-03-01T12:00:00Z"), 0600);
  WriteFileAtomic(pki_ / "kubelet-server-current.pem", CertPem("2031-04-01T00:00:00Z"), 0600);
  EXPECT_EQ(RollbackAvailabilityExpiration(root_), ParseTime("2031-03-01T11:30:00Z"));

  // One unreadable file is skipped.
  fs::remove(pki_ / "kubelet-client-current.pem");
  EXPECT_EQ(RollbackAvailabilityExpiration(root_), ParseTime("2031-03-31T23:30:00Z"));
}

TEST_F(KubeletCerts, SymlinksResolveInsideTheStateroot) {
  // The kubelet's absolute link means the OLD stateroot's /var, which is not ours.
  WriteFileAtomic(pki_ / "kubelet-client-2031-01-01.pem", CertPem("2031-01-01T00:00:00Z", true),
                  0600);
  fs::create_symlink("/var/lib/kubelet/pki/kubelet-client-2031-01-01.pem",
                     pki_ / "kubelet-client-current.pem");
  // A relative link that tries to climb out is clamped at the stateroot root: the certificate
  // outside (which would be earlier) is never read.
  WriteFileAtomic(dir_ / "outside.pem", CertPem("2030-01-01T00:00:00Z"), 0600);
  fs::create_symlink("../../../../../../../../outside.pem", pki_ / "kubelet-server-current.pem");
  EXPECT_EQ(RollbackAvailabilityExpiration(root_), ParseTime("2030-12-31T23:30:00Z"));

  // Climbing out and back in lands inside the root.
  WriteFileAtomic(root_ / "outside.pem", CertPem("2030-06-01T00:00:00Z"), 0600);
  EXPECT_EQ(RollbackAvailabilityExpiration(root_), ParseTime("2030-05-31T23:30:00Z"));
}

TEST_F(KubeletCerts, NoKubeletAtAllIsNoExpirationAndNoError) {
  fs::remove_all(root_ / "var/lib/kubelet/pki");
  WriteFileAtomic(root_ / "var/lib/kubelet/config.json", "{}", 0600);  // as on the test bed
  EXPECT_FALSE(RollbackAvailabilityExpiration(root_).has_value());
  // An empty pki directory is a kubelet whose certificates are gone: still an error.
  EnsureDir(pki_, 0700);
  EXPECT_THROW(RollbackAvailabilityExpiration(root_), Error);
}

TEST_F(KubeletCerts, NothingParsedIsAnErrorNamingTheFiles) {
  WriteFileAtomic(pki_ / "kubelet-server-current.pem", "-----BEGIN CERTIFICATE-----\nAAAA\n", 0600);
  fs::create_symlink("/var/lib/kubelet/pki/gone.pem", pki_ / "kubelet-client-current.pem");
  try {
    RollbackAvailabilityExpiration(root_);
    ADD_FAILURE() << "accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::kNotFound);
    EXPECT_EQ(std::string(e.what()),
              "no kubelet certificate could be read from the old stateroot; " +
                  (pki_ / "kubelet-client-current.pem").string() + " -> " +
                  (pki_ / "gone.pem").string() + ": no such file; " +
                  (pki_ / "kubelet-server-current.pem").string() + ": no certificate in it");
  }
}

}  // namespace
}  // namespace lca::pivot
