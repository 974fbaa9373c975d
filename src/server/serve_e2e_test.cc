// End to end through worker processes: the real `modelgrid serve
// --isolation model` on digits and gpt2 from the small zoo, talked to over
// HTTP on 127.0.0.1.
//  - digits classifies its whole held-out test set with binary tensors in
//    both directions, and the count equals the one recorded at generation;
//  - gpt2's `generate` returns the tokens of a greedy decode run directly on
//    the same TorchScript file with LibTorch in this process;
//  - kill -9 of gpt2's worker while clients send requests: the request in
//    flight gets 503 within 1 s, digits answers 200 throughout, and the
//    watchdog brings gpt2 back (ready, restarts 1, a new pid).
#include <gtest/gtest.h>
#include <torch/script.h>

#include <atomic>
#include <cstring>
#include <fstream>
#include <future>
#include <thread>

#include "modelgrid/kserve/infer_codec.h"
#include "server/serve_test_util.h"

namespace modelgrid::server_test {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

class ServeE2eTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto zoo = Zoo();
    if (!zoo) return;
    // gpt2's request covers the long generate of the kill test (8 rows of
    // 124 tokens, past the estimate's sequence length of 32): the request
    // must be in flight when the worker is killed, not refused for memory
    // first.
    suite_.Start(*zoo, "e2e", {"digits", "gpt2"},
                 {"--device", "cpu", "--isolation", "model", "--worker-threads", "1",
                  "--http-port", "0"},
                 [](const fs::path& repo) {
                   std::ofstream(repo / "gpt2" / "config.yaml", std::ios::app)
                       << "memory:\n  request: 256MiB\n";
                 });
    port_ = suite_.port();
  }
  static void TearDownTestSuite() {
    suite_.Stop();
    port_ = 0;
  }
  void SetUp() override {
    if (!Zoo()) GTEST_SKIP() << "small zoo not generated (make zoo-small)";
    ASSERT_GT(port_, 0) << "modelgrid serve did not start:\n" << suite_.Output();
  }

  // The model's entry of GET /v2/modelgrid/models.
  json ModelView(const std::string& name) {
    Reply r = Get(port_, "/v2/modelgrid/models");
    if (r.status != 200) return json();
    for (const auto& m : r.json["models"]) {
      if (m["name"] == name) return m;
    }
    return json();
  }

  static inline SuiteServer suite_;
  static inline int port_ = 0;
};

InferTensor Tensor(const std::string& name, DataType type, std::vector<int64_t> shape,
                   const void* data, size_t bytes) {
  InferTensor t;
  t.name = name;
  t.datatype = type;
  t.shape = std::move(shape);
  t.data.assign(static_cast<const char*>(data), bytes);
  return t;
}

TEST_F(ServeE2eTest, DigitsWholeTestSetWithBinaryTensorsMatchesTheRecordedAccuracy) {
  std::ifstream in(*Zoo() / "digits" / "test_set.json");
  const json set = json::parse(in);
  const auto& rows = set["inputs"];
  const auto labels = set["labels"].get<std::vector<int64_t>>();
  int64_t correct = 0;
  for (size_t first = 0; first < rows.size(); first += 50) {
    const size_t count = std::min<size_t>(50, rows.size() - first);
    std::vector<float> values;
    for (size_t i = first; i < first + count; ++i) {
      for (float v : rows[i].get<std::vector<float>>()) values.push_back(v);
    }
    InferRequest request;
    request.inputs.push_back(Tensor("input", DataType::kFP32,
                                    {static_cast<int64_t>(count), 64}, values.data(),
                                    values.size() * sizeof(float)));
    request.binary_data_output = true;
    request.parameters = {{"binary_data_output", true}};
    auto body = EncodeInferRequest(request, /*binary_inputs=*/true);
    ASSERT_TRUE(body.ok()) << body.status().ToString();
    Reply r = Post(port_, "/v2/models/digits/infer", body->body,
                   {{"Inference-Header-Content-Length", std::to_string(*body->json_header_length)}},
                   "application/octet-stream");
    ASSERT_EQ(r.status, 200) << r.body;
    const std::string header = r.Header("Inference-Header-Content-Length");
    ASSERT_FALSE(header.empty()) << "the response is not binary";
    auto response = DecodeInferResponse(r.body, std::stoul(header));
    ASSERT_TRUE(response.ok()) << response.status().ToString();
    ASSERT_EQ(response->outputs.size(), 1u);
    const InferTensor& logits = response->outputs[0];
    ASSERT_EQ(logits.shape, (std::vector<int64_t>{static_cast<int64_t>(count), 10}));
    const float* p = reinterpret_cast<const float*>(logits.data.data());
    for (size_t i = 0; i < count; ++i) {
      const int64_t label = std::max_element(p + i * 10, p + (i + 1) * 10) - (p + i * 10);
      correct += label == labels[first + i];
    }
  }
  EXPECT_EQ(correct, set["correct"].get<int64_t>());
}

