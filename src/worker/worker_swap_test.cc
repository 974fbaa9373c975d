// Swap through a real modelgrid-worker (messages.h swap_out / swap_in): the
// weights leave the worker (its resident memory drops by about their bytes)
// while it keeps the model, come back bit for bit, a damaged or missing swap
// file makes it reload the model from its files, an infer for a swapped-out
// model gets a clear error, and an infer sent before a swap-out is answered
// first.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <map>
#include <thread>

#include "modelgrid/worker/worker_client.h"
#include "worker/worker_test_util.h"

namespace modelgrid {
namespace {

using namespace modelgrid::testing;  // NOLINT(google-build-using-namespace)

// resnet18's parameters and buffers of the small zoo, distinct storages
// (what BackendSwapTest sums from the module's own parameter and buffer
// lists): 46.8 MB.
constexpr uint64_t kResnet18WeightBytes = 46'796'608;

// A scratch folder for swap files, removed with its contents.
struct SwapDir {
  std::filesystem::path path;
  explicit SwapDir(const std::string& name)
      : path(std::filesystem::temp_directory_path() /
             ("modelgrid-swap-test-" + name + "-" + std::to_string(::getpid()))) {
    std::filesystem::remove_all(path);
  }
  ~SwapDir() { std::filesystem::remove_all(path); }
  // The swap file the worker `pid` writes for `model`.
  std::filesystem::path FileOf(const std::string& model, pid_t pid) const {
    return path / (model + "." + std::to_string(pid) + ".mgswap");
  }
  size_t Count() const {
    if (!std::filesystem::is_directory(path)) return 0;
    size_t n = 0;
    for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(path)) ++n;
    return n;
  }
};

// A field of /proc/PID/status in bytes ("VmRSS"), read by this process.
uint64_t StatusBytes(pid_t pid, const std::string& field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) == 0) return std::stoull(line.substr(field.size() + 1)) * 1024;
  }
  ADD_FAILURE() << "no " << field << " in /proc/" << pid << "/status";
  return 0;
}

std::vector<InferTensor> Images(int64_t batch) {
  std::vector<float> pixels(static_cast<size_t>(batch) * 3 * 64 * 64);
  for (size_t i = 0; i < pixels.size(); ++i) pixels[i] = static_cast<float>(i % 89) / 89.0f;
  return {MakeTensor("input", DataType::kFP32, {batch, 3, 64, 64}, pixels)};
}

// One request per model and the task it runs.
struct Case {
  std::string model;
  std::string task;
  std::vector<InferTensor> inputs;
  nlohmann::json params = nlohmann::json::object();
};

std::vector<Case> Cases(const std::filesystem::path& zoo) {
  return {{"resnet18", "infer", Images(2)},
          {"gpt2", "generate", {TokenIds(2, 5, 3)}, {{"max_new_tokens", 4}}},
          {"bert-base", "encode", {TokenIds(3, 7, 4)}},
          {"digits", "infer", {DigitsRows(zoo, 10, 6)}}};
}

ipc::ModelMemory MemoryOf(WorkerClient& worker, const std::string& model) {
  auto stats = worker.Stats(kGenerous);
  EXPECT_TRUE(stats.ok()) << stats.status().ToString();
  if (stats.ok()) {
    for (const ipc::ModelMemory& m : stats->models) {
      if (m.model == model) return m;
    }
  }
  ADD_FAILURE() << "no stats for model '" << model << "'";
  return {};
}

