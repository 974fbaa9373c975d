// Helpers shared by the serving benchmarks (dispatch_bench, serving_bench):
// the machine and date lines of their tables, latency statistics, and
// deterministic model inputs built from a model's config.yaml. Header-only;
// benchmarks are single files, so the functions are inline.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "modelgrid/bytes.h"
#include "modelgrid/datatype.h"
#include "modelgrid/kserve/tensor.h"
#include "modelgrid/repository.h"
#include "modelgrid/status.h"

namespace modelgrid::bench {

// "CPU model, N cores, X GiB RAM", read from /proc/cpuinfo ("model name") and
// /proc/meminfo ("MemTotal"); N is std::thread::hardware_concurrency().
inline std::string MachineLine() {
  std::string cpu = "unknown CPU";
  uint64_t mem_kib = 0;
  {
    std::ifstream in("/proc/cpuinfo");
    std::string line;
    while (std::getline(in, line)) {
      if (line.rfind("model name", 0) == 0) {
        if (auto colon = line.find(':'); colon != std::string::npos && colon + 2 <= line.size()) {
          cpu = line.substr(colon + 2);
        }
        break;
      }
    }
  }
  {
    std::ifstream in("/proc/meminfo");
    std::string line;
    while (std::getline(in, line)) {
      if (std::sscanf(line.c_str(), "MemTotal: %lu", &mem_kib) == 1) break;
    }
  }
  return cpu + ", " + std::to_string(std::thread::hardware_concurrency()) + " cores, " +
         FormatBytes(mem_kib * 1024) + " RAM";
}

// The 1-, 5- and 15-minute load averages of /proc/loadavg ("2.10 1.95 1.80"),
// or "unknown": what else was running on the machine while a benchmark ran.
inline std::string LoadAverage() {
  std::ifstream in("/proc/loadavg");
  std::string a, b, c;
  if (!(in >> a >> b >> c)) return "unknown";
  return a + " " + b + " " + c;
}

// The current time as "YYYY-MM-DD HH:MM UTC".
inline std::string NowUtc() {
  char buf[32];
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  std::strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M UTC", &tm);
  return buf;
}

// Summary of a set of latencies, all in microseconds. Percentiles are
// nearest-rank (the smallest sample with at least q of the samples at or
// below it); all zero for an empty set.
struct LatencyStats {
  uint64_t count = 0;
  double p50 = 0, p90 = 0, p99 = 0, mean = 0, min = 0, max = 0;
};

// Computes LatencyStats over `samples_us` (taken by value: sorted here).
inline LatencyStats Summarize(std::vector<double> samples_us) {
  LatencyStats s;
  if (samples_us.empty()) return s;
  std::sort(samples_us.begin(), samples_us.end());
  const size_t n = samples_us.size();
  auto rank = [&](double q) {
    size_t k = static_cast<size_t>(std::ceil(q * static_cast<double>(n)));
    return samples_us[std::clamp<size_t>(k, 1, n) - 1];
  };
  double sum = 0;
  for (double v : samples_us) sum += v;
  s.count = n;
  s.p50 = rank(0.50);
  s.p90 = rank(0.90);
  s.p99 = rank(0.99);
  s.mean = sum / static_cast<double>(n);
  s.min = samples_us.front();
  s.max = samples_us.back();
  return s;
}

// The median of `v` (the mean of the two middle values for an even count);
// 0 for an empty set. Units are the caller's.
inline double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// The vocabulary size of a Hugging Face folder (config.json "vocab_size"),
// or `fallback` when the model has no config.json or it has no such field.
inline int64_t VocabSize(const ModelEntry& model, int64_t fallback = 100) {
  if (!model.hf_config) return fallback;
  std::ifstream in(*model.hf_config);
  const nlohmann::json cfg = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (!cfg.is_object() || !cfg.contains("vocab_size") || !cfg["vocab_size"].is_number_integer())
    return fallback;
  return cfg["vocab_size"].get<int64_t>();
}

// Builds one input per config.yaml input of `model` for a request of
// `batch` rows (ignored when max_batch_size is 0): each -1 dimension becomes
// `tokens`. FP32 data is uniform in [0, 1), INT64 data are token ids in
// [0, vocab size); the generator is seeded with `seed`, so the same call
// always gives the same bytes. Errors: kInvalidArgument when the model
// declares no inputs or an input of another datatype.
inline Result<std::vector<InferTensor>> MakeInputs(const ModelEntry& model, int64_t batch,
                                                   int64_t tokens, uint32_t seed) {
  if (model.config.inputs.empty()) {
    return Status::InvalidArgument("model '" + model.name + "': config.yaml declares no inputs");
  }
  std::mt19937 gen(seed);
  std::vector<InferTensor> out;
  for (const TensorSpec& spec : model.config.inputs) {
    InferTensor t;
    t.name = spec.name;
    t.datatype = spec.datatype;
    if (model.config.max_batch_size > 0) t.shape.push_back(batch);
    for (int64_t d : spec.dims) t.shape.push_back(d < 0 ? tokens : d);
    uint64_t n = 1;
    for (int64_t d : t.shape) n *= static_cast<uint64_t>(d);
    if (spec.datatype == DataType::kFP32) {
      std::vector<float> v(n);
      // 24 random bits scaled to [0, 1): exact and the same on every platform.
      for (float& x : v) x = static_cast<float>(gen() >> 8) / static_cast<float>(1u << 24);
      t.data.assign(reinterpret_cast<const char*>(v.data()), n * sizeof(float));
    } else if (spec.datatype == DataType::kInt64) {
      const uint64_t vocab = static_cast<uint64_t>(std::max<int64_t>(1, VocabSize(model)));
      std::vector<int64_t> v(n);
      for (int64_t& x : v) x = static_cast<int64_t>(gen() % vocab);
      t.data.assign(reinterpret_cast<const char*>(v.data()), n * sizeof(int64_t));
    } else {
      return Status::InvalidArgument("model '" + model.name + "': input '" + spec.name + "' is " +
                                     std::string(DataTypeName(spec.datatype)) +
                                     "; the benchmarks make FP32 and INT64 inputs only");
    }
    out.push_back(std::move(t));
  }
  return out;
}

// "name DTYPE [d0,d1,...] (N bytes)" for each tensor, joined by ", ".
inline std::string DescribeTensors(const std::vector<InferTensor>& tensors) {
  std::string s;
  for (const InferTensor& t : tensors) {
    if (!s.empty()) s += ", ";
    s += t.name + " " + std::string(DataTypeName(t.datatype)) + " " + FormatShape(t.shape) + " (" +
         std::to_string(t.data.size()) + " bytes)";
  }
  return s;
}

// Largest absolute difference between two FP32 tensors' elements, or a
// negative value when they differ in datatype, shape or size.
inline double MaxAbsDiffFp32(const InferTensor& a, const InferTensor& b) {
  if (a.datatype != DataType::kFP32 || b.datatype != DataType::kFP32 || a.shape != b.shape ||
      a.data.size() != b.data.size() || a.data.size() % sizeof(float) != 0) {
    return -1;
  }
  const size_t n = a.data.size() / sizeof(float);
  double worst = 0;
  for (size_t i = 0; i < n; ++i) {
    float x, y;
    std::memcpy(&x, a.data.data() + i * sizeof(float), sizeof(float));
    std::memcpy(&y, b.data.data() + i * sizeof(float), sizeof(float));
    worst = std::max(worst, static_cast<double>(std::fabs(x - y)));
  }
  return worst;
}

}  // namespace modelgrid::bench
