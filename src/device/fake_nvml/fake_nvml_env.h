// Test helper: points NVML discovery at the fake NVML with a given JSON
// description, and restores the environment afterwards.
#pragma once

#include <dlfcn.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

namespace modelgrid::testing {

// Saves an environment variable and puts it back on destruction.
class ScopedEnv {
 public:
  // Sets `name` to `value`, or unsets it when `value` is std::nullopt.
  ScopedEnv(const char* name, const std::optional<std::string>& value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    Set(value);
  }
  ~ScopedEnv() { Set(old_); }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

  void Set(const std::optional<std::string>& value) {
    if (value) {
      ::setenv(name_.c_str(), value->c_str(), 1);
    } else {
      ::unsetenv(name_.c_str());
    }
  }

 private:
  std::string name_;
  std::optional<std::string> old_;
};

// Selects the fake NVML at `library` and describes its GPUs with `config`
// (written to a temporary file named by MODELGRID_FAKE_NVML_FILE). Unsets
// CUDA_VISIBLE_DEVICES. Holds its own handle on the fake so that its call
// counters survive the wrapper's dlclose.
class FakeNvmlEnv {
 public:
  FakeNvmlEnv(const std::string& library, const nlohmann::json& config)
      : file_(std::filesystem::temp_directory_path() /
              ("fake_nvml_" + std::to_string(::getpid()) + "_" + std::to_string(counter_++) +
               ".json")),
        library_env_("MODELGRID_NVML_LIBRARY", library),
        file_env_("MODELGRID_FAKE_NVML_FILE", file_.string()),
        visible_env_("CUDA_VISIBLE_DEVICES", std::nullopt),
        dl_(::dlopen(library.c_str(), RTLD_NOW | RTLD_LOCAL)) {
    Write(config);
  }
  ~FakeNvmlEnv() {
    if (dl_) ::dlclose(dl_);
    std::filesystem::remove(file_);
  }

  // Replaces the description; the fake reads it at the next nvmlInit_v2.
  void Write(const nlohmann::json& config) { std::ofstream(file_) << config.dump(2); }

  // Calls of an NVML function so far (fakeNvmlCallCount); "init_depth" gives
  // the nvmlInit_v2 calls not yet matched by nvmlShutdown. -1 if unknown.
  long Calls(const char* function) const {
    if (!dl_) return -1;
    using CountFn = unsigned (*)(const char*);
    auto fn = reinterpret_cast<CountFn>(::dlsym(dl_, "fakeNvmlCallCount"));
    return fn ? static_cast<long>(fn(function)) : -1;
  }

  const std::filesystem::path& file() const { return file_; }

 private:
  static inline int counter_ = 0;
  std::filesystem::path file_;
  ScopedEnv library_env_, file_env_, visible_env_;
  void* dl_ = nullptr;
};

// UUIDs of the two GPUs of TwoGpus().
inline constexpr const char* kGpu0Uuid = "GPU-11111111-2222-3333-4444-555555555555";
inline constexpr const char* kGpu1Uuid = "GPU-aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee";

// Two GPUs, figures in bytes written out literally:
//   GPU 0: H100, 80 GiB total, 10 GiB used, 512 MiB reserved, the rest free,
//          utilization 35 % / 20 %, processes 4242 (1 GiB) and 17 (n/a);
//   GPU 1: A100, 40 GiB total, 2 GiB used, 256 MiB reserved, the rest free,
//          utilization not supported, process 99 (2 GiB).
inline nlohmann::json TwoGpus() {
  return nlohmann::json::parse(R"({
    "driver_version": "580.65.06",
    "devices": [
      {"name": "NVIDIA H100 80GB HBM3", "uuid": "GPU-11111111-2222-3333-4444-555555555555",
       "total": 85899345920, "used": 10737418240, "reserved": 536870912, "free": 74625056768,
       "utilization": {"gpu": 35, "memory": 20},
       "processes": [{"pid": 4242, "used_bytes": 1073741824}, {"pid": 17, "used_bytes": "n/a"}]},
      {"name": "NVIDIA A100-SXM4-40GB", "uuid": "GPU-aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
       "total": 42949672960, "used": 2147483648, "reserved": 268435456, "free": 40533753856,
       "utilization": "n/a",
       "processes": [{"pid": 99, "used_bytes": 2147483648}]}
    ]})");
}

}  // namespace modelgrid::testing
