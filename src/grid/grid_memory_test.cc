// Dynamic memory of modelgrid::Grid end to end, with real modelgrid-worker
// processes on the small zoo (MODELGRID_TEST_ZOO): more models than fit
// taking turns through on-demand loads and evictions, concurrent first
// requests, swapping to the host tier and back, borrowing past a request,
// the wait resolver's bounded wait, reconfiguration while serving, and
// faults while swapped (kill -9, a lost swap file).
//
// Capacities are set with `cpu=CAP` device specs; a cpu device charges
// DefaultContextBytes(kCpu) = 128 MiB per worker process (isolation `model`:
// one worker per instance), and ModelSpec's memory_request / memory_limit
// set each instance's figures. Every answer is compared byte for byte with
// the answer of the same model served normally (a reference grid, same
// batch), and every wait is bounded.
#include "testing/zoo.h"
#include "modelgrid/grid.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace modelgrid {
namespace {

using namespace std::chrono_literals;

constexpr uint64_t kMiB = uint64_t{1} << 20;
constexpr uint64_t kContext = 128 * kMiB;  // what a cpu device charges per worker

GridOptions Options(std::vector<std::string> devices) {
  GridOptions o;
  o.isolation = Isolation::kModel;
  o.devices = std::move(devices);
  o.worker_executable = MODELGRID_BINARY_DIR "/bin/modelgrid-worker";
  o.worker_threads = 1;
  o.initial_backoff = 50ms;
  o.min_residency = 0ms;
  return o;
}

std::unique_ptr<Grid> MakeGrid(const GridOptions& o) {
  auto grid = Grid::Create(o);
  EXPECT_TRUE(grid.ok()) << grid.status().ToString();
  return grid.ok() ? std::move(grid).value() : nullptr;
}

// A private folder under the temp dir, removed at the end of the test.
struct TempDir {
  std::filesystem::path path;
  explicit TempDir(const std::string& tag) {
    std::string tmpl =
        (std::filesystem::temp_directory_path() / ("grid-memory-" + tag + "-XXXXXX")).string();
    if (::mkdtemp(tmpl.data()) != nullptr) path = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    if (!path.empty()) std::filesystem::remove_all(path, ec);
  }
  std::vector<std::filesystem::path> Files() const {
    std::vector<std::filesystem::path> out;
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(path, ec)) out.push_back(e.path());
    return out;
  }
};

// ---- inputs ----

std::vector<std::vector<float>> DigitsRows(const std::filesystem::path& zoo) {
  std::ifstream in(zoo / "digits" / "test_set.json");
  nlohmann::json j = nlohmann::json::parse(in);
  std::vector<std::vector<float>> rows;
  for (const auto& r : j["inputs"]) rows.push_back(r.get<std::vector<float>>());
  return rows;
}

// Rows [start, start + n) of the digits test set (wrapping) as one FP32
// [n, 64] input.
InferTensor DigitsBatch(const std::vector<std::vector<float>>& rows, size_t start, size_t n) {
  InferTensor t;
  t.name = "input";
  t.datatype = DataType::kFP32;
  t.shape = {static_cast<int64_t>(n), 64};
  for (size_t i = 0; i < n; ++i) {
    const auto& r = rows[(start + i) % rows.size()];
    t.data.append(reinterpret_cast<const char*>(r.data()), r.size() * sizeof(float));
  }
  return t;
}

// A deterministic FP32 [n, 3, 64, 64] image batch for resnet18.
InferTensor Images(int64_t n, int seed) {
  InferTensor t;
  t.name = "input";
  t.datatype = DataType::kFP32;
  t.shape = {n, 3, 64, 64};
  std::vector<float> v(static_cast<size_t>(n) * 3 * 64 * 64);
  for (size_t i = 0; i < v.size(); ++i) {
    v[i] = static_cast<float>(std::sin(0.001 * static_cast<double>(i) + seed));
  }
  t.data.assign(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float));
  return t;
}

// ---- calls, bounded ----

// Infers `inputs` on `model` with a request timeout, and waits for the
// answer at most `timeout` + 60 s: a grid that never answers is an error
// ("no answer"), not a hung test.
Result<std::vector<InferTensor>> InferWithin(Grid& grid, const std::string& model,
                                             std::vector<InferTensor> inputs,
                                             std::chrono::milliseconds timeout = 60s) {
  auto p = std::make_shared<std::promise<Result<std::vector<InferTensor>>>>();
  auto f = p->get_future();
  InferCall call;
  call.inputs = std::move(inputs);
  call.timeout = timeout;
  grid.InferAsync(model, std::move(call),
                  [p](Result<std::vector<InferTensor>> r) { p->set_value(std::move(r)); });
  if (f.wait_for(timeout + 60s) != std::future_status::ready) {
    return Status::Internal("no answer from model '" + model + "' within " +
                            std::to_string((timeout + 60s).count()) + " ms");
  }
  return f.get();
}

::testing::AssertionResult SameTensors(const Result<std::vector<InferTensor>>& got,
                                       const std::vector<InferTensor>& want) {
  if (!got.ok()) return ::testing::AssertionFailure() << got.status().ToString();
  if (got->size() != want.size()) {
    return ::testing::AssertionFailure() << got->size() << " outputs, want " << want.size();
  }
  for (size_t i = 0; i < want.size(); ++i) {
    const InferTensor& a = (*got)[i];
    const InferTensor& b = want[i];
    if (a.name != b.name || a.datatype != b.datatype || a.shape != b.shape) {
      return ::testing::AssertionFailure() << "output " << i << " '" << a.name
                                           << "' differs in name, type or shape from '" << b.name
                                           << "'";
    }
    if (a.data != b.data) {
      return ::testing::AssertionFailure() << "output '" << a.name << "' differs in its bytes";
    }
  }
  return ::testing::AssertionSuccess();
}

// The same models served normally (no overrides, a large device), for the
// answers every test compares with.
class Reference {
 public:
  Reference(const std::filesystem::path& zoo, const std::vector<std::string>& folders) {
    grid_ = MakeGrid(Options({"cpu=8GiB"}));
    if (!grid_) return;
    for (const auto& f : folders) EXPECT_TRUE(grid_->AddModel({f, zoo / f, {}, {}}).ok()) << f;
    auto plan = grid_->LoadAll();
    EXPECT_TRUE(plan.ok()) << plan.status().ToString();
    for (const auto& f : folders) {
      auto st = grid_->Model(f);
      EXPECT_TRUE(st.ok() && st->state == ModelState::kReady) << f;
    }
  }
  bool ok() const { return grid_ != nullptr; }
  std::vector<InferTensor> Answer(const std::string& folder, const std::vector<InferTensor>& in) {
    auto r = InferWithin(*grid_, folder, in);
    EXPECT_TRUE(r.ok()) << "reference " << folder << ": " << r.status().ToString();
    return r.ok() ? *r : std::vector<InferTensor>{};
  }
  ModelStatus ModelOf(const std::string& folder) const { return *grid_->Model(folder); }

 private:
  std::unique_ptr<Grid> grid_;
};

// ---- status ----

ModelStatus StatusOf(const Grid& grid, const std::string& model) {
  auto st = grid.Model(model);
  EXPECT_TRUE(st.ok()) << model;
  return st.ok() ? *st : ModelStatus{};
}

std::map<ModelState, int> CountStates(const Grid& grid, const std::set<std::string>& models) {
  std::map<ModelState, int> out;
  for (const auto& st : grid.Models()) {
    if (models.count(st.name)) ++out[st.state];
  }
  return out;
}

ModelStatus WaitForState(const Grid& grid, const std::string& model, ModelState state,
                         std::chrono::milliseconds within) {
  const auto until = std::chrono::steady_clock::now() + within;
  ModelStatus st;
  do {
    st = StatusOf(grid, model);
    if (st.state == state) return st;
    std::this_thread::sleep_for(10ms);
  } while (std::chrono::steady_clock::now() < until);
  return st;
}

uint64_t Collisions(const ModelStatus& st, const std::string& key) {
  auto it = st.collisions.find(key);
  return it == st.collisions.end() ? 0 : it->second;
}

std::string CollisionsText(const ModelStatus& st) {
  std::string out;
  for (const auto& [k, v] : st.collisions) out += k + "=" + std::to_string(v) + " ";
  return out;
}

size_t CountEvents(const Grid& grid, const std::string& model, const std::string& direction) {
  size_t n = 0;
  for (const auto& e : grid.SwapEvents()) n += e.model == model && e.direction == direction;
  return n;
}

