// libcurl behind KubeClient. One easy handle per request: requests are rare (a watch stream
// plus a write per status change), and separate handles let the watch thread and the writer
// thread run side by side without sharing state.
#include <curl/curl.h>

#include <cctype>
#include <cstdio>
#include <memory>
#include <mutex>

#include "agent/kube/client.hpp"

namespace lca::kube {
namespace {

void GlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

struct Transfer {
  std::string body;     // whole body (plain requests)
  std::string pending;  // partial line (watch)
  const std::function<bool(const Json&)>* on_event = nullptr;
  const std::atomic<bool>* stop = nullptr;
  bool stopped_by_us = false;
  std::string parse_error;
  long status = 0;
};

size_t OnWrite(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const size_t len = size * n;
  if (!t->on_event) {
    t->body.append(data, len);
    return len;
  }
  t->pending.append(data, len);
  if (t->status == 0) return len;  // an error reply: its Status body is read whole
  size_t start = 0;
  for (size_t nl; (nl = t->pending.find('\n', start)) != std::string::npos; start = nl + 1) {
    const std::string line = t->pending.substr(start, nl - start);
    if (line.find_first_not_of(" \r\t") == std::string::npos) continue;
    Json event;
    try {
      event = ParseJson(line, "watch event");
    } catch (const Error& e) {
      t->parse_error = e.what();
      return 0;  // aborts the transfer
    }
    if (!(*t->on_event)(event)) {
      t->stopped_by_us = true;
      return 0;
    }
  }
  t->pending.erase(0, start);
  return len;
}

int OnProgress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  auto* t = static_cast<Transfer*>(user);
  if (t->stop && t->stop->load()) {
    t->stopped_by_us = true;
    return 1;
  }
  return 0;
}

using Handle = std::unique_ptr<CURL, decltype(&curl_easy_cleanup)>;
using Headers = std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)>;

Errc CodeForStatus(long status) {
  switch (status) {
    case 400:
    case 422:
      return Errc::kInvalid;
    case 401:
    case 403:
      return Errc::kForbidden;
    case 404:
      return Errc::kNotFound;
    case 409:
    case 410:
      return Errc::kConflict;
    default:
      return Errc::kUnavailable;
  }
}

class CurlClient : public KubeClient {
 public:
  CurlClient(Credentials creds, ClientOptions opts) : c_(std::move(creds)), o_(std::move(opts)) {
    GlobalInit();
  }

  Json Get(const std::string& path) override { return Call("GET", path, nullptr, ""); }
  Json Create(const std::string& collection, const Json& object) override {
    const std::string body = object.dump();
    return Call("POST", collection, &body, "application/json");
  }
  Json MergePatch(const std::string& path, const Json& patch) override {
    const std::string body = patch.dump();
    return Call("PATCH", path, &body, "application/merge-patch+json");
  }

  void Watch(const std::string& path_and_query, const std::function<bool(const Json&)>& on_event,
             const std::atomic<bool>& stop) override {
    Transfer t;
    t.on_event = &on_event;
    t.stop = &stop;
    Perform("GET", path_and_query, nullptr, "", t, /*watch=*/true);
  }

 private:
  Json Call(const std::string& method, const std::string& path, const std::string* body,
            const std::string& content_type) {
    Transfer t;
    Perform(method, path, body, content_type, t, false);
    if (t.body.empty()) return Json::object();
    return ParseJson(t.body, method + " " + path + ": response");
  }

