#include "agent/pivot/extra_manifests.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <map>
#include <optional>
#include <regex>
#include <set>
#include <system_error>

#include "common/atomic_file.hpp"
#include "common/beneath.hpp"
#include "common/error.hpp"

namespace lca::pivot {
namespace fs = std::filesystem;
namespace {

std::string Join(const std::vector<std::string>& parts, std::string_view sep) {
  std::string out;
  for (const auto& p : parts) {
    if (!out.empty()) out += sep;
    out += p;
  }
  return out;
}

// Empty when absent or not a string: Kubernetes metadata fields are strings.
std::string StringAt(const Json& obj, const Json::json_pointer& ptr) {
  if (!obj.contains(ptr)) return "";
  const Json& v = obj.at(ptr);
  return v.is_string() ? v.get<std::string>() : "";
}

std::string Kind(const Json& m) { return StringAt(m, Json::json_pointer("/kind")); }
std::string ApiVersion(const Json& m) { return StringAt(m, Json::json_pointer("/apiVersion")); }
std::string Name(const Json& m) { return StringAt(m, Json::json_pointer("/metadata/name")); }
std::string Namespace(const Json& m) {
  return StringAt(m, Json::json_pointer("/metadata/namespace"));
}

// "apps/v1" -> "apps", "v1" -> "".
std::string GroupOf(const std::string& api_version) {
  const auto slash = api_version.find('/');
  return slash == std::string::npos ? "" : api_version.substr(0, slash);
}

// A piece of a path or file name that cannot step outside the directory it is joined to.
bool SafeComponent(const std::string& s) {
  return s.find('/') == std::string::npos && s.find('\0') == std::string::npos &&
         s.find("..") == std::string::npos;
}

// Go's strconv.Atoi: optional sign, decimal digits, must fit.
int64_t ParseWave(const Json& value, const std::string& origin) {
  if (value.is_number_integer()) return value.get<int64_t>();
  const std::string text = value.is_string() ? value.get<std::string>() : value.dump();
  std::string_view digits = text;
  if (!digits.empty() && digits.front() == '+') digits.remove_prefix(1);
  int64_t wave = 0;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), wave);
  if (digits.empty() || ec != std::errc() || end != digits.data() + digits.size()) {
    throw Error(Errc::kInvalid, origin + ": annotation " + std::string(kApplyWaveAnnotation) +
                                    " \"" + text + "\" is not an integer");
  }
  return wave;
}

int64_t WaveOf(const Json& manifest, const std::string& origin) {
  const auto ptr = Json::json_pointer("/metadata/annotations") / std::string(kApplyWaveAnnotation);
  if (!manifest.contains(ptr)) return kDefaultApplyWave;
  const Json& v = manifest.at(ptr);
  if (v.is_null() || (v.is_string() && v.get<std::string>().empty())) return kDefaultApplyWave;
  return ParseWave(v, origin);
}

// Values copied from a live cluster would make the apply after the pivot conflict.
void StripServerFields(Json& manifest) {
  if (!manifest.contains("metadata") || !manifest["metadata"].is_object()) return;
  manifest["metadata"].erase("uid");
  manifest["metadata"].erase("resourceVersion");
}

// The manifests of one ConfigMap, in data-key order.
std::vector<ExtraManifest> LoadConfigMap(const fs::path& config_dir, const api::ConfigMapRef& ref) {
  const std::string id = ref.ns + "/" + ref.name;
  if (ref.name.empty() || ref.ns.empty() || !SafeComponent(ref.name) || !SafeComponent(ref.ns)) {
    throw Error(Errc::kInvalid,
                "extraManifests: \"" + id + "\" is not a valid ConfigMap reference");
  }
  const fs::path file = config_dir / "configmaps" / ref.ns / (ref.name + ".yaml");
  const auto text = ReadFileIfExists(file);
  if (!text) {
    // The Go operator's text, with the file the embedded default looked for.
    throw Error(Errc::kNotFound, "the extraManifests configMap is not found, error: configmaps \"" +
                                     ref.name + "\" not found (" + file.string() +
                                     "). Please create the configMap.");
  }
  const Json cm = ParseYaml(*text, file.string());
  if (!cm.is_object() || Kind(cm) != "ConfigMap") {
    throw Error(Errc::kInvalid, file.string() + ": kind must be ConfigMap");
  }
  const Json* data = cm.contains("data") ? &cm["data"] : nullptr;
  if (data == nullptr || data->is_null()) return {};
  if (!data->is_object()) throw Error(Errc::kInvalid, file.string() + ": data must be a map");

  // A ConfigMap's data is a map: its order in the file carries no meaning, so sort.
  std::map<std::string, const Json*> by_key;
  for (const auto& [key, value] : data->items()) by_key.emplace(key, &value);

  std::vector<ExtraManifest> out;
  for (const auto& [key, value] : by_key) {
    const std::string where = "ConfigMap " + id + " key " + key;
    if (!value->is_string()) throw Error(Errc::kInvalid, where + ": value must be a string");
    std::vector<Json> objects;
    size_t index = 0;
    for (Json& doc : ParseYamlDocuments(value->get<std::string>(), where)) {
      if (!doc.is_object()) {
        throw Error(Errc::kInvalid, where + ": document is not a Kubernetes object");
      }
      if (Kind(doc) == "List" && doc.contains("items") && doc["items"].is_array()) {
        for (Json& item : doc["items"]) objects.push_back(std::move(item));
      } else {
        objects.push_back(std::move(doc));
      }
    }
    for (Json& obj : objects) {
      ExtraManifest m{.object = std::move(obj),
                      .configmap = id,
                      .key = key,
                      .index = ++index,
                      .wave = kDefaultApplyWave};
      if (!m.object.is_object()) {
        throw Error(Errc::kInvalid, m.Origin() + ": List item is not a Kubernetes object");
      }
      StripServerFields(m.object);
      m.wave = WaveOf(m.object, m.Origin());
      out.push_back(std::move(m));
    }
  }
  return out;
}

