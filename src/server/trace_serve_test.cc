// Triton's trace and logging extensions through the real `modelgrid serve`
// (digits of the small zoo, in process, with --log-file and an admin
// token): trace settings set over HTTP, infers run, the trace file read
// back (the sampled count against trace_rate / trace_count, the five
// timestamps in order, the model's name), a model's own settings and their
// clearing, refusals naming the setting; the log settings round trip and
// log_info off keeping info lines out of the log file. Every wait is
// bounded; everything on 127.0.0.1.
#include <gtest/gtest.h>

#include <fstream>

#include "server/serve_test_util.h"

namespace modelgrid::server_test {
namespace {

using nlohmann::json;

constexpr const char* kToken = "trace-secret";
const httplib::Headers kAuth = {{"Authorization", std::string("Bearer ") + kToken}};

std::vector<json> Records(const fs::path& path) {
  std::vector<json> out;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    out.push_back(json::parse(line, nullptr, /*allow_exceptions=*/false));
  }
  return out;
}

std::string FileText(const fs::path& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

size_t Count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// One traced request's record: digits, its version, the five stamps in order.
void ExpectRecord(const json& r, const std::string& version) {
  ASSERT_TRUE(r.is_object()) << r;
  EXPECT_EQ(r["model_name"], "digits");
  if (!version.empty()) {
    EXPECT_EQ(r["model_version"].dump(), version) << r;
  }
  EXPECT_GT(r["id"].get<uint64_t>(), 0u);
  const json& stamps = r["timestamps"];
  ASSERT_EQ(stamps.size(), 5u) << r;
  const char* names[] = {"REQUEST_START", "QUEUE_START", "COMPUTE_START", "COMPUTE_END",
                         "REQUEST_END"};
  for (size_t i = 0; i < 5; ++i) {
    EXPECT_EQ(stamps[i]["name"], names[i]) << r;
    if (i > 0) {
      EXPECT_LE(stamps[i - 1]["ns"].get<int64_t>(), stamps[i]["ns"].get<int64_t>()) << r;
    }
  }
  EXPECT_LT(stamps[0]["ns"].get<int64_t>(), stamps[4]["ns"].get<int64_t>()) << r;
}

class TraceServeTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto zoo = Zoo();
    if (!zoo) return;
    dir_ = new fs::path(MakeTempDir("trace_files"));
    server_ = new SuiteServer();
    server_->Start(*zoo, "trace-serve", {"digits"},
                   {"--device", "cpu", "--isolation", "none", "--http-port", "0", "--admin-token",
                    kToken, "--log-file", (*dir_ / "serve.txt").string()});
  }
  static void TearDownTestSuite() {
    if (server_) server_->Stop();
    delete server_;
    server_ = nullptr;
    if (dir_) fs::remove_all(*dir_);
    delete dir_;
    dir_ = nullptr;
  }
  void SetUp() override {
    if (!server_) GTEST_SKIP() << "small zoo not generated";
    ASSERT_GT(server_->port(), 0) << server_->Output();
    port_ = server_->port();
    // Every test starts from tracing off, the global settings at their
    // defaults and digits without settings of its own.
    Reply off = Post(port_, "/v2/trace/setting",
                     R"({"trace_level":["OFF"],"trace_rate":"1000","trace_count":"-1",
                         "log_frequency":"0"})",
                     kAuth);
    ASSERT_EQ(off.status, 200) << off.body;
    Reply clear = Post(port_, "/v2/models/digits/trace/setting",
                       R"({"trace_file":null,"trace_level":null,"trace_rate":null,
                           "trace_count":null,"log_frequency":null})",
                       kAuth);
    ASSERT_EQ(clear.status, 200) << clear.body;
    const json version = Get(port_, "/v2/models/digits").json["versions"];
    version_ = version.is_array() && !version.empty() ? version[0].get<std::string>() : "";
  }

  void Infer(int n) {
    const json one = {{"inputs",
                       {{{"name", "input"},
                         {"shape", {1, 64}},
                         {"datatype", "FP32"},
                         {"data", std::vector<float>(64, 0.5f)}}}}};
    for (int i = 0; i < n; ++i) {
      Reply r = Post(port_, "/v2/models/digits/infer", one.dump());
      ASSERT_EQ(r.status, 200) << r.body;
    }
  }
  Reply SetGlobal(const json& settings) {
    return Post(port_, "/v2/trace/setting", settings.dump(), kAuth);
  }
  Reply SetModel(const json& settings) {
    return Post(port_, "/v2/models/digits/trace/setting", settings.dump(), kAuth);
  }
  fs::path File(const std::string& name) const { return *dir_ / name; }

  static fs::path* dir_;
  static SuiteServer* server_;
  int port_ = 0;
  std::string version_;
};