// =====================================================================
// 1. More models than fit: standby, turns through evictions, unplaced.
// =====================================================================

TEST(GridMemoryTest, MoreModelsThanFitTakeTurnsThroughOnDemandLoadsAndEvictions) {
  REQUIRE_ZOO();
  const auto rows = DigitsRows(zoo);
  Reference ref(zoo, {"digits"});
  ASSERT_TRUE(ref.ok());
  const std::vector<std::string> names = {"d0", "d1", "d2"};
  std::map<std::string, std::vector<InferTensor>> in, want;
  for (size_t i = 0; i < names.size(); ++i) {
    in[names[i]] = {DigitsBatch(rows, 64 * i, 64)};
    want[names[i]] = ref.Answer("digits", in[names[i]]);
  }

  // Each instance holds 64 MiB + its worker's 128 MiB: two fit in 450 MiB
  // (384), three do not (576). The free 66 MiB left by two cannot hold a
  // third worker's context.
  const uint64_t request = 64 * kMiB;
  auto grid = MakeGrid(Options({"cpu=450MiB"}));
  ASSERT_TRUE(grid);
  for (const auto& n : names) {
    ASSERT_TRUE(grid->AddModel({n, zoo / "digits", request, {}}).ok()) << n;
  }
  ASSERT_TRUE(grid->AddModel({"giant", zoo / "digits", uint64_t{1} << 30, {}}).ok());
  auto plan = grid->LoadAll();
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();

  const std::set<std::string> served(names.begin(), names.end());
  auto states = CountStates(*grid, served);
  EXPECT_EQ(states[ModelState::kReady], 2);
  EXPECT_EQ(states[ModelState::kStandby], 1) << "the third waits on standby, it is not unplaced";
  EXPECT_EQ(states[ModelState::kUnplaced], 0);
  for (const auto& st : grid->Models()) {
    if (st.state == ModelState::kStandby) {
      EXPECT_EQ(st.worker_pid, 0) << st.name;
      EXPECT_FALSE(st.reason.empty()) << st.name;
    }
  }
  const ModelStatus giant = StatusOf(*grid, "giant");
  EXPECT_EQ(giant.state, ModelState::kUnplaced) << "1 GiB never fits in 450 MiB: " << giant.reason;
  EXPECT_FALSE(giant.reason.empty());
  auto refused = InferWithin(*grid, "giant", {DigitsBatch(rows, 0, 1)}, 5s);
  EXPECT_EQ(refused.status().code(), StatusCode::kUnavailable) << refused.status().ToString();
  // Standby models count as ready; the unplaced giant holds readiness
  // back under strict readiness (the default, as Triton's).
  EXPECT_FALSE(grid->Ready()) << "strict readiness: an unplaced model is not serving";

  auto dev = grid->Devices().at(0);
  EXPECT_EQ(dev.capacity_bytes, 450 * kMiB);
  EXPECT_EQ(dev.workers, 2);
  EXPECT_EQ(dev.reserved_bytes, 2 * (request + kContext));

  // Round robin, several rounds: every call answers, the right answer; each
  // call to a standby model loads it and evicts exactly one other.
  int demand_loads = 0;
  for (int round = 0; round < 3; ++round) {
    for (const auto& n : names) {
      const bool was_standby = StatusOf(*grid, n).state == ModelState::kStandby;
      auto r = InferWithin(*grid, n, in[n]);
      ASSERT_TRUE(SameTensors(r, want[n])) << "round " << round << ", model " << n;
      demand_loads += was_standby;
      const ModelStatus st = StatusOf(*grid, n);
      EXPECT_EQ(st.state, ModelState::kReady) << n;
      EXPECT_GT(st.worker_pid, 0) << n;
      states = CountStates(*grid, served);
      EXPECT_EQ(states[ModelState::kReady], 2)
          << "round " << round << ", after " << n << (was_standby ? " (loaded on demand)" : "")
          << ": one eviction per on-demand load makes room for exactly one";
      EXPECT_EQ(states[ModelState::kStandby], 1) << "round " << round << ", after " << n;
      dev = grid->Devices().at(0);
      EXPECT_EQ(dev.workers, 2) << "round " << round << ", after " << n;
      EXPECT_LE(dev.reserved_bytes, dev.capacity_bytes);
    }
  }
  EXPECT_GE(demand_loads, 2) << "the standby model loaded, then one it evicted came back";
  uint64_t evictions = 0, reclaimed = 0;
  for (const auto& n : names) {
    const ModelStatus st = StatusOf(*grid, n);
    evictions += st.evictions;
    reclaimed += Collisions(st, "evict/reclaimed");
    EXPECT_EQ(st.swaps_out, 0u) << "no swap tier: evictions unload";
    EXPECT_EQ(st.reloads, 0u);
    EXPECT_EQ(st.evictions, CountEvents(*grid, n, "evict")) << n;
    EXPECT_EQ(grid->Counters(n)->success, 3u) << n;
    EXPECT_EQ(grid->Counters(n)->failure, 0u) << n;
  }
  EXPECT_EQ(evictions, static_cast<uint64_t>(demand_loads))
      << "each on-demand load evicted exactly one idle model";
  EXPECT_EQ(reclaimed, static_cast<uint64_t>(demand_loads));
  dev = grid->Devices().at(0);
  EXPECT_EQ(dev.reserved_bytes, 2 * (request + kContext));
  EXPECT_EQ(dev.borrowed_bytes, 0u);
  EXPECT_EQ(dev.free_bytes, dev.capacity_bytes - dev.reserved_bytes);
}

// =====================================================================
// 2. Concurrent first requests for a standby model: one load.
// =====================================================================

TEST(GridMemoryTest, ConcurrentFirstRequestsToAStandbyModelShareOneLoad) {
  REQUIRE_ZOO();
  const auto rows = DigitsRows(zoo);
  Reference ref(zoo, {"digits"});
  ASSERT_TRUE(ref.ok());
  constexpr int kThreads = 8;
  // 64 rows each (max_batch_size): no two requests share a batch, so each
  // answer is the reference's for the same batch.
  std::vector<std::vector<InferTensor>> in(kThreads), want(kThreads);
  for (int i = 0; i < kThreads; ++i) {
    in[i] = {DigitsBatch(rows, 24 * i, 64)};
    want[i] = ref.Answer("digits", in[i]);
  }

  GridOptions o = Options({"cpu=300MiB"});  // one 64 MiB digits + its worker (192 MiB)
  o.default_load = LoadPolicy::kOnDemand;
  auto grid = MakeGrid(o);
  ASSERT_TRUE(grid);
  ASSERT_TRUE(grid->AddModel({"a", zoo / "digits", 64 * kMiB, {}}).ok());
  ASSERT_TRUE(grid->AddModel({"b", zoo / "digits", 64 * kMiB, {}}).ok());
  ASSERT_TRUE(grid->LoadAll().ok());
  for (const auto& st : grid->Models()) {
    EXPECT_EQ(st.state, ModelState::kStandby) << st.name << ": " << st.reason;
    EXPECT_EQ(st.load, LoadPolicy::kOnDemand) << st.name;
    EXPECT_EQ(st.worker_pid, 0) << st.name;
  }
  EXPECT_EQ(grid->Devices().at(0).workers, 0);
  EXPECT_EQ(grid->Devices().at(0).reserved_bytes, 0u);

  auto burst = [&](const std::string& model) {
    std::vector<Result<std::vector<InferTensor>>> results(kThreads, Status::Internal("not run"));
    std::atomic<int> started{0};
    std::vector<std::thread> threads;
    for (int i = 0; i < kThreads; ++i) {
      threads.emplace_back([&, i] {
        ++started;
        while (started.load() < kThreads) std::this_thread::yield();
        results[i] = InferWithin(*grid, model, in[i]);
      });
    }
    for (auto& t : threads) t.join();
    for (int i = 0; i < kThreads; ++i) {
      EXPECT_TRUE(SameTensors(results[i], want[i])) << model << ", thread " << i;
    }
  };

  // a: first requests from 8 threads at once on an empty device.
  burst("a");
  ModelStatus a = StatusOf(*grid, "a");
  EXPECT_EQ(a.state, ModelState::kReady) << a.reason;
  EXPECT_GT(a.worker_pid, 0);
  EXPECT_EQ(a.evictions, 0u);
  EXPECT_EQ(a.reloads, 0u);
  EXPECT_TRUE(a.collisions.empty()) << CollisionsText(a);
  EXPECT_EQ(StatusOf(*grid, "b").state, ModelState::kStandby);
  EXPECT_EQ(grid->Devices().at(0).workers, 1) << "one load: one worker";
  EXPECT_EQ(grid->Devices().at(0).reserved_bytes, 64 * kMiB + kContext);
  EXPECT_EQ(grid->Counters("a")->success, static_cast<uint64_t>(kThreads));
  EXPECT_TRUE(grid->SwapEvents().empty());
  const int64_t a_pid = a.worker_pid;

  // b: the same, now a must go: exactly one eviction, one admission.
  burst("b");
  const ModelStatus b = StatusOf(*grid, "b");
  a = StatusOf(*grid, "a");
  EXPECT_EQ(b.state, ModelState::kReady) << b.reason;
  EXPECT_GT(b.worker_pid, 0);
  EXPECT_NE(b.worker_pid, a_pid);
  EXPECT_EQ(a.state, ModelState::kStandby) << a.reason;
  EXPECT_EQ(a.worker_pid, 0);
  EXPECT_EQ(a.evictions, 1u);
  EXPECT_EQ(b.evictions, 0u);
  EXPECT_EQ(Collisions(b, "evict/reclaimed"), 1u) << CollisionsText(b);
  EXPECT_EQ(CountEvents(*grid, "a", "evict"), 1u);
  EXPECT_EQ(grid->SwapEvents().size(), 1u);
  EXPECT_EQ(grid->Devices().at(0).workers, 1);
  EXPECT_NE(::kill(static_cast<pid_t>(a_pid), 0), 0) << "a's worker stopped with the eviction";
  EXPECT_EQ(grid->Counters("b")->success, static_cast<uint64_t>(kThreads));

  // b keeps its worker for later requests.
  EXPECT_TRUE(SameTensors(InferWithin(*grid, "b", in[0]), want[0]));
  EXPECT_EQ(StatusOf(*grid, "b").worker_pid, b.worker_pid);
}