// Four zoo models in one worker: each swapped out and in while the others
// serve, outputs byte-identical to those before, and to the backend in
// this process.
TEST(WorkerSwapTest, SwapOutAndInKeepOutputsBitIdenticalForFourZooModels) {
  REQUIRE_ZOO();
  SwapDir dir("four");
  ExitRecord exits;
  START_WORKER(worker, Options("swap-four", uint64_t{128} << 20), exits);
  const std::vector<Case> cases = Cases(zoo);
  std::map<std::string, std::vector<InferTensor>> before;
  for (const Case& c : cases) {
    ASSERT_TRUE(worker->Load(LoadOf(zoo, c.model), kGenerous).ok()) << c.model;
    auto out = worker->Infer(c.model, c.task, c.inputs, c.params, kGenerous);
    ASSERT_TRUE(out.ok()) << c.model << ": " << out.status().ToString();
    TorchScriptBackend local;
    ASSERT_TRUE(local.Load(OpenEntry(zoo, c.model)).ok());
    auto want = local.Run(c.task, c.inputs, c.params);
    ASSERT_TRUE(want.ok());
    ASSERT_TRUE(SameTensors(*out, *want)) << c.model;
    before[c.model] = std::move(out).value();
  }
  for (const Case& c : cases) {
    SCOPED_TRACE(c.model);
    const ipc::ModelMemory held = MemoryOf(*worker, c.model);
    auto out = worker->SwapOut(c.model, dir.path.string(), kGenerous);
    ASSERT_TRUE(out.ok()) << out.status().ToString();
    EXPECT_EQ(out->model, c.model);
    EXPECT_GT(out->bytes, 0u);
    EXPECT_GT(out->duration_us, 0u);
    EXPECT_GT(out->rss_before_bytes, 0u);
    EXPECT_TRUE(std::filesystem::exists(dir.FileOf(c.model, worker->pid())));
    const ipc::ModelMemory swapped = MemoryOf(*worker, c.model);
    EXPECT_TRUE(swapped.swapped);
    // The model's own counters lost exactly its weights' blocks (at least
    // the bytes moved: each block is rounded up to 64).
    EXPECT_GE(held.current_bytes, swapped.current_bytes + out->bytes);

    auto refused = worker->Infer(c.model, c.task, c.inputs, c.params, kGenerous);
    ASSERT_FALSE(refused.ok());
    EXPECT_EQ(refused.status().code(), StatusCode::kUnavailable) << refused.status().ToString();
    EXPECT_TRUE(Contains(refused.status(), "model '" + c.model + "' is swapped out"))
        << refused.status().ToString();
    // The others serve meanwhile.
    for (const Case& other : cases) {
      if (other.model == c.model) continue;
      auto still = worker->Infer(other.model, other.task, other.inputs, other.params, kGenerous);
      ASSERT_TRUE(still.ok()) << other.model << ": " << still.status().ToString();
      EXPECT_TRUE(SameTensors(*still, before[other.model])) << other.model;
    }

    auto in = worker->SwapIn(c.model, kGenerous);
    ASSERT_TRUE(in.ok()) << in.status().ToString();
    EXPECT_FALSE(in->reloaded) << in->reason;
    EXPECT_EQ(in->bytes, out->bytes);
    EXPECT_FALSE(std::filesystem::exists(dir.FileOf(c.model, worker->pid())));
    const ipc::ModelMemory back = MemoryOf(*worker, c.model);
    EXPECT_FALSE(back.swapped);
    EXPECT_EQ(back.current_bytes, held.current_bytes) << "the same blocks, allocated again";
    auto after = worker->Infer(c.model, c.task, c.inputs, c.params, kGenerous);
    ASSERT_TRUE(after.ok()) << after.status().ToString();
    EXPECT_TRUE(SameTensors(*after, before[c.model]));
  }
  EXPECT_EQ(dir.Count(), 0u);
  EXPECT_EQ(exits.Calls(), 0);
}