fs::path* TraceServeTest::dir_ = nullptr;
SuiteServer* TraceServeTest::server_ = nullptr;

TEST_F(TraceServeTest, MetadataListsTheExtensions) {
  const json ext = Get(port_, "/v2").json["extensions"];
  EXPECT_NE(std::find(ext.begin(), ext.end(), "trace"), ext.end()) << ext;
  EXPECT_NE(std::find(ext.begin(), ext.end(), "logging"), ext.end()) << ext;
}

TEST_F(TraceServeTest, EveryRateThInferIsTracedUntilTheCountIsSpent) {
  const fs::path file = File("rate.jsonl");
  Reply set = SetGlobal(
      {{"trace_file", file.string()}, {"trace_level", {"TIMESTAMPS"}}, {"trace_rate", "2"}});
  ASSERT_EQ(set.status, 200) << set.body;
  EXPECT_EQ(set.json, json({{"trace_file", file.string()},
                            {"trace_level", {"TIMESTAMPS"}},
                            {"trace_rate", "2"},
                            {"trace_count", "-1"},
                            {"log_frequency", "0"}}));
  EXPECT_EQ(Get(port_, "/v2/trace/setting").json, set.json);
  Infer(6);
  auto records = Records(file);
  ASSERT_EQ(records.size(), 3u) << FileText(file);
  for (const json& r : records) ExpectRecord(r, version_);
  EXPECT_LT(records[0]["id"].get<uint64_t>(), records[1]["id"].get<uint64_t>());

  ASSERT_EQ(SetGlobal({{"trace_rate", "1"}, {"trace_count", "2"}}).status, 200);
  Infer(5);
  EXPECT_EQ(Records(file).size(), 5u) << FileText(file);
  EXPECT_EQ(Get(port_, "/v2/trace/setting").json["trace_count"], "0");
}

TEST_F(TraceServeTest, LogFrequencyKeepsRecordsUntilThatManyAreWaiting) {
  const fs::path file = File("frequency.jsonl");
  ASSERT_EQ(SetGlobal({{"trace_file", file.string()},
                       {"trace_level", {"TIMESTAMPS"}},
                       {"trace_rate", "1"},
                       {"log_frequency", "3"}})
                .status,
            200);
  Infer(2);
  EXPECT_EQ(Records(file).size(), 0u);
  Infer(1);
  EXPECT_EQ(Records(file).size(), 3u);
  Infer(1);
  EXPECT_EQ(Records(file).size(), 3u);
  ASSERT_EQ(SetGlobal({{"trace_level", {"OFF"}}}).status, 200);
  EXPECT_EQ(Records(file).size(), 4u) << "a settings change writes what was kept";
}

TEST_F(TraceServeTest, ModelSettingsOverrideTheGlobalOnesUntilCleared) {
  const fs::path global = File("global.jsonl"), own = File("own.jsonl");
  ASSERT_EQ(SetGlobal({{"trace_file", global.string()}, {"trace_rate", "1"}}).status, 200);
  Reply set = SetModel({{"trace_file", own.string()}, {"trace_level", {"TIMESTAMPS"}}});
  ASSERT_EQ(set.status, 200) << set.body;
  EXPECT_EQ(set.json["trace_level"], json({"TIMESTAMPS"}));
  EXPECT_EQ(set.json["trace_rate"], "1") << "the global rate where the model sets none";
  EXPECT_EQ(Get(port_, "/v2/trace/setting").json["trace_level"], json({"OFF"}));
  EXPECT_EQ(Get(port_, "/v2/models/digits/trace/setting").json, set.json);
  Infer(2);
  EXPECT_EQ(Records(own).size(), 2u);
  EXPECT_EQ(Records(global).size(), 0u);

  // Null and an empty array clear: the global settings apply again.
  Reply cleared = SetModel({{"trace_file", nullptr}, {"trace_level", json::array()}});
  ASSERT_EQ(cleared.status, 200) << cleared.body;
  EXPECT_EQ(cleared.json, Get(port_, "/v2/trace/setting").json);
  Infer(2);
  EXPECT_EQ(Records(own).size(), 2u);

  // The model's own rate over the global level and file.
  ASSERT_EQ(SetGlobal({{"trace_level", {"TIMESTAMPS"}}}).status, 200);
  Reply rate = SetModel({{"trace_rate", "3"}});
  ASSERT_EQ(rate.status, 200) << rate.body;
  EXPECT_EQ(rate.json["trace_file"], global.string());
  Infer(6);
  auto records = Records(global);
  ASSERT_EQ(records.size(), 2u) << FileText(global);
  for (const json& r : records) ExpectRecord(r, version_);
}