// =====================================================================
// 3. Swap: out to the host tier, back in on the next request.
// 7. Faults while swapped.
// =====================================================================

// Two digits copies, resolver swap, 64 MiB each, on 350 MiB: one fits with
// both workers' contexts kept (128 + 128 + 64 = 320), two do not (384).
struct SwapSetup {
  std::filesystem::path zoo;
  std::vector<std::vector<float>> rows;
  std::unique_ptr<Reference> ref;
  std::vector<InferTensor> in_a, in_b, want_a, want_b;
  std::unique_ptr<TempDir> swap_dir;
  std::unique_ptr<Grid> grid;
  std::string first, second;  // placed at LoadAll, on standby

  static constexpr uint64_t kRequest = 64 * kMiB;

  void Build(const std::filesystem::path& z, const std::string& tag) {
    zoo = z;
    rows = DigitsRows(zoo);
    ref = std::make_unique<Reference>(zoo, std::vector<std::string>{"digits"});
    ASSERT_TRUE(ref->ok());
    in_a = {DigitsBatch(rows, 0, 64)};
    in_b = {DigitsBatch(rows, 100, 64)};
    want_a = ref->Answer("digits", in_a);
    want_b = ref->Answer("digits", in_b);
    swap_dir = std::make_unique<TempDir>(tag);
    ASSERT_FALSE(swap_dir->path.empty());
    GridOptions o = Options({"cpu=350MiB"});
    o.swap_dir = swap_dir->path;
    o.swap_space_bytes = 256 * kMiB;
    grid = MakeGrid(o);
    ASSERT_TRUE(grid);
    for (const std::string n : {"a", "b"}) {
      ASSERT_TRUE(grid->AddModel({n, zoo / "digits", kRequest, {}}).ok());
      ModelUpdate u;
      u.resolver = Resolver::kSwap;
      ASSERT_TRUE(grid->Reconfigure(n, u).ok());
    }
    ASSERT_TRUE(grid->LoadAll().ok());
    for (const auto& st : grid->Models()) {
      EXPECT_EQ(st.resolver, Resolver::kSwap) << st.name;
      if (st.state == ModelState::kReady) first = st.name;
      if (st.state == ModelState::kStandby) second = st.name;
    }
    ASSERT_FALSE(first.empty());
    ASSERT_FALSE(second.empty());
  }
  const std::vector<InferTensor>& In(const std::string& m) const { return m == "a" ? in_a : in_b; }
  const std::vector<InferTensor>& Want(const std::string& m) const {
    return m == "a" ? want_a : want_b;
  }
  // The swap file of `model`'s worker (<model>.<pid>.mgswap), "" when none.
  std::filesystem::path SwapFileOf(const std::string& model) const {
    for (const auto& f : swap_dir->Files()) {
      if (f.filename().string().rfind(model + ".", 0) == 0) return f;
    }
    return {};
  }
};

TEST(GridMemoryTest, AnEvictedSwapModelGoesToTheHostTierAndComesBackOnItsNextRequest) {
  REQUIRE_ZOO();
  SwapSetup s;
  ASSERT_NO_FATAL_FAILURE(s.Build(zoo, "swap"));
  Grid& grid = *s.grid;
  const std::string x = s.first, y = s.second;

  // x answers; y's first request makes room by swapping x out (not unloading).
  ASSERT_TRUE(SameTensors(InferWithin(grid, x, s.In(x)), s.Want(x)));
  const int64_t x_pid = StatusOf(grid, x).worker_pid;
  ASSERT_TRUE(SameTensors(InferWithin(grid, y, s.In(y)), s.Want(y)));
  ModelStatus xs = StatusOf(grid, x);
  ModelStatus ys = StatusOf(grid, y);
  EXPECT_EQ(ys.state, ModelState::kReady) << ys.reason;
  EXPECT_EQ(xs.state, ModelState::kSwapped) << xs.reason;
  EXPECT_FALSE(xs.reason.empty());
  EXPECT_EQ(xs.swapped_bytes, SwapSetup::kRequest);
  EXPECT_EQ(xs.swaps_out, 1u);
  EXPECT_EQ(xs.evictions, 0u) << "swapped, not unloaded";
  EXPECT_EQ(xs.worker_pid, x_pid) << "a swapped model keeps its worker";
  EXPECT_EQ(::kill(static_cast<pid_t>(x_pid), 0), 0);
  EXPECT_FALSE(s.SwapFileOf(x).empty()) << "x's weights are in a file under swap_dir";
  EXPECT_EQ(Collisions(ys, "evict/reclaimed"), 1u) << CollisionsText(ys);
  auto dev = grid.Devices().at(0);
  EXPECT_EQ(dev.swapped_bytes, SwapSetup::kRequest);
  EXPECT_EQ(dev.workers, 2);
  EXPECT_EQ(dev.reserved_bytes, 2 * kContext + SwapSetup::kRequest);
  EXPECT_TRUE(grid.Ready()) << "a swapped model counts as ready";

  // x's next request swaps it back in (and y, idle, out): the same answer.
  ASSERT_TRUE(SameTensors(InferWithin(grid, x, s.In(x)), s.Want(x)));
  xs = StatusOf(grid, x);
  ys = StatusOf(grid, y);
  EXPECT_EQ(xs.state, ModelState::kReady) << xs.reason;
  EXPECT_EQ(xs.swaps_in, 1u);
  EXPECT_EQ(xs.swapped_bytes, 0u);
  EXPECT_EQ(xs.reloads, 0u) << "the swap file was intact";
  EXPECT_EQ(xs.worker_pid, x_pid);
  EXPECT_EQ(Collisions(xs, "swap/reclaimed"), 1u) << CollisionsText(xs);
  EXPECT_EQ(ys.state, ModelState::kSwapped) << ys.reason;
  EXPECT_EQ(ys.swaps_out, 1u);
  EXPECT_EQ(ys.swapped_bytes, SwapSetup::kRequest);
  EXPECT_TRUE(s.SwapFileOf(x).empty()) << "the swap-in removed x's file";
  dev = grid.Devices().at(0);
  EXPECT_EQ(dev.swapped_bytes, SwapSetup::kRequest);

  // And y back, again identical.
  ASSERT_TRUE(SameTensors(InferWithin(grid, y, s.In(y)), s.Want(y)));
  ys = StatusOf(grid, y);
  EXPECT_EQ(ys.swaps_in, 1u);
  EXPECT_EQ(StatusOf(grid, x).swaps_out, 2u);

  // SwapEvents lists them in order, with bytes and durations.
  std::vector<std::pair<std::string, std::string>> seen;
  for (const auto& e : grid.SwapEvents()) {
    seen.emplace_back(e.model, e.direction);
    EXPECT_GT(e.bytes, 0u) << e.model << " " << e.direction;
    EXPECT_LE(e.bytes, SwapSetup::kRequest) << "the weights moved, not the request";
  }
  const std::vector<std::pair<std::string, std::string>> want = {
      {x, "out"}, {y, "out"}, {x, "in"}, {x, "out"}, {y, "in"}};
  EXPECT_EQ(seen, want);
  for (const auto& st : grid.Models()) {
    EXPECT_GT(st.swap_out_us, 0u) << st.name;
  }
}

