// Runs the built `ctformer` command-line tool (CTFORMER_CLI, set by CMake) for end-to-end tests.
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>

namespace ctformer::test {

struct CliResult {
  int status;       // exit code, -1 if the process did not exit normally
  std::string out;  // stdout, with stderr appended when asked for
};

// The tool: $CTFORMER_CLI (the tool away from its build tree), else the one CMake built.
inline std::string cli_path() {
  const char* env = std::getenv("CTFORMER_CLI");
  return env && *env ? env : CTFORMER_CLI;
}

// Runs `ctformer <args>` with `input` on stdin.
inline CliResult run_cli(const std::string& args, const std::string& input = "",
                         bool merge_stderr = false) {
  namespace fs = std::filesystem;
  static int counter = 0;
  const fs::path in_file =
      fs::temp_directory_path() /
      ("ctformer_cli_" + std::to_string(::getpid()) + "_" + std::to_string(counter++) + ".in");
  std::ofstream(in_file, std::ios::binary) << input;
  const std::string cli = cli_path();
  const std::string cmd = "'" + cli + "' " + args + " < '" + in_file.string() + "'" +
                          (merge_stderr ? " 2>&1" : " 2>/dev/null");
  FILE* pipe = ::popen(cmd.c_str(), "r");
  if (!pipe) throw std::runtime_error("popen failed for: " + cmd);
  std::string out;
  char buf[4096];
  for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, pipe)) > 0;) out.append(buf, n);
  const int status = ::pclose(pipe);
  fs::remove(in_file);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

}  // namespace ctformer::test
