#pragma once
// One error type for the whole project. Layers add context as the error travels up, so the
// top-level message reads like "Prep: importing seed: pull-local: <cause>".
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

namespace lca {

enum class Errc {
  kInvalid,      // bad input: a field, file or argument the caller can fix
  kNotFound,     // the thing named does not exist
  kConflict,     // precondition failed (resourceVersion, lock held, state not allowed)
  kForbidden,    // caller not allowed
  kIo,           // filesystem or socket failure
  kProcess,      // an external command failed
  kTimeout,      // a deadline passed
  kUnavailable,  // a peer (daemon, registry) cannot be reached
  kCancelled,    // work stopped on request
  kInternal,     // a bug: an invariant did not hold
};

std::string_view ErrcName(Errc code);

class Error : public std::runtime_error {
 public:
  Error(Errc code, const std::string& message) : std::runtime_error(message), code_(code) {}

  Errc code() const { return code_; }

  // "context: message", same code.
  Error WithContext(std::string_view context) const;

 private:
  Errc code_;
};

// Error from errno: "<what>: <strerror(errno)>".
Error SystemError(std::string_view what, int err);

// Runs f(); any exception leaving it is rethrown as lca::Error with `context` prefixed.
// Non-lca exceptions become kInternal so nothing escapes untyped.
template <class F>
auto WithContext(std::string_view context, F&& f) -> decltype(f()) {
  try {
    return std::forward<F>(f)();
  } catch (const Error& e) {
    throw e.WithContext(context);
  } catch (const std::exception& e) {
    throw Error(Errc::kInternal, e.what()).WithContext(context);
  }
}

}  // namespace lca