TEST(GridMemoryTest, KillingTheWorkerOfASwappedModelSendsItToStandbyAndItLoadsAgain) {
  REQUIRE_ZOO();
  SwapSetup s;
  ASSERT_NO_FATAL_FAILURE(s.Build(zoo, "kill"));
  Grid& grid = *s.grid;
  const std::string x = s.first, y = s.second;
  ASSERT_TRUE(SameTensors(InferWithin(grid, x, s.In(x)), s.Want(x)));
  ASSERT_TRUE(SameTensors(InferWithin(grid, y, s.In(y)), s.Want(y)));  // x swapped out
  ModelStatus xs = StatusOf(grid, x);
  ASSERT_EQ(xs.state, ModelState::kSwapped) << xs.reason;
  const int64_t pid = xs.worker_pid;
  ASSERT_GT(pid, 0);

  // Killed while swapped, no request in flight: its host copy died with the
  // worker, so it goes to standby (not restarting forever, not failed).
  ASSERT_EQ(::kill(static_cast<pid_t>(pid), SIGKILL), 0);
  xs = WaitForState(grid, x, ModelState::kStandby, 30s);
  ASSERT_EQ(xs.state, ModelState::kStandby) << ModelStateName(xs.state) << ": " << xs.reason;
  EXPECT_FALSE(xs.reason.empty());
  EXPECT_EQ(xs.swapped_bytes, 0u) << "the host copy died with the worker";
  EXPECT_EQ(xs.worker_pid, 0) << "no worker while on standby (the status still names pid "
                              << xs.worker_pid << ", killed)";
  EXPECT_EQ(xs.device, "") << "not placed while on standby";
  auto dev = grid.Devices().at(0);
  EXPECT_EQ(dev.swapped_bytes, 0u);
  EXPECT_EQ(dev.workers, 1);
  EXPECT_EQ(dev.reserved_bytes, kContext + SwapSetup::kRequest) << "only y's worker and request";
  EXPECT_TRUE(grid.Ready());

  // Its next request loads it again (y, idle, swaps out for it): the right answer.
  ASSERT_TRUE(SameTensors(InferWithin(grid, x, s.In(x)), s.Want(x)));
  xs = StatusOf(grid, x);
  EXPECT_EQ(xs.state, ModelState::kReady) << xs.reason;
  EXPECT_GT(xs.worker_pid, 0);
  EXPECT_NE(xs.worker_pid, pid);
  EXPECT_EQ(StatusOf(grid, y).state, ModelState::kSwapped);
  ASSERT_TRUE(SameTensors(InferWithin(grid, y, s.In(y)), s.Want(y)));  // x swapped out again
  ASSERT_EQ(StatusOf(grid, x).state, ModelState::kSwapped);

  // Killed while swapped with a request right behind the kill (it may catch
  // the worker dying under its swap-in): that request is answered at once,
  // right or kUnavailable, and the model comes back within a few retries.
  const int64_t pid2 = StatusOf(grid, x).worker_pid;
  ASSERT_GT(pid2, 0);
  ASSERT_EQ(::kill(static_cast<pid_t>(pid2), SIGKILL), 0);
  auto during = InferWithin(grid, x, s.In(x), 10s);
  if (during.ok()) {
    EXPECT_TRUE(SameTensors(during, s.Want(x)));
  } else {
    EXPECT_EQ(during.status().code(), StatusCode::kUnavailable) << during.status().ToString();
  }
  Result<std::vector<InferTensor>> back = during;
  for (int i = 0; i < 60 && !back.ok(); ++i) {
    std::this_thread::sleep_for(250ms);
    back = InferWithin(grid, x, s.In(x), 10s);
  }
  ASSERT_TRUE(SameTensors(back, s.Want(x)))
      << "after kill -9 under a swap-in the model never came back: state "
      << ModelStateName(StatusOf(grid, x).state) << ": " << StatusOf(grid, x).reason;
  xs = StatusOf(grid, x);
  EXPECT_EQ(xs.state, ModelState::kReady) << xs.reason;
  EXPECT_NE(xs.worker_pid, pid2);
  // And both keep answering after.
  ASSERT_TRUE(SameTensors(InferWithin(grid, y, s.In(y)), s.Want(y)));
  ASSERT_TRUE(SameTensors(InferWithin(grid, x, s.In(x)), s.Want(x)));
  dev = grid.Devices().at(0);
  EXPECT_EQ(dev.workers, 2);
  EXPECT_EQ(dev.reserved_bytes, 2 * kContext + SwapSetup::kRequest);
  EXPECT_EQ(dev.swapped_bytes, SwapSetup::kRequest);
}

TEST(GridMemoryTest, ALostSwapFileIsReloadedFromTheRepositoryAndAnswersTheSame) {
  REQUIRE_ZOO();
  SwapSetup s;
  ASSERT_NO_FATAL_FAILURE(s.Build(zoo, "lost"));
  Grid& grid = *s.grid;
  const std::string x = s.first, y = s.second;
  ASSERT_TRUE(SameTensors(InferWithin(grid, x, s.In(x)), s.Want(x)));
  ASSERT_TRUE(SameTensors(InferWithin(grid, y, s.In(y)), s.Want(y)));  // x swapped out
  ASSERT_EQ(StatusOf(grid, x).state, ModelState::kSwapped);
  const std::filesystem::path file = s.SwapFileOf(x);
  ASSERT_FALSE(file.empty()) << "no swap file of " << x << " under " << s.swap_dir->path;
  ASSERT_TRUE(std::filesystem::remove(file));

  ASSERT_TRUE(SameTensors(InferWithin(grid, x, s.In(x)), s.Want(x)));
  const ModelStatus xs = StatusOf(grid, x);
  EXPECT_EQ(xs.state, ModelState::kReady) << xs.reason;
  EXPECT_EQ(xs.reloads, 1u);
  EXPECT_EQ(xs.swaps_in, 1u);
  EXPECT_EQ(xs.swapped_bytes, 0u);
  EXPECT_EQ(CountEvents(grid, x, "reload"), 1u);
  EXPECT_EQ(CountEvents(grid, x, "in"), 0u);
  // Swapping out and in again works from the reloaded weights.
  ASSERT_TRUE(SameTensors(InferWithin(grid, y, s.In(y)), s.Want(y)));
  ASSERT_TRUE(SameTensors(InferWithin(grid, x, s.In(x)), s.Want(x)));
  EXPECT_EQ(StatusOf(grid, x).reloads, 1u);
  EXPECT_EQ(StatusOf(grid, x).swaps_in, 2u);
}

