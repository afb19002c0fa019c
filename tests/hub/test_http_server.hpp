// A small HTTP/1.1 server on 127.0.0.1 for the download tests: a thread per connection, one
// request per connection (Connection: close), and responses that can misbehave on purpose: stop
// sending and hold the connection open (a stall), or close it halfway (a drop). It records every
// request it saw, with its headers (Range, Authorization) and how many body bytes it sent back.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace ctformer::test {

struct HttpRequest {
  std::string method;
  std::string path;
  std::map<std::string, std::string> headers;  // lowercase names
  std::size_t body_bytes_sent = 0;             // filled in after the response

  std::string header(const std::string& name) const {
    const auto it = headers.find(name);
    return it == headers.end() ? std::string() : it->second;
  }
};

struct HttpReply {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  // Misbehaviour: after sending this many body bytes, close the connection (drop) or keep it
  // open sending nothing until the server stops (stall). Content-Length still announces the
  // whole body.
  std::optional<std::size_t> drop_after;
  std::optional<std::size_t> stall_after;
  bool omit_content_length = false;
};

class TestHttpServer {
 public:
  using Handler = std::function<HttpReply(const HttpRequest&)>;

  explicit TestHttpServer(Handler handler) : handler_(std::move(handler)) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (listen_fd_ < 0) throw std::runtime_error("test server: socket() failed");
    const int one = 1;
    ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);  // loopback only
    addr.sin_port = 0;                              // any free port
    if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(listen_fd_, 64) != 0)
      throw std::runtime_error("test server: cannot listen on 127.0.0.1");
    socklen_t len = sizeof addr;
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    acceptor_ = std::thread([this] { accept_loop(); });
  }

  TestHttpServer(const TestHttpServer&) = delete;
  TestHttpServer& operator=(const TestHttpServer&) = delete;

  ~TestHttpServer() {
    stopping_ = true;
    acceptor_.join();
    ::close(listen_fd_);
    std::vector<std::thread> workers;
    {
      std::lock_guard lock(mutex_);
      workers.swap(workers_);
    }
    for (auto& t : workers) t.join();
  }

  int port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

  std::vector<HttpRequest> requests() const {
    std::lock_guard lock(mutex_);
    return requests_;
  }
  void clear_requests() {
    std::lock_guard lock(mutex_);
    requests_.clear();
  }

 private:
  void accept_loop() {
    while (!stopping_) {
      pollfd p{listen_fd_, POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      std::lock_guard lock(mutex_);
      workers_.emplace_back([this, fd] {
        serve(fd);
        ::close(fd);
      });
    }
  }

  // Reads until the blank line that ends the headers; false if the client went away or the
  // server is stopping.
  bool read_head(int fd, std::string& head) {
    char buf[4096];
    while (head.find("\r\n\r\n") == std::string::npos) {
      pollfd p{fd, POLLIN, 0};
      if (stopping_) return false;
      if (::poll(&p, 1, 20) <= 0) continue;
      const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) return false;
      head.append(buf, static_cast<std::size_t>(n));
    }
    return true;
  }

  bool send_all(int fd, const char* data, std::size_t n) {
    while (n > 0) {
      const ssize_t w = ::send(fd, data, n, MSG_NOSIGNAL);
      if (w <= 0) return false;
      data += w;
      n -= static_cast<std::size_t>(w);
    }
    return true;
  }

  void serve(int fd) {
    std::string head;
    if (!read_head(fd, head)) return;
    HttpRequest req;
    std::size_t pos = head.find("\r\n");
    const std::string request_line = head.substr(0, pos);
    const auto sp1 = request_line.find(' ');
    const auto sp2 = request_line.find(' ', sp1 + 1);
    req.method = request_line.substr(0, sp1);
    req.path = request_line.substr(sp1 + 1, sp2 - sp1 - 1);
    while (true) {
      const std::size_t start = pos + 2;
      pos = head.find("\r\n", start);
      if (pos == std::string::npos || pos == start) break;
      const std::string line = head.substr(start, pos - start);
      const auto colon = line.find(':');
      if (colon == std::string::npos) continue;
      std::string name = line.substr(0, colon);
      std::ranges::transform(name, name.begin(), [](unsigned char c) { return std::tolower(c); });
      std::size_t v = colon + 1;
      while (v < line.size() && line[v] == ' ') ++v;
      req.headers[name] = line.substr(v);
    }
    std::size_t index;
    {
      std::lock_guard lock(mutex_);
      index = requests_.size();
      requests_.push_back(req);
    }

    const HttpReply reply = handler_(req);
    std::string out = "HTTP/1.1 " + std::to_string(reply.status) + " Status\r\n";
    bool has_length = reply.omit_content_length;
    for (const auto& [name, value] : reply.headers) {
      out += name + ": " + value + "\r\n";
      std::string lower = name;
      std::ranges::transform(lower, lower.begin(), [](unsigned char c) { return std::tolower(c); });
      if (lower == "content-length") has_length = true;
    }
    if (!has_length) out += "Content-Length: " + std::to_string(reply.body.size()) + "\r\n";
    out += "Connection: close\r\n\r\n";
    if (!send_all(fd, out.data(), out.size())) return;
    if (req.method == "HEAD") return;

    std::size_t n = reply.body.size();
    if (reply.drop_after) n = std::min(n, *reply.drop_after);
    if (reply.stall_after) n = std::min(n, *reply.stall_after);
    const bool sent = send_all(fd, reply.body.data(), n);
    {
      std::lock_guard lock(mutex_);
      requests_[index].body_bytes_sent = sent ? n : 0;
    }
    if (reply.stall_after && n < reply.body.size()) {
      while (!stopping_) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    // A drop: closing with unsent bytes announced by Content-Length.
    if (reply.drop_after) ::shutdown(fd, SHUT_RDWR);
  }

  Handler handler_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::thread acceptor_;
  mutable std::mutex mutex_;
  std::vector<std::thread> workers_;
  std::vector<HttpRequest> requests_;
};

}  // namespace ctformer::test
