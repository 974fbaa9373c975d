// Test helper: runs a shell command and collects its output and exit code
// (the CLI tests run the real `modelgrid` executable this way).
#pragma once

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <string>

namespace modelgrid::testing {

// What a command printed and how it ended.
struct CommandResult {
  int exit_code = -1;  // -1: killed by a signal, or popen failed
  std::string out;     // stdout (plus stderr when the command line redirects it)
};

// Runs `command` with /bin/sh (popen) and waits for it. The command line
// decides what reaches `out` (append "2>&1" to keep stderr).
inline CommandResult RunCommand(const std::string& command) {
  CommandResult r;
  FILE* p = ::popen(command.c_str(), "r");
  if (!p) return r;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
  const int status = ::pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

}  // namespace modelgrid::testing
