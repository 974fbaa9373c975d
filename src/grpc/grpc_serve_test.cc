// The real `modelgrid serve` on the zoo's Triton-layout repository
// (config.pbtxt only: digits with version_policy specific [1] over two
// version folders and a label_filename; tools/zoo/triton_layout.py), talked
// to over gRPC and HTTP: the whole digits test set through gRPC raw
// contents scores what PyTorch recorded when the zoo was made, byte for
// byte what HTTP returns; the configuration is config.pbtxt's;
// classification carries labels.txt; the unserved version is NOT_FOUND;
// Triton's trace and logging extensions over gRPC (TraceSetting, LogSettings).
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>

#include "grpc/grpc_client.h"
#include "server/serve_test_util.h"
#include "testing/zoo.h"

namespace modelgrid::server_test {
namespace {

using grpc_internal::GrpcClient;
using nlohmann::json;

class GrpcServeTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto zoo = testing::TritonZoo();
    if (!zoo) return;
    zoo_ = new fs::path(*zoo);
    server_ = new SuiteServer();
    // vit_b_16's instance_group asks for 2 instances (KIND_AUTO): two
    // simulated devices give it room for both.
    server_->Start(*zoo, "grpc-serve", {"digits", "vit_b_16"},
                   {"--device", "cpu", "--device", "sim:a=8GiB", "--device", "sim:b=8GiB",
                    "--isolation", "model", "--http-port", "0"});
  }
  static void TearDownTestSuite() {
    if (server_) server_->Stop();
    delete server_;
    delete zoo_;
    server_ = nullptr;
    zoo_ = nullptr;
  }
  void SetUp() override {
    if (!zoo_) GTEST_SKIP() << "MODELGRID_TEST_TRITON_ZOO is not set or not a folder";
    ASSERT_GT(server_->port(), 0) << server_->Output();
    ASSERT_GT(server_->grpc_port(), 0) << server_->Output();
    target_ = "127.0.0.1:" + std::to_string(server_->grpc_port());
  }

  static fs::path* zoo_;
  static SuiteServer* server_;
  std::string target_;
};

fs::path* GrpcServeTest::zoo_ = nullptr;
SuiteServer* GrpcServeTest::server_ = nullptr;

TEST_F(GrpcServeTest, TheTestSetScoresWhatPyTorchRecordedAndEqualsHttp) {
  auto small = testing::Zoo();
  if (!small) GTEST_SKIP() << "MODELGRID_TEST_ZOO is not set";
  std::ifstream in(*small / "digits" / "test_set.json");
  ASSERT_TRUE(in) << "the small zoo's digits test set";
  const json set = json::parse(in);
  const size_t count = set["inputs"].size();
  GrpcClient client(target_);
  size_t correct = 0;
  for (size_t first = 0; first < count; first += 40) {
    const size_t rows = std::min<size_t>(40, count - first);
    InferRequest request;
    InferTensor t;
    t.name = "input";
    t.datatype = DataType::kFP32;
    t.shape = {static_cast<int64_t>(rows), 64};
    for (size_t i = first; i < first + rows; ++i) {
      const std::vector<float> row = set["inputs"][i].get<std::vector<float>>();
      t.data.append(reinterpret_cast<const char*>(row.data()), row.size() * sizeof(float));
    }
    request.inputs.push_back(t);
    auto got = client.Infer("digits", "", request);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    ASSERT_EQ(got->outputs.size(), 1u);
    const InferTensor& logits = got->outputs[0];
    ASSERT_EQ(logits.shape, (std::vector<int64_t>{static_cast<int64_t>(rows), 10}));
    std::vector<float> v(rows * 10);
    std::memcpy(v.data(), logits.data.data(), v.size() * sizeof(float));
    for (size_t r = 0; r < rows; ++r) {
      const size_t best = std::max_element(v.begin() + r * 10, v.begin() + r * 10 + 10) -
                          (v.begin() + r * 10);
      if (static_cast<int64_t>(best) == set["labels"][first + r].get<int64_t>()) ++correct;
    }
    if (first == 0) {
      // The same rows over HTTP with binary outputs: the same bytes.
      InferRequest http_request = request;
      http_request.outputs = {RequestedOutput{"logits", true, json::object()}};
      auto body = EncodeInferRequest(http_request, /*binary_inputs=*/true);
      ASSERT_TRUE(body.ok());
      auto http = MakeClient(server_->port());
      httplib::Headers headers = {
          {"Inference-Header-Content-Length", std::to_string(*body->json_header_length)}};
      auto r = http.Post("/v2/models/digits/infer", headers, body->body, "application/octet-stream");
      ASSERT_TRUE(r) << "HTTP request failed";
      ASSERT_EQ(r->status, 200) << r->body;
      auto decoded = DecodeInferResponse(
          r->body, std::stoul(r->get_header_value("Inference-Header-Content-Length")));
      ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
      EXPECT_EQ(decoded->outputs.at(0).data, logits.data);
    }
  }
  EXPECT_EQ(correct, set["correct"].get<size_t>()) << "of " << count;
}

