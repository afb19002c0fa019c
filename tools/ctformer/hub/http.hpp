// HTTP(S) through libcurl: HEAD and streaming GET with a stall timeout (no bytes for N seconds is
// an error), and every libcurl failure turned into a DownloadError of the right kind.
#pragma once

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "download_error.hpp"

namespace ctformer::cli {

struct HttpSettings {
  std::chrono::milliseconds stall_timeout{30'000};  // no bytes for this long: DownloadError stalled
  std::string token;                                // non-empty: "Authorization: Bearer <token>"
  std::string user_agent = "ctformer/0.1 (libcurl)";
};

struct HttpResponse {
  long status = 0;
  std::map<std::string, std::string> headers;  // of the last response; names in lowercase
  std::string url;                             // the URL that answered (after redirects)

  const std::string* header(const std::string& lowercase_name) const {
    const auto it = headers.find(lowercase_name);
    return it == headers.end() ? nullptr : &it->second;
  }
};

// Receives a GET's body. begin() is called once, before the first byte, with the status and the
// Content-Length (-1 if unknown); data() may throw (a full disk), which ends the transfer and is
// rethrown from HttpClient::get.
struct HttpBody {
  std::function<void(long status, std::int64_t content_length)> begin;
  std::function<void(const char* data, std::size_t size)> data;
};

// "https://host:port" of an absolute URL, "" if the URL has no scheme.
inline std::string url_origin(const std::string& url) {
  const auto scheme = url.find("://");
  if (scheme == std::string::npos) return {};
  const auto path = url.find('/', scheme + 3);
  return path == std::string::npos ? url : url.substr(0, path);
}

// The phrase for common HTTP statuses, for messages.
inline std::string http_status_text(long status) {
  switch (status) {
    case 400:
      return "400 Bad Request";
    case 401:
      return "401 Unauthorized";
    case 403:
      return "403 Forbidden";
    case 404:
      return "404 Not Found";
    case 408:
      return "408 Request Timeout";
    case 416:
      return "416 Range Not Satisfiable";
    case 429:
      return "429 Too Many Requests";
    case 500:
      return "500 Internal Server Error";
    case 502:
      return "502 Bad Gateway";
    case 503:
      return "503 Service Unavailable";
    case 504:
      return "504 Gateway Timeout";
    default:
      return std::to_string(status);
  }
}

class HttpClient {
 public:
  explicit HttpClient(HttpSettings settings) : settings_(std::move(settings)) {
    static std::once_flag once;
    std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
    curl_.reset(curl_easy_init());
    if (!curl_) throw std::runtime_error("libcurl: curl_easy_init failed");
  }

  const HttpSettings& settings() const { return settings_; }

  // A HEAD request that follows only relative redirects (to the same host, as the hub sends for a
  // renamed repository); an absolute redirect (the hub's CDN for LFS files) is returned as is, with
  // its Location header, as huggingface_hub's get_hf_file_metadata does.
  HttpResponse head(std::string url) {
    for (int hop = 0;; ++hop) {
      Transfer t(*this, url);
      curl_easy_setopt(curl_.get(), CURLOPT_NOBODY, 1L);
      curl_easy_setopt(curl_.get(), CURLOPT_FOLLOWLOCATION, 0L);
      t.run();
      HttpResponse r = t.response();
      const std::string* location = r.header("location");
      if (r.status >= 300 && r.status < 400 && location && location->starts_with("/") &&
          !location->starts_with("//") && hop < 10) {
        url = url_origin(url) + *location;
        continue;
      }
      return r;
    }
  }

