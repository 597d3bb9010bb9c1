#include "common/error.hpp"

#include <cstring>

namespace lca {

std::string_view ErrcName(Errc code) {
  switch (code) {
    case Errc::kInvalid:
      return "Invalid";
    case Errc::kNotFound:
      return "NotFound";
    case Errc::kConflict:
      return "Conflict";
    case Errc::kForbidden:
      return "Forbidden";
    case Errc::kIo:
      return "IO";
    case Errc::kProcess:
      return "Process";
    case Errc::kTimeout:
      return "Timeout";
    case Errc::kUnavailable:
      return "Unavailable";
    case Errc::kCancelled:
      return "Cancelled";
    case Errc::kInternal:
      return "Internal";
  }
  return "Unknown";
}

Error Error::WithContext(std::string_view context) const {
  std::string msg(context);
  msg += ": ";
  msg += what();
  return Error(code_, msg);
}

Error SystemError(std::string_view what, int err) {
  std::string msg(what);
  msg += ": ";
  msg += std::strerror(err);
  return Error(Errc::kIo, msg);
}

}  // namespace lca
