// The graph walk: the allocator model, the view rule, and walks of the small
// zoo (MODELGRID_TEST_ZOO, set by CTest) checked against the probe's
// measurement in its own process.

#include "modelgrid/torch/graph_walk.h"

#include <caffe2/serialize/inline_container.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>

#include "memory_sim.h"
#include "modelgrid/repository.h"
#include "modelgrid/torch/calibration.h"
#include "walk_types.h"

namespace modelgrid {
namespace {

namespace fs = std::filesystem;

// ------------------------------------------------------------ MemorySim

TEST(MemorySimTest, CpuBlocksAreRoundedTo64AndFreedWithTheLastReference) {
  MemorySim sim(DeviceKind::kCpu);
  const int w = sim.NewStorage(1000, MemorySim::Kind::kWeight);
  EXPECT_EQ(sim.weight_bytes(), 1024u);
  EXPECT_EQ(sim.current_bytes(), 0u);
  const int a = sim.NewStorage(100, MemorySim::Kind::kActivation);
  sim.Ref(a);
  sim.Ref(a);  // a view of it
  EXPECT_EQ(sim.current_bytes(), 128u);
  sim.Unref(a);
  EXPECT_EQ(sim.current_bytes(), 128u);
  sim.Unref(a);
  EXPECT_EQ(sim.current_bytes(), 0u);
  EXPECT_EQ(sim.peak_bytes(), 128u);
  sim.Ref(w);
  sim.Unref(w);  // weights are never freed nor counted
  EXPECT_EQ(sim.weight_bytes(), 1024u);
}

TEST(MemorySimTest, PeakSplitsActivationsAndWorkspace) {
  MemorySim sim(DeviceKind::kCpu);
  const int in = sim.NewStorage(640, MemorySim::Kind::kInput);
  sim.Ref(in);
  const int t = sim.AllocTemp(6400);
  const int out = sim.NewStorage(64, MemorySim::Kind::kActivation);
  sim.Ref(out);
  sim.FreeTemp(t);
  EXPECT_EQ(sim.peak_bytes(), 640u + 6400u + 64u);
  EXPECT_EQ(sim.peak_workspace_bytes(), 6400u);
  EXPECT_EQ(sim.peak_activation_bytes(), 704u);
  sim.Unref(in);  // inputs stay: the caller holds them
  EXPECT_EQ(sim.current_bytes(), 704u);
}

TEST(MemorySimTest, SweepFreesOutputsNobodyHolds) {
  MemorySim sim(DeviceKind::kCpu);
  sim.NewStorage(64, MemorySim::Kind::kActivation);
  const int kept = sim.NewStorage(64, MemorySim::Kind::kActivation);
  sim.Ref(kept);
  sim.Sweep();
  EXPECT_EQ(sim.current_bytes(), 64u);
  EXPECT_EQ(sim.peak_bytes(), 128u);
}

TEST(MemorySimTest, CudaRoundsTo512) {
  MemorySim sim(DeviceKind::kCuda);
  EXPECT_EQ(sim.BlockBytes(1), 512u);
  EXPECT_EQ(sim.BlockBytes(513), 1024u);
  EXPECT_EQ(sim.BlockBytes(0), 0u);
}

// ------------------------------------------------------------ views

TEST(ViewStridesTest, FollowsTensorViewRules) {
  // Contiguous: any shape with the same numel.
  auto s = ViewStrides({2, 3, 4}, {12, 4, 1}, {6, 4});
  ASSERT_TRUE(s);
  EXPECT_EQ(*s, (std::vector<int64_t>{4, 1}));
  // A transpose cannot be flattened without a copy...
  EXPECT_FALSE(ViewStrides({4, 3}, {1, 4}, {12}));
  // ...but its untouched leading dimensions can be split.
  s = ViewStrides({6, 4, 3}, {12, 1, 4}, {2, 3, 4, 3});
  ASSERT_TRUE(s);
  EXPECT_EQ(*s, (std::vector<int64_t>{36, 12, 1, 4}));
  // Broadcast dimensions merge with each other.
  s = ViewStrides({2, 3, 5}, {0, 0, 1}, {6, 5});
  ASSERT_TRUE(s);
  EXPECT_EQ(*s, (std::vector<int64_t>{0, 1}));
}

TEST(BroadcastShapesTest, Broadcasts) {
  EXPECT_EQ(*BroadcastShapes({8, 1, 128}, {12, 1}), (std::vector<int64_t>{8, 12, 128}));
  EXPECT_FALSE(BroadcastShapes({3}, {4}));
}

// ------------------------------------------------------------ errors

fs::path TempDir() {
  fs::path dir = fs::temp_directory_path() / ("modelgrid_walk_test_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  return dir;
}

TEST(GraphWalkTest, MissingFileIsNotFound) {
  TorchScriptGraphWalker walker;
  auto r = walker.Walk("/nonexistent/model.pt", {{1, 3}}, {DataType::kFP32}, DeviceKind::kCpu);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
}

TEST(GraphWalkTest, BrokenArchiveIsCorruptionNotACrash) {
  const fs::path file = TempDir() / "broken.pt";
  {
    std::ofstream out(file, std::ios::binary);
    out << "PK\x03\x04 this is not a TorchScript archive";
  }
  TorchScriptGraphWalker walker;
  auto r = walker.Walk(file, {{1, 3}}, {DataType::kFP32}, DeviceKind::kCpu);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kCorruption);
  EXPECT_NE(r.status().message().find("broken.pt"), std::string::npos) << r.status().message();
  auto s = SummarizeModule(file);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kCorruption);
}

// ------------------------------------------------------------ the small zoo

// The zoo's TorchScript models, or empty (the caller skips) when the zoo is absent.
std::vector<ModelEntry> ZooModels() {
  const char* zoo = std::getenv("MODELGRID_TEST_ZOO");
  if (zoo == nullptr || !fs::is_directory(zoo)) return {};
  auto models = ScanRepository(zoo);
  if (!models.ok()) return {};
  std::vector<ModelEntry> out;
  for (auto& m : *models) {
    if (m.torchscript) out.push_back(m);
  }
  return out;
}

TEST(GraphWalkTest, TruncatedArchiveIsCorruption) {
  auto models = ZooModels();
  if (models.empty()) GTEST_SKIP() << "no zoo at MODELGRID_TEST_ZOO (generate it with tools/zoo/generate.py)";
  const fs::path source = *models[0].torchscript;
  const fs::path file = TempDir() / "truncated.pt";
  {
    std::ifstream in(source, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::ofstream out(file, std::ios::binary);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size() / 2));
  }
  TorchScriptGraphWalker walker;
  auto r = walker.Walk(file, {{1, 3, 64, 64}}, {DataType::kFP32}, DeviceKind::kCpu);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kCorruption);
}