// instance_group { count: 2 } is two instances, on two devices, both
// serving; the configuration says so.
TEST_F(GrpcServeTest, AnInstanceGroupOfTwoRunsTwoInstances) {
  Reply devices = Get(server_->port(), "/v2/modelgrid/devices");
  ASSERT_EQ(devices.status, 200) << devices.body;
  int instances = 0;
  for (const json& d : devices.json["devices"]) {
    for (const json& m : d["models"]) {
      if (m.get<std::string>().rfind("vit_b_16", 0) == 0) ++instances;
    }
  }
  EXPECT_EQ(instances, 2) << devices.body;
  GrpcClient client(target_);
  inference::ModelConfigRequest cr;
  cr.set_name("vit_b_16");
  inference::ModelConfigResponse config;
  ASSERT_TRUE(client.stub().ModelConfig(client.Context().get(), cr, &config).ok());
  ASSERT_EQ(config.config().instance_group_size(), 1);
  EXPECT_EQ(config.config().instance_group(0).count(), 2);
  // Requests spread over both instances all answer.
  InferRequest request;
  InferTensor t;
  t.name = "input";
  t.datatype = DataType::kFP32;
  t.shape = {2, 3, 32, 32};
  t.data.assign(2 * 3 * 32 * 32 * sizeof(float), '\0');
  request.inputs.push_back(t);
  for (int i = 0; i < 6; ++i) {
    auto got = client.Infer("vit_b_16", "", request);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    EXPECT_EQ(got->outputs.at(0).shape, (std::vector<int64_t>{2, 10}));
  }
}

TEST_F(GrpcServeTest, ConfigMetadataVersionsAndLabelsAreConfigPbtxts) {
  GrpcClient client(target_);
  inference::ModelConfigRequest cr;
  cr.set_name("digits");
  inference::ModelConfigResponse config;
  grpc::Status s = client.stub().ModelConfig(client.Context().get(), cr, &config);
  ASSERT_TRUE(s.ok()) << s.error_message();
  const auto& c = config.config();
  EXPECT_EQ(c.name(), "digits");
  EXPECT_EQ(c.max_batch_size(), 64);
  ASSERT_EQ(c.input_size(), 1);
  EXPECT_EQ(c.input(0).name(), "input");
  EXPECT_EQ(c.input(0).dims(0), 64);
  EXPECT_EQ(c.output(0).name(), "logits");
  EXPECT_EQ(std::vector<int64_t>(c.dynamic_batching().preferred_batch_size().begin(),
                                 c.dynamic_batching().preferred_batch_size().end()),
            (std::vector<int64_t>{16, 64}));
  EXPECT_EQ(c.dynamic_batching().max_queue_delay_microseconds(), 200u);
  ASSERT_EQ(c.version_policy().specific().versions_size(), 1);
  EXPECT_EQ(c.version_policy().specific().versions(0), 1);
  EXPECT_EQ(c.parameters().at("INFERENCE_MODE").string_value(), "true");
  ASSERT_EQ(c.instance_group_size(), 1);
  EXPECT_EQ(c.instance_group(0).kind(), modelgrid::triton::ModelInstanceGroup::KIND_CPU);

  // The same configuration over HTTP, as Triton's JSON.
  Reply http = Get(server_->port(), "/v2/models/digits/config");
  ASSERT_EQ(http.status, 200) << http.body;
  EXPECT_EQ(http.json["max_batch_size"], 64);
  EXPECT_EQ(http.json["input"][0]["data_type"], "TYPE_FP32");
  EXPECT_EQ(http.json["version_policy"]["specific"]["versions"], json::array({1}));

  inference::ModelMetadataRequest mr;
  mr.set_name("digits");
  inference::ModelMetadataResponse meta;
  ASSERT_TRUE(client.stub().ModelMetadata(client.Context().get(), mr, &meta).ok());
  ASSERT_EQ(meta.versions_size(), 1);
  EXPECT_EQ(meta.versions(0), "1");
  mr.set_version("2");  // a version folder the policy does not select
  s = client.stub().ModelMetadata(client.Context().get(), mr, &meta);
  EXPECT_EQ(s.error_code(), grpc::NOT_FOUND);
  EXPECT_NE(s.error_message().find("serving versions '1'"), std::string::npos) << s.error_message();

  // Classification with the labels of label_filename.
  auto small = testing::Zoo();
  if (!small) GTEST_SKIP() << "MODELGRID_TEST_ZOO is not set";
  std::ifstream in(*small / "digits" / "test_set.json");
  const json set = json::parse(in);
  InferRequest request;
  InferTensor t;
  t.name = "input";
  t.datatype = DataType::kFP32;
  t.shape = {1, 64};
  const std::vector<float> row = set["inputs"][0].get<std::vector<float>>();
  t.data.assign(reinterpret_cast<const char*>(row.data()), row.size() * sizeof(float));
  request.inputs.push_back(t);
  auto plain = client.Infer("digits", "1", request);
  ASSERT_TRUE(plain.ok()) << plain.status().ToString();
  std::vector<float> v(10);
  std::memcpy(v.data(), plain->outputs.at(0).data.data(), 40);
  const size_t argmax = std::max_element(v.begin(), v.end()) - v.begin();
  request.outputs = {RequestedOutput{"logits", false, {{"classification", 2}}}};
  auto got = client.Infer("digits", "1", request);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  auto elements = SplitBytesElements(got->outputs.at(0).data);
  ASSERT_TRUE(elements.ok());
  ASSERT_EQ(elements->size(), 2u);
  std::ifstream labels_file(*zoo_ / "digits" / "labels.txt");
  std::vector<std::string> labels;
  for (std::string line; std::getline(labels_file, line);) labels.push_back(line);
  for (std::string_view e : *elements) {
    const std::string s(e);
    const size_t a = s.find(':'), b = s.find(':', a + 1);
    ASSERT_NE(b, std::string::npos) << s;
    const size_t index = std::stoul(s.substr(a + 1, b - a - 1));
    ASSERT_LT(index, labels.size());
    EXPECT_EQ(s.substr(b + 1), labels[index]) << s;
  }
  const std::string top(elements->at(0));
  EXPECT_EQ(std::stoul(top.substr(top.find(':') + 1)), argmax) << top;
}

