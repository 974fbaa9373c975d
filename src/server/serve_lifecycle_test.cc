// `modelgrid serve` as a process: started from a config file, loads and
// unloads a model over HTTP, exits 0 on SIGTERM; exit codes 2 for bad flags
// and config, 1 for a port that is taken. Every wait is bounded.

#include <gtest/gtest.h>

#include <fstream>

#include "server/serve_test_util.h"

namespace modelgrid::server_test {
namespace {

using nlohmann::json;

// A server of its own: started from a config file, loads and unloads
// digits, then exits 0 on SIGTERM.
TEST(HttpServerLifecycleTest, LoadUnloadLoadThenSigterm) {
  auto zoo = Zoo();
  if (!zoo) GTEST_SKIP() << "small zoo not generated";
  const fs::path dir = MakeTempDir("lifecycle");
  CopyModels(*zoo, dir / "models", {"digits"});
  std::ofstream(dir / "modelgrid.yaml")
      << "repository: models\ndevices: [cpu]\nisolation: none\nhttp_port: 0\n"
      << "log_file: serve.jsonl\nlog_format: json\naccess_log: true\nlog_max_files: 2\n";
  ServeProcess server;
  ASSERT_TRUE(
      server.Start({"serve", "--config", (dir / "modelgrid.yaml").string()}, dir / "serve.log"));
  auto port = server.WaitServing(kStartTimeout);
  ASSERT_TRUE(port.has_value()) << server.Output();
  EXPECT_NE(server.stdout_text().find("ready    digits on cpu"), std::string::npos)
      << server.Output();

  auto reserved = [&] {
    return Get(*port, "/v2/modelgrid/devices").json["devices"][0]["reserved_bytes"].get<uint64_t>();
  };
  const uint64_t loaded = reserved();
  const uint64_t request =
      Get(*port, "/v2/modelgrid/models").json["models"][0]["request_bytes"].get<uint64_t>();
  ASSERT_GT(request, 0u);

  Reply unload = Post(*port, "/v2/repository/models/digits/unload", "");
  ASSERT_EQ(unload.status, 200) << unload.body;
  EXPECT_EQ(unload.json["state"], "unloaded");
  EXPECT_EQ(reserved(), loaded - request);
  json one = {{"inputs",
               {{{"name", "input"},
                 {"shape", {1, 64}},
                 {"datatype", "FP32"},
                 {"data", std::vector<float>(64, 0.25f)}}}}};
  EXPECT_EQ(Post(*port, "/v2/models/digits/infer", one.dump()).status, 503);
  EXPECT_EQ(Get(*port, "/v2/models/digits/ready").status, 503);
  Reply index = Post(*port, "/v2/repository/index", "{}");
  ASSERT_EQ(index.json.size(), 1u) << index.body;
  EXPECT_EQ(index.json[0]["state"], "UNAVAILABLE");
  EXPECT_EQ(Post(*port, "/v2/repository/index", R"({"ready":true})").json.size(), 0u);
  Reply again = Post(*port, "/v2/repository/models/digits/unload", "");
  EXPECT_EQ(again.status, 400) << again.body;

  Reply load = Post(*port, "/v2/repository/models/digits/load", "");
  ASSERT_EQ(load.status, 200) << load.body;
  EXPECT_EQ(load.json["state"], "ready");
  EXPECT_EQ(reserved(), loaded);
  EXPECT_EQ(Post(*port, "/v2/models/digits/infer", one.dump()).status, 200);
  EXPECT_EQ(Post(*port, "/v2/repository/models/nosuchmodel/load", "").status, 404);
  Reply params =
      Post(*port, "/v2/repository/models/digits/load", R"({"parameters":{"config":"{}"}})");
  EXPECT_EQ(params.status, 501) << params.body;

  EXPECT_EQ(server.SignalAndWait(SIGTERM, std::chrono::seconds(10)), 0) << server.Output();
  // The log file (relative to the config file) holds JSON lines: the
  // server's own and one access line per answer, with its fields.
  std::ifstream log(dir / "serve.jsonl");
  ASSERT_TRUE(log) << "no log file";
  int lines = 0, access = 0;
  bool unload_logged = false, not_ready_logged = false;
  for (std::string line; std::getline(log, line);) {
    const json j = json::parse(line, nullptr, /*allow_exceptions=*/false);
    ASSERT_TRUE(j.is_object()) << line;
    ++lines;
    EXPECT_TRUE(j.contains("time") && j.contains("level") && j.contains("logger")) << line;
    if (j["logger"] != "access") continue;
    ++access;
    EXPECT_EQ(j["remote"], "127.0.0.1") << line;
    if (j["path"] == "/v2/repository/models/digits/unload" && j["status"] == 200) {
      unload_logged = true;
      EXPECT_EQ(j["method"], "POST");
      EXPECT_GT(j["response_bytes"].get<uint64_t>(), 0u);
    }
    if (j["path"] == "/v2/models/digits/ready" && j["status"] == 503) not_ready_logged = true;
  }
  EXPECT_GE(access, 12) << lines << " lines";
  EXPECT_TRUE(unload_logged);
  EXPECT_TRUE(not_ready_logged);
  fs::remove_all(dir);
}

// Isolation `model`: the model runs in a modelgrid-worker process, which
// is stopped and reaped when the server exits on SIGTERM.
TEST(HttpServerLifecycleTest, WorkerProcessesServeAndStopWithTheServer) {
  auto zoo = Zoo();
  if (!zoo) GTEST_SKIP() << "small zoo not generated";
  const fs::path dir = MakeTempDir("workers");
  CopyModels(*zoo, dir / "models", {"digits"});
  ServeProcess server;
  ASSERT_TRUE(server.Start({"serve", "--repository", (dir / "models").string(), "--device", "cpu",
                            "--isolation", "model", "--http-port", "0"},
                           dir / "serve.log"));
  auto port = server.WaitServing(kStartTimeout);
  ASSERT_TRUE(port.has_value()) << server.Output();
  const json model = Get(*port, "/v2/modelgrid/models").json["models"][0];
  const int64_t worker = model["worker_pid"].get<int64_t>();
  ASSERT_GT(worker, 0) << model.dump();
  EXPECT_EQ(::kill(static_cast<pid_t>(worker), 0), 0) << "worker " << worker << " not running";
  EXPECT_NE(server.stdout_text().find("worker pid " + std::to_string(worker)), std::string::npos)
      << server.Output();
  const json one = {{"inputs",
                     {{{"name", "input"},
                       {"shape", {2, 64}},
                       {"datatype", "FP32"},
                       {"data", std::vector<float>(128, 0.5f)}}}}};
  Reply r = Post(*port, "/v2/models/digits/infer", one.dump());
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json["outputs"][0]["shape"], json({2, 10})) << r.body;
  const json devices = Get(*port, "/v2/modelgrid/devices").json["devices"][0];
  EXPECT_EQ(devices["workers"], 1) << devices.dump();
  // One worker context (Device::context_bytes) on top of the model's request.
  EXPECT_EQ(devices["reserved_bytes"].get<uint64_t>(),
            model["request_bytes"].get<uint64_t>() + devices["context_bytes"].get<uint64_t>())
      << devices.dump();

