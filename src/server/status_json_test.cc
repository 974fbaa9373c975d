// JSON views of grid statuses, without a server.
#include "server/status_json.h"

#include <gtest/gtest.h>

namespace modelgrid::server {
namespace {

using nlohmann::json;

ModelStatus DigitsStatus() {
  ModelStatus s;
  s.name = "digits";
  s.type = "torchscript";
  s.version = "1";
  s.state = ModelState::kReady;
  s.device = "cpu";
  s.request_bytes = 1'258'291;
  s.limit_bytes = 2'000'000;
  s.current_bytes = 40'960;
  s.peak_bytes = 81'920;
  s.worker_pid = 4242;
  s.restarts = 1;
  s.max_batch_size = 64;
  s.tasks = {"infer"};
  s.inputs = {{"input", DataType::kFP32, {64}}};
  s.outputs = {{"logits", DataType::kFP32, {10}}};
  return s;
}

DeviceStatus Device(const std::string& id, DeviceKind kind) {
  DeviceStatus d;
  d.device.id = id;
  d.device.kind = kind;
  d.device.name = id;
  d.device.total_bytes = 1000;
  d.device.context_bytes = 7;
  d.reserved_bytes = 300;
  d.used_bytes = 400;
  d.free_bytes = 600;
  d.buffer_bytes = 100;
  d.workers = 2;
  d.models = {"a", "b"};
  return d;
}

TEST(StatusJsonTest, ModelMetadataHasBatchDimensionAndPlatform) {
  const json j = MetadataJson(MetadataOf(DigitsStatus()));
  EXPECT_EQ(j["name"], "digits");
  EXPECT_EQ(j["versions"], json::array({"1"}));
  EXPECT_EQ(j["platform"], "pytorch_torchscript");
  ASSERT_EQ(j["inputs"].size(), 1u);
  EXPECT_EQ(j["inputs"][0], json({{"name", "input"}, {"datatype", "FP32"}, {"shape", {-1, 64}}}));
  EXPECT_EQ(j["outputs"][0], json({{"name", "logits"}, {"datatype", "FP32"}, {"shape", {-1, 10}}}));
}

TEST(StatusJsonTest, ModelMetadataWithoutBatchingOrVersion) {
  ModelStatus s = DigitsStatus();
  s.max_batch_size = 0;
  s.version.clear();
  const json j = MetadataJson(MetadataOf(s));
  EXPECT_FALSE(j.contains("versions"));
  EXPECT_EQ(j["inputs"][0]["shape"], json::array({64}));
}

TEST(StatusJsonTest, MetadataOfAModelThatNeverLoadedIsAnError) {
  EXPECT_EQ(MetadataUnavailableReason(DigitsStatus()), "");
  ModelStatus s;
  s.name = "bare";
  s.state = ModelState::kFailed;
  s.reason = "estimate failed: model 'bare' declares no inputs";
  EXPECT_EQ(MetadataUnavailableReason(s),
            "model 'bare' has no metadata: it is failed: estimate failed: model 'bare' declares "
            "no inputs");
  s.state = ModelState::kUnplaced;
  EXPECT_NE(MetadataUnavailableReason(s), "");
  s.state = ModelState::kStandby;  // loads on its first request: not an error
  EXPECT_EQ(MetadataUnavailableReason(s), "");
}

TEST(StatusJsonTest, RepositoryStatesFollowTriton) {
  EXPECT_STREQ(RepositoryStateName(ModelState::kReady), "READY");
  EXPECT_STREQ(RepositoryStateName(ModelState::kLoading), "LOADING");
  EXPECT_STREQ(RepositoryStateName(ModelState::kRestarting), "LOADING");
  EXPECT_STREQ(RepositoryStateName(ModelState::kSwappingIn), "LOADING");
  EXPECT_STREQ(RepositoryStateName(ModelState::kSwappingOut), "UNLOADING");
  for (ModelState s : {ModelState::kAdded, ModelState::kUnplaced, ModelState::kFailed,
                       ModelState::kUnloaded, ModelState::kStandby, ModelState::kSwapped}) {
    EXPECT_STREQ(RepositoryStateName(s), "UNAVAILABLE");
  }
  ModelStatus s = DigitsStatus();
  s.state = ModelState::kUnplaced;
  s.reason = "needs 9.00 GiB, largest free capacity 1.00 GiB on cpu";
  RepositoryEntry e{s.name, s.version, RepositoryStateName(s.state), s.reason, s.state};
  const json j = RepositoryEntryJson(e);
  EXPECT_EQ(j, json({{"name", "digits"},
                     {"version", "1"},
                     {"state", "UNAVAILABLE"},
                     {"reason", s.reason},
                     {"modelgrid_state", "unplaced"}}));
}

TEST(StatusJsonTest, ModelViewCarriesEveryByteFigure) {
  ModelStatus s = DigitsStatus();
  MemoryEstimate e;
  e.weights = 100;
  e.activations = 20;
  e.workspace = 3;
  e.allocator_slack = 4;
  e.margin = 12;
  e.context = 1000;
  e.calibrated_peak = 130;
  s.estimate = e;
  const json j = ModelView(s);
  EXPECT_EQ(j["state"], "ready");
  EXPECT_EQ(j["request_bytes"], 1'258'291u);
  EXPECT_EQ(j["limit_bytes"], 2'000'000u);
  EXPECT_EQ(j["current_bytes"], 40'960u);
  EXPECT_EQ(j["peak_bytes"], 81'920u);
  EXPECT_EQ(j["worker_pid"], 4242);
  EXPECT_EQ(j["restarts"], 1);
  EXPECT_EQ(j["tasks"], json::array({"infer"}));
  // 100 + 20 + 3 + 4 = 127 peak; + 12 margin = 139; + 1000 context = 1139.
  EXPECT_EQ(j["estimate"]["instance_peak_bytes"], 127u);
  EXPECT_EQ(j["estimate"]["request_bytes"], 139u);
  EXPECT_EQ(j["estimate"]["total_bytes"], 1139u);
  EXPECT_EQ(j["estimate"]["calibrated_peak_bytes"], 130u);

  s.estimate.reset();
  EXPECT_TRUE(ModelView(s)["estimate"].is_null());
}

TEST(StatusJsonTest, DeviceView) {
  const json j = DeviceView(Device("sim:a100#1", DeviceKind::kSimulated));
  EXPECT_EQ(j["id"], "sim:a100#1");
  EXPECT_EQ(j["kind"], "simulated");
  EXPECT_EQ(j["total_bytes"], 1000u);
  EXPECT_EQ(j["used_bytes"], 400u);
  EXPECT_EQ(j["free_bytes"], 600u);
  EXPECT_EQ(j["reserved_bytes"], 300u);
  EXPECT_EQ(j["buffer_bytes"], 100u);
  EXPECT_EQ(j["context_bytes"], 7u);
  EXPECT_EQ(j["workers"], 2);
  EXPECT_EQ(j["models"], json::array({"a", "b"}));
}

TEST(StatusJsonTest, DeviceOrdinals) {
  EXPECT_EQ(DeviceOrdinal("cpu"), 0);
  EXPECT_EQ(DeviceOrdinal("cuda:3"), 3);
  EXPECT_EQ(DeviceOrdinal("sim:a100#2"), 2);
  EXPECT_EQ(DeviceOrdinal("sim:a100"), 0);  // "a100" is a name, not a number
}

TEST(StatusJsonTest, MemoryUsageByDeviceKind) {
  const std::vector<DeviceStatus> devices = {Device("cpu", DeviceKind::kCpu),
                                             Device("cuda:1", DeviceKind::kCuda)};
  ModelStatus s = DigitsStatus();
  auto usage = [&] { return StatisticsJson(StatisticsOf(s, {}, devices))["memory_usage"]; };
  EXPECT_EQ(usage(), json::array({{{"type", "CPU"}, {"id", 0}, {"byte_size", 40'960u}}}));
  s.device = "cuda:1";
  EXPECT_EQ(usage(), json::array({{{"type", "GPU"}, {"id", 1}, {"byte_size", 40'960u}}}));
  s.device.clear();
  EXPECT_EQ(usage(), json::array());
}

TEST(StatusJsonTest, StatsInTritonShape) {
  ModelCounters c;
  c.success = 5;
  c.failure = 2;
  c.executions = 3;
  c.inferences = 9;
  c.queue_us = 11;
  c.compute_us = 22;
  c.request_us = 44;
  c.last_inference_ms = 1'700'000'000'123;
  const json j = StatisticsJson(StatisticsOf(DigitsStatus(), c, {Device("cpu", DeviceKind::kCpu)}));
  EXPECT_EQ(j["last_inference"], 1'700'000'000'123u);
  EXPECT_EQ(j["name"], "digits");
  EXPECT_EQ(j["version"], "1");
  EXPECT_EQ(j["inference_count"], 9u);
  EXPECT_EQ(j["execution_count"], 3u);
  const json& st = j["inference_stats"];
  EXPECT_EQ(st["success"], json({{"count", 5}, {"ns", 44'000}}));
  EXPECT_EQ(st["fail"]["count"], 2u);
  EXPECT_EQ(st["queue"], json({{"count", 5}, {"ns", 11'000}}));
  EXPECT_EQ(st["compute_infer"], json({{"count", 5}, {"ns", 22'000}}));
  EXPECT_TRUE(st.contains("compute_input"));
  EXPECT_TRUE(st.contains("compute_output"));
  EXPECT_EQ(j["memory_usage"][0]["byte_size"], 40'960u);
}

}  // namespace
}  // namespace modelgrid::server
