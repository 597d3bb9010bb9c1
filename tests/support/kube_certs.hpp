#pragma once
// A throwaway certificate authority for the Kubernetes API server stand-in: a CA, a server
// certificate for 127.0.0.1/localhost and client certificates, made with the openssl CLI in a
// directory of the test's. EC P-256 keys (quick to make; Go, libcurl and Python all take them).
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "tests/support/run_cmd.hpp"

namespace lca::test {

struct KeyPair {
  std::filesystem::path cert, key;
};

class TestCa {
 public:
  explicit TestCa(std::filesystem::path dir) : dir_(std::move(dir)) {
    std::filesystem::create_directories(dir_);
    Openssl({"req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", (dir_ / "ca.key").string(), "-out", ca().string(), "-days", "7", "-subj",
             "/CN=kube-standin-ca"});
    ::chmod((dir_ / "ca.key").c_str(), 0600);
  }

  std::filesystem::path ca() const { return dir_ / "ca.crt"; }

  // A certificate signed by this CA; `ext` lines go into its extensions.
  KeyPair Issue(const std::string& name, const std::string& subject,
                const std::vector<std::string>& ext) const {
    const KeyPair kp{dir_ / (name + ".crt"), dir_ / (name + ".key")};
    const auto csr = dir_ / (name + ".csr");
    const auto extfile = dir_ / (name + ".ext");
    std::ofstream(extfile) << [&] {
      std::string s;
      for (const auto& e : ext) s += e + "\n";
      return s;
    }();
    Openssl({"req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", kp.key.string(), "-out", csr.string(), "-subj", subject});
    ::chmod(kp.key.c_str(), 0600);
    Openssl({"x509", "-req", "-in", csr.string(), "-CA", ca().string(), "-CAkey",
             (dir_ / "ca.key").string(), "-CAcreateserial", "-out", kp.cert.string(), "-days", "7",
             "-extfile", extfile.string()});
    return kp;
  }

  KeyPair IssueServer() const {
    return Issue("server", "/CN=kube-apiserver",
                 {"subjectAltName=IP:127.0.0.1,DNS:localhost", "extendedKeyUsage=serverAuth"});
  }

  // Kubernetes reads the user from CN and groups from O.
  KeyPair IssueClient(const std::string& user, const std::string& group) const {
    return Issue("client-" + user, "/CN=" + user + "/O=" + group, {"extendedKeyUsage=clientAuth"});
  }

 private:
  static void Openssl(std::vector<std::string> args) {
    args.insert(args.begin(), "/usr/bin/openssl");
    const CmdResult r = RunCmd(args, {});
    if (r.code != 0) throw std::runtime_error("openssl " + args[1] + " failed: " + r.err);
  }

  std::filesystem::path dir_;
};

}  // namespace lca::test
