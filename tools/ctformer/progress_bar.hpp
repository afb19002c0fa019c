// A progress bar for long work counted in items (requests, windows), drawn on stderr.
#pragma once

#include <unistd.h>

#include <chrono>
#include <cstddef>
#include <cstdio>
#include <string>
#include <utility>

#include "hub/progress.hpp"  // format_duration

namespace ctformer::cli {

// "bench  [#########...........]  450 / 1000 requests  3m05s  ETA 3m46s" on stderr, redrawn at
// most 10 times a second, only when stderr is a terminal.
class CountProgress {
 public:
  using clock = std::chrono::steady_clock;
  CountProgress(std::string label, std::string unit)
      : label_(std::move(label)), unit_(std::move(unit)), tty_(::isatty(::fileno(stderr))) {}
  CountProgress(const CountProgress&) = delete;
  CountProgress& operator=(const CountProgress&) = delete;
  ~CountProgress() {
    if (drawn_) std::fputc('\n', stderr);
  }

  void update(std::size_t done, std::size_t total) {
    if (!tty_) return;
    const auto now = clock::now();
    if (drawn_ && done < total && now - last_ < std::chrono::milliseconds(100)) return;
    constexpr int kWidth = 20;
    const double fraction = total ? double(done) / double(total) : 1.0;
    const int filled = static_cast<int>(fraction * kWidth);
    const double seconds = std::chrono::duration<double>(now - start_).count();
    std::string line = label_ + "  [" + std::string(filled, '#') +
                       std::string(kWidth - filled, '.') + "]  " + std::to_string(done) + " / " +
                       std::to_string(total) + " " + unit_ + "  " + format_duration(seconds);
    if (done > 0 && done < total)
      line += "  ETA " + format_duration(seconds / double(done) * double(total - done));
    std::fprintf(stderr, "\r%s%*s", line.c_str(),
                 static_cast<int>(last_len_ > line.size() ? last_len_ - line.size() : 0), "");
    std::fflush(stderr);
    last_len_ = line.size();
    last_ = now;
    drawn_ = true;
  }

 private:
  std::string label_, unit_;
  bool tty_;
  bool drawn_ = false;
  clock::time_point start_ = clock::now();
  clock::time_point last_{};
  std::size_t last_len_ = 0;
};

}  // namespace ctformer::cli