// A swap-in that cannot bring the weights back (swap file lost and the
// repository's model.pt gone too) fails the model; what it held goes back
// to the device, and Load brings it back once its files are there again.
TEST(GridMemoryTest, ASwapInThatCannotReloadFailsTheModelFreesItsBytesAndLoadBringsItBack) {
  REQUIRE_ZOO();
  const auto rows = DigitsRows(zoo);
  Reference ref(zoo, {"digits"});
  ASSERT_TRUE(ref.ok());
  const std::vector<InferTensor> in = {DigitsBatch(rows, 11, 64)};
  const auto want = ref.Answer("digits", in);
  TempDir models("models"), swap("failed");
  ASSERT_FALSE(models.path.empty());
  ASSERT_FALSE(swap.path.empty());
  for (const std::string n : {"a", "b"}) {
    std::filesystem::copy(zoo / "digits", models.path / n, std::filesystem::copy_options::recursive);
  }
  GridOptions o = Options({"cpu=350MiB"});
  o.swap_dir = swap.path;
  o.swap_space_bytes = 256 * kMiB;
  auto grid = MakeGrid(o);
  ASSERT_TRUE(grid);
  for (const std::string n : {"a", "b"}) {
    ASSERT_TRUE(grid->AddModel({n, models.path / n, SwapSetup::kRequest, {}}).ok());
    ModelUpdate u;
    u.resolver = Resolver::kSwap;
    ASSERT_TRUE(grid->Reconfigure(n, u).ok());
  }
  ASSERT_TRUE(grid->LoadAll().ok());
  std::string x, y;
  for (const auto& st : grid->Models()) {
    if (st.state == ModelState::kReady) x = st.name;
    if (st.state == ModelState::kStandby) y = st.name;
  }
  ASSERT_FALSE(x.empty());
  ASSERT_FALSE(y.empty());
  ASSERT_TRUE(SameTensors(InferWithin(*grid, x, in), want));
  ASSERT_TRUE(SameTensors(InferWithin(*grid, y, in), want));
  ASSERT_EQ(StatusOf(*grid, x).state, ModelState::kSwapped);
  const int64_t x_pid = StatusOf(*grid, x).worker_pid;

  // Both copies of x's weights gone.
  for (const auto& f : swap.Files()) {
    if (f.filename().string().rfind(x + ".", 0) == 0) std::filesystem::remove(f);
  }
  const auto model_pt = models.path / x / "1" / "model.pt";
  std::filesystem::rename(model_pt, models.path / x / "model.pt.away");
  auto r = InferWithin(*grid, x, in, 10s);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("swap-in"), std::string::npos) << r.status().ToString();
  ModelStatus xs = StatusOf(*grid, x);
  EXPECT_EQ(xs.state, ModelState::kFailed) << ModelStateName(xs.state) << ": " << xs.reason;
  EXPECT_NE(xs.reason.find("swap-in"), std::string::npos) << xs.reason;
  EXPECT_EQ(StatusOf(*grid, y).state, ModelState::kSwapped) << "y made room for x's swap-in";

  // A failed model holds nothing: not its request, not its worker.
  auto dev = grid->Devices().at(0);
  EXPECT_EQ(dev.reserved_bytes, kContext) << "only y's worker context (y is swapped out)";
  EXPECT_EQ(dev.workers, 1) << "x's worker stopped";
  EXPECT_NE(::kill(static_cast<pid_t>(x_pid), 0), 0) << "x's worker " << x_pid << " still runs";
  // y still answers (swapping in on the freed bytes).
  EXPECT_TRUE(SameTensors(InferWithin(*grid, y, in), want));

  // Files back and room made (y unloaded): Load places x afresh and it answers.
  std::filesystem::rename(models.path / x / "model.pt.away", model_pt);
  ASSERT_TRUE(grid->Unload(y).ok());
  Status load = grid->Load(x);
  EXPECT_TRUE(load.ok()) << load.ToString();
  EXPECT_TRUE(SameTensors(InferWithin(*grid, x, in), want));
  xs = StatusOf(*grid, x);
  EXPECT_EQ(xs.state, ModelState::kReady) << xs.reason;
  EXPECT_NE(xs.worker_pid, x_pid);
  dev = grid->Devices().at(0);
  EXPECT_EQ(dev.reserved_bytes, kContext + SwapSetup::kRequest);
  EXPECT_EQ(dev.swapped_bytes, 0u);
}

// Load of a model that does not fit now but could (an unloaded one here)
// puts it on standby, like LoadAll does: its next request loads it,
// evicting an idle model.
TEST(GridMemoryTest, ALoadThatDoesNotFitNowPutsTheModelOnStandbyAndItsRequestLoadsIt) {
  REQUIRE_ZOO();
  const auto rows = DigitsRows(zoo);
  Reference ref(zoo, {"digits"});
  ASSERT_TRUE(ref.ok());
  const std::vector<InferTensor> in = {DigitsBatch(rows, 5, 64)};
  const auto want = ref.Answer("digits", in);
  auto grid = MakeGrid(Options({"cpu=300MiB"}));  // one 64 MiB digits and its worker
  ASSERT_TRUE(grid);
  ASSERT_TRUE(grid->AddModel({"a", zoo / "digits", 64 * kMiB, {}}).ok());
  ASSERT_TRUE(grid->AddModel({"b", zoo / "digits", 64 * kMiB, {}}).ok());
  ASSERT_TRUE(grid->LoadAll().ok());
  std::string x, y;  // ready, standby
  for (const auto& st : grid->Models()) {
    if (st.state == ModelState::kReady) x = st.name;
    if (st.state == ModelState::kStandby) y = st.name;
  }
  ASSERT_FALSE(x.empty());
  ASSERT_FALSE(y.empty());
  ASSERT_TRUE(grid->Unload(y).ok());
  ASSERT_EQ(StatusOf(*grid, y).state, ModelState::kUnloaded);
  EXPECT_EQ(InferWithin(*grid, y, in, 5s).status().code(), StatusCode::kUnavailable);

  Status load = grid->Load(y);  // x holds the device: y does not fit now
  const ModelStatus ys = StatusOf(*grid, y);
  EXPECT_EQ(ys.state, ModelState::kStandby)
      << "Load returned " << load.ToString() << "; state " << ModelStateName(ys.state) << ": "
      << ys.reason;
  EXPECT_TRUE(SameTensors(InferWithin(*grid, y, in), want));
  EXPECT_EQ(StatusOf(*grid, y).state, ModelState::kReady);
  EXPECT_EQ(StatusOf(*grid, x).state, ModelState::kStandby);
  EXPECT_EQ(StatusOf(*grid, x).evictions, 1u);
}

// =====================================================================
// 4. Borrowing past the request, up to the limit.
// =====================================================================

TEST(GridMemoryTest, ABatchPastTheRequestBorrowsUpToTheLimitAndGivesItBack) {
  REQUIRE_ZOO();
  Reference ref(zoo, {"resnet18"});
  ASSERT_TRUE(ref.ok());
  const uint64_t loaded = ref.ModelOf("resnet18").current_bytes;
  ASSERT_GT(loaded, 40 * kMiB);
  const std::vector<InferTensor> big = {Images(32, 1)}, one = {Images(1, 2)};
  const auto want_big = ref.Answer("resnet18", big);
  const auto want_one = ref.Answer("resnet18", one);

  // The weights plus 8 MiB: room for one image's activations, not 32's.
  const uint64_t request = loaded + 8 * kMiB;
  const uint64_t limit = request + 256 * kMiB;
  auto grid = MakeGrid(Options({"cpu=1GiB"}));
  ASSERT_TRUE(grid);
  ASSERT_TRUE(grid->AddModel({"loose", zoo / "resnet18", request, limit}).ok());
  ASSERT_TRUE(grid->AddModel({"tight", zoo / "resnet18", request, request}).ok());
  ASSERT_TRUE(grid->LoadAll().ok());
  ASSERT_EQ(StatusOf(*grid, "loose").state, ModelState::kReady);
  ASSERT_EQ(StatusOf(*grid, "tight").state, ModelState::kReady);
  EXPECT_EQ(StatusOf(*grid, "loose").limit_bytes, limit);
  const auto before = grid->Devices().at(0);
  EXPECT_EQ(before.borrowed_bytes, 0u);

  // Watch the loan while the batch runs.
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> max_model{0}, max_device{0};
  std::thread watcher([&] {
    for (int i = 0; i < 60'000 && !stop.load(); ++i) {
      const uint64_t m = StatusOf(*grid, "loose").borrowed_bytes;
      const uint64_t d = grid->Devices().at(0).borrowed_bytes;
      if (m > max_model.load()) max_model = m;
      if (d > max_device.load()) max_device = d;
      std::this_thread::sleep_for(1ms);
    }
  });
  auto r = InferWithin(*grid, "loose", big);
  stop = true;
  watcher.join();
  EXPECT_TRUE(SameTensors(r, want_big)) << "a max batch past the request, within the limit";
  EXPECT_GT(max_model.load(), 0u) << "the batch ran on bytes borrowed past its request";
  EXPECT_LE(max_model.load(), limit - request);
  EXPECT_GT(max_device.load(), 0u) << "Devices() showed the loan too";
  EXPECT_LE(max_device.load(), limit - request);
  EXPECT_LE(max_device.load(), before.free_bytes);

  const ModelStatus loose = StatusOf(*grid, "loose");
  EXPECT_EQ(loose.borrowed_bytes, 0u) << "the loan came back";
  const auto after = grid->Devices().at(0);
  EXPECT_EQ(after.borrowed_bytes, 0u);
  EXPECT_EQ(after.free_bytes, before.free_bytes);
  EXPECT_EQ(after.reserved_bytes, before.reserved_bytes);
  EXPECT_TRUE(SameTensors(InferWithin(*grid, "loose", one), want_one));

  // limit == request: nothing to borrow; the same batch is refused by the limit.
  const int64_t tight_pid = StatusOf(*grid, "tight").worker_pid;
  auto refused = InferWithin(*grid, "tight", big);
  ASSERT_EQ(refused.status().code(), StatusCode::kResourceExhausted)
      << refused.status().ToString();
  const MemoryLimitDetail* m = refused.status().memory_limit();
  EXPECT_TRUE(m != nullptr ||
              refused.status().message().find(std::to_string(request)) != std::string::npos)
      << refused.status().ToString();
  if (m != nullptr) {
    EXPECT_EQ(m->limit_bytes, request) << refused.status().ToString();
    EXPECT_GT(m->requested_bytes, 0u);
  }
  EXPECT_NE(refused.status().message().find("tight"), std::string::npos)
      << refused.status().message();
  EXPECT_TRUE(SameTensors(InferWithin(*grid, "tight", one), want_one))
      << "one image fits the request";
  EXPECT_EQ(StatusOf(*grid, "tight").worker_pid, tight_pid) << "the refusal killed nothing";
  EXPECT_EQ(StatusOf(*grid, "tight").borrowed_bytes, 0u);
  EXPECT_EQ(grid->Devices().at(0).free_bytes, before.free_bytes);
}

