// Calibration: the cache file, the probe child process (with fake probes
// that misbehave) and Calibrate end to end.

#include "modelgrid/torch/calibration.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>

#include "modelgrid/torch/torch_info.h"

namespace modelgrid {
namespace {

namespace fs = std::filesystem;

class CalibrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("modelgrid_calibration_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  fs::path Write(const std::string& name, const std::string& text, bool executable = false) {
    const fs::path p = dir_ / name;
    std::ofstream(p, std::ios::binary) << text;
    if (executable) ::chmod(p.c_str(), 0755);
    return p;
  }

  CalibrationKey Key(int64_t batch = 8) {
    CalibrationKey k;
    k.file_hash = "0123456789abcdef0123456789abcdef";
    k.device_type = "cpu";
    k.torch_version = "1.13.0";
    k.batch = batch;
    k.sequence_length = 128;
    return k;
  }

  fs::path dir_;
};

TEST_F(CalibrationTest, HashFileIsXxh3OfTheBytes) {
  const fs::path a = Write("a.bin", "hello world");
  const fs::path b = Write("b.bin", "hello world!");
  auto ha = HashFile(a);
  auto hb = HashFile(b);
  ASSERT_TRUE(ha.ok() && hb.ok());
  EXPECT_EQ(ha->size(), 32u);
  EXPECT_EQ(*ha, *HashFile(a));
  EXPECT_NE(*ha, *hb);
  // XXH3-128 of the empty input (xxHash's reference value).
  EXPECT_EQ(*HashFile(Write("empty.bin", "")), "99aa06d3014798d86001c324468d497f");
  EXPECT_EQ(HashFile(dir_ / "missing").status().code(), StatusCode::kNotFound);
}

TEST_F(CalibrationTest, CacheMissThenHit) {
  CalibrationCache cache(dir_ / "sub" / "calibration.json");
  EXPECT_FALSE(cache.Lookup(Key()));  // no file: empty
  ASSERT_TRUE(cache.Store(Key(), 123456789, "resnet18").ok());
  EXPECT_EQ(cache.Lookup(Key()), 123456789u);
  EXPECT_FALSE(cache.Lookup(Key(16)));  // another batch
  ASSERT_TRUE(cache.Store(Key(16), 42).ok());
  EXPECT_EQ(cache.Lookup(Key()), 123456789u);  // both kept
  EXPECT_EQ(cache.Lookup(Key(16)), 42u);
  // Another object reads the same file.
  CalibrationCache again(dir_ / "sub" / "calibration.json");
  EXPECT_EQ(again.Lookup(Key(16)), 42u);
  EXPECT_TRUE(cache.warnings().empty());
}

TEST_F(CalibrationTest, CorruptCacheIsEmptyWithAWarning) {
  for (const char* text : {"{\"version\": 1, \"entries\": {", "[1, 2, 3]", "\x01\x02garbage", ""}) {
    SCOPED_TRACE(text);
    const fs::path file = Write("calibration.json", text);
    CalibrationCache cache(file);
    EXPECT_FALSE(cache.Lookup(Key()));
    EXPECT_FALSE(cache.warnings().empty());
    // Storing replaces the corrupt file with a good one.
    ASSERT_TRUE(cache.Store(Key(), 7).ok());
    EXPECT_EQ(cache.Lookup(Key()), 7u);
  }
}

TEST_F(CalibrationTest, DefaultPathFollowsXdg) {
  const char* old = std::getenv("XDG_CACHE_HOME");
  const std::string saved = old ? old : "";
  ::setenv("XDG_CACHE_HOME", "/some/cache", 1);
  EXPECT_EQ(CalibrationCache::DefaultPath(), fs::path("/some/cache/modelgrid/calibration.json"));
  ::unsetenv("XDG_CACHE_HOME");
  EXPECT_EQ(CalibrationCache::DefaultPath().filename(), "calibration.json");
  EXPECT_NE(CalibrationCache::DefaultPath().string().find(".cache/modelgrid"), std::string::npos);
  if (old) ::setenv("XDG_CACHE_HOME", saved.c_str(), 1);
}

ProbeRequest FakeRequest(const fs::path& probe) {
  ProbeRequest r;
  r.probe = probe;
  r.model_pt = "/models/m/1/model.pt";
  r.model_name = "m";
  r.shapes = {{8, 3, 224, 224}};
  r.types = {DataType::kFP32};
  r.timeout = std::chrono::milliseconds(3000);
  return r;
}

TEST_F(CalibrationTest, ProbeOutputIsParsed) {
  const fs::path probe = Write("probe.sh",
                               "#!/bin/sh\n"
                               "echo 'loading...' >&2\n"
                               "echo '{\"weights_bytes\": 100, \"peak_bytes\": 300, \"peak_forward_bytes\": 250, "
                               "\"torch_version\": \"1.13.0\", \"forward_ms\": 1.5}'\n",
                               true);
  auto m = RunProbeProcess(FakeRequest(probe));
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->weights_bytes, 100u);
  EXPECT_EQ(m->peak_bytes, 300u);
  EXPECT_EQ(m->peak_forward_bytes, 250u);
  EXPECT_EQ(m->torch_version, "1.13.0");
}

TEST_F(CalibrationTest, ProbeArgumentsCarryShapesAndTypes) {
  const fs::path args = dir_ / "args.txt";
  const fs::path probe = Write("probe.sh",
                               "#!/bin/sh\necho \"$@\" > " + args.string() +
                                   "\necho '{\"weights_bytes\": 1, \"peak_bytes\": 2, \"peak_forward_bytes\": 2, "
                                   "\"torch_version\": \"x\"}'\n",
                               true);
  ProbeRequest r = FakeRequest(probe);
  r.shapes = {{4, 128}, {4, 128}};
  r.types = {DataType::kInt64, DataType::kBool};
  r.threads = 3;
  ASSERT_TRUE(RunProbeProcess(r).ok());
  std::ifstream in(args);
  std::string line;
  std::getline(in, line);
  EXPECT_EQ(line, "/models/m/1/model.pt --json --method forward --shape 4,128:INT64 --shape 4,128:BOOL --threads 3");
}

