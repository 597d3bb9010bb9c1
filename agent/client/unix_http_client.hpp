#pragma once
// HTTP/1.1 client for the lifecycle-agent Unix socket, built on libcurl.
#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace lca::http {

struct ClientReply {
  long status = 0;
  std::string body;
  // Lower-cased names; repeated headers kept in order.
  std::map<std::string, std::vector<std::string>> headers;
};

class UnixHttpClient {
 public:
  explicit UnixHttpClient(std::filesystem::path socket_path);

  // method "GET"/"PATCH"/"POST"/"PUT"/"DELETE"; path like "/apis/x/v1/y?watch=true" (URL host is
  // "localhost"). Connection failure -> lca::Error(kUnavailable, "cannot reach lifecycle-agent at
  // <socket>: <curl error>; is lifecycle-agent running?"), or "...; the lifecycle-agent API is for
  // root: run lcactl as root" when the socket refused the caller (EACCES). Timeout (0 = none) ->
  // kTimeout. A connection lost mid-exchange -> kUnavailable. HTTP error statuses are NOT
  // exceptions: they come back in ClientReply.
  ClientReply Request(const std::string& method, const std::string& path,
                      const std::string& body = "", const std::string& content_type = "",
                      std::chrono::milliseconds timeout = {});

  // GET that streams: calls on_line for each complete '\n'-terminated line of the body (without
  // the '\n') as it arrives; returning false from on_line stops the transfer early (not an error).
  // Returns the status. A non-2xx status is returned with its body fed line by line too. When the
  // body ends cleanly with an unterminated last line (typical of an error Status body), that line
  // is fed as well. An exception thrown by on_line aborts the transfer and is rethrown. Times out
  // like Request (the timeout covers the whole stream).
  long StreamLines(const std::string& path, const std::function<bool(std::string_view)>& on_line,
                   std::chrono::milliseconds timeout = {});

 private:
  std::filesystem::path socket_path_;
};

}  // namespace lca::http