// A worker killed while its batch holds a grant: the batch fails (never
// hangs), the grant goes back to the ledger, the model restarts and serves
// the same batch again, borrowing again.
TEST(GridMemoryTest, KillingAWorkerThatHoldsAGrantGivesTheGrantBackAndTheModelComesBack) {
  REQUIRE_ZOO();
  Reference ref(zoo, {"resnet18"});
  ASSERT_TRUE(ref.ok());
  const uint64_t loaded = ref.ModelOf("resnet18").current_bytes;
  const std::vector<InferTensor> big = {Images(32, 7)};
  const auto want_big = ref.Answer("resnet18", big);
  const uint64_t request = loaded + 8 * kMiB;
  const uint64_t limit = request + 256 * kMiB;
  auto grid = MakeGrid(Options({"cpu=1GiB"}));
  ASSERT_TRUE(grid);
  ASSERT_TRUE(grid->AddModel({"loose", zoo / "resnet18", request, limit}).ok());
  ASSERT_TRUE(grid->LoadAll().ok());
  const auto before = grid->Devices().at(0);
  ASSERT_EQ(before.borrowed_bytes, 0u);

  // Kill the worker while a batch is borrowing; try a few times (the batch
  // may end before the kill lands).
  bool killed_while_borrowing = false;
  for (int attempt = 0; attempt < 5 && !killed_while_borrowing; ++attempt) {
    ModelStatus st = WaitForState(*grid, "loose", ModelState::kReady, 30s);
    ASSERT_EQ(st.state, ModelState::kReady) << st.reason;
    const int64_t pid = st.worker_pid;
    auto batch = std::async(std::launch::async, [&] { return InferWithin(*grid, "loose", big); });
    for (int i = 0; i < 5'000; ++i) {  // at most 5 s
      if (StatusOf(*grid, "loose").borrowed_bytes > 0) {
        killed_while_borrowing = ::kill(static_cast<pid_t>(pid), SIGKILL) == 0;
        break;
      }
      std::this_thread::sleep_for(1ms);
    }
    auto r = batch.get();  // InferWithin is bounded: never hangs
    if (!killed_while_borrowing) {
      EXPECT_TRUE(SameTensors(r, want_big));
      continue;
    }
    if (r.ok()) {  // the answer was on its way when the kill landed
      EXPECT_TRUE(SameTensors(r, want_big));
    } else {
      EXPECT_EQ(r.status().code(), StatusCode::kUnavailable) << r.status().ToString();
    }
  }
  ASSERT_TRUE(killed_while_borrowing) << "no batch was borrowing when it was looked at";
  EXPECT_EQ(StatusOf(*grid, "loose").borrowed_bytes, 0u) << "the grant came back";
  EXPECT_EQ(grid->Devices().at(0).borrowed_bytes, 0u);
  // Back from its restart (the grid may not have seen the death yet when
  // the batch's answer came: wait for the restart, not just for ready).
  ModelStatus st = StatusOf(*grid, "loose");
  for (int i = 0; i < 3'000 && !(st.restarts >= 1 && st.state == ModelState::kReady); ++i) {
    std::this_thread::sleep_for(10ms);  // at most 30 s
    st = StatusOf(*grid, "loose");
  }
  ASSERT_EQ(st.state, ModelState::kReady) << st.reason;
  ASSERT_GE(st.restarts, 1);
  const auto after = grid->Devices().at(0);
  EXPECT_EQ(after.free_bytes, before.free_bytes) << "every byte back in the ledger";
  EXPECT_EQ(after.reserved_bytes, before.reserved_bytes);
  EXPECT_TRUE(SameTensors(InferWithin(*grid, "loose", big), want_big));
  EXPECT_EQ(grid->Devices().at(0).borrowed_bytes, 0u);
}

// =====================================================================
// 5. The wait resolver: bounded by the request's timeout.
// =====================================================================

TEST(GridMemoryTest, AGrantThatCannotBeHadTimesOutWithACollisionWithinItsDeadline) {
  REQUIRE_ZOO();
  Reference ref(zoo, {"resnet18"});
  ASSERT_TRUE(ref.ok());
  const uint64_t loaded = ref.ModelOf("resnet18").current_bytes;
  const std::vector<InferTensor> big = {Images(32, 3)}, one = {Images(1, 4)};
  const auto want_big = ref.Answer("resnet18", big);
  const auto want_one = ref.Answer("resnet18", one);

  const uint64_t capacity = 1024 * kMiB;
  const uint64_t request = loaded + 8 * kMiB;
  const uint64_t limit = request + 256 * kMiB;
  // A filler holding all but 1 MiB of the device.
  const uint64_t leave = 1 * kMiB;
  const uint64_t filler = capacity - 2 * kContext - request - leave;
  auto grid = MakeGrid(Options({"cpu=1GiB"}));
  ASSERT_TRUE(grid);
  ASSERT_TRUE(grid->AddModel({"res", zoo / "resnet18", request, limit}).ok());
  ASSERT_TRUE(grid->AddModel({"filler", zoo / "digits", filler, {}}).ok());
  ASSERT_TRUE(grid->LoadAll().ok());
  ASSERT_EQ(StatusOf(*grid, "res").state, ModelState::kReady) << StatusOf(*grid, "res").reason;
  ASSERT_EQ(StatusOf(*grid, "filler").state, ModelState::kReady)
      << StatusOf(*grid, "filler").reason;
  ASSERT_EQ(grid->Devices().at(0).free_bytes, leave);

  // What a 32-image batch asks the ledger for (grid.cc BurstBytes, from the
  // estimate at max batch).
  const ModelStatus res = StatusOf(*grid, "res");
  ASSERT_TRUE(res.estimate.has_value());
  const MemoryEstimate& e = *res.estimate;
  const uint64_t batch = static_cast<uint64_t>(std::max<int64_t>(1, e.batch));
  const uint64_t per_row = (e.instance_peak() - e.weights + batch - 1) / batch;
  const uint64_t need = e.weights + per_row * 32;
  ASSERT_GT(need, request + leave) << "the batch must need more than the device has free";
  const uint64_t asked = need - request;

  auto expect_timeout = [&](const std::string& resolver, std::chrono::milliseconds timeout) {
    const auto start = std::chrono::steady_clock::now();
    auto r = InferWithin(*grid, "res", big, timeout);
    const auto took = std::chrono::steady_clock::now() - start;
    ASSERT_EQ(r.status().code(), StatusCode::kResourceExhausted) << r.status().ToString();
    const CollisionDetail* c = r.status().collision();
    ASSERT_NE(c, nullptr) << r.status().ToString();
    EXPECT_EQ(c->model, "res");
    EXPECT_EQ(c->device, "cpu");
    EXPECT_EQ(c->resolver, resolver);
    EXPECT_EQ(c->asked_bytes, asked);
    EXPECT_EQ(c->free_bytes, leave);
    bool names_filler = false;
    for (const auto& h : c->holders) names_filler |= h.instance == "filler#0";
    EXPECT_TRUE(names_filler) << r.status().ToString();
    EXPECT_NE(r.status().message().find("res"), std::string::npos);
    EXPECT_GE(took, timeout - 50ms) << "it waited for bytes until its deadline";
    EXPECT_LT(took, timeout + 5s) << "and not much past it";
  };

  // Resolver wait: nothing is taken from the idle filler; the request waits
  // until its deadline.
  ASSERT_NO_FATAL_FAILURE(expect_timeout("wait", 1500ms));
  ModelStatus st = StatusOf(*grid, "res");
  EXPECT_EQ(Collisions(st, "wait/timed_out"), 1u) << CollisionsText(st);
  EXPECT_EQ(st.state, ModelState::kReady);
  EXPECT_EQ(st.borrowed_bytes, 0u);
  EXPECT_EQ(grid->Devices().at(0).free_bytes, leave) << "nothing leaked";
  EXPECT_TRUE(SameTensors(InferWithin(*grid, "res", one), want_one)) << "no grant needed";

  // Resolver priority, higher priority, but the filler pinned: nothing can
  // come back either.
  ModelUpdate u;
  u.resolver = Resolver::kPriority;
  u.priority = 10;
  ASSERT_TRUE(grid->Reconfigure("res", u).ok());
  ModelUpdate pin;
  pin.pinned = true;
  ASSERT_TRUE(grid->Reconfigure("filler", pin).ok());
  ASSERT_NO_FATAL_FAILURE(expect_timeout("priority", 1000ms));
  st = StatusOf(*grid, "res");
  EXPECT_EQ(Collisions(st, "priority/timed_out"), 1u) << CollisionsText(st);
  EXPECT_EQ(StatusOf(*grid, "filler").state, ModelState::kReady);
  EXPECT_EQ(StatusOf(*grid, "filler").evictions, 0u);

  // Unpinned, the lower-priority idle filler is evicted and the batch runs.
  pin.pinned = false;
  ASSERT_TRUE(grid->Reconfigure("filler", pin).ok());
  EXPECT_TRUE(SameTensors(InferWithin(*grid, "res", big, 30s), want_big));
  st = StatusOf(*grid, "res");
  EXPECT_EQ(Collisions(st, "priority/reclaimed"), 1u) << CollisionsText(st);
  const ModelStatus f = StatusOf(*grid, "filler");
  EXPECT_EQ(f.state, ModelState::kStandby) << f.reason;
  EXPECT_EQ(f.evictions, 1u);
  EXPECT_EQ(grid->Devices().at(0).borrowed_bytes, 0u);
}

