// Helpers shared by the worker tests: the small zoo (MODELGRID_TEST_ZOO),
// starting a real modelgrid-worker, building input tensors, comparing
// outputs byte for byte.
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "modelgrid/backend/backend.h"
#include "modelgrid/repository.h"
#include "modelgrid/worker/worker_client.h"
#include "testing/zoo.h"

namespace modelgrid::testing {

// Long enough never to fire on a loaded machine; bounds a wrong test.
inline constexpr std::chrono::milliseconds kGenerous{60'000};


// What on_exit saw: how many calls, and the last WorkerExit.
struct ExitRecord {
  std::mutex mu;
  int calls = 0;
  WorkerExit last;
  std::chrono::steady_clock::time_point at;

  std::function<void(const WorkerExit&)> Callback() {
    return [this](const WorkerExit& e) {
      std::lock_guard<std::mutex> lock(mu);
      ++calls;
      last = e;
      at = std::chrono::steady_clock::now();
    };
  }
  int Calls() {
    std::lock_guard<std::mutex> lock(mu);
    return calls;
  }
  WorkerExit Last() {
    std::lock_guard<std::mutex> lock(mu);
    return last;
  }
};

inline WorkerOptions Options(const std::string& name, uint64_t arena_bytes = uint64_t{64} << 20) {
  WorkerOptions o;
  o.executable = MODELGRID_WORKER_PATH;
  o.name = name;
  o.arena_bytes = arena_bytes;
  o.threads = 1;
  o.start_timeout = std::chrono::milliseconds{30'000};
  return o;
}

// Starts a worker, failing the test (ASSERT) when it does not start.
#define START_WORKER(var, options, exits)                                 \
  auto var##_result = WorkerClient::Start((options), (exits).Callback()); \
  ASSERT_TRUE(var##_result.ok()) << var##_result.status().ToString();     \
  std::unique_ptr<WorkerClient> var = std::move(var##_result).value()

inline ipc::LoadMessage LoadOf(const std::filesystem::path& zoo, const std::string& model,
                               uint64_t limit_bytes = 0) {
  ipc::LoadMessage load;
  load.model = model;
  load.path = (zoo / model).string();
  load.device = "cpu";
  load.limit_bytes = limit_bytes;
  return load;
}

inline ModelEntry OpenEntry(const std::filesystem::path& zoo, const std::string& model) {
  auto entry = OpenModel(zoo / model);
  EXPECT_TRUE(entry.ok()) << entry.status().ToString();
  return entry.ok() ? *entry : ModelEntry{};
}

template <typename T>
InferTensor MakeTensor(const std::string& name, DataType type, std::vector<int64_t> shape,
                       const std::vector<T>& values) {
  InferTensor t;
  t.name = name;
  t.datatype = type;
  t.shape = std::move(shape);
  t.data.resize(values.size() * sizeof(T));
  if (!values.empty()) std::memcpy(t.data.data(), values.data(), t.data.size());
  return t;
}

// Rows [first, first + count) of the digits test set as an FP32 [count, 64]
// "input" tensor.
inline InferTensor DigitsRows(const std::filesystem::path& zoo, size_t first, size_t count) {
  static std::mutex mu;
  static std::vector<std::vector<float>> rows;
  {
    std::lock_guard<std::mutex> lock(mu);
    if (rows.empty()) {
      std::ifstream in(zoo / "digits" / "test_set.json");
      const nlohmann::json set = nlohmann::json::parse(in);
      for (const auto& row : set["inputs"]) rows.push_back(row.get<std::vector<float>>());
    }
  }
  std::vector<float> values;
  for (size_t i = 0; i < count; ++i) {
    const auto& row = rows[(first + i) % rows.size()];
    values.insert(values.end(), row.begin(), row.end());
  }
  return MakeTensor("input", DataType::kFP32, {static_cast<int64_t>(count), 64}, values);
}

// INT64 token ids [batch, seq], deterministic from `seed`, below `vocab`.
inline InferTensor TokenIds(int64_t batch, int64_t seq, int64_t seed, int64_t vocab = 1000) {
  std::vector<int64_t> ids;
  for (int64_t i = 0; i < batch * seq; ++i) ids.push_back((i * 37 + seed * 101 + 11) % vocab);
  return MakeTensor("input_ids", DataType::kInt64, {batch, seq}, ids);
}

// Same names, datatypes, shapes and bytes, in the same order.
inline ::testing::AssertionResult SameTensors(const std::vector<InferTensor>& got,
                                              const std::vector<InferTensor>& want) {
  if (got.size() != want.size()) {
    return ::testing::AssertionFailure()
           << "got " << got.size() << " tensors, want " << want.size();
  }
  for (size_t i = 0; i < got.size(); ++i) {
    const InferTensor& a = got[i];
    const InferTensor& b = want[i];
    if (a.name != b.name || a.datatype != b.datatype || a.shape != b.shape) {
      return ::testing::AssertionFailure()
             << "tensor " << i << ": got '" << a.name << "' " << FormatShape(a.shape) << " want '"
             << b.name << "' " << FormatShape(b.shape);
    }
    if (a.data != b.data) {
      size_t at = 0;
      while (at < a.data.size() && at < b.data.size() && a.data[at] == b.data[at]) ++at;
      return ::testing::AssertionFailure()
             << "tensor '" << a.name << "': " << a.data.size() << " vs " << b.data.size()
             << " bytes, first difference at byte " << at;
    }
  }
  return ::testing::AssertionSuccess();
}

inline bool Contains(const Status& s, const std::string& text) {
  return s.message().find(text) != std::string::npos;
}

}  // namespace modelgrid::testing