// Kinds served on every OpenShift SNO without installing anything: Kubernetes' built-in APIs
// and the CRDs of the OpenShift payload. Anything else needs a CRD (an operator) to exist.
const std::set<std::pair<std::string, std::string>>& BuiltinKinds() {
  static const std::set<std::pair<std::string, std::string>> kinds = [] {
    const std::map<std::string, std::vector<std::string>> by_group = {
        {"",
         {"Namespace", "ConfigMap", "Secret", "Service", "ServiceAccount", "Pod", "PodTemplate",
          "PersistentVolume", "PersistentVolumeClaim", "LimitRange", "ResourceQuota", "Endpoints",
          "ReplicationController", "Event", "Node"}},
        {"apps", {"Deployment", "DaemonSet", "StatefulSet", "ReplicaSet", "ControllerRevision"}},
        {"batch", {"Job", "CronJob"}},
        {"autoscaling", {"HorizontalPodAutoscaler"}},
        {"policy", {"PodDisruptionBudget"}},
        {"rbac.authorization.k8s.io", {"Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"}},
        {"networking.k8s.io", {"NetworkPolicy", "Ingress", "IngressClass"}},
        {"storage.k8s.io", {"StorageClass", "CSIDriver", "CSINode", "VolumeAttachment"}},
        {"scheduling.k8s.io", {"PriorityClass"}},
        {"coordination.k8s.io", {"Lease"}},
        {"discovery.k8s.io", {"EndpointSlice"}},
        {"node.k8s.io", {"RuntimeClass"}},
        {"certificates.k8s.io", {"CertificateSigningRequest"}},
        {"apiextensions.k8s.io", {"CustomResourceDefinition"}},
        {"apiregistration.k8s.io", {"APIService"}},
        {"admissionregistration.k8s.io",
         {"ValidatingWebhookConfiguration", "MutatingWebhookConfiguration",
          "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"}},
        {"config.openshift.io",
         {"APIServer", "Authentication", "ClusterOperator", "ClusterVersion", "Console", "DNS",
          "FeatureGate", "Image", "ImageDigestMirrorSet", "ImageTagMirrorSet", "Infrastructure",
          "Ingress", "Network", "Node", "OAuth", "OperatorHub", "Project", "Proxy", "Scheduler"}},
        {"operator.openshift.io",
         {"ImageContentSourcePolicy", "IngressController", "Network", "Console", "DNS"}},
        {"machineconfiguration.openshift.io",
         {"MachineConfig", "MachineConfigPool", "KubeletConfig", "ContainerRuntimeConfig"}},
        {"operators.coreos.com",
         {"CatalogSource", "OperatorGroup", "Subscription", "ClusterServiceVersion", "InstallPlan",
          "OperatorCondition"}},
        {"monitoring.coreos.com", {"ServiceMonitor", "PodMonitor", "PrometheusRule"}},
        {"route.openshift.io", {"Route"}},
        {"security.openshift.io", {"SecurityContextConstraints"}},
        {"image.openshift.io", {"ImageStream", "ImageStreamTag"}},
        {"quota.openshift.io", {"ClusterResourceQuota"}},
        {"template.openshift.io", {"Template"}},
        {"tuned.openshift.io", {"Tuned"}},
        {"performance.openshift.io", {"PerformanceProfile"}},
    };
    std::set<std::pair<std::string, std::string>> all;
    for (const auto& [group, names] : by_group) {
      for (const auto& k : names) all.emplace(group, k);
    }
    return all;
  }();
  return kinds;
}