TEST_F(CalibrationTest, HangingProbeTimesOut) {
  const fs::path probe = Write("probe.sh", "#!/bin/sh\nexec sleep 30\n", true);
  ProbeRequest r = FakeRequest(probe);
  r.timeout = std::chrono::milliseconds(300);
  const auto start = std::chrono::steady_clock::now();
  auto m = RunProbeProcess(r);
  const auto elapsed = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(m.status().message().find("m:"), std::string::npos) << m.status().message();
  EXPECT_NE(m.status().message().find("killed"), std::string::npos) << m.status().message();
  EXPECT_LT(elapsed, std::chrono::seconds(5));
}

TEST_F(CalibrationTest, CrashingProbeIsAnErrorNamingTheModel) {
  const fs::path probe = Write("probe.sh", "#!/bin/sh\necho 'about to crash' >&2\nkill -SEGV $$\n", true);
  auto m = RunProbeProcess(FakeRequest(probe));
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(m.status().message().find("m: the probe crashed (signal 11)"), std::string::npos) << m.status().message();
  EXPECT_NE(m.status().message().find("about to crash"), std::string::npos) << m.status().message();
}

TEST_F(CalibrationTest, FailingProbeCarriesItsStderr) {
  const fs::path probe =
      Write("probe.sh", "#!/bin/sh\necho 'modelgrid-probe: CORRUPTION: bad archive' >&2\nexit 1\n", true);
  auto m = RunProbeProcess(FakeRequest(probe));
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(m.status().message().find("bad archive"), std::string::npos) << m.status().message();
}

TEST_F(CalibrationTest, GarbageOutputIsInternal) {
  const fs::path probe = Write("probe.sh", "#!/bin/sh\necho 'not json'\n", true);
  auto m = RunProbeProcess(FakeRequest(probe));
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), StatusCode::kInternal);
}

TEST_F(CalibrationTest, MissingProbeIsNotFound) {
  auto m = RunProbeProcess(FakeRequest(dir_ / "no-such-probe"));
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), StatusCode::kNotFound);
}

TEST_F(CalibrationTest, InputsForModels) {
  ModelEntry tv;
  tv.name = "resnet";
  tv.config.max_batch_size = 32;
  tv.config.inputs = {{"input", DataType::kFP32, {3, 224, 224}}};
  auto in = InputsFor(tv, 8, 0);
  ASSERT_TRUE(in.ok());
  EXPECT_EQ(in->shapes, (std::vector<std::vector<int64_t>>{{8, 3, 224, 224}}));
  EXPECT_EQ(InputsFor(tv, 0, 0).status().code(), StatusCode::kInvalidArgument);

  ModelEntry hf;
  hf.name = "gpt2";
  hf.format = ModelFormat::kHuggingFace;
  hf.config.sequence_length = 128;
  in = InputsFor(hf, 4, 0);
  ASSERT_TRUE(in.ok());
  EXPECT_EQ(in->shapes, (std::vector<std::vector<int64_t>>{{4, 128}}));
  EXPECT_EQ(in->types, (std::vector<DataType>{DataType::kInt64}));
  hf.config.inputs = {{"input_ids", DataType::kInt64, {-1}}};
  in = InputsFor(hf, 2, 64);
  ASSERT_TRUE(in.ok());
  EXPECT_EQ(in->shapes, (std::vector<std::vector<int64_t>>{{2, 64}}));

  ModelEntry bare;
  bare.name = "bare";
  EXPECT_EQ(InputsFor(bare, 1, 0).status().code(), StatusCode::kInvalidArgument);
}

TEST_F(CalibrationTest, CalibrateMeasuresOnceThenUsesTheCache) {
  const fs::path count = dir_ / "count.txt";
  const fs::path probe = Write("probe.sh",
                               "#!/bin/sh\necho x >> " + count.string() +
                                   "\necho '{\"weights_bytes\": 10, \"peak_bytes\": 5000, \"peak_forward_bytes\": 4000, "
                                   "\"torch_version\": \"1.13.0\"}'\n",
                               true);
  ModelEntry m;
  m.name = "tiny";
  m.torchscript = Write("model.pt", "not really a model; the fake probe does not read it");
  m.config.max_batch_size = 8;
  m.config.inputs = {{"input", DataType::kFP32, {4}}};
  CalibrationCache cache(dir_ / "cache.json");
  CalibrateOptions o;
  o.batch = 8;
  o.probe = probe;
  auto first = Calibrate(m, o, &cache);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(first->peak_bytes, 5000u);
  EXPECT_FALSE(first->from_cache);
  EXPECT_EQ(first->key.torch_version, TorchVersion());
  EXPECT_EQ(first->key.sequence_length, 0);
  auto second = Calibrate(m, o, &cache);
  ASSERT_TRUE(second.ok());
  EXPECT_TRUE(second->from_cache);
  EXPECT_EQ(second->peak_bytes, 5000u);
  o.refresh = true;
  ASSERT_TRUE(Calibrate(m, o, &cache).ok());
  std::ifstream in(count);
  int lines = 0;
  for (std::string l; std::getline(in, l);) ++lines;
  EXPECT_EQ(lines, 2);  // measured, cached, measured again on refresh
  o.device = DeviceKind::kCuda;
  EXPECT_EQ(Calibrate(m, o, &cache).status().code(), StatusCode::kUnsupported);
}

}  // namespace
}  // namespace modelgrid
