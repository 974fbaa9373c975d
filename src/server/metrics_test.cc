// FormatMetrics: the Prometheus text exposition of models and devices.
#include "server/metrics.h"

#include <gtest/gtest.h>

#include <algorithm>

#include <map>
#include <regex>
#include <set>
#include <sstream>

namespace modelgrid::server {
namespace {

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream ss(text);
  std::string line;
  while (std::getline(ss, line)) out.push_back(line);
  return out;
}

std::vector<ModelMetrics> TwoModels() {
  ModelMetrics a;
  a.status.name = "digits";
  a.status.version = "1";
  a.status.state = ModelState::kReady;
  a.status.request_bytes = 1000;
  a.status.limit_bytes = 2000;
  a.status.current_bytes = 900;
  a.status.peak_bytes = 1500;
  a.status.restarts = 2;
  a.status.context_bytes = 134217728;
  a.counters.success = 7;
  a.counters.failure = 1;
  a.counters.inferences = 9;
  a.counters.queued = 3;
  ModelMetrics b;
  b.status.name = "odd \"name\"\\with\nnewline";
  b.status.state = ModelState::kUnplaced;
  return {a, b};
}

std::vector<DeviceStatus> OneGpu() {
  DeviceStatus d;
  d.device.id = "cuda:0";
  d.device.total_bytes = 80ull << 30;
  d.device.context_bytes = 446693376;
  d.context_measured = true;
  d.reserved_bytes = 5000;
  d.used_bytes = 6000;
  d.free_bytes = 7000;
  d.buffer_bytes = 8000;
  d.workers = 2;
  return {d};
}

TEST(MetricsTest, SamplesCarryTheGridsFigures) {
  const std::string text = FormatMetrics(TwoModels(), OneGpu());
  std::set<std::string> lines;
  for (const std::string& l : Lines(text)) lines.insert(l);
  for (const char* want : {
           "modelgrid_model_ready{model=\"digits\"} 1",
           "modelgrid_model_restarts_total{model=\"digits\"} 2",
           "nv_inference_request_success{model=\"digits\",version=\"1\"} 7",
           "nv_inference_request_failure{model=\"digits\",version=\"1\"} 1",
           "nv_inference_count{model=\"digits\",version=\"1\"} 9",
           "nv_inference_pending_request_count{model=\"digits\",version=\"1\"} 3",
           "modelgrid_model_memory_bytes{model=\"digits\",kind=\"request\"} 1000",
           "modelgrid_model_memory_bytes{model=\"digits\",kind=\"limit\"} 2000",
           "modelgrid_model_memory_bytes{model=\"digits\",kind=\"current\"} 900",
           "modelgrid_model_memory_bytes{model=\"digits\",kind=\"peak\"} 1500",
           "modelgrid_model_context_bytes{model=\"digits\",measured=\"false\"} 134217728",
           "modelgrid_device_memory_bytes{device=\"cuda:0\",kind=\"total\"} 85899345920",
           "modelgrid_device_memory_bytes{device=\"cuda:0\",kind=\"reserved\"} 5000",
           "modelgrid_device_context_bytes{device=\"cuda:0\",measured=\"true\"} 446693376",
           "modelgrid_device_workers{device=\"cuda:0\"} 2",
           "modelgrid_model_ready{model=\"odd \\\"name\\\"\\\\with\\nnewline\"} 0",
       }) {
    EXPECT_TRUE(lines.count(want)) << "missing: " << want << "\n" << text;
  }
}

// Every line is a HELP or TYPE comment or a sample of the family declared
// just before it; every family is declared once.
TEST(MetricsTest, TextFollowsTheExpositionFormat) {
  const std::string text = FormatMetrics(TwoModels(), OneGpu());
  ASSERT_FALSE(text.empty());
  EXPECT_EQ(text.back(), '\n');
  const std::regex help(R"(# HELP ([a-z_]+) \S.*)");
  const std::regex type(R"(# TYPE ([a-z_]+) (counter|gauge|histogram))");
  const std::regex sample(
      R"re(([a-z_]+)(\{([a-z_]+="([^"\\\n]|\\["\\n])*")(,[a-z_]+="([^"\\\n]|\\["\\n])*")*\})? [0-9]+)re");
  std::map<std::string, int> declared;
  std::string family;
  bool histogram = false;
  std::smatch m;
  for (const std::string& line : Lines(text)) {
    if (std::regex_match(line, m, help)) {
      family = m[1];
      EXPECT_EQ(++declared[family], 1) << family << " declared twice";
    } else if (std::regex_match(line, m, type)) {
      EXPECT_EQ(m[1], family) << line;
      histogram = m[2] == "histogram";
      // modelgrid_* counters end in _total (Prometheus naming); Triton's keep its names.
      if (family.rfind("modelgrid_", 0) == 0) {
        const bool total = family.size() > 6 && family.substr(family.size() - 6) == "_total";
        EXPECT_EQ(m[2] == "counter", total) << line;
      } else {
        EXPECT_EQ(family.rfind("nv_inference_", 0), 0u) << line;
      }
    } else {
      ASSERT_TRUE(std::regex_match(line, m, sample)) << "not a sample: " << line;
      if (histogram) {  // family_bucket / _sum / _count
        const std::string name = m[1];
        EXPECT_TRUE(name == family + "_bucket" || name == family + "_sum" ||
                    name == family + "_count")
            << line;
      } else {
        EXPECT_EQ(m[1], family) << line;
      }
    }
  }
  EXPECT_GE(declared.size(), 16u);
}

TEST(MetricsTest, LabelValuesAreEscaped) {
  EXPECT_EQ(EscapeLabelValue("plain"), "plain");
  EXPECT_EQ(EscapeLabelValue("a\"b"), "a\\\"b");
  EXPECT_EQ(EscapeLabelValue("a\\b"), "a\\\\b");
  EXPECT_EQ(EscapeLabelValue("a\nb"), "a\\nb");
}

TEST(MetricsTest, DynamicMemoryFamilies) {
  std::vector<ModelMetrics> models = TwoModels();
  models[0].status.state = ModelState::kSwapped;
  models[0].status.borrowed_bytes = 33554432;
  models[0].status.swapped_bytes = 46796608;
  models[0].status.swaps_out = 3;
  models[0].status.swaps_in = 2;
  models[0].status.evictions = 4;
  models[0].status.collisions = {{"swap/reclaimed", 5}, {"wait/timed_out", 1}};
  std::vector<DeviceStatus> devices = OneGpu();
  devices[0].capacity_bytes = 9000;
  devices[0].borrowed_bytes = 1234;
  devices[0].swapped_bytes = 4321;
  const std::vector<SwapEvent> swaps = {{"digits", "out", 10, 50},
                                        {"digits", "out", 10, 5'000},
                                        {"digits", "in", 10, 2'000'000},
                                        {"digits", "reload", 10, 20'000'000},
                                        {"digits", "evict", 10, 0}};
  const std::string text = FormatMetrics(models, devices, swaps);
  auto has = [&](const std::string& line) {
    const auto lines = Lines(text);
    return std::find(lines.begin(), lines.end(), line) != lines.end();
  };
  EXPECT_TRUE(has(R"(modelgrid_model_memory_bytes{model="digits",kind="borrowed"} 33554432)"));
  EXPECT_TRUE(has(R"(modelgrid_model_memory_bytes{model="digits",kind="swapped"} 46796608)"));
  EXPECT_TRUE(has(R"(modelgrid_model_state{model="digits",state="swapped"} 1)"));
  EXPECT_TRUE(has(
      R"(modelgrid_model_collisions_total{model="digits",resolver="swap",outcome="reclaimed"} 5)"));
  EXPECT_TRUE(has(
      R"(modelgrid_model_collisions_total{model="digits",resolver="wait",outcome="timed_out"} 1)"));
  EXPECT_TRUE(has(R"(modelgrid_model_swaps_total{model="digits",direction="out"} 3)"));
  EXPECT_TRUE(has(R"(modelgrid_model_swaps_total{model="digits",direction="in"} 2)"));
  EXPECT_TRUE(has(R"(modelgrid_model_evictions_total{model="digits"} 4)"));
  EXPECT_TRUE(has(R"(modelgrid_device_memory_bytes{device="cuda:0",kind="borrowed"} 1234)"));
  EXPECT_TRUE(has(R"(modelgrid_device_memory_bytes{device="cuda:0",kind="swapped"} 4321)"));
  // Two swaps out (50 us, 5 ms), two in (2 s, a 20 s reload); evictions are no swaps.
  EXPECT_TRUE(has(R"(modelgrid_swap_duration_us_bucket{direction="out",le="100"} 1)"));
  EXPECT_TRUE(has(R"(modelgrid_swap_duration_us_bucket{direction="out",le="10000"} 2)"));
  EXPECT_TRUE(has(R"(modelgrid_swap_duration_us_count{direction="out"} 2)"));
  EXPECT_TRUE(has(R"(modelgrid_swap_duration_us_sum{direction="out"} 5050)"));
  EXPECT_TRUE(has(R"(modelgrid_swap_duration_us_bucket{direction="in",le="1000000"} 0)"));
  EXPECT_TRUE(has(R"(modelgrid_swap_duration_us_bucket{direction="in",le="10000000"} 1)"));
  EXPECT_TRUE(has(R"(modelgrid_swap_duration_us_bucket{direction="in",le="+Inf"} 2)"));
  EXPECT_TRUE(has(R"(modelgrid_swap_duration_us_sum{direction="in"} 22000000)"));
}

}  // namespace
}  // namespace modelgrid::server
