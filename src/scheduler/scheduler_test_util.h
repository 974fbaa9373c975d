// Test helpers for the scheduler: tensor builders, a recording executor that
// can hold batches, a settable clock and a future-based callback.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <cstring>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "modelgrid/scheduler/batch_scheduler.h"

namespace modelgrid::testing {

// Generous bound for anything the tests wait on (never a timing assertion).
inline constexpr std::chrono::seconds kPatience{20};

inline InferTensor Int32Tensor(std::string name, std::vector<int64_t> shape,
                               const std::vector<int32_t>& values) {
  InferTensor t;
  t.name = std::move(name);
  t.datatype = DataType::kInt32;
  t.shape = std::move(shape);
  t.data.resize(values.size() * 4);
  if (!values.empty()) std::memcpy(t.data.data(), values.data(), t.data.size());
  return t;
}

inline std::vector<int32_t> Int32Values(const InferTensor& t) {
  std::vector<int32_t> v(t.data.size() / 4);
  if (!v.empty()) std::memcpy(v.data(), t.data.data(), v.size() * 4);
  return v;
}

inline InferTensor BytesTensor(std::string name, std::vector<int64_t> shape,
                               const std::vector<std::string>& elements) {
  InferTensor t;
  t.name = std::move(name);
  t.datatype = DataType::kBytes;
  t.shape = std::move(shape);
  for (const std::string& e : elements) AppendBytesElement(&t.data, e);
  return t;
}

inline std::vector<std::string> BytesValues(const InferTensor& t) {
  std::vector<std::string> out;
  auto split = SplitBytesElements(t.data);
  if (!split.ok()) return out;
  for (std::string_view e : *split) out.emplace_back(e);
  return out;
}

// A request with one INT32 input "x" of shape [values.size() / row, row].
inline SchedulerRequest XRequest(std::string id, const std::vector<int32_t>& values,
                                 int64_t row = 1) {
  SchedulerRequest r;
  r.id = std::move(id);
  r.inputs.push_back(Int32Tensor("x", {static_cast<int64_t>(values.size()) / row, row}, values));
  return r;
}

// What the fake model computes: output "y" = every INT32 input "x" doubled
// (same shape); BYTES input "s" gives output "r" with every element reversed.
inline Result<std::vector<InferTensor>> DoubleModel(const std::string&,
                                                    const std::vector<InferTensor>& inputs,
                                                    const nlohmann::json&) {
  std::vector<InferTensor> outputs;
  for (const InferTensor& in : inputs) {
    if (in.datatype == DataType::kBytes) {
      std::vector<std::string> elements = BytesValues(in);
      for (std::string& e : elements) e.assign(e.rbegin(), e.rend());
      outputs.push_back(BytesTensor("r", in.shape, elements));
    } else {
      std::vector<int32_t> v = Int32Values(in);
      for (int32_t& x : v) x *= 2;
      outputs.push_back(Int32Tensor("y", in.shape, v));
    }
  }
  return outputs;
}

// Records every batch (with its ExecuteContext); while held, Execute()
// blocks (bounded) until Release(). The model is either a plain Fn or a
// CtxFn that also sees the context (e.g. to fail past some rows, or to move
// a ManualClock as if the batch took that long).
class FakeExecutor : public BatchExecutor {
 public:
  struct Call {
    ExecuteContext ctx;
    std::string task;
    std::vector<InferTensor> inputs;
    nlohmann::json params;
  };
  using Fn = std::function<Result<std::vector<InferTensor>>(
      const std::string&, const std::vector<InferTensor>&, const nlohmann::json&)>;
  using CtxFn = std::function<Result<std::vector<InferTensor>>(
      const ExecuteContext&, const std::string&, const std::vector<InferTensor>&,
      const nlohmann::json&)>;

  explicit FakeExecutor(Fn fn = DoubleModel)
      : fn_([fn = std::move(fn)](const ExecuteContext&, const std::string& task,
                                 const std::vector<InferTensor>& inputs,
                                 const nlohmann::json& params) {
          return fn(task, inputs, params);
        }) {}
  explicit FakeExecutor(CtxFn fn) : fn_(std::move(fn)) {}

  Result<std::vector<InferTensor>> Execute(const ExecuteContext& ctx, const std::string& task,
                                           std::vector<InferTensor> inputs,
                                           const nlohmann::json& params) override {
    std::unique_lock<std::mutex> lock(mu_);
    calls_.push_back({ctx, task, inputs, params});
    cv_.notify_all();
    cv_.wait_for(lock, kPatience, [this] { return !hold_; });
    lock.unlock();
    return fn_(ctx, task, inputs, params);
  }

  void Hold() {
    std::lock_guard<std::mutex> lock(mu_);
    hold_ = true;
  }
  void Release() {
    std::lock_guard<std::mutex> lock(mu_);
    hold_ = false;
    cv_.notify_all();
  }
  // Waits (bounded) until `n` batches have entered Execute().
  bool WaitCalls(size_t n) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, kPatience, [&] { return calls_.size() >= n; });
  }
  std::vector<Call> Calls() {
    std::lock_guard<std::mutex> lock(mu_);
    return calls_;
  }

 private:
  CtxFn fn_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool hold_ = false;
  std::vector<Call> calls_;
};

// A clock the test moves by hand.
class ManualClock : public SchedulerClock {
 public:
  SchedulerTime Now() const override {
    std::lock_guard<std::mutex> lock(mu_);
    return now_;
  }
  void Advance(std::chrono::microseconds d) {
    std::lock_guard<std::mutex> lock(mu_);
    now_ += d;
  }

 private:
  mutable std::mutex mu_;
  SchedulerTime now_ = SchedulerTime() + std::chrono::hours(1);
};

// A callback that fulfils a future; Get() waits at most kPatience.
class Outcome {
 public:
  Outcome()
      : promise_(std::make_shared<std::promise<Result<std::vector<InferTensor>>>>()),
        future_(promise_->get_future()) {}
  SchedulerCallback Callback() {
    auto p = promise_;
    return [p](Result<std::vector<InferTensor>> r) { p->set_value(std::move(r)); };
  }
  bool Ready(std::chrono::milliseconds wait = std::chrono::milliseconds(0)) {
    return future_.wait_for(wait) == std::future_status::ready;
  }
  Result<std::vector<InferTensor>> Get() {
    if (future_.wait_for(kPatience) != std::future_status::ready) {
      return Status::Internal("test: no outcome within the patience bound");
    }
    return future_.get();
  }

 private:
  std::shared_ptr<std::promise<Result<std::vector<InferTensor>>>> promise_;
  std::future<Result<std::vector<InferTensor>>> future_;
};

inline BatchSchedulerOptions Options(int64_t max_batch, uint64_t delay_us = 1000) {
  BatchSchedulerOptions o;
  o.model_name = "m";
  o.max_batch_size = max_batch;
  o.batching.max_queue_delay_us = delay_us;
  return o;
}

}  // namespace modelgrid::testing
