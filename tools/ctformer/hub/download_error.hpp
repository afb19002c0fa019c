// What can go wrong while fetching a model from the Hugging Face hub, as one exception type whose
// `kind` says which, so that callers (and tests) can tell a missing network from a corrupt file.
#pragma once

#include <string>
#include <string_view>

#include "ctformer/core/error.hpp"

namespace ctformer::cli {

enum class DownloadErrorKind {
  dns,          // the host name did not resolve (usually: no network)
  connect,      // no TCP connection (refused, unreachable, connect timeout)
  tls,          // the TLS handshake or certificate check failed
  http_status,  // the server answered with an error status (401, 404, 500, ...)
  stalled,      // no bytes for the stall timeout
  disk_full,    // writing the file failed for lack of space
  checksum,     // the bytes do not hash to what the hub publishes
  offline,      // HF_HUB_OFFLINE is set and the file is not in the cache
  interrupted,  // the connection dropped before the whole file arrived
};

inline std::string_view to_string(DownloadErrorKind kind) {
  switch (kind) {
    case DownloadErrorKind::dns:
      return "dns";
    case DownloadErrorKind::connect:
      return "connect";
    case DownloadErrorKind::tls:
      return "tls";
    case DownloadErrorKind::http_status:
      return "http_status";
    case DownloadErrorKind::stalled:
      return "stalled";
    case DownloadErrorKind::disk_full:
      return "disk_full";
    case DownloadErrorKind::checksum:
      return "checksum";
    case DownloadErrorKind::offline:
      return "offline";
    case DownloadErrorKind::interrupted:
      return "interrupted";
  }
  return "unknown";
}

class DownloadError : public Error {
 public:
  DownloadError(DownloadErrorKind kind, const std::string& message, std::string url = {},
                long http_status = 0)
      : Error(message), kind_(kind), url_(std::move(url)), http_status_(http_status) {}

  DownloadErrorKind kind() const { return kind_; }
  const std::string& url() const { return url_; }
  long http_status() const { return http_status_; }  // 0 unless kind() is http_status

  // Whether trying again may help: a dropped or stalled connection, a refused connection (the
  // server restarting), or a server-side error (HTTP 5xx, 429 Too Many Requests).
  bool retryable() const {
    switch (kind_) {
      case DownloadErrorKind::connect:
      case DownloadErrorKind::stalled:
      case DownloadErrorKind::interrupted:
        return true;
      case DownloadErrorKind::http_status:
        return http_status_ >= 500 || http_status_ == 429 || http_status_ == 408;
      default:
        return false;
    }
  }

  // Whether the hub could not be reached at all (no network, wrong HF_ENDPOINT): the cases where
  // a model already in the cache may be used instead.
  bool unreachable() const {
    return kind_ == DownloadErrorKind::dns || kind_ == DownloadErrorKind::connect ||
           kind_ == DownloadErrorKind::tls || kind_ == DownloadErrorKind::stalled;
  }

 private:
  DownloadErrorKind kind_;
  std::string url_;
  long http_status_;
};

}  // namespace ctformer::cli