  // Sets up TLS and the identity. The token goes in a header list freed with the handle;
  // CURLOPT_VERBOSE stays off so it is never printed.
  Headers Setup(CURL* h, const std::string& content_type) {
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https,http");
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(o_.connect_timeout.count()));
    curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(h, CURLOPT_USERAGENT, o_.user_agent.c_str());
    if (!c_.ca_pem.empty()) {
      curl_blob ca{const_cast<char*>(c_.ca_pem.data()), c_.ca_pem.size(), CURL_BLOB_COPY};
      curl_easy_setopt(h, CURLOPT_CAINFO_BLOB, &ca);
    }
    if (c_.insecure_skip_tls_verify) {
      curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
      curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    if (!c_.client_cert_pem.empty()) {
      curl_blob cert{const_cast<char*>(c_.client_cert_pem.data()), c_.client_cert_pem.size(),
                     CURL_BLOB_COPY};
      curl_blob key{const_cast<char*>(c_.client_key_pem.data()), c_.client_key_pem.size(),
                    CURL_BLOB_COPY};
      curl_easy_setopt(h, CURLOPT_SSLCERTTYPE, "PEM");
      curl_easy_setopt(h, CURLOPT_SSLCERT_BLOB, &cert);
      curl_easy_setopt(h, CURLOPT_SSLKEYTYPE, "PEM");
      curl_easy_setopt(h, CURLOPT_SSLKEY_BLOB, &key);
    }
    Headers headers(nullptr, &curl_slist_free_all);
    auto add = [&](const std::string& line) {
      curl_slist* next = curl_slist_append(headers.get(), line.c_str());
      if (!next) throw Error(Errc::kInternal, "curl_slist_append: out of memory");
      headers.release();
      headers.reset(next);
    };
    add("Accept: application/json");
    if (!content_type.empty()) add("Content-Type: " + content_type);
    const std::string token = BearerToken(c_);
    if (!token.empty()) add("Authorization: Bearer " + token);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers.get());
    return headers;
  }

  void Perform(const std::string& method, const std::string& path, const std::string* body,
               const std::string& content_type, Transfer& t, bool watch) {
    Handle h(curl_easy_init(), &curl_easy_cleanup);
    if (!h) throw Error(Errc::kInternal, "curl_easy_init failed");
    const std::string url = c_.server + path;
    const std::string what = method + " " + url;
    char errbuf[CURL_ERROR_SIZE] = {0};
    curl_easy_setopt(h.get(), CURLOPT_URL, url.c_str());
    curl_easy_setopt(h.get(), CURLOPT_ERRORBUFFER, errbuf);
    Headers headers = Setup(h.get(), content_type);
    curl_easy_setopt(h.get(), CURLOPT_WRITEFUNCTION, &OnWrite);
    curl_easy_setopt(h.get(), CURLOPT_WRITEDATA, &t);
    if (method == "GET") {
      curl_easy_setopt(h.get(), CURLOPT_HTTPGET, 1L);
    } else {
      curl_easy_setopt(h.get(), CURLOPT_CUSTOMREQUEST, method.c_str());
      curl_easy_setopt(h.get(), CURLOPT_POSTFIELDSIZE_LARGE,
                       static_cast<curl_off_t>(body ? body->size() : 0));
      curl_easy_setopt(h.get(), CURLOPT_POSTFIELDS, body ? body->data() : "");
    }
    if (watch) {
      // No overall deadline (the server ends the stream at timeoutSeconds); a stream silent
      // for longer than the bookmark interval allows is dead.
      curl_easy_setopt(h.get(), CURLOPT_LOW_SPEED_LIMIT, 1L);
      curl_easy_setopt(h.get(), CURLOPT_LOW_SPEED_TIME,
                       static_cast<long>(o_.watch_idle_timeout.count()));
      curl_easy_setopt(h.get(), CURLOPT_NOPROGRESS, 0L);
      curl_easy_setopt(h.get(), CURLOPT_XFERINFOFUNCTION, &OnProgress);
      curl_easy_setopt(h.get(), CURLOPT_XFERINFODATA, &t);
      curl_easy_setopt(h.get(), CURLOPT_HEADERFUNCTION, &OnHeaderLine);
      curl_easy_setopt(h.get(), CURLOPT_HEADERDATA, &t);
    } else {
      curl_easy_setopt(h.get(), CURLOPT_TIMEOUT_MS, static_cast<long>(o_.request_timeout.count()));
    }
    const CURLcode rc = curl_easy_perform(h.get());
    long status = 0;
    curl_easy_getinfo(h.get(), CURLINFO_RESPONSE_CODE, &status);
    if (t.stopped_by_us) return;
    if (!t.parse_error.empty()) {
      throw ApiError(Errc::kInvalid, static_cast<int>(status), "BadWatchEvent",
                     what + ": " + t.parse_error);
    }
    if (rc != CURLE_OK && status == 0) {
      throw ApiError(Errc::kUnavailable, 0, "Unreachable",
                     what + ": " + (errbuf[0] ? errbuf : curl_easy_strerror(rc)));
    }
    if (status >= 300) ThrowStatus(what, status, watch ? t.pending : t.body);
    if (rc != CURLE_OK) {
      throw ApiError(Errc::kUnavailable, static_cast<int>(status), "StreamBroken",
                     what + ": " + (errbuf[0] ? errbuf : curl_easy_strerror(rc)));
    }
  }

  // The status line of a watch reply: events are handed out only after a 2xx (an error reply's
  // body is a Status, not a stream).
  static size_t OnHeaderLine(char* data, size_t size, size_t n, void* user) {
    auto* t = static_cast<Transfer*>(user);
    const std::string line(data, size * n);
    if (line.rfind("HTTP/", 0) == 0) {
      const auto sp = line.find(' ');
      const long code = sp == std::string::npos ? 0 : std::atol(line.c_str() + sp + 1);
      t->status = code >= 200 && code < 300 ? code : 0;
    }
    return size * n;
  }

  [[noreturn]] static void ThrowStatus(const std::string& what, long status,
                                       const std::string& body) {
    std::string reason = "HTTP" + std::to_string(status);
    std::string message;
    try {
      const Json j = Json::parse(body);
      reason = j.value("reason", reason);
      message = j.value("message", "");
    } catch (const std::exception&) {
      message = body.substr(0, 200);
    }
    throw ApiError(CodeForStatus(status), static_cast<int>(status), reason,
                   what + ": HTTP " + std::to_string(status) + " " + reason +
                       (message.empty() ? "" : ": " + message));
  }

  Credentials c_;
  ClientOptions o_;
};

}  // namespace

std::unique_ptr<KubeClient> MakeCurlClient(Credentials creds, ClientOptions opts) {
  return std::make_unique<CurlClient>(std::move(creds), std::move(opts));
}

std::string UrlEscape(const std::string& s) {
  std::string out;
  for (unsigned char ch : s) {
    if (std::isalnum(ch) || ch == '-' || ch == '_' || ch == '.' || ch == '~') {
      out += static_cast<char>(ch);
    } else {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", ch);
      out += buf;
    }
  }
  return out;
}

}  // namespace lca::kube