// The swap-out releases the weights' memory to the system: the worker's
// resident set (read here from /proc/PID/status) drops by most of
// resnet18's 46.8 MB of weights, and the reply's own figures agree.
TEST(WorkerSwapTest, SwapOutReleasesTheWorkersResidentMemory) {
  REQUIRE_ZOO();
  SwapDir dir("rss");
  ExitRecord exits;
  START_WORKER(worker, Options("swap-rss"), exits);
  ASSERT_TRUE(worker->Load(LoadOf(zoo, "resnet18"), kGenerous).ok());
  auto first = worker->Infer("resnet18", "infer", Images(1), {}, kGenerous);
  ASSERT_TRUE(first.ok());
  const uint64_t rss_before = StatusBytes(worker->pid(), "VmRSS");
  auto out = worker->SwapOut("resnet18", dir.path.string(), kGenerous);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  const uint64_t rss_after = StatusBytes(worker->pid(), "VmRSS");
  EXPECT_EQ(out->bytes, kResnet18WeightBytes);
  const uint64_t want_drop = kResnet18WeightBytes * 8 / 10;
  ASSERT_GT(rss_before, rss_after);
  EXPECT_GE(rss_before - rss_after, want_drop)
      << "VmRSS " << rss_before << " -> " << rss_after << " bytes";
  ASSERT_GT(out->rss_before_bytes, out->rss_after_bytes);
  EXPECT_GE(out->rss_before_bytes - out->rss_after_bytes, want_drop)
      << "the worker's own figures: " << out->rss_before_bytes << " -> " << out->rss_after_bytes;
  std::printf(
      "[ figures  ] resnet18 swap-out: %llu bytes in %llu us; VmRSS %llu -> %llu bytes "
      "(reply: %llu -> %llu)\n",
      static_cast<unsigned long long>(out->bytes),
      static_cast<unsigned long long>(out->duration_us),
      static_cast<unsigned long long>(rss_before), static_cast<unsigned long long>(rss_after),
      static_cast<unsigned long long>(out->rss_before_bytes),
      static_cast<unsigned long long>(out->rss_after_bytes));

  auto in = worker->SwapIn("resnet18", kGenerous);
  ASSERT_TRUE(in.ok()) << in.status().ToString();
  EXPECT_FALSE(in->reloaded);
  std::printf("[ figures  ] resnet18 swap-in: %llu bytes in %llu us; VmRSS now %llu bytes\n",
              static_cast<unsigned long long>(in->bytes),
              static_cast<unsigned long long>(in->duration_us),
              static_cast<unsigned long long>(StatusBytes(worker->pid(), "VmRSS")));
  auto again = worker->Infer("resnet18", "infer", Images(1), {}, kGenerous);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(SameTensors(*again, *first));
}

// A damaged or missing swap file is no crash: the worker loads the model
// again from its repository files, says so, and answers as before.
TEST(WorkerSwapTest, ACorruptOrMissingSwapFileReloadsTheModel) {
  REQUIRE_ZOO();
  SwapDir dir("damaged");
  ExitRecord exits;
  START_WORKER(worker, Options("swap-damaged"), exits);
  ASSERT_TRUE(worker->Load(LoadOf(zoo, "resnet18"), kGenerous).ok());
  auto first = worker->Infer("resnet18", "infer", Images(2), {}, kGenerous);
  ASSERT_TRUE(first.ok());
  const pid_t pid = worker->pid();
  const std::filesystem::path file = dir.FileOf("resnet18", pid);

  // One byte of the weights flipped.
  ASSERT_TRUE(worker->SwapOut("resnet18", dir.path.string(), kGenerous).ok());
  ASSERT_TRUE(std::filesystem::exists(file));
  {
    std::fstream io(file, std::ios::in | std::ios::out | std::ios::binary);
    io.seekg(static_cast<std::streamoff>(std::filesystem::file_size(file) / 2));
    char c = 0;
    io.read(&c, 1);
    io.seekp(static_cast<std::streamoff>(std::filesystem::file_size(file) / 2));
    c = static_cast<char>(c ^ 0x40);
    io.write(&c, 1);
  }
  auto in = worker->SwapIn("resnet18", kGenerous);
  ASSERT_TRUE(in.ok()) << in.status().ToString();
  EXPECT_TRUE(in->reloaded);
  EXPECT_TRUE(in->reason.find("payload hash") != std::string::npos) << in->reason;
  EXPECT_TRUE(in->reason.find(file.string()) != std::string::npos) << in->reason;
  EXPECT_EQ(in->bytes, kResnet18WeightBytes);
  auto after = worker->Infer("resnet18", "infer", Images(2), {}, kGenerous);
  ASSERT_TRUE(after.ok()) << after.status().ToString();
  EXPECT_TRUE(SameTensors(*after, *first));

  // The file gone.
  ASSERT_TRUE(worker->SwapOut("resnet18", dir.path.string(), kGenerous).ok());
  ASSERT_TRUE(std::filesystem::remove(file));
  in = worker->SwapIn("resnet18", kGenerous);
  ASSERT_TRUE(in.ok()) << in.status().ToString();
  EXPECT_TRUE(in->reloaded);
  EXPECT_TRUE(in->reason.find("is missing") != std::string::npos) << in->reason;
  after = worker->Infer("resnet18", "infer", Images(2), {}, kGenerous);
  ASSERT_TRUE(after.ok()) << after.status().ToString();
  EXPECT_TRUE(SameTensors(*after, *first));
  EXPECT_EQ(worker->pid(), pid);
  EXPECT_EQ(exits.Calls(), 0);
  EXPECT_FALSE(MemoryOf(*worker, "resnet18").swapped);
}