// The Go operator's unSupportedResources: a MachineConfig reboots the node (breaking the
// downtime budget); OLM install objects would start an operator install mid-upgrade.
bool Disallowed(const std::string& group, const std::string& kind) {
  if (group == "machineconfiguration.openshift.io") return kind == "MachineConfig";
  if (group == "operators.coreos.com") {
    return kind == "ClusterServiceVersion" || kind == "InstallPlan" || kind == "Subscription";
  }
  return false;
}

const std::regex& GroupDirPattern() {
  static const std::regex re("group[0-9]+");
  return re;
}

}  // namespace

std::string ExtraManifest::Origin() const {
  return "ConfigMap " + configmap + " key " + key + " manifest " + std::to_string(index);
}

std::vector<ManifestGroup> LoadExtraManifests(const fs::path& config_dir,
                                              const std::vector<api::ConfigMapRef>& refs) {
  std::vector<ExtraManifest> all;
  std::vector<api::ConfigMapRef> seen;
  for (const auto& ref : refs) {
    if (std::find(seen.begin(), seen.end(), ref) != seen.end()) continue;
    seen.push_back(ref);
    for (auto& m : LoadConfigMap(config_dir, ref)) all.push_back(std::move(m));
  }
  // Stable: equal wave and name keep spec order, then key order, then document order.
  std::stable_sort(all.begin(), all.end(), [](const ExtraManifest& a, const ExtraManifest& b) {
    if (a.wave != b.wave) return a.wave < b.wave;
    return Name(a.object) < Name(b.object);
  });
  std::vector<ManifestGroup> groups;
  for (auto& m : all) {
    if (groups.empty() || groups.back().wave != m.wave)
      groups.push_back({.wave = m.wave, .manifests = {}});
    groups.back().manifests.push_back(std::move(m));
  }
  return groups;
}

std::vector<std::string> DefaultKnownNamespaces() {
  return {"default",
          "kube-node-lease",
          "kube-public",
          "kube-system",
          "openshift",
          "openshift-config",
          "openshift-config-managed",
          "openshift-ingress",
          "openshift-ingress-operator",
          "openshift-lifecycle-agent",
          "openshift-machine-config-operator",
          "openshift-marketplace",
          "openshift-monitoring",
          "openshift-operator-lifecycle-manager",
          "openshift-operators"};
}

std::string ValidationResult::ErrorText() const { return Join(errors, "; "); }
std::string ValidationResult::WarningText() const { return Join(warnings, "; "); }

ValidationResult ValidateExtraManifests(const std::vector<ManifestGroup>& groups,
                                        const ValidationOptions& options) {
  ValidationResult r;
  std::set<std::string> namespaces(options.known_namespaces.begin(),
                                   options.known_namespaces.end());
  namespaces.insert("default");
  std::set<std::pair<std::string, std::string>> kinds = BuiltinKinds();
  for (const auto& gk : options.known_kinds) kinds.emplace(gk.group, gk.kind);

  // Same order and same `continue`s as the Go operator's ValidateExtraManifestConfigmaps, so
  // one manifest yields at most one message.
  for (const auto& group : groups) {
    for (const auto& m : group.manifests) {
      const std::string api_version = ApiVersion(m.object);
      const std::string kind = Kind(m.object);
      const std::string name = Name(m.object);
      const std::string ns = Namespace(m.object);
      const std::string api_group = GroupOf(api_version);
      if (api_version.empty() || kind.empty()) {
        const char* missing = api_version.empty()
                                  ? (kind.empty() ? "apiVersion and kind are" : "apiVersion is")
                                  : "kind is";
        r.errors.push_back(m.Origin() + ": " + missing + " missing");
        continue;
      }
      if (name.empty()) {
        r.errors.push_back(kind + " resource name is empty (" + m.Origin() + ")");
        continue;
      }
      if (Disallowed(api_group, kind)) {
        r.errors.push_back(kind + "[" + name + "] in extramanifests is not allowed");
        continue;
      }
      if (kind == "Namespace" && api_group.empty()) {
        namespaces.insert(name);
        continue;
      }
      if (!ns.empty() && !namespaces.contains(ns)) {
        r.warnings.push_back(kind + "[" + name + "] - namespace " + ns +
                             " not found on cluster or not added in configmap in right order");
        continue;
      }
      if (kind == "CustomResourceDefinition" && api_group == "apiextensions.k8s.io") {
        // Later manifests may use the kind this CRD defines.
        const std::string crd_group = StringAt(m.object, Json::json_pointer("/spec/group"));
        const std::string crd_kind = StringAt(m.object, Json::json_pointer("/spec/names/kind"));
        if (!crd_kind.empty()) kinds.emplace(crd_group, crd_kind);
        continue;
      }
      if (!kinds.contains({api_group, kind})) {
        r.warnings.push_back(kind + "[" + name + "] - CRD not deployed on cluster");
      }
    }
  }
  return r;
}

