// The real `modelgrid serve` with more models than its device holds
// (`--device cpu=CAP`), talked to over HTTP on 127.0.0.1: the models that do
// not fit are on standby and load on their first request, evicting idle
// ones, with no client error; reconfiguration while serving; the dynamic
// memory families on /metrics.
#include <gtest/gtest.h>

#include <fstream>

#include "server/serve_test_util.h"

namespace modelgrid::server_test {
namespace {

using nlohmann::json;

json DigitsInput(float value) {
  return {{"inputs",
           {{{"name", "input"},
             {"shape", {1, 64}},
             {"datatype", "FP32"},
             {"data", std::vector<float>(64, value)}}}}};
}

json ModelEntry(int port, const std::string& name) {
  const Reply models = Get(port, "/v2/modelgrid/models");  // outlives the loop (C++20)
  for (const json& m : models.json["models"]) {
    if (m["name"] == name) return m;
  }
  return json();
}

// Three copies of digits, each charged a 128 MiB worker context on the CPU
// (isolation model): a 300 MiB device holds two at once.
TEST(ServeMemoryTest, MoreModelsThanFitAreServedInTurnWithoutAnError) {
  auto zoo = Zoo();
  if (!zoo) GTEST_SKIP() << "small zoo not generated";
  const fs::path dir = MakeTempDir("memory");
  for (const char* name : {"digits_a", "digits_b", "digits_c"}) {
    fs::copy(*zoo / "digits", dir / "models" / name, fs::copy_options::recursive);
  }
  ServeProcess server;
  ASSERT_TRUE(server.Start({"serve", "--repository", (dir / "models").string(), "--device",
                            "cpu=300MiB", "--http-port", "0", "--min-residency-ms", "0",
                            "--worker-threads", "1"},
                           dir / "serve.log"));
  auto port = server.WaitServing(kStartTimeout);
  ASSERT_TRUE(port.has_value()) << server.Output();

  int ready = 0, standby = 0;
  const Reply start = Get(*port, "/v2/modelgrid/models");
  for (const json& m : start.json["models"]) {
    ready += m["state"] == "ready";
    standby += m["state"] == "standby";
  }
  EXPECT_EQ(ready, 2);
  EXPECT_EQ(standby, 1);
  EXPECT_EQ(Get(*port, "/v2/health/ready").status, 200) << "standby models count as ready";

  // The answer every copy must give (same weights): the first one's.
  Reply first = Post(*port, "/v2/models/digits_a/infer", DigitsInput(0.5f).dump());
  ASSERT_EQ(first.status, 200) << first.body;
  const json expected = first.json["outputs"][0]["data"];
  for (int round = 0; round < 3; ++round) {
    for (const char* name : {"digits_a", "digits_b", "digits_c"}) {
      Reply r = Post(*port, std::string("/v2/models/") + name + "/infer", DigitsInput(0.5f).dump());
      ASSERT_EQ(r.status, 200) << name << ": " << r.body;
      EXPECT_EQ(r.json["outputs"][0]["data"], expected) << name;
    }
  }
  uint64_t evictions = 0;
  const Reply after = Get(*port, "/v2/modelgrid/models");
  for (const json& m : after.json["models"]) {
    evictions += m["evictions"].get<uint64_t>();
  }
  EXPECT_GE(evictions, 3u) << "round robin over 3 models on room for 2 evicts every round";
  const json device = Get(*port, "/v2/modelgrid/devices").json["devices"][0];
  EXPECT_LE(device["reserved_bytes"].get<uint64_t>(), device["capacity_bytes"].get<uint64_t>());
  EXPECT_EQ(device["workers"], 2);

  // Reconfiguration while serving.
  Reply changed = Post(*port, "/v2/modelgrid/models/digits_b/config",
                       R"({"priority": 7, "resolver": "swap", "pinned": true})");
  ASSERT_EQ(changed.status, 200) << changed.body;
  EXPECT_EQ(changed.json["priority"], 7);
  EXPECT_EQ(changed.json["resolver"], "swap");
  EXPECT_EQ(changed.json["pinned"], true);
  EXPECT_EQ(ModelEntry(*port, "digits_b")["priority"], 7);
  Reply bad = Post(*port, "/v2/modelgrid/models/digits_b/config", R"({"resolver": "teleport"})");
  EXPECT_EQ(bad.status, 400) << bad.body;
  EXPECT_NE(bad.body.find("teleport"), std::string::npos) << bad.body;
  EXPECT_EQ(Post(*port, "/v2/modelgrid/models/digits_b/config", R"({"colour": 1})").status, 400);
  EXPECT_EQ(Post(*port, "/v2/modelgrid/models/nosuch/config", R"({"priority": 1})").status, 404);
  Reply low = Post(*port, "/v2/modelgrid/models/digits_b/config",
                   R"({"request": "1MiB", "limit": "512KiB"})");
  EXPECT_EQ(low.status, 400) << low.body;
  Reply strategy = Post(*port, "/v2/modelgrid/strategy", R"({"strategy": "balance"})");
  ASSERT_EQ(strategy.status, 200) << strategy.body;
  const json changes = Get(*port, "/v2/modelgrid/changes").json;
  EXPECT_EQ(changes["strategy"], "balance");
  ASSERT_EQ(changes["changes"].size(), 2u) << changes.dump();
  EXPECT_NE(changes["changes"][0].get<std::string>().find("digits_b: priority 0 -> 7"),
            std::string::npos);

  const std::string metrics = Get(*port, "/metrics").body;
  EXPECT_NE(metrics.find("modelgrid_model_evictions_total{model=\"digits_a\"}"), std::string::npos);
  EXPECT_NE(metrics.find("modelgrid_model_collisions_total{model="), std::string::npos);
  EXPECT_NE(metrics.find("modelgrid_swap_duration_us_count{direction=\"in\"}"), std::string::npos);
  const std::string state = ModelEntry(*port, "digits_b")["state"].get<std::string>();
  EXPECT_NE(metrics.find("modelgrid_model_state{model=\"digits_b\",state=\"" + state + "\"} 1"),
            std::string::npos)
      << metrics;

  EXPECT_EQ(server.SignalAndWait(SIGTERM, std::chrono::seconds(20)), 0) << server.Output();
  fs::remove_all(dir);
}

}  // namespace
}  // namespace modelgrid::server_test