// The model's queue keeps the order: an infer sent before the swap_out is
// computed before the weights leave, not refused.
TEST(WorkerSwapTest, AnInferSentBeforeASwapOutIsAnsweredFirst) {
  REQUIRE_ZOO();
  SwapDir dir("order");
  ExitRecord exits;
  START_WORKER(worker, Options("swap-order", uint64_t{128} << 20), exits);
  ASSERT_TRUE(worker->Load(LoadOf(zoo, "resnet18"), kGenerous).ok());
  TorchScriptBackend local;
  ASSERT_TRUE(local.Load(OpenEntry(zoo, "resnet18")).ok());
  const std::vector<InferTensor> big = Images(32);  // long enough to still run at the swap_out
  auto want = local.Run("infer", big);
  ASSERT_TRUE(want.ok());
  for (int round = 0; round < 2; ++round) {
    Result<std::vector<InferTensor>> early = Status::Internal("not run");
    std::atomic<bool> sent{false};
    std::thread t([&] {
      sent.store(true);
      early = worker->Infer("resnet18", "infer", big, {}, kGenerous);
    });
    while (!sent.load()) std::this_thread::yield();
    std::this_thread::sleep_for(std::chrono::milliseconds(200));  // the infer is on its way
    auto out = worker->SwapOut("resnet18", dir.path.string(), kGenerous);
    t.join();
    ASSERT_TRUE(out.ok()) << out.status().ToString();
    ASSERT_TRUE(early.ok()) << early.status().ToString();
    EXPECT_TRUE(SameTensors(*early, *want));
    ASSERT_TRUE(worker->SwapIn("resnet18", kGenerous).ok());
  }
}

TEST(WorkerSwapTest, SwapErrorsAndRepeats) {
  REQUIRE_ZOO();
  SwapDir dir("errors");
  ExitRecord exits;
  START_WORKER(worker, Options("swap-errors"), exits);
  ASSERT_TRUE(worker->Load(LoadOf(zoo, "digits"), kGenerous).ok());
  auto ghost = worker->SwapOut("ghost", dir.path.string(), kGenerous);
  EXPECT_EQ(ghost.status().code(), StatusCode::kNotFound) << ghost.status().ToString();
  EXPECT_EQ(worker->SwapIn("ghost", kGenerous).status().code(), StatusCode::kNotFound);
  auto no_dir = worker->SwapOut("digits", "", kGenerous);
  EXPECT_EQ(no_dir.status().code(), StatusCode::kInvalidArgument) << no_dir.status().ToString();
  // Swapping a resident model in, or a swapped one out, changes nothing.
  auto idle = worker->SwapIn("digits", kGenerous);
  ASSERT_TRUE(idle.ok());
  EXPECT_EQ(idle->bytes, 0u);
  auto out = worker->SwapOut("digits", dir.path.string(), kGenerous);
  ASSERT_TRUE(out.ok());
  EXPECT_GE(out->bytes, 4810u * 4);  // the 4,810 FP32 parameters
  auto twice = worker->SwapOut("digits", dir.path.string(), kGenerous);
  ASSERT_TRUE(twice.ok());
  EXPECT_EQ(twice->bytes, 0u);
  // Unloading a swapped-out model removes its swap file.
  EXPECT_EQ(dir.Count(), 1u);
  ASSERT_TRUE(worker->Unload("digits", kGenerous).ok());
  EXPECT_EQ(dir.Count(), 0u);
  ASSERT_TRUE(worker->Load(LoadOf(zoo, "digits"), kGenerous).ok());
  EXPECT_TRUE(worker->Infer("digits", "infer", {DigitsRows(zoo, 0, 2)}, {}, kGenerous).ok());
}

}  // namespace
}  // namespace modelgrid
