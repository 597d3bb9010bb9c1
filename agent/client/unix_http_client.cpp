#include "agent/client/unix_http_client.hpp"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <exception>
#include <memory>
#include <mutex>
#include <utility>

#include "common/error.hpp"

namespace lca::http {
namespace {

// curl_global_init is not thread-safe and must run before any other curl call.
void GlobalInit() {
  static std::once_flag once;
  static CURLcode rc = CURLE_OK;
  std::call_once(once, [] { rc = curl_global_init(CURL_GLOBAL_DEFAULT); });
  if (rc != CURLE_OK) {
    throw Error(Errc::kInternal, std::string("curl_global_init: ") + curl_easy_strerror(rc));
  }
}

struct EasyDeleter {
  void operator()(CURL* h) const { curl_easy_cleanup(h); }
};
struct SlistDeleter {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};

std::string_view TrimWs(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() &&
         (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n'))
    s.remove_suffix(1);
  return s;
}

// State shared with the curl callbacks, which are C code: nothing may be thrown through them.
struct Transfer {
  std::map<std::string, std::vector<std::string>> headers;
  std::function<bool(std::string_view)> on_data;  // false -> stop the transfer
  bool stopped = false;                           // on_data asked to stop
  std::exception_ptr error;                       // on_data threw
};

size_t OnHeader(char* data, size_t size, size_t nitems, void* userdata) {
  auto* t = static_cast<Transfer*>(userdata);
  const size_t n = size * nitems;
  std::string_view line(data, n);
  try {
    if (line.starts_with("HTTP/")) {
      // A new status line (e.g. after "100 Continue"): only the final response's headers count.
      t->headers.clear();
    } else if (std::size_t colon = line.find(':'); colon != std::string_view::npos) {
      std::string name(TrimWs(line.substr(0, colon)));
      std::transform(name.begin(), name.end(), name.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      t->headers[name].emplace_back(TrimWs(line.substr(colon + 1)));
    }
  } catch (...) {
    t->error = std::current_exception();
    return 0;
  }
  return n;
}

size_t OnWrite(char* data, size_t size, size_t nmemb, void* userdata) {
  auto* t = static_cast<Transfer*>(userdata);
  const size_t n = size * nmemb;
  try {
    if (!t->on_data(std::string_view(data, n))) {
      t->stopped = true;
      return 0;  // makes curl abort with CURLE_WRITE_ERROR
    }
  } catch (...) {
    t->error = std::current_exception();
    return 0;
  }
  return n;
}

bool IsHeaderSafe(const std::string& s) { return s.find_first_of("\r\n") == std::string::npos; }

class Call {
 public:
  Call(const std::filesystem::path& socket_path, const std::string& method, const std::string& path)
      : socket_path_(socket_path), method_(method), path_(path) {
    GlobalInit();
    if (path.empty() || path.front() != '/') {
      throw Error(Errc::kInvalid, "request path must start with '/': \"" + path + "\"");
    }
    h_.reset(curl_easy_init());
    if (!h_) throw Error(Errc::kInternal, "curl_easy_init failed");
    url_ = "http://localhost" + path;
    errbuf_[0] = '\0';
    CURL* h = h_.get();
    curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, socket_path.c_str());
    curl_easy_setopt(h, CURLOPT_URL, url_.c_str());
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http");
    // Send the path exactly as given; the server does the decoding.
    curl_easy_setopt(h, CURLOPT_PATH_AS_IS, 1L);
    // Timeouts must not use SIGALRM in a multi-threaded program.
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf_);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, &OnHeader);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &transfer_);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &OnWrite);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &transfer_);
  }

  CURL* handle() { return h_.get(); }
  Transfer& transfer() { return transfer_; }

  void AddHeader(const std::string& line) {
    curl_slist* l = curl_slist_append(headers_.get(), line.c_str());
    if (!l) throw Error(Errc::kInternal, "curl_slist_append failed");
    // curl appends in place and returns the same head, except for the first entry.
    if (!headers_) headers_.reset(l);
  }

  // Performs the transfer; returns the HTTP status. Throws lca::Error for transport failures.
  long Perform(std::chrono::milliseconds timeout) {
    CURL* h = h_.get();
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers_.get());
    if (timeout.count() > 0) {
      curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout.count()));
    }
    CURLcode rc = curl_easy_perform(h);
    if (transfer_.error) std::rethrow_exception(transfer_.error);
    // Stopping early on request is not a failure.
    if (rc != CURLE_OK && !(rc == CURLE_WRITE_ERROR && transfer_.stopped)) Fail(rc, timeout);
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    return status;
  }

 private:
  [[noreturn]] void Fail(CURLcode rc, std::chrono::milliseconds timeout) {
    const std::string sock = socket_path_.string();
    const std::string what = method_ + " " + path_;
    std::string detail = errbuf_[0] != '\0' ? errbuf_ : curl_easy_strerror(rc);
    switch (rc) {
      case CURLE_COULDNT_CONNECT: {
        // curl's own text talks about "localhost port 80"; errno says what really happened
        // (no such file, connection refused, permission denied).
        long os_errno = 0;
        curl_easy_getinfo(h_.get(), CURLINFO_OS_ERRNO, &os_errno);
        detail = curl_easy_strerror(rc);
        if (os_errno != 0)
          detail += std::string(" (") + std::strerror(static_cast<int>(os_errno)) + ")";
        // The daemon is running; the socket is root's alone (mode 0600).
        const std::string hint = os_errno == EACCES || os_errno == EPERM
                                     ? "; the lifecycle-agent API is for root: run lcactl as root"
                                     : "; is lifecycle-agent running?";
        throw Error(Errc::kUnavailable,
                    "cannot reach lifecycle-agent at " + sock + ": " + detail + hint);
      }
      case CURLE_OPERATION_TIMEDOUT:
        throw Error(Errc::kTimeout, what + " to lifecycle-agent at " + sock + " timed out after " +
                                        std::to_string(timeout.count()) + " ms: " + detail);
      case CURLE_GOT_NOTHING:
      case CURLE_RECV_ERROR:
      case CURLE_SEND_ERROR:
      case CURLE_PARTIAL_FILE:
        throw Error(Errc::kUnavailable, "lost connection to lifecycle-agent at " + sock +
                                            " during " + what + ": " + detail);
      case CURLE_URL_MALFORMAT:
        throw Error(Errc::kInvalid, "invalid request path \"" + path_ + "\": " + detail);
      default:
        throw Error(Errc::kIo, what + " via " + sock + ": " + detail);
    }
  }

  std::filesystem::path socket_path_;
  std::string method_;
  std::string path_;
  std::string url_;
  std::unique_ptr<CURL, EasyDeleter> h_;
  std::unique_ptr<curl_slist, SlistDeleter> headers_;
  Transfer transfer_;
  char errbuf_[CURL_ERROR_SIZE];
};

}  // namespace

