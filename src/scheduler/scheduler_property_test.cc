// Property: however requests of random sizes and values from several threads
// are batched, each request gets exactly the function of its own inputs, and
// no batch exceeds max_batch_size. And with a memory cost model and an
// instance that runs out of memory past some rows: no merged batch passes
// the budget, and a request fails for memory only when it alone does not fit.
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <set>
#include <thread>

#include "modelgrid/scheduler/batch_scheduler.h"
#include "scheduler/scheduler_test_util.h"

namespace modelgrid {
namespace {

using testing::DoubleModel;
using testing::FakeExecutor;
using testing::Int32Values;
using testing::Options;
using testing::Outcome;
using testing::XRequest;

struct Spec {
  std::vector<int32_t> values;  // rows * width values
  int64_t width;
};

RC_GTEST_PROP(SchedulerPropertyTest, EveryRequestGetsTheFunctionOfItsOwnInputs, ()) {
  const int64_t max_batch = *rc::gen::inRange<int64_t>(1, 9);
  const int64_t width = *rc::gen::inRange<int64_t>(1, 4);
  const int threads = *rc::gen::inRange(1, 4);
  const int per_thread = *rc::gen::inRange(1, 12);
  std::vector<std::vector<Spec>> specs(threads);
  for (auto& list : specs) {
    for (int i = 0; i < per_thread; ++i) {
      const int64_t rows = *rc::gen::inRange<int64_t>(1, max_batch + 1);
      // Some requests use another width: they must never merge with the rest.
      const int64_t w = *rc::gen::inRange(0, 4) == 0 ? width + 1 : width;
      auto values = *rc::gen::container<std::vector<int32_t>>(static_cast<size_t>(rows * w),
                                                              rc::gen::inRange(-1000000, 1000000));
      list.push_back({values, w});
    }
  }

  FakeExecutor executor;
  BatchSchedulerOptions o = Options(max_batch, /*delay_us=*/2000);
  o.batching.max_queue_size = 0;  // unbounded
  BatchScheduler s(o, &executor);
  std::vector<std::vector<Outcome>> outs(threads);
  for (int t = 0; t < threads; ++t) outs[t].resize(specs[t].size());
  std::vector<std::thread> submitters;
  std::vector<int> refused(threads, 0);
  for (int t = 0; t < threads; ++t) {
    submitters.emplace_back([&, t] {
      for (size_t i = 0; i < specs[t].size(); ++i) {
        SchedulerRequest r = XRequest(std::to_string(t) + "/" + std::to_string(i),
                                      specs[t][i].values, specs[t][i].width);
        r.priority = static_cast<int>(i % 3);
        if (!s.Submit(std::move(r), outs[t][i].Callback()).ok()) ++refused[t];
      }
    });
  }
  for (std::thread& th : submitters) th.join();
  for (int t = 0; t < threads; ++t) RC_ASSERT(refused[t] == 0);

  for (int t = 0; t < threads; ++t) {
    for (size_t i = 0; i < specs[t].size(); ++i) {
      auto r = outs[t][i].Get();
      RC_ASSERT(r.ok());
      RC_ASSERT(r->size() == 1u);
      std::vector<int32_t> want = specs[t][i].values;
      for (int32_t& v : want) v *= 2;
      RC_ASSERT(Int32Values(r->at(0)) == want);
      const int64_t rows = static_cast<int64_t>(want.size()) / specs[t][i].width;
      RC_ASSERT(r->at(0).shape == (std::vector<int64_t>{rows, specs[t][i].width}));
    }
  }
  uint64_t rows_seen = 0;
  for (const auto& call : executor.Calls()) {
    const InferTensor& x = call.inputs.at(0);
    RC_ASSERT(x.shape.at(0) <= max_batch);
    rows_seen += static_cast<uint64_t>(x.shape.at(0));
  }
  uint64_t rows_sent = 0;
  for (const auto& list : specs) {
    for (const Spec& sp : list) rows_sent += sp.values.size() / static_cast<size_t>(sp.width);
  }
  RC_ASSERT(rows_seen == rows_sent);  // every row executed exactly once
  const SchedulerStats stats = s.Stats();
  RC_CLASSIFY(stats.executed_batches < stats.executed_requests, "some requests merged");
  RC_ASSERT(stats.executed_inferences == rows_sent);
  RC_ASSERT(stats.succeeded == static_cast<uint64_t>(threads * per_thread));
}

RC_GTEST_PROP(SchedulerPropertyTest, MemoryFailuresHitOnlyRequestsThatDoNotFitAlone, ()) {
  const int64_t max_batch = *rc::gen::inRange<int64_t>(1, 9);
  const int64_t width = *rc::gen::inRange<int64_t>(1, 4);
  const int count = *rc::gen::inRange(1, 25);
  const uint64_t fixed = *rc::gen::inRange<uint64_t>(0, 100);
  const uint64_t per_row = *rc::gen::inRange<uint64_t>(1, 100);
  const uint64_t budget =
      *rc::gen::inRange<uint64_t>(0, fixed + per_row * static_cast<uint64_t>(max_batch) * 3 / 2);
  // The instance really holds this many rows (the cost model may be wrong).
  const int64_t fits_rows = *rc::gen::inRange<int64_t>(1, max_batch + 1);
  const bool costed = *rc::gen::arbitrary<bool>();

  // Request i's values are i * 1000 + k: a batch's inputs name its requests.
  std::vector<int64_t> rows(count);
  std::vector<std::vector<int32_t>> values(count);
  for (int i = 0; i < count; ++i) {
    rows[i] = *rc::gen::inRange<int64_t>(1, max_batch + 1);
    for (int64_t k = 0; k < rows[i] * width; ++k) {
      values[i].push_back(i * 1000 + static_cast<int32_t>(k));
    }
  }
  auto cost = [fixed, per_row](int64_t r) { return fixed + per_row * static_cast<uint64_t>(r); };
  FakeExecutor executor([fits_rows](const ExecuteContext& ctx, const std::string& task,
                                    const std::vector<InferTensor>& in,
                                    const nlohmann::json& p) -> Result<std::vector<InferTensor>> {
    if (ctx.rows > fits_rows) return Status::ResourceExhausted("out of memory");
    return DoubleModel(task, in, p);
  });
  BatchSchedulerOptions o = Options(max_batch, /*delay_us=*/2000);
  o.batching.max_queue_size = 0;
  if (costed) {
    o.batch_bytes = cost;
    o.budget_bytes = [budget] { return budget; };
  }
  BatchScheduler s(o, &executor);
  std::vector<Outcome> outs(count);
  for (int i = 0; i < count; ++i) {
    RC_ASSERT(s.Submit(XRequest(std::to_string(i), values[i], width), outs[i].Callback()).ok());
  }
  int failed = 0;
  for (int i = 0; i < count; ++i) {
    auto r = outs[i].Get();
    if (rows[i] > fits_rows) {
      RC_ASSERT(!r.ok());
      RC_ASSERT(r.status().code() == StatusCode::kResourceExhausted);
      ++failed;
    } else {
      RC_ASSERT(r.ok());
      std::vector<int32_t> want = values[i];
      for (int32_t& v : want) v *= 2;
      RC_ASSERT(Int32Values(r->at(0)) == want);
    }
  }
  for (const auto& call : executor.Calls()) {
    std::set<int32_t> ids;
    for (int32_t v : Int32Values(call.inputs.at(0))) ids.insert(v / 1000);
    RC_ASSERT(call.ctx.rows == call.inputs.at(0).shape.at(0));
    if (costed && cost(call.ctx.rows) > budget) RC_ASSERT(ids.size() == 1u);
  }
  const SchedulerStats stats = s.Stats();
  RC_ASSERT(stats.executed_requests == static_cast<uint64_t>(count));
  RC_ASSERT(stats.failed == static_cast<uint64_t>(failed));
  RC_ASSERT(stats.succeeded + stats.failed == stats.executed_requests);
  RC_ASSERT(stats.executed_batches == executor.Calls().size());
  uint64_t histogram_batches = 0;
  for (const auto& [r, n] : stats.batch_size_histogram) histogram_batches += n;
  RC_ASSERT(histogram_batches == stats.executed_batches);
  RC_CLASSIFY(stats.memory_splits > 0, "merged batches split");
  RC_CLASSIFY(stats.memory_capped_batches > 0, "batches capped by the budget");
}

}  // namespace
}  // namespace modelgrid