TEST(GraphWalkTest, WrongInputsAreErrorsNotCrashes) {
  auto models = ZooModels();
  if (models.empty()) GTEST_SKIP() << "no zoo at MODELGRID_TEST_ZOO";
  TorchScriptGraphWalker walker;
  for (const ModelEntry& m : models) {
    SCOPED_TRACE(m.name);
    // Too many inputs.
    auto r = walker.Walk(*m.torchscript, {{1, 3}, {1, 3}, {1, 3}, {1, 3}}, std::vector<DataType>(4, DataType::kFP32),
                         DeviceKind::kCpu);
    EXPECT_FALSE(r.ok());
    // A rank no layer accepts: an error or a guess with notes, never a crash.
    r = walker.Walk(*m.torchscript, {{2}}, {DataType::kFP32}, DeviceKind::kCpu);
    if (!r.ok()) {
      EXPECT_TRUE(r.status().code() == StatusCode::kUnsupported || r.status().code() == StatusCode::kInvalidArgument)
          << r.status().ToString();
    }
  }
}

// Sum of the tensor records of a TorchScript archive, each rounded to 64.
uint64_t ArchiveTensorBytes(const fs::path& file) {
  caffe2::serialize::PyTorchStreamReader reader(file.string());
  uint64_t bytes = 0;
  for (const std::string& record : reader.getAllRecords()) {
    if (record.rfind("data/", 0) != 0 && record.rfind("constants/", 0) != 0) continue;
    auto [data, size] = reader.getRecord(record);
    bytes += (size + 63) / 64 * 64;
  }
  return bytes;
}