TEST_F(TraceServeTest, BadSettingsAre400NamingTheSettingAndChangeNothing) {
  const json before = Get(port_, "/v2/trace/setting").json;
  const std::vector<std::pair<json, std::string>> cases = {
      {{{"trace_rate", "0"}}, "trace_rate"},
      {{{"trace_rate", true}}, "trace_rate: expected"},
      {{{"trace_count", "-2"}}, "trace_count"},
      {{{"log_frequency", "often"}}, "log_frequency"},
      {{{"trace_level", {"TENSORS"}}}, "TENSORS is not offered"},
      {{{"trace_level", {"LOUD"}}}, "trace_level"},
      {{{"trace_bogus", "1"}, {"trace_rate", "5"}}, "'trace_bogus'"},
      {{{"trace_rate", nullptr}}, "cannot be cleared"},
      {{{"trace_level", {"TIMESTAMPS"}}, {"trace_file", ""}}, "trace_file"},
      {{{"trace_file", File("missing/t.jsonl").string()}, {"trace_rate", "5"}},
       "trace_file: cannot open"},
  };
  for (const auto& [body, words] : cases) {
    Reply r = SetGlobal(body);
    EXPECT_EQ(r.status, 400) << body << " -> " << r.body;
    EXPECT_NE(r.Error().find(words), std::string::npos) << body << " -> " << r.body;
  }
  EXPECT_EQ(Get(port_, "/v2/trace/setting").json, before);
  EXPECT_EQ(Post(port_, "/v2/models/nope/trace/setting", "{}", kAuth).status, 404);
  EXPECT_EQ(Get(port_, "/v2/models/nope/trace/setting").status, 404);
  Reply malformed = Post(port_, "/v2/trace/setting", "{", kAuth);
  EXPECT_EQ(malformed.status, 400) << malformed.body;
  Reply no_token = Post(port_, "/v2/trace/setting", R"({"trace_rate":"5"})");
  EXPECT_EQ(no_token.status, 403) << no_token.body;
  EXPECT_EQ(Get(port_, "/v2/trace/setting").json, before);
}

TEST_F(TraceServeTest, LogSettingsRoundTripAndRefusals) {
  Reply got = Get(port_, "/v2/logging");
  ASSERT_EQ(got.status, 200) << got.body;
  EXPECT_EQ(got.json, json({{"log_file", File("serve.txt").string()},
                            {"log_info", true},
                            {"log_warning", true},
                            {"log_error", true},
                            {"log_verbose_level", 0},
                            {"log_format", "text"}}));
  Reply set = Post(port_, "/v2/logging", R"({"log_verbose_level":1})", kAuth);
  ASSERT_EQ(set.status, 200) << set.body;
  json expected = got.json;
  expected["log_verbose_level"] = 1;
  EXPECT_EQ(set.json, expected);
  EXPECT_EQ(Get(port_, "/v2/logging").json, expected);

  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"({"log_info":"no"})", "log_info: expected a boolean, got string"},
      {R"({"log_verbose_level":-1})", "log_verbose_level: expected an integer"},
      {R"({"log_bogus":1,"log_info":true})", "'log_bogus'"},
      {R"({"log_file":"/tmp/elsewhere.log"})", "log_file: cannot be changed at run time"},
      {R"({"log_format":"ISO8601"})", "log_format"},
      {R"({"log_verbose_level":2,"log_error":1})", "log_error: expected a boolean"},
  };
  for (const auto& [body, words] : cases) {
    Reply r = Post(port_, "/v2/logging", body, kAuth);
    EXPECT_EQ(r.status, 400) << body << " -> " << r.body;
    EXPECT_NE(r.Error().find(words), std::string::npos) << body << " -> " << r.body;
  }
  EXPECT_EQ(Get(port_, "/v2/logging").json, expected) << "refused updates change nothing";
  EXPECT_EQ(Post(port_, "/v2/logging", R"({"log_info":false})").status, 403);
  // Triton's document spells two names in the plural; both are read.
  Reply plural =
      Post(port_, "/v2/logging", R"({"log_warnings":true,"log_verbose_level":0})", kAuth);
  ASSERT_EQ(plural.status, 200) << plural.body;
  EXPECT_EQ(plural.json, got.json);
}

TEST_F(TraceServeTest, LogInfoOffKeepsInfoLinesOutOfTheLogFile) {
  const fs::path log = File("serve.txt");
  auto reconfigure = [&](int priority) {
    Reply r = Post(port_, "/v2/modelgrid/models/digits/config",
                   json({{"priority", priority}}).dump(), kAuth);
    ASSERT_EQ(r.status, 200) << r.body;
  };
  reconfigure(71);  // an info line: "reconfigured: ... priority N -> 71"
  ASSERT_EQ(Count(FileText(log), " -> 71"), 1u) << FileText(log);
  ASSERT_EQ(Post(port_, "/v2/logging", R"({"log_info":false})", kAuth).status, 200);
  reconfigure(72);
  EXPECT_EQ(Count(FileText(log), "priority 71 -> 72"), 0u) << FileText(log);
  ASSERT_EQ(Post(port_, "/v2/logging", R"({"log_info":true})", kAuth).status, 200);
  reconfigure(73);
  EXPECT_EQ(Count(FileText(log), "priority 72 -> 73"), 1u) << FileText(log);
}