UnixHttpClient::UnixHttpClient(std::filesystem::path socket_path)
    : socket_path_(std::move(socket_path)) {}

ClientReply UnixHttpClient::Request(const std::string& method, const std::string& path,
                                    const std::string& body, const std::string& content_type,
                                    std::chrono::milliseconds timeout) {
  if (method.empty() || !IsHeaderSafe(method) || method.find(' ') != std::string::npos) {
    throw Error(Errc::kInvalid, "invalid HTTP method \"" + method + "\"");
  }
  if (!IsHeaderSafe(content_type)) {
    throw Error(Errc::kInvalid, "invalid content type \"" + content_type + "\"");
  }
  Call call(socket_path_, method, path);
  CURL* h = call.handle();
  ClientReply reply;
  call.transfer().on_data = [&reply](std::string_view data) {
    reply.body.append(data);
    return true;
  };

  const bool sends_body = !body.empty() || method == "POST" || method == "PUT" || method == "PATCH";
  if (method == "GET" && !sends_body) {
    curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
  } else if (method == "HEAD") {
    curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
  } else {
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method.c_str());
  }
  if (sends_body && method != "HEAD") {
    // Even an empty body is posted, so that the request carries "Content-Length: 0".
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body.data());
    // Without this curl would claim application/x-www-form-urlencoded.
    call.AddHeader(content_type.empty() ? "Content-Type:" : "Content-Type: " + content_type);
  } else if (!content_type.empty()) {
    call.AddHeader("Content-Type: " + content_type);
  }
  // "Expect: 100-continue" only adds a round trip (or a one-second stall) on a local socket.
  call.AddHeader("Expect:");

  reply.status = call.Perform(timeout);
  reply.headers = std::move(call.transfer().headers);
  return reply;
}

long UnixHttpClient::StreamLines(const std::string& path,
                                 const std::function<bool(std::string_view)>& on_line,
                                 std::chrono::milliseconds timeout) {
  Call call(socket_path_, "GET", path);
  curl_easy_setopt(call.handle(), CURLOPT_HTTPGET, 1L);
  std::string pending;  // an incomplete line carried over to the next piece of data
  call.transfer().on_data = [&pending, &on_line](std::string_view data) {
    for (;;) {
      std::size_t nl = data.find('\n');
      if (nl == std::string_view::npos) {
        pending.append(data);
        return true;
      }
      bool more;
      if (pending.empty()) {
        more = on_line(data.substr(0, nl));
      } else {
        pending.append(data.substr(0, nl));
        more = on_line(pending);
        pending.clear();
      }
      if (!more) return false;
      data.remove_prefix(nl + 1);
    }
  };
  call.AddHeader("Expect:");
  long status = call.Perform(timeout);
  if (!call.transfer().stopped && !pending.empty()) on_line(pending);
  return status;
}

}  // namespace lca::http