namespace {

// An earlier run may have exported other manifests (the spec or a ConfigMap changed, or it was
// interrupted); whatever is left there would be applied after the pivot too. `dest` was opened
// beneath the stateroot; nothing here follows a symlink.
void RemoveStaleExports(int dest, const std::vector<std::vector<std::string>>& names) {
  bool removed = false;
  for (const std::string& dir_name : beneath::ListDir(dest)) {
    if (!std::regex_match(dir_name, GroupDirPattern())) continue;  // not ours to judge
    size_t k = 0;
    while (k < names.size() && dir_name != "group" + std::to_string(k + 1)) ++k;
    if (k == names.size()) {
      removed = beneath::RemoveAt(dest, dir_name) || removed;
      continue;
    }
    const UniqueFd dir = beneath::Open(dest, dir_name, O_RDONLY | O_DIRECTORY);
    for (const std::string& file : beneath::ListDir(dir.get())) {
      const auto& keep = names[k];
      if (std::find(keep.begin(), keep.end(), file) == keep.end()) {
        removed = beneath::RemoveAt(dir.get(), file) || removed;
      }
    }
    if (removed && ::fsync(dir.get()) != 0) throw SystemError("fsync of " + dir_name, errno);
  }
  if (removed && ::fsync(dest) != 0) throw SystemError("fsync of the export directory", errno);
}

}  // namespace

void ExportExtraManifests(const std::vector<ManifestGroup>& groups, const fs::path& root,
                          std::string_view rel) {
  // Names first, so bad input leaves no half-written export behind.
  std::vector<std::vector<std::string>> names(groups.size());
  for (size_t g = 0; g < groups.size(); ++g) {
    const auto& manifests = groups[g].manifests;
    const size_t width = std::max<size_t>(2, std::to_string(manifests.size()).size());
    for (size_t j = 0; j < manifests.size(); ++j) {
      const ExtraManifest& m = manifests[j];
      const std::string kind = Kind(m.object);
      const std::string name = Name(m.object);
      const std::string ns = Namespace(m.object);
      for (const auto& [field, value] :
           {std::pair{"kind", kind}, {"name", name}, {"namespace", ns}}) {
        if ((value.empty() && std::string_view(field) != "namespace") || !SafeComponent(value)) {
          throw Error(Errc::kInvalid, "exporting " + m.Origin() + ": " + field + " \"" + value +
                                          "\" cannot be used in a file name");
        }
      }
      std::string index = std::to_string(j + 1);
      index.insert(0, width - index.size(), '0');
      names[g].push_back(index + "_" + kind + "_" + name + "_" + ns + ".yaml");
    }
  }

  // The destination is in the new stateroot's /var, which came from the seed: it may have
  // planted var/opt -> /etc. Everything is resolved beneath `root` without following symlinks.
  const UniqueFd root_fd = beneath::OpenRoot(root);
  WithContext("exporting extra manifests to " + (root / rel).string(), [&] {
    std::optional<UniqueFd> dest;
    if (!groups.empty()) {
      dest = beneath::MakeDirs(root_fd.get(), rel, 0700);
    } else {
      dest = beneath::OpenDirIfExists(root_fd.get(), rel);
    }
    for (size_t g = 0; g < groups.size(); ++g) {
      const std::string group = "group" + std::to_string(g + 1);
      // Never write through a link planted where a group directory belongs: remove the link.
      struct stat st {};
      if (::fstatat(dest->get(), group.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 &&
          S_ISLNK(st.st_mode)) {
        beneath::RemoveAt(dest->get(), group);
      }
      const UniqueFd dir = beneath::MakeDirs(dest->get(), group, 0700);
      for (size_t j = 0; j < names[g].size(); ++j) {
        beneath::WriteFileAtomicAt(dir.get(), names[g][j], ToYaml(groups[g].manifests[j].object),
                                   0600);
      }
    }
    if (dest) RemoveStaleExports(dest->get(), names);
  });
}

void ExportExtraManifests(const std::vector<ManifestGroup>& groups, const fs::path& dest_dir) {
  const fs::path parent = dest_dir.parent_path();
  std::error_code ec;
  if (!groups.empty()) {
    fs::create_directories(parent, ec);
    if (ec) throw Error(Errc::kIo, "making " + parent.string() + ": " + ec.message());
  } else if (!fs::is_directory(parent, ec)) {
    return;
  }
  ExportExtraManifests(groups, parent, dest_dir.filename().string());
}

}  // namespace lca::pivot