// The --trace-* flags set the global settings at start.
TEST(TraceFlagsTest, FlagsTraceFromTheStart) {
  auto zoo = Zoo();
  if (!zoo) GTEST_SKIP() << "small zoo not generated";
  const fs::path dir = MakeTempDir("trace_flags");
  CopyModels(*zoo, dir / "models", {"digits"});
  const fs::path file = dir / "start.jsonl";
  ServeProcess server;
  ASSERT_TRUE(server.Start(
      {"serve", "--repository", (dir / "models").string(), "--device", "cpu", "--isolation", "none",
       "--http-port", "0", "--trace-file", file.string(), "--trace-level", "TIMESTAMPS",
       "--trace-rate", "1", "--trace-count", "2", "--trace-log-frequency", "0"},
      dir / "serve.log"));
  auto port = server.WaitServing(kStartTimeout);
  ASSERT_TRUE(port.has_value()) << server.Output();
  EXPECT_EQ(Get(*port, "/v2/trace/setting").json, json({{"trace_file", file.string()},
                                                        {"trace_level", {"TIMESTAMPS"}},
                                                        {"trace_rate", "1"},
                                                        {"trace_count", "2"},
                                                        {"log_frequency", "0"}}));
  const json one = {{"inputs",
                     {{{"name", "input"},
                       {"shape", {1, 64}},
                       {"datatype", "FP32"},
                       {"data", std::vector<float>(64, 0.5f)}}}}};
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(Post(*port, "/v2/models/digits/infer", one.dump()).status, 200);
  }
  auto records = Records(file);
  ASSERT_EQ(records.size(), 2u) << FileText(file);
  for (const json& r : records) ExpectRecord(r, "");
  EXPECT_EQ(server.SignalAndWait(SIGTERM, kExitTimeout), 0) << server.Output();

  // --trace-format triton: Triton's JSON arrays, every log_frequency
  // records to FILE.N; the rest when the server stops.
  const fs::path triton_file = dir / "trace.json";
  ServeProcess triton;
  ASSERT_TRUE(triton.Start(
      {"serve", "--repository", (dir / "models").string(), "--device", "cpu", "--isolation",
       "none", "--http-port", "0", "--trace-file", triton_file.string(), "--trace-level",
       "TIMESTAMPS", "--trace-rate", "1", "--trace-log-frequency", "2", "--trace-format", "triton"},
      dir / "triton.log"));
  port = triton.WaitServing(kStartTimeout);
  ASSERT_TRUE(port.has_value()) << triton.Output();
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(Post(*port, "/v2/models/digits/infer", one.dump()).status, 200);
  }
  const json first = json::parse(FileText(triton_file.string() + ".0"), nullptr, false);
  ASSERT_TRUE(first.is_array()) << FileText(triton_file.string() + ".0");
  ASSERT_EQ(first.size(), 2u) << first;
  for (const json& r : first) ExpectRecord(r, "");
  EXPECT_EQ(triton.SignalAndWait(SIGTERM, kExitTimeout), 0) << triton.Output();
  const json rest = json::parse(FileText(triton_file.string() + ".1"), nullptr, false);
  ASSERT_TRUE(rest.is_array()) << "the record kept is written when the server stops";
  ASSERT_EQ(rest.size(), 1u) << rest;
  ExpectRecord(rest[0], "");

  // A bad flag is a usage error (exit 2) before anything loads.
  ServeProcess bad_format;
  ASSERT_TRUE(bad_format.Start({"serve", "--repository", (dir / "models").string(), "--device",
                                "cpu", "--http-port", "0", "--trace-format", "xml"},
                               dir / "bad_format.log"));
  EXPECT_EQ(bad_format.WaitExit(kExitTimeout), 2) << bad_format.Output();
  EXPECT_NE(bad_format.Output().find("--trace-format"), std::string::npos) << bad_format.Output();
  ServeProcess bad;
  ASSERT_TRUE(bad.Start({"serve", "--repository", (dir / "models").string(), "--device", "cpu",
                         "--http-port", "0", "--trace-level", "TENSORS"},
                        dir / "bad.log"));
  EXPECT_EQ(bad.WaitExit(kExitTimeout), 2) << bad.Output();
  EXPECT_NE(bad.Output().find("TENSORS is not offered"), std::string::npos) << bad.Output();
  fs::remove_all(dir);
}

}  // namespace
}  // namespace modelgrid::server_test