  EXPECT_EQ(server.SignalAndWait(SIGTERM, std::chrono::seconds(15)), 0) << server.Output();
  EXPECT_EQ(::kill(static_cast<pid_t>(worker), 0), -1) << "worker " << worker << " outlived the server";
  fs::remove_all(dir);
}

// Exit codes: 2 for bad flags and config, 1 for a port that is taken.
TEST(HttpServerLifecycleTest, BadFlagsAndConfigExit2PortTakenExits1) {
  auto zoo = Zoo();
  if (!zoo) GTEST_SKIP() << "small zoo not generated";
  const fs::path dir = MakeTempDir("flags");
  CopyModels(*zoo, dir / "models", {"digits"});
  auto run = [&](const std::vector<std::string>& args) {
    ServeProcess p;
    EXPECT_TRUE(p.Start(args, dir / "serve.log"));
    const int code = p.WaitExit(kStartTimeout);
    return std::make_pair(code, p.Output());
  };
  const std::string repo = (dir / "models").string();
  auto [code1, out1] = run({"serve", "--repository", repo, "--http-port", "99999"});
  EXPECT_EQ(code1, 2) << out1;
  auto [code2, out2] = run({"serve", "--http-port", "0"});
  EXPECT_EQ(code2, 2) << out2;
  EXPECT_NE(out2.find("repository"), std::string::npos) << out2;
  std::ofstream(dir / "bad.yaml") << "repository: models\nhttp_prot: 80\n";
  auto [code3, out3] = run({"serve", "--config", (dir / "bad.yaml").string()});
  EXPECT_EQ(code3, 2) << out3;
  EXPECT_NE(out3.find("unknown field 'http_prot'"), std::string::npos) << out3;
  EXPECT_NE(out3.find("bad.yaml"), std::string::npos) << out3;
  auto [code4, out4] = run({"serve", "--repository", repo, "--strategy", "fastest"});
  EXPECT_EQ(code4, 2) << out4;

  // A port that is taken: startup failure.
  const int sock = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(sock, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(sock, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(::listen(sock, 1), 0);
  socklen_t len = sizeof(addr);
  ::getsockname(sock, reinterpret_cast<sockaddr*>(&addr), &len);
  const int taken = ntohs(addr.sin_port);
  auto [code5, out5] = run({"serve", "--repository", repo, "--device", "cpu", "--isolation", "none",
                            "--http-port", std::to_string(taken)});
  EXPECT_EQ(code5, 1) << out5;
  EXPECT_NE(out5.find("cannot listen"), std::string::npos) << out5;
  // The same for the gRPC port.
  auto [code6, out6] = run({"serve", "--repository", repo, "--device", "cpu", "--isolation", "none",
                            "--http-port", "0", "--grpc-port", std::to_string(taken)});
  EXPECT_EQ(code6, 1) << out6;
  EXPECT_NE(out6.find("cannot listen for gRPC on 127.0.0.1:" + std::to_string(taken)),
            std::string::npos)
      << out6;
  ::close(sock);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace modelgrid::server_test