// Triton's trace extension over gRPC (TraceSetting): digits' own settings
// sample every 2nd gRPC infer until its trace_count of 2 is spent; the
// records name digits with the five stamps in order; settings given no
// value clear digits' own ones; bad values are INVALID_ARGUMENT naming the
// setting, an unknown model NOT_FOUND.
TEST_F(GrpcServeTest, TraceSettingSamplesGrpcInfers) {
  const fs::path file =
      fs::temp_directory_path() / ("mg_grpc_trace_" + std::to_string(::getpid()) + ".jsonl");
  fs::remove(file);
  GrpcClient client(target_);
  inference::TraceSettingRequest set;
  set.set_model_name("digits");
  auto value = [&](const std::string& name, std::vector<std::string> values) {
    auto& v = (*set.mutable_settings())[name];
    for (const std::string& s : values) v.add_value(s);
  };
  value("trace_file", {file.string()});
  value("trace_level", {"TIMESTAMPS"});
  value("trace_rate", {"2"});
  value("trace_count", {"2"});
  inference::TraceSettingResponse got;
  grpc::Status s = client.stub().TraceSetting(client.Context().get(), set, &got);
  ASSERT_TRUE(s.ok()) << s.error_message();
  auto one = [&](const inference::TraceSettingResponse& r, const std::string& name) {
    auto it = r.settings().find(name);
    return it == r.settings().end() || it->second.value().empty() ? std::string("<none>")
                                                                  : it->second.value(0);
  };
  EXPECT_EQ(one(got, "trace_level"), "TIMESTAMPS");
  EXPECT_EQ(one(got, "trace_rate"), "2");
  EXPECT_EQ(one(got, "log_frequency"), "0") << "the global one";

  InferRequest request;
  InferTensor t;
  t.name = "input";
  t.datatype = DataType::kFP32;
  t.shape = {1, 64};
  t.data.assign(64 * sizeof(float), '\0');
  request.inputs.push_back(t);
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(client.Infer("digits", "", request).ok());
  std::vector<json> records;
  std::ifstream in(file);
  for (std::string line; std::getline(in, line);) records.push_back(json::parse(line));
  ASSERT_EQ(records.size(), 2u);
  const char* names[] = {"REQUEST_START", "QUEUE_START", "COMPUTE_START", "COMPUTE_END",
                         "REQUEST_END"};
  for (const json& r : records) {
    EXPECT_EQ(r["model_name"], "digits");
    EXPECT_EQ(r["model_version"], 1);
    ASSERT_EQ(r["timestamps"].size(), 5u) << r;
    for (size_t i = 0; i < 5; ++i) {
      EXPECT_EQ(r["timestamps"][i]["name"], names[i]);
      if (i > 0) {
        EXPECT_LE(r["timestamps"][i - 1]["ns"].get<int64_t>(),
                  r["timestamps"][i]["ns"].get<int64_t>());
      }
    }
  }
  inference::TraceSettingRequest read;
  read.set_model_name("digits");
  ASSERT_TRUE(client.stub().TraceSetting(client.Context().get(), read, &got).ok());
  EXPECT_EQ(one(got, "trace_count"), "0");

  // No value: cleared, the global settings (OFF) apply again.
  inference::TraceSettingRequest clear;
  clear.set_model_name("digits");
  for (const char* name : {"trace_file", "trace_level", "trace_rate", "trace_count"}) {
    (*clear.mutable_settings())[name];
  }
  inference::TraceSettingResponse cleared;
  ASSERT_TRUE(client.stub().TraceSetting(client.Context().get(), clear, &cleared).ok());
  EXPECT_EQ(one(cleared, "trace_level"), "OFF");
  EXPECT_EQ(one(cleared, "trace_rate"), "1000");

  inference::TraceSettingRequest bad;
  (*bad.mutable_settings())["trace_rate"].add_value("often");
  s = client.stub().TraceSetting(client.Context().get(), bad, &got);
  EXPECT_EQ(s.error_code(), grpc::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("trace_rate"), std::string::npos) << s.error_message();
  bad.clear_settings();
  (*bad.mutable_settings())["trace_level"].add_value("TENSORS");
  s = client.stub().TraceSetting(client.Context().get(), bad, &got);
  EXPECT_EQ(s.error_code(), grpc::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("TENSORS"), std::string::npos) << s.error_message();
  bad.set_model_name("nope");
  s = client.stub().TraceSetting(client.Context().get(), bad, &got);
  EXPECT_EQ(s.error_code(), grpc::NOT_FOUND) << s.error_message();
  fs::remove(file);
}