TEST(GraphWalkTest, WeightBytesMatchTheArchiveAndTheLoad) {
  auto models = ZooModels();
  if (models.empty()) GTEST_SKIP() << "no zoo at MODELGRID_TEST_ZOO";
  for (const ModelEntry& m : models) {
    SCOPED_TRACE(m.name);
    auto summary = SummarizeModule(*m.torchscript);
    ASSERT_TRUE(summary.ok()) << summary.status().ToString();
    EXPECT_EQ(summary->tensor_storage_bytes, ArchiveTensorBytes(*m.torchscript));
    EXPECT_GT(summary->parameters, 0u);
  }
}

TEST(GraphWalkTest, MatchesTheProbeOnTheSmallZoo) {
  auto models = ZooModels();
  if (models.empty()) GTEST_SKIP() << "no zoo at MODELGRID_TEST_ZOO";
  TorchScriptGraphWalker walker;
  for (const ModelEntry& m : models) {
    for (int64_t batch : {1, 4}) {
      SCOPED_TRACE(m.name + " batch " + std::to_string(batch));
      auto inputs = InputsFor(m, batch, m.config.sequence_length);
      ASSERT_TRUE(inputs.ok()) << inputs.status().ToString();
      auto walk = walker.Walk(*m.torchscript, inputs->shapes, inputs->types, DeviceKind::kCpu);
      ASSERT_TRUE(walk.ok()) << walk.status().ToString();
      ProbeRequest req;
      req.probe = MODELGRID_PROBE_PATH;
      req.model_pt = *m.torchscript;
      req.model_name = m.name;
      req.shapes = inputs->shapes;
      req.types = inputs->types;
      auto measured = RunProbeProcess(req);
      ASSERT_TRUE(measured.ok()) << measured.status().ToString();
      // Weights: what loading leaves allocated, to the byte.
      EXPECT_EQ(walk->weight_bytes, measured->weights_bytes);
      // The peak: within 1% (measured to the byte on the development machine;
      // the tolerance covers other CPUs' oneDNN layouts).
      const double total = static_cast<double>(walk->weight_bytes + walk->peak_activation_bytes +
                                               walk->peak_workspace_bytes);
      const double peak = static_cast<double>(measured->peak_bytes);
      EXPECT_NEAR(total / peak, 1.0, 0.01) << "walk " << total << " measured " << peak << " notes: " << walk->notes;
    }
  }
}

TEST(GraphWalkTest, CudaWalkCountsOutputsWithCoarserBlocks) {
  auto models = ZooModels();
  if (models.empty()) GTEST_SKIP() << "no zoo at MODELGRID_TEST_ZOO";
  TorchScriptGraphWalker walker;
  for (const ModelEntry& m : models) {
    SCOPED_TRACE(m.name);
    auto inputs = InputsFor(m, 2, m.config.sequence_length);
    ASSERT_TRUE(inputs.ok());
    auto cpu = walker.Walk(*m.torchscript, inputs->shapes, inputs->types, DeviceKind::kCpu);
    auto cuda = walker.Walk(*m.torchscript, inputs->shapes, inputs->types, DeviceKind::kCuda);
    ASSERT_TRUE(cpu.ok() && cuda.ok());
    EXPECT_GT(cuda->peak_activation_bytes, 0u);
    EXPECT_EQ(cuda->peak_activation_bytes % 512, 0u);
  }
}

}  // namespace
}  // namespace modelgrid