  // A GET that follows redirects, asks for bytes from `offset` on (a Range request) when offset
  // is not 0, and streams the body into `body`. An HTTP error status is returned, not thrown
  // (its body is discarded); network failures throw DownloadError.
  HttpResponse get(const std::string& url, std::uint64_t offset, const HttpBody& body) {
    Transfer t(*this, url);
    curl_easy_setopt(curl_.get(), CURLOPT_HTTPGET, 1L);
    curl_easy_setopt(curl_.get(), CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(curl_.get(), CURLOPT_MAXREDIRS, 10L);
    curl_easy_setopt(curl_.get(), CURLOPT_FAILONERROR, 1L);
    const std::string range = std::to_string(offset) + "-";
    if (offset > 0) curl_easy_setopt(curl_.get(), CURLOPT_RANGE, range.c_str());
    t.body = &body;
    t.run();
    return t.response();
  }

 private:
  struct CurlFree {
    void operator()(CURL* c) const { curl_easy_cleanup(c); }
  };
  struct SlistFree {
    void operator()(curl_slist* l) const { curl_slist_free_all(l); }
  };
  using clock = std::chrono::steady_clock;

  // One request on the shared easy handle (so that connections are reused).
  struct Transfer {
    Transfer(HttpClient& client, const std::string& url) : c(client), url(url) {
      CURL* h = c.curl_.get();
      curl_easy_reset(h);
      curl_easy_setopt(h, CURLOPT_URL, url.c_str());
      curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
      curl_easy_setopt(h, CURLOPT_USERAGENT, c.settings_.user_agent.c_str());
      curl_easy_setopt(h, CURLOPT_ERRORBUFFER, error);
      curl_easy_setopt(
          h, CURLOPT_CONNECTTIMEOUT_MS,
          static_cast<long>(std::max<std::int64_t>(c.settings_.stall_timeout.count(), 1)));
      curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
      curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, &Transfer::on_header);
      curl_easy_setopt(h, CURLOPT_HEADERDATA, this);
      curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &Transfer::on_write);
      curl_easy_setopt(h, CURLOPT_WRITEDATA, this);
      curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
      curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, &Transfer::on_progress);
      curl_easy_setopt(h, CURLOPT_XFERINFODATA, this);
      // The hub serves files as they are; no compression, so sizes and byte ranges are the file's.
      curl_slist* list = curl_slist_append(nullptr, "Accept-Encoding: identity");
      if (!c.settings_.token.empty())
        list = curl_slist_append(list, ("Authorization: Bearer " + c.settings_.token).c_str());
      headers.reset(list);
      curl_easy_setopt(h, CURLOPT_HTTPHEADER, list);
      last_activity = clock::now();
    }

    void run() {
      const CURLcode rc = curl_easy_perform(c.curl_.get());
      if (sink_error) std::rethrow_exception(sink_error);
      curl_easy_getinfo(c.curl_.get(), CURLINFO_RESPONSE_CODE, &status);
      if (rc != CURLE_OK && !(rc == CURLE_HTTP_RETURNED_ERROR && status >= 400)) fail(rc);
    }

    HttpResponse response() {
      HttpResponse r;
      r.status = status;
      r.headers = std::move(response_headers);
      char* effective = nullptr;
      curl_easy_getinfo(c.curl_.get(), CURLINFO_EFFECTIVE_URL, &effective);
      r.url = effective ? effective : url;
      return r;
    }