// Triton's logging extension over gRPC (LogSettings): the settings with
// their types, an update answered with every setting, wrong types and
// unknown names INVALID_ARGUMENT naming them.
TEST_F(GrpcServeTest, LogSettingsRoundTrip) {
  GrpcClient client(target_);
  inference::LogSettingsRequest read;
  inference::LogSettingsResponse got;
  grpc::Status s = client.stub().LogSettings(client.Context().get(), read, &got);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_TRUE(got.settings().at("log_info").bool_param());
  EXPECT_TRUE(got.settings().at("log_error").bool_param());
  EXPECT_EQ(got.settings().at("log_file").string_param(), "");
  EXPECT_EQ(got.settings().at("log_format").string_param(), "text");
  EXPECT_EQ(got.settings().at("log_verbose_level").uint32_param(), 0u);

  inference::LogSettingsRequest set;
  (*set.mutable_settings())["log_verbose_level"].set_uint32_param(1);
  ASSERT_TRUE(client.stub().LogSettings(client.Context().get(), set, &got).ok());
  EXPECT_EQ(got.settings().at("log_verbose_level").uint32_param(), 1u);
  EXPECT_TRUE(got.settings().at("log_warning").bool_param());
  EXPECT_EQ(got.settings_size(), 6);

  inference::LogSettingsRequest bad;
  (*bad.mutable_settings())["log_info"].set_string_param("yes");
  s = client.stub().LogSettings(client.Context().get(), bad, &got);
  EXPECT_EQ(s.error_code(), grpc::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("log_info: expected a boolean, got string"), std::string::npos)
      << s.error_message();
  bad.clear_settings();
  (*bad.mutable_settings())["log_colour"].set_bool_param(true);
  s = client.stub().LogSettings(client.Context().get(), bad, &got);
  EXPECT_EQ(s.error_code(), grpc::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("'log_colour'"), std::string::npos) << s.error_message();

  (*set.mutable_settings())["log_verbose_level"].set_uint32_param(0);
  ASSERT_TRUE(client.stub().LogSettings(client.Context().get(), set, &got).ok());
  EXPECT_EQ(got.settings().at("log_verbose_level").uint32_param(), 0u);
}

}  // namespace
}  // namespace modelgrid::server_test