// Resolver priority against a lower-priority batch in flight: its cap is
// lowered to its request while it runs (the worker's set_limit), so it fails
// with a 507 naming the preempter, its grant comes back and the
// higher-priority batch runs on it. Two resnet18 copies on a device with
// room for one burst past the requests.
TEST(GridMemoryTest, APriorityBatchPreemptsALowerPriorityBatchInFlight) {
  REQUIRE_ZOO();
  Reference ref(zoo, {"resnet18"});
  ASSERT_TRUE(ref.ok());
  const uint64_t loaded = ref.ModelOf("resnet18").current_bytes;
  const std::vector<InferTensor> big = {Images(32, 5)}, mid = {Images(16, 6)};
  const auto want_big = ref.Answer("resnet18", big);
  const auto want_mid = ref.Answer("resnet18", mid);

  const uint64_t request = loaded + 8 * kMiB;
  const uint64_t limit = request + 512 * kMiB;
  // Probe the grants each batch asks for on a roomy device.
  uint64_t asked_big = 0, asked_mid = 0;
  {
    auto probe = MakeGrid(Options({"cpu=4GiB"}));
    ASSERT_TRUE(probe);
    ASSERT_TRUE(probe->AddModel({"lo", zoo / "resnet18", request, limit}).ok());
    ASSERT_TRUE(probe->LoadAll().ok());
    const ModelStatus lo_status = StatusOf(*probe, "lo");
    ASSERT_TRUE(lo_status.estimate.has_value());
    const MemoryEstimate& e = *lo_status.estimate;
    const uint64_t batch = static_cast<uint64_t>(std::max<int64_t>(1, e.batch));
    const uint64_t per_row = (e.instance_peak() - e.weights + batch - 1) / batch;
    auto chunks = [](uint64_t b) { return (b + 32 * kMiB - 1) / (32 * kMiB) * (32 * kMiB); };
    asked_big = chunks(e.weights + per_row * 32 - request);
    asked_mid = chunks(e.weights + per_row * 16 - request);
  }
  ASSERT_GT(asked_mid, 0u);
  ASSERT_LE(asked_mid, asked_big);
  // Room for the big burst, or the mid one, not both.
  const uint64_t capacity = 2 * kContext + 2 * request + asked_big;
  auto grid = MakeGrid(Options({"cpu=" + std::to_string(capacity)}));
  ASSERT_TRUE(grid);
  ASSERT_TRUE(grid->AddModel({"lo", zoo / "resnet18", request, limit}).ok());
  ASSERT_TRUE(grid->AddModel({"hi", zoo / "resnet18", request, limit}).ok());
  ASSERT_TRUE(grid->LoadAll().ok());
  ModelUpdate hi;
  hi.resolver = Resolver::kPriority;
  hi.priority = 5;
  ASSERT_TRUE(grid->Reconfigure("hi", hi).ok());
  ModelUpdate lo;
  lo.priority = 0;
  ASSERT_TRUE(grid->Reconfigure("lo", lo).ok());
  ASSERT_EQ(grid->Devices().at(0).free_bytes, asked_big);

  // A preemption needs the high batch to arrive while the low one runs:
  // try a few times; every answer must be right or a 507 naming `hi`.
  int preempted = 0;
  for (int attempt = 0; attempt < 8 && preempted == 0; ++attempt) {
    auto low = std::async(std::launch::async, [&] { return InferWithin(*grid, "lo", big, 30s); });
    bool borrowing = false;
    for (int i = 0; i < 5'000 && !borrowing; ++i) {  // at most 5 s
      borrowing = StatusOf(*grid, "lo").borrowed_bytes > 0;
      if (!borrowing) std::this_thread::sleep_for(1ms);
    }
    auto high = InferWithin(*grid, "hi", mid, 30s);
    EXPECT_TRUE(SameTensors(high, want_mid)) << "attempt " << attempt;
    auto l = low.get();
    if (l.ok()) {
      EXPECT_TRUE(SameTensors(l, want_big)) << "attempt " << attempt << ": it ended first";
      continue;
    }
    ASSERT_EQ(l.status().code(), StatusCode::kResourceExhausted) << l.status().ToString();
    const CollisionDetail* c = l.status().collision();
    ASSERT_NE(c, nullptr) << l.status().ToString();
    EXPECT_EQ(c->preempted_by, "hi");
    EXPECT_EQ(c->model, "lo");
    EXPECT_NE(l.status().message().find("preempted by model 'hi' (priority 5)"),
              std::string::npos)
        << l.status().message();
    ++preempted;
  }
  EXPECT_EQ(preempted, 1) << "no low batch was preempted in 8 attempts";
  EXPECT_GE(Collisions(StatusOf(*grid, "hi"), "priority/preempted"), 1u)
      << CollisionsText(StatusOf(*grid, "hi"));
  // Nothing leaked, and the preempted model serves its next batch in full.
  EXPECT_EQ(grid->Devices().at(0).borrowed_bytes, 0u);
  EXPECT_EQ(grid->Devices().at(0).free_bytes, asked_big);
  EXPECT_TRUE(SameTensors(InferWithin(*grid, "lo", big, 30s), want_big));
  EXPECT_EQ(StatusOf(*grid, "lo").state, ModelState::kReady);
}

// =====================================================================
// 6. Reconfiguration while serving.
// =====================================================================

