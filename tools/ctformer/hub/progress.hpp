// A one-line download progress bar on stderr: bytes done and total, percentage, rate and ETA.
// On a terminal the line is redrawn (at most 10 times a second); otherwise (a log file, CI) only a
// start line and an end line are written, so logs stay readable.
#pragma once

#include <unistd.h>

#include <chrono>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>

namespace ctformer::cli {

// "0 B", "512 B", "1.5 KiB", "548.1 MiB", "6.4 GiB".
inline std::string format_bytes(double bytes) {
  static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (bytes >= 1024 && u < 4) {
    bytes /= 1024;
    ++u;
  }
  char buf[32];
  if (u == 0)
    std::snprintf(buf, sizeof buf, "%.0f %s", bytes, kUnits[u]);
  else
    std::snprintf(buf, sizeof buf, "%.1f %s", bytes, kUnits[u]);
  return buf;
}

// "7s", "3m05s", "2h10m".
inline std::string format_duration(double seconds) {
  if (seconds < 0) seconds = 0;
  const auto s = static_cast<std::int64_t>(seconds + 0.5);
  char buf[32];
  if (s < 60)
    std::snprintf(buf, sizeof buf, "%" PRId64 "s", s);
  else if (s < 3600)
    std::snprintf(buf, sizeof buf, "%" PRId64 "m%02" PRId64 "s", s / 60, s % 60);
  else
    std::snprintf(buf, sizeof buf, "%" PRId64 "h%02" PRId64 "m", s / 3600, (s % 3600) / 60);
  return buf;
}

// The text of the bar, without the leading '\r': e.g.
// "model.safetensors  [#######.............]  35%  191.9 MiB / 548.1 MiB  45.2 MiB/s  ETA 8s"
// `total` is empty when the server did not say; `rate` is in bytes per second.
inline std::string format_progress(const std::string& name, std::uint64_t done,
                                   std::optional<std::uint64_t> total, double rate) {
  std::string line = name + "  ";
  if (total && *total > 0) {
    const double fraction = std::min(1.0, static_cast<double>(done) / static_cast<double>(*total));
    constexpr int kWidth = 20;
    const int filled = static_cast<int>(fraction * kWidth);
    line += "[" + std::string(filled, '#') + std::string(kWidth - filled, '.') + "]  ";
    char pct[8];
    std::snprintf(pct, sizeof pct, "%3d%%", static_cast<int>(fraction * 100));
    line += pct;
    line += "  " + format_bytes(static_cast<double>(done)) + " / " +
            format_bytes(static_cast<double>(*total));
  } else {
    line += format_bytes(static_cast<double>(done));
  }
  line += "  " + format_bytes(rate) + "/s";
  if (total && rate > 0 && done <= *total)
    line += "  ETA " + format_duration(static_cast<double>(*total - done) / rate);
  return line;
}

class ProgressBar {
 public:
  using clock = std::chrono::steady_clock;

  // `resumed` bytes were already on disk; the rate counts only what arrives now.
  ProgressBar(std::string name, std::optional<std::uint64_t> total, std::uint64_t resumed,
              bool enabled, std::FILE* out = stderr)
      : name_(std::move(name)),
        total_(total),
        done_(resumed),
        resumed_(resumed),
        enabled_(enabled),
        tty_(enabled && ::isatty(::fileno(out))),
        out_(out),
        start_(clock::now()) {
    if (enabled_ && !tty_) {
      std::fprintf(
          out_, "downloading %s (%s%s)\n", name_.c_str(),
          total_ ? format_bytes(static_cast<double>(*total_)).c_str() : "size unknown",
          resumed_ ? (", resuming at " + format_bytes(static_cast<double>(resumed_))).c_str() : "");
      std::fflush(out_);
    }
  }
  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;
  ~ProgressBar() {
    if (tty_ && drawn_) std::fputc('\n', out_);
  }

  // The server answered 200 to a Range request: the count starts again from 0.
  void restart() { done_ = resumed_ = 0; }

  void add(std::uint64_t bytes) {
    done_ += bytes;
    if (!tty_) return;
    const auto now = clock::now();
    if (drawn_ && now - last_draw_ < std::chrono::milliseconds(100)) return;
    draw(now);
  }

  void finish() {
    if (!enabled_) return;
    const auto now = clock::now();
    if (tty_) {
      draw(now);
      return;
    }
    const double seconds = std::chrono::duration<double>(now - start_).count();
    std::fprintf(out_, "downloaded %s: %s in %s (%s/s)\n", name_.c_str(),
                 format_bytes(static_cast<double>(done_)).c_str(), format_duration(seconds).c_str(),
                 format_bytes(rate(now)).c_str());
    std::fflush(out_);
  }

  std::uint64_t done() const { return done_; }

 private:
  double rate(clock::time_point now) const {
    const double seconds = std::chrono::duration<double>(now - start_).count();
    return seconds > 0 ? static_cast<double>(done_ - resumed_) / seconds : 0.0;
  }

  void draw(clock::time_point now) {
    const std::string line = format_progress(name_, done_, total_, rate(now));
    // Pad to the previous length so that a shorter line leaves nothing behind.
    std::fprintf(out_, "\r%s%*s", line.c_str(),
                 static_cast<int>(last_len_ > line.size() ? last_len_ - line.size() : 0), "");
    std::fflush(out_);
    last_len_ = line.size();
    last_draw_ = now;
    drawn_ = true;
  }

  std::string name_;
  std::optional<std::uint64_t> total_;
  std::uint64_t done_;
  std::uint64_t resumed_;
  bool enabled_;
  bool tty_;
  std::FILE* out_;
  clock::time_point start_;
  clock::time_point last_draw_{};
  std::size_t last_len_ = 0;
  bool drawn_ = false;
};

}  // namespace ctformer::cli
