// Replays the seed corpora of src/fuzz/corpus/<target>/ through the fuzz
// harnesses (fuzz_target.h) with any compiler, so that every input a fuzzer
// ever found (saved there as crash-*, leak-*, timeout-* or a named seed)
// stays a regression test of the normal build: no crash, no escaped
// exception, every property of the harness holds (except for the inputs of
// bugs not fixed yet, listed in corpus/KNOWN_BUGS.tsv). The valid-* seeds must
// also parse, so that the harnesses are known to reach past the first error.
// A crash names the file it happened on (a signal handler prints it).
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <vector>

#include "fuzz/fuzz_target.h"
#include "modelgrid/device.h"
#include "modelgrid/kserve/infer_codec.h"
#include "modelgrid/repository.h"

namespace modelgrid::fuzz {
namespace {

namespace fs = std::filesystem;

// The file being replayed, for the crash handler (async-signal-safe write).
char g_current[4096];

void OnCrash(int sig) {
  const char prefix[] = "\nfuzz_replay_test: crashed while replaying ";
  (void)!::write(STDERR_FILENO, prefix, sizeof(prefix) - 1);
  (void)!::write(STDERR_FILENO, g_current, ::strnlen(g_current, sizeof(g_current)));
  (void)!::write(STDERR_FILENO, "\n", 1);
  ::signal(sig, SIG_DFL);
  ::raise(sig);
}

void InstallCrashHandler() {
  for (int sig : {SIGSEGV, SIGABRT, SIGBUS, SIGFPE, SIGILL}) ::signal(sig, OnCrash);
}

fs::path CorpusDir(const std::string& target) {
  return fs::path(MODELGRID_SOURCE_DIR) / "src" / "fuzz" / "corpus" / target;
}

std::vector<fs::path> CorpusFiles(const std::string& target) {
  std::vector<fs::path> files;
  const fs::path dir = CorpusDir(target);
  if (!fs::is_directory(dir)) return files;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.is_regular_file()) files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// corpus/KNOWN_BUGS.tsv: "<target>/<file>\t<the bug>" for inputs that
// still break a property because of a bug not fixed yet. They are replayed
// and must still break it: once the bug is fixed the test says to remove
// the line. (An input that crashes the process cannot be listed: it would
// end the replay; fix the crash first.)
std::map<std::string, std::string> KnownBugs() {
  std::map<std::string, std::string> bugs;
  std::ifstream in(fs::path(MODELGRID_SOURCE_DIR) / "src" / "fuzz" / "corpus" / "KNOWN_BUGS.tsv");
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    const size_t tab = line.find('\t');
    bugs[line.substr(0, tab)] = tab == std::string::npos ? "" : line.substr(tab + 1);
  }
  return bugs;
}

// Runs every file of corpus/<target> through `check`; returns how many ran.
size_t Replay(const std::string& target, std::string (*check)(std::string_view)) {
  InstallCrashHandler();
  static const std::map<std::string, std::string> known = KnownBugs();
  const std::vector<fs::path> files = CorpusFiles(target);
  for (const fs::path& file : files) {
    const std::string name = file.string();
    std::strncpy(g_current, name.c_str(), sizeof(g_current) - 1);
    const std::string broken = RunGuarded(check, ReadFile(file));
    const std::string key = target + "/" + file.filename().string();
    if (auto bug = known.find(key); bug != known.end()) {
      EXPECT_NE(broken, "") << key << " no longer breaks a property: the bug is fixed, remove its "
                            << "line from src/fuzz/corpus/KNOWN_BUGS.tsv (" << bug->second << ")";
      continue;
    }
    EXPECT_EQ(broken, "") << key;
  }
  g_current[0] = '\0';
  return files.size();
}

// The valid-* seeds of `target`, read.
std::vector<std::pair<std::string, std::string>> ValidSeeds(const std::string& target) {
  std::vector<std::pair<std::string, std::string>> seeds;
  for (const fs::path& f : CorpusFiles(target)) {
    if (f.filename().string().rfind("valid-", 0) == 0) {
      seeds.emplace_back(f.filename().string(), ReadFile(f));
    }
  }
  return seeds;
}

TEST(FuzzReplay, InferRequestSeeds) {
  EXPECT_GE(Replay("infer_request", &CheckInferRequest), 100u);
  // The valid seeds decode (the input's first byte is the mode, see the harness).
  const auto seeds = ValidSeeds("infer_request");
  EXPECT_GE(seeds.size(), 5u);
  for (const auto& [name, input] : seeds) {
    ASSERT_FALSE(input.empty()) << name;
    std::string_view body = std::string_view(input).substr(1);
    std::optional<size_t> header;
    if (input[0] & 1) {
      ASSERT_GE(body.size(), 2u) << name;
      header = static_cast<unsigned char>(body[0]) |
               (static_cast<size_t>(static_cast<unsigned char>(body[1])) << 8);
      body = body.substr(2);
    }
    auto decoded = DecodeInferRequest(body, header);
    EXPECT_TRUE(decoded.ok()) << name << ": " << decoded.status().ToString();
  }
}

TEST(FuzzReplay, TritonConfigSeeds) {
  EXPECT_GE(Replay("triton_config", &CheckTritonConfig), 30u);
  const auto seeds = ValidSeeds("triton_config");
  EXPECT_GE(seeds.size(), 3u);
  for (const auto& [name, text] : seeds) {
    auto parsed = ParseTritonModelConfig(text, name);
    EXPECT_TRUE(parsed.ok()) << name << ": " << parsed.status().ToString();
  }
}

TEST(FuzzReplay, ModelConfigSeeds) {
  EXPECT_GE(Replay("model_config", &CheckModelConfig), 30u);
  const auto seeds = ValidSeeds("model_config");
  EXPECT_GE(seeds.size(), 3u);
  for (const auto& [name, text] : seeds) {
    auto parsed = ParseModelConfig(text, name);
    EXPECT_TRUE(parsed.ok()) << name << ": " << parsed.status().ToString();
  }
}

TEST(FuzzReplay, DeviceSpecSeeds) {
  EXPECT_GE(Replay("device_spec", &CheckDeviceSpec), 30u);
  const auto seeds = ValidSeeds("device_spec");
  EXPECT_GE(seeds.size(), 3u);
  for (const auto& [name, text] : seeds) {
    std::vector<std::string> specs;
    size_t start = 0;
    for (size_t nl; (nl = text.find('\n', start)) != std::string::npos; start = nl + 1) {
      specs.push_back(text.substr(start, nl - start));
    }
    specs.push_back(text.substr(start));
    auto parsed = ParseDeviceSpecs(specs);
    EXPECT_TRUE(parsed.ok()) << name << ": " << parsed.status().ToString();
  }
}

}  // namespace
}  // namespace modelgrid::fuzz