TEST(GridMemoryTest, ReconfigureChangesSettingsAtOnceLogsThemAndRefusesWhatCannotBe) {
  REQUIRE_ZOO();
  const auto rows = DigitsRows(zoo);
  Reference ref(zoo, {"digits"});
  ASSERT_TRUE(ref.ok());
  const std::vector<InferTensor> in = {DigitsBatch(rows, 7, 64)};
  const auto want = ref.Answer("digits", in);

  const uint64_t request = 64 * kMiB;
  auto grid = MakeGrid(Options({"cpu=1GiB"}));
  ASSERT_TRUE(grid);
  ASSERT_TRUE(grid->AddModel({"a", zoo / "digits", request, request}).ok());
  ASSERT_TRUE(grid->AddModel({"b", zoo / "digits", request, {}}).ok());
  ASSERT_TRUE(grid->LoadAll().ok());
  ASSERT_EQ(StatusOf(*grid, "a").state, ModelState::kReady);
  ASSERT_TRUE(grid->ChangeLog().empty());

  // priority, resolver, pinned: in Models() and in the log at once.
  ModelUpdate u;
  u.priority = 5;
  u.resolver = Resolver::kSwap;
  u.pinned = true;
  ASSERT_TRUE(grid->Reconfigure("a", u).ok());
  ModelStatus a = StatusOf(*grid, "a");
  EXPECT_EQ(a.priority, 5);
  EXPECT_EQ(a.resolver, Resolver::kSwap);
  EXPECT_TRUE(a.pinned);
  EXPECT_EQ(a.state, ModelState::kReady);
  auto log = grid->ChangeLog();
  ASSERT_EQ(log.size(), 1u);
  EXPECT_NE(log[0].find("model a:"), std::string::npos) << log[0];
  EXPECT_NE(log[0].find("priority 0 -> 5"), std::string::npos) << log[0];
  EXPECT_NE(log[0].find("resolver wait -> swap"), std::string::npos) << log[0];
  EXPECT_NE(log[0].find("pinned false -> true"), std::string::npos) << log[0];
  // The same settings again change nothing and log nothing.
  ASSERT_TRUE(grid->Reconfigure("a", u).ok());
  EXPECT_EQ(grid->ChangeLog().size(), 1u);

  const auto dev_before = grid->Devices().at(0);

  // Refusals change nothing.
  ModelUpdate low;
  low.limit_bytes = request / 2;
  EXPECT_EQ(grid->Reconfigure("a", low).code(), StatusCode::kInvalidArgument);
  ModelUpdate zero;
  zero.request_bytes = 0;
  EXPECT_EQ(grid->Reconfigure("a", zero).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(grid->Reconfigure("nope", u).code(), StatusCode::kNotFound);
  ModelUpdate huge;
  huge.request_bytes = request + dev_before.free_bytes + 1;
  Status too_much = grid->Reconfigure("a", huge);
  ASSERT_EQ(too_much.code(), StatusCode::kResourceExhausted) << too_much.ToString();
  ASSERT_NE(too_much.collision(), nullptr) << too_much.ToString();
  EXPECT_EQ(too_much.collision()->asked_bytes, dev_before.free_bytes + 1);
  EXPECT_NE(too_much.message().find("a"), std::string::npos);
  a = StatusOf(*grid, "a");
  EXPECT_EQ(a.request_bytes, request);
  EXPECT_EQ(a.limit_bytes, request);
  EXPECT_EQ(a.state, ModelState::kReady);
  auto dev = grid->Devices().at(0);
  EXPECT_EQ(dev.reserved_bytes, dev_before.reserved_bytes);
  EXPECT_EQ(dev.free_bytes, dev_before.free_bytes);
  EXPECT_EQ(grid->ChangeLog().size(), 1u) << "refusals are not logged";

  // A raise the device can hold: the ledger holds it at once.
  ModelUpdate raise;
  raise.request_bytes = request + 32 * kMiB;
  ASSERT_TRUE(grid->Reconfigure("a", raise).ok());
  a = StatusOf(*grid, "a");
  EXPECT_EQ(a.request_bytes, request + 32 * kMiB);
  EXPECT_EQ(a.limit_bytes, request + 32 * kMiB) << "the limit follows a request raised past it";
  dev = grid->Devices().at(0);
  EXPECT_EQ(dev.reserved_bytes, dev_before.reserved_bytes + 32 * kMiB);
  EXPECT_EQ(dev.free_bytes, dev_before.free_bytes - 32 * kMiB);
  log = grid->ChangeLog();
  ASSERT_EQ(log.size(), 2u);
  EXPECT_NE(log[1].find("request " + std::to_string(request) + " -> " +
                        std::to_string(request + 32 * kMiB)),
            std::string::npos)
      << log[1];
  ModelUpdate lim;
  lim.limit_bytes = request + 96 * kMiB;
  ASSERT_TRUE(grid->Reconfigure("a", lim).ok());
  EXPECT_EQ(StatusOf(*grid, "a").limit_bytes, request + 96 * kMiB);
  ModelUpdate ondemand;
  ondemand.load = LoadPolicy::kOnDemand;
  ASSERT_TRUE(grid->Reconfigure("b", ondemand).ok());
  EXPECT_EQ(StatusOf(*grid, "b").load, LoadPolicy::kOnDemand);
  log = grid->ChangeLog();
  ASSERT_EQ(log.size(), 4u);
  EXPECT_NE(log[3].find("model b: load eager -> on_demand"), std::string::npos) << log[3];

  // Both still answer.
  EXPECT_TRUE(SameTensors(InferWithin(*grid, "a", in), want));
  EXPECT_TRUE(SameTensors(InferWithin(*grid, "b", in), want));

  // SetStrategy logs a change, not a repeat.
  const Strategy old = grid->strategy();
  const Strategy next = old == Strategy::kFillFirst ? Strategy::kBalance : Strategy::kFillFirst;
  grid->SetStrategy(next);
  EXPECT_EQ(grid->strategy(), next);
  log = grid->ChangeLog();
  ASSERT_EQ(log.size(), 5u);
  EXPECT_NE(log[4].find(std::string("strategy: ") + StrategyName(old) + " -> " +
                        StrategyName(next)),
            std::string::npos)
      << log[4];
  grid->SetStrategy(next);
  EXPECT_EQ(grid->ChangeLog().size(), 5u);
}

TEST(GridMemoryTest, APinnedModelIsNeverEvictedAndAStandbyLoadWaitsBoundedForIt) {
  REQUIRE_ZOO();
  const auto rows = DigitsRows(zoo);
  Reference ref(zoo, {"digits"});
  ASSERT_TRUE(ref.ok());
  const std::vector<InferTensor> in = {DigitsBatch(rows, 3, 64)};
  const auto want = ref.Answer("digits", in);

  auto grid = MakeGrid(Options({"cpu=300MiB"}));  // one 64 MiB digits and its worker
  ASSERT_TRUE(grid);
  ASSERT_TRUE(grid->AddModel({"p", zoo / "digits", 64 * kMiB, {}}).ok());
  ASSERT_TRUE(grid->AddModel({"q", zoo / "digits", 64 * kMiB, {}}).ok());
  ModelUpdate pin;
  pin.pinned = true;
  ASSERT_TRUE(grid->Reconfigure("p", pin).ok());  // before loading: p is placed first
  ASSERT_TRUE(grid->LoadAll().ok());
  ASSERT_EQ(StatusOf(*grid, "p").state, ModelState::kReady) << StatusOf(*grid, "p").reason;
  ASSERT_EQ(StatusOf(*grid, "q").state, ModelState::kStandby) << StatusOf(*grid, "q").reason;
  EXPECT_TRUE(SameTensors(InferWithin(*grid, "p", in), want));

  const auto start = std::chrono::steady_clock::now();
  auto r = InferWithin(*grid, "q", in, 1000ms);
  const auto took = std::chrono::steady_clock::now() - start;
  ASSERT_EQ(r.status().code(), StatusCode::kResourceExhausted) << r.status().ToString();
  ASSERT_NE(r.status().collision(), nullptr) << r.status().ToString();
  EXPECT_EQ(r.status().collision()->model, "q");
  EXPECT_EQ(r.status().collision()->asked_bytes, 64 * kMiB + kContext);
  EXPECT_LT(took, 1000ms + 5s);
  EXPECT_EQ(StatusOf(*grid, "p").state, ModelState::kReady);
  EXPECT_EQ(StatusOf(*grid, "p").evictions, 0u);
  const ModelStatus q = StatusOf(*grid, "q");
  EXPECT_EQ(q.state, ModelState::kStandby) << "a refused on-demand load stays on standby";
  EXPECT_EQ(Collisions(q, "evict/timed_out"), 1u) << CollisionsText(q);
  EXPECT_EQ(grid->Devices().at(0).workers, 1);
  // An explicit Load cannot place it either (Load evicts nothing): it stays
  // on standby, still taking requests.
  Status load = grid->Load("q");
  EXPECT_FALSE(load.ok());
  EXPECT_EQ(StatusOf(*grid, "q").state, ModelState::kStandby) << StatusOf(*grid, "q").reason;

  pin.pinned = false;
  ASSERT_TRUE(grid->Reconfigure("p", pin).ok());
  EXPECT_TRUE(SameTensors(InferWithin(*grid, "q", in), want));
  EXPECT_EQ(StatusOf(*grid, "p").state, ModelState::kStandby);
  EXPECT_EQ(StatusOf(*grid, "p").evictions, 1u);
}

}  // namespace
}  // namespace modelgrid
