// The fuzz harnesses of src/fuzz/ (README.md there). Each harness is a
// function that takes one input, runs it through a parser of ModelGrid and
// checks what came back; it returns "" when every check held, else a
// description of the broken property (an escaped exception, a Status with a
// code the API does not document, a value that does not read back equal).
//
// The same function serves two drivers:
//   * libFuzzer (clang, -DMODELGRID_BUILD_FUZZERS=ON): MODELGRID_FUZZ_TARGET
//     defines LLVMFuzzerTestOneInput, which aborts on a broken property so
//     that the fuzzer records the input as a crash;
//   * fuzz_replay_test (any compiler, always built with the tests): calls
//     the functions directly on every file of src/fuzz/corpus/<target>/.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <string_view>

#include "modelgrid/status.h"

namespace modelgrid::fuzz {

// The harnesses (one .cc each; exceptions they let through are caught and
// reported by RunGuarded). Input formats: see each file.
std::string CheckInferRequest(std::string_view input);
std::string CheckTritonConfig(std::string_view input);
std::string CheckModelConfig(std::string_view input);
std::string CheckDeviceSpec(std::string_view input);

// "<CODE>: <message>" of `status`, for reports.
inline std::string Describe(const Status& status) { return status.ToString(); }

// True when `broken` contains one of the '|'-separated texts of the
// environment variable MODELGRID_FUZZ_IGNORE: a fuzzing campaign can go on
// past a known, reported bug (README.md) instead of stopping at it again.
inline bool Ignored(const std::string& broken) {
  static const std::string ignore = [] {
    const char* v = std::getenv("MODELGRID_FUZZ_IGNORE");
    return std::string(v ? v : "");
  }();
  size_t start = 0;
  while (start < ignore.size()) {
    size_t end = ignore.find('|', start);
    if (end == std::string::npos) end = ignore.size();
    if (end > start && broken.find(ignore.substr(start, end - start)) != std::string::npos) {
      return true;
    }
    start = end + 1;
  }
  return false;
}

// Runs `check` on `input`: its description of a broken property, or "an
// exception escaped: ..." when one did (a harness lets exceptions through;
// both drivers call it through here).
inline std::string RunGuarded(std::string (*check)(std::string_view), std::string_view input) {
  try {
    return check(input);
  } catch (const std::exception& e) {
    return std::string("an exception escaped: ") + e.what();
  } catch (...) {
    return "an exception escaped";
  }
}

// Runs `check` on one input; on a broken property prints it and aborts
// (unless MODELGRID_FUZZ_IGNORE names it).
inline int RunOrAbort(std::string (*check)(std::string_view), const uint8_t* data, size_t size) {
  const std::string broken =
      RunGuarded(check, std::string_view(reinterpret_cast<const char*>(data), size));
  if (!broken.empty() && !Ignored(broken)) {
    std::fprintf(stderr, "modelgrid fuzz: property broken: %s\n", broken.c_str());
    std::abort();
  }
  return 0;
}

}  // namespace modelgrid::fuzz

// Defines libFuzzer's entry point over `check` when this file is built as a
// fuzzer (MODELGRID_LIBFUZZER); nothing otherwise.
#ifdef MODELGRID_LIBFUZZER
#define MODELGRID_FUZZ_TARGET(check)                                          \
  extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {   \
    return ::modelgrid::fuzz::RunOrAbort(&(check), data, size);               \
  }
#else
#define MODELGRID_FUZZ_TARGET(check)
#endif