    [[noreturn]] void fail(CURLcode rc) {
      const std::string detail = error[0] ? std::string(error) : curl_easy_strerror(rc);
      const double stall_s = static_cast<double>(c.settings_.stall_timeout.count()) / 1000.0;
      char stall_text[32];
      std::snprintf(stall_text, sizeof stall_text, "%g", stall_s);
      curl_off_t connected = 0;
      curl_easy_getinfo(c.curl_.get(), CURLINFO_CONNECT_TIME_T, &connected);
      using K = DownloadErrorKind;
      const bool reached_server = connected > 0 || got_header;
      if ((stalled || rc == CURLE_OPERATION_TIMEDOUT) && reached_server)
        throw DownloadError(K::stalled,
                            "no data arrived from " + url + " for " + stall_text +
                                " s (the stall timeout); the server or the network is stuck: try "
                                "again later, or raise --stall-timeout on a slow link",
                            url);
      switch (rc) {
        case CURLE_COULDNT_RESOLVE_HOST:
        case CURLE_COULDNT_RESOLVE_PROXY:
          throw DownloadError(K::dns,
                              "cannot resolve the host name of " + url + " (" + detail +
                                  "): there is no network, or HF_ENDPOINT names a wrong host; "
                                  "connect to the network, or pass a local model directory instead",
                              url);
        case CURLE_COULDNT_CONNECT:
        case CURLE_OPERATION_TIMEDOUT:
        case CURLE_ABORTED_BY_CALLBACK:  // the stall timeout, before a connection was made
          throw DownloadError(K::connect,
                              "cannot connect to " + url_origin(url) + " (" + detail +
                                  "): the network or the server is down, or a firewall blocks "
                                  "it; check the network and HF_ENDPOINT, or pass a local model "
                                  "directory instead",
                              url);
        case CURLE_SSL_CONNECT_ERROR:
        case CURLE_PEER_FAILED_VERIFICATION:
        case CURLE_SSL_CERTPROBLEM:
        case CURLE_SSL_CIPHER:
        case CURLE_SSL_CACERT_BADFILE:
        case CURLE_SSL_ISSUER_ERROR:
        case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
        case CURLE_SSL_INVALIDCERTSTATUS:
        case CURLE_SSL_ENGINE_INITFAILED:
        case CURLE_SSL_CLIENTCERT:
          throw DownloadError(K::tls,
                              "the TLS connection to " + url_origin(url) + " failed (" + detail +
                                  "); check the system clock and the CA certificates "
                                  "(apt-get install ca-certificates), or a proxy that intercepts "
                                  "HTTPS",
                              url);
        case CURLE_TOO_MANY_REDIRECTS:
          throw DownloadError(
              K::http_status,
              url + " redirects in a loop (" + detail + "); check HF_ENDPOINT or try again later",
              url, status);
        case CURLE_PARTIAL_FILE:
        case CURLE_RECV_ERROR:
        case CURLE_SEND_ERROR:
        case CURLE_GOT_NOTHING:
        default:
          throw DownloadError(K::interrupted,
                              "the connection to " + url_origin(url) + " broke while fetching " +
                                  url + " (" + detail + "); run the command again to resume",
                              url);
      }
    }

    static std::size_t on_header(char* data, std::size_t size, std::size_t n, void* self_ptr) {
      auto* self = static_cast<Transfer*>(self_ptr);
      self->last_activity = clock::now();
      self->got_header = true;
      std::string line(data, size * n);
      while (!line.empty() && (line.back() == '\r' || line.back() == '\n')) line.pop_back();
      if (line.starts_with("HTTP/")) {
        self->response_headers.clear();  // a new response (after a redirect or 100 Continue)
      } else if (const auto colon = line.find(':'); colon != std::string::npos) {
        std::string name = line.substr(0, colon);
        std::ranges::transform(name, name.begin(),
                               [](unsigned char ch) { return std::tolower(ch); });
        std::size_t v = colon + 1;
        while (v < line.size() && (line[v] == ' ' || line[v] == '\t')) ++v;
        self->response_headers[name] = line.substr(v);
      }
      return size * n;
    }

    static std::size_t on_write(char* data, std::size_t size, std::size_t n, void* self_ptr) {
      auto* self = static_cast<Transfer*>(self_ptr);
      self->last_activity = clock::now();
      if (!self->body) return size * n;
      try {
        if (!self->begun) {
          self->begun = true;
          long code = 0;
          curl_off_t length = -1;
          curl_easy_getinfo(self->c.curl_.get(), CURLINFO_RESPONSE_CODE, &code);
          curl_easy_getinfo(self->c.curl_.get(), CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &length);
          if (self->body->begin) self->body->begin(code, length);
        }
        self->body->data(data, size * n);
      } catch (...) {
        self->sink_error = std::current_exception();
        return 0;  // CURLE_WRITE_ERROR; run() rethrows
      }
      return size * n;
    }

    static int on_progress(void* self_ptr, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
      auto* self = static_cast<Transfer*>(self_ptr);
      if (clock::now() - self->last_activity > self->c.settings_.stall_timeout) {
        self->stalled = true;
        return 1;  // abort
      }
      return 0;
    }

    HttpClient& c;
    std::string url;
    char error[CURL_ERROR_SIZE] = {};
    std::unique_ptr<curl_slist, SlistFree> headers;
    std::map<std::string, std::string> response_headers;
    const HttpBody* body = nullptr;
    bool begun = false;
    bool stalled = false;
    bool got_header = false;
    long status = 0;
    std::exception_ptr sink_error;
    clock::time_point last_activity;
  };

  HttpSettings settings_;
  std::unique_ptr<CURL, CurlFree> curl_;
};

}  // namespace ctformer::cli