TEST_F(ServeE2eTest, GenerateEqualsAGreedyDecodeRunDirectlyOnTheTorchScriptModule) {
  const std::vector<int64_t> prompt = {17, 4, 256, 9, 31};
  const int kNew = 12;
  json request = {{"inputs",
                   {{{"name", "input_ids"}, {"shape", {1, prompt.size()}}, {"datatype", "INT64"},
                     {"data", prompt}}}},
                  {"parameters", {{"task", "generate"}, {"max_new_tokens", kNew}}}};
  Reply r = Post(port_, "/v2/models/gpt2/infer", request.dump());
  ASSERT_EQ(r.status, 200) << r.body;
  std::vector<int64_t> served;
  for (const auto& out : r.json["outputs"]) {
    if (out["name"] == "output_ids") served = out["data"].get<std::vector<int64_t>>();
  }
  ASSERT_EQ(served.size(), prompt.size() + kNew) << r.body;

  // The same decode, directly: forward(input_ids) -> logits [1, S, V];
  // append the argmax of the last position, kNew times.
  torch::jit::Module module = torch::jit::load((*Zoo() / "gpt2" / "1" / "model.pt").string());
  module.eval();
  torch::InferenceMode guard;
  torch::Tensor ids = torch::tensor(prompt, torch::kInt64).unsqueeze(0);
  for (int step = 0; step < kNew; ++step) {
    torch::Tensor logits = module.forward({ids}).toTensor();
    torch::Tensor next = logits.select(1, logits.size(1) - 1).argmax(-1, /*keepdim=*/true);
    ids = torch::cat({ids, next}, 1);
  }
  std::vector<int64_t> direct(ids.data_ptr<int64_t>(), ids.data_ptr<int64_t>() + ids.numel());
  EXPECT_EQ(served, direct);
}

TEST_F(ServeE2eTest, KillDashNineOfAWorkerFailsItsRequestsFastAndTheOthersKeepServing) {
  const json before = ModelView("gpt2");
  ASSERT_TRUE(before.is_object());
  const int64_t pid = before["worker_pid"].get<int64_t>();
  ASSERT_GT(pid, 0);
  const int restarts_before = before["restarts"].get<int>();

  // Digits clients send requests throughout; every answer must be 200.
  std::atomic<bool> stop{false};
  std::atomic<int> digits_ok{0}, digits_failed{0};
  std::string first_failure;
  std::mutex failure_mu;
  auto digits_client = [&] {
    const json body = {{"inputs",
                        {{{"name", "input"},
                          {"shape", {1, 64}},
                          {"datatype", "FP32"},
                          {"data", std::vector<float>(64, 0.5f)}}}}};
    const std::string text = body.dump();
    for (int i = 0; i < 100000 && !stop.load(); ++i) {
      Reply r = Post(port_, "/v2/models/digits/infer", text);
      if (r.status == 200) {
        ++digits_ok;
      } else {
        ++digits_failed;
        std::lock_guard<std::mutex> lock(failure_mu);
        if (first_failure.empty()) first_failure = std::to_string(r.status) + " " + r.body;
      }
    }
  };
  std::thread c1(digits_client), c2(digits_client);

  // A long generate (8 rows, 120 new tokens each, no KV cache) is in
  // flight in gpt2's worker when it is killed.
  std::vector<int64_t> rows;
  for (int i = 0; i < 8; ++i) rows.insert(rows.end(), {1 + i, 2, 3, 4});
  const json generate = {{"inputs",
                          {{{"name", "input_ids"},
                            {"shape", {8, 4}},
                            {"datatype", "INT64"},
                            {"data", rows}}}},
                         {"parameters", {{"task", "generate"}, {"max_new_tokens", 120},
                                         {"do_sample", true}, {"seed", 7}}}};
  std::atomic<int64_t> answered_ns{0};
  auto in_flight = std::async(std::launch::async, [&] {
    Reply r = Post(port_, "/v2/models/gpt2/infer", generate.dump());
    answered_ns = std::chrono::steady_clock::now().time_since_epoch().count();
    return r;
  });
  std::this_thread::sleep_for(150ms);
  ASSERT_EQ(::kill(static_cast<pid_t>(pid), SIGKILL), 0);
  const auto killed_at = std::chrono::steady_clock::now();
  ASSERT_EQ(in_flight.wait_for(5s), std::future_status::ready);
  Reply failed = in_flight.get();
  EXPECT_EQ(failed.status, 503) << failed.body;
  EXPECT_NE(failed.Error().find("signal 9"), std::string::npos) << failed.body;
  EXPECT_EQ(failed.Header("Retry-After"), "1") << "a 503 of a restart says when to retry";
  {
    // A request while gpt2 restarts: 503 with Retry-After, or served when
    // the restart already ended.
    const json one = {{"inputs",
                       {{{"name", "input_ids"},
                         {"shape", {1, 2}},
                         {"datatype", "INT64"},
                         {"data", {5, 6}}}}}};
    Reply during = Post(port_, "/v2/models/gpt2/infer", one.dump());
    if (during.status != 200) {
      EXPECT_EQ(during.status, 503) << during.body;
      EXPECT_EQ(during.Header("Retry-After"), "1") << during.body;
    }
  }
  const auto latency = std::chrono::steady_clock::time_point(
                           std::chrono::steady_clock::duration(answered_ns.load())) -
                       killed_at;
  EXPECT_LT(latency, 1s) << "the in-flight request took "
                         << std::chrono::duration_cast<std::chrono::milliseconds>(latency).count()
                         << " ms after the kill to fail";

  // The watchdog brings gpt2 back with a new worker.
  json after;
  for (int i = 0; i < 300; ++i) {
    after = ModelView("gpt2");
    if (after.is_object() && after["state"] == "ready" &&
        after["restarts"].get<int>() > restarts_before) {
      break;
    }
    std::this_thread::sleep_for(100ms);
  }
  stop = true;
  c1.join();
  c2.join();
  ASSERT_TRUE(after.is_object());
  EXPECT_EQ(after["state"], "ready") << after.dump();
  EXPECT_EQ(after["restarts"].get<int>(), restarts_before + 1);
  EXPECT_NE(after["worker_pid"].get<int64_t>(), pid);
  EXPECT_NE(::kill(static_cast<pid_t>(pid), 0), 0) << "the killed worker was not reaped";
  Reply ready = Get(port_, "/v2/models/gpt2/ready");
  EXPECT_EQ(ready.status, 200) << ready.body;
  const json small = {{"inputs",
                       {{{"name", "input_ids"},
                         {"shape", {1, 2}},
                         {"datatype", "INT64"},
                         {"data", {5, 6}}}}}};
  EXPECT_EQ(Post(port_, "/v2/models/gpt2/infer", small.dump()).status, 200);

  EXPECT_GT(digits_ok.load(), 0);
  EXPECT_EQ(digits_failed.load(), 0) << "first digits failure: " << first_failure;
}

}  // namespace
}  // namespace modelgrid::server_test
