// Starts the real `modelgrid serve --http-port 0 --isolation none` on a copy
// of part of the small zoo (digits, bert-base, gpt2) and checks every route
// over HTTP on 127.0.0.1: shapes of the answers, inference results against
// independent expectations (the digits test set's recorded correct count,
// BERT's encode = mean of its hidden states, GPT-2's greedy continuation
// starting with the prompt), every client error with its status and message
// and that the server still answers after it, and a clean exit on SIGTERM at
// the end. Load/unload and exit codes: serve_lifecycle_test.cc. Every wait
// is bounded. Triton's system shared memory extension: inputs read from a
// POSIX shared memory object that the test creates.
//
// Streamed answers (HttpReply::stream, HttpStreamTest at the end): an
// HttpServer in process over a Grid without models (no zoo needed) with
// streaming routes of the test's own (HttpServerOptions::extra_routes),
// read by a raw-socket client that decodes the chunked body itself.

#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <fstream>
#include <mutex>
#include <set>
#include <thread>

#include "modelgrid/grid.h"
#include "modelgrid/kserve/infer_codec.h"
#include "modelgrid/server/http_server.h"
#include "server/http_exchange.h"
#include "server/in_process_server_test_util.h"
#include "server/serve_test_util.h"
#include "testing/posix_shm.h"
#include "testing/run_command.h"

namespace modelgrid::server_test {
namespace {

using nlohmann::json;

constexpr uint64_t kMaxBody = 1 << 20;  // --max-body-bytes of the shared server

// The digits test set: 360 rows of 64 features, labels, recorded correct count.
struct DigitsSet {
  std::vector<std::vector<float>> inputs;
  std::vector<int> labels;
  int correct = 0;
};

DigitsSet LoadDigits(const fs::path& zoo) {
  std::ifstream in(zoo / "digits" / "test_set.json");
  const json j = json::parse(in);
  DigitsSet set;
  for (const auto& row : j["inputs"]) set.inputs.push_back(row.get<std::vector<float>>());
  set.labels = j["labels"].get<std::vector<int>>();
  set.correct = j["correct"].get<int>();
  return set;
}

// {"inputs":[{"name":"input","shape":[n,64],"datatype":"FP32","data":...}]}
// with nested (rows) or flat data.
json DigitsRequest(const DigitsSet& set, size_t first, size_t count, bool flat) {
  json data = json::array();
  for (size_t i = first; i < first + count; ++i) {
    if (flat) {
      for (float v : set.inputs[i]) data.push_back(v);
    } else {
      data.push_back(set.inputs[i]);
    }
  }
  return {{"inputs",
           {{{"name", "input"}, {"shape", {count, 64}}, {"datatype", "FP32"}, {"data", data}}}}};
}

// Rows [first, first + count) of the test set, back to back (row-major FP32).
std::vector<float> RowValues(const DigitsSet& set, size_t first, size_t count) {
  std::vector<float> values;
  for (size_t i = first; i < first + count; ++i) {
    values.insert(values.end(), set.inputs[i].begin(), set.inputs[i].end());
  }
  return values;
}

// A digits request of `rows` rows whose input lies in shared memory region
// `region` at `offset` (within the region), `byte_size` bytes.
json SharedDigitsRequest(const std::string& region, uint64_t offset, uint64_t byte_size,
                         int64_t rows) {
  const json params = {{"shared_memory_region", region},
                       {"shared_memory_offset", offset},
                       {"shared_memory_byte_size", byte_size}};
  return {
      {"inputs",
       {{{"name", "input"}, {"shape", {rows, 64}}, {"datatype", "FP32"}, {"parameters", params}}}}};
}

// Writes `values` (FP32, native = little-endian) at byte `offset` of `shm`.
void WriteFloats(testing::PosixSharedMemory& shm, size_t offset, const std::vector<float>& values) {
  ASSERT_LE(offset + values.size() * sizeof(float), shm.bytes());
  std::memcpy(shm.data() + offset, values.data(), values.size() * sizeof(float));
}

InferTensor FloatTensor(const std::string& name, std::vector<int64_t> shape,
                        const std::vector<float>& values) {
  InferTensor t;
  t.name = name;
  t.datatype = DataType::kFP32;
  t.shape = std::move(shape);
  t.data.resize(values.size() * sizeof(float));
  std::memcpy(t.data.data(), values.data(), t.data.size());
  return t;
}

std::vector<float> Floats(const InferTensor& t) {
  std::vector<float> v(t.data.size() / sizeof(float));
  std::memcpy(v.data(), t.data.data(), v.size() * sizeof(float));
  return v;
}

int ArgMax(const std::vector<float>& row) {
  return static_cast<int>(std::max_element(row.begin(), row.end()) - row.begin());
}

// Unregisters every shared memory region of the server on `port` when it
// goes out of scope, so that a failed test leaves no region behind.
struct UnregisterAllAtExit {
  int port;
  ~UnregisterAllAtExit() { Post(port, "/v2/systemsharedmemory/unregister", ""); }
};

class HttpServerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto zoo = Zoo();
    if (!zoo) return;
    suite_.Start(*zoo, "suite", {"digits", "bert-base", "gpt2"},
                 {"--device", "cpu", "--isolation", "none", "--http-port", "0", "--max-body-bytes",
                  std::to_string(kMaxBody)});
    port_ = suite_.port();
    digits_ = new DigitsSet(LoadDigits(*zoo));
  }
  static void TearDownTestSuite() {
    suite_.Stop();
    port_ = 0;
    delete digits_;
    digits_ = nullptr;
  }
  void SetUp() override {
    if (!Zoo())
      GTEST_SKIP() << "small zoo not generated (make zoo-small); MODELGRID_TEST_ZOO unset";
    ASSERT_GT(port_, 0) << "modelgrid serve did not start:\n" << suite_.Output();
  }
  // The server still answers (after an error).
  void ExpectAlive() {
    Reply live = Get(port_, "/v2/health/live");
    EXPECT_EQ(live.status, 200) << live.body;
    Reply infer =
        Post(port_, "/v2/models/digits/infer", DigitsRequest(*digits_, 0, 1, true).dump());
    EXPECT_EQ(infer.status, 200) << infer.body;
  }
  // Posts `body` to digits' infer and checks the status and that the error
  // names `needle`; then that the server still serves.
  void ExpectInferError(const std::string& path, const std::string& body, int status,
                        const std::string& needle) {
    Reply r = Post(port_, path, body);
    EXPECT_EQ(r.status, status) << r.body;
    EXPECT_NE(r.Error().find(needle), std::string::npos)
        << "error: " << r.body << "\nexpected: " << needle;
    ExpectAlive();
  }

  static inline SuiteServer suite_;
  static inline DigitsSet* digits_ = nullptr;
  static inline int port_ = 0;
};

TEST_F(HttpServerTest, HealthAndServerMetadata) {
  Reply live = Get(port_, "/v2/health/live");
  EXPECT_EQ(live.status, 200);
  EXPECT_EQ(live.json, json({{"live", true}}));
  Reply ready = Get(port_, "/v2/health/ready");
  EXPECT_EQ(ready.status, 200) << ready.body;
  EXPECT_EQ(ready.json, json({{"ready", true}}));
  Reply meta = Get(port_, "/v2");
  ASSERT_EQ(meta.status, 200);
  EXPECT_EQ(meta.json["name"], "modelgrid");
  EXPECT_FALSE(meta.json["version"].get<std::string>().empty());
  for (const char* ext : {"binary_tensor_data", "model_repository", "statistics",
                          "system_shared_memory", "modelgrid"}) {
    EXPECT_NE(std::find(meta.json["extensions"].begin(), meta.json["extensions"].end(), ext),
              meta.json["extensions"].end())
        << ext;
  }
  EXPECT_EQ(meta.Header("Content-Type"), "application/json");
}

TEST_F(HttpServerTest, ModelMetadataAndReadiness) {
  const json expected = {
      {"name", "digits"},
      {"versions", {"1"}},
      {"platform", "pytorch_torchscript"},
      {"inputs", {{{"name", "input"}, {"datatype", "FP32"}, {"shape", {-1, 64}}}}},
      {"outputs", {{{"name", "logits"}, {"datatype", "FP32"}, {"shape", {-1, 10}}}}}};
  Reply meta = Get(port_, "/v2/models/digits");
  ASSERT_EQ(meta.status, 200) << meta.body;
  EXPECT_EQ(meta.json, expected);
  EXPECT_EQ(Get(port_, "/v2/models/digits/versions/1").json, expected);

  Reply wrong_version = Get(port_, "/v2/models/digits/versions/7");
  EXPECT_EQ(wrong_version.status, 404);
  EXPECT_NE(wrong_version.Error().find("version '7'"), std::string::npos) << wrong_version.body;
  Reply unknown = Get(port_, "/v2/models/nosuchmodel");
  EXPECT_EQ(unknown.status, 404);
  EXPECT_NE(unknown.Error().find("nosuchmodel"), std::string::npos) << unknown.body;

  for (const char* path : {"/v2/models/digits/ready", "/v2/models/digits/versions/1/ready",
                           "/v2/models/gpt2/ready", "/v2/models/bert-base/ready"}) {
    Reply r = Get(port_, path);
    EXPECT_EQ(r.status, 200) << path << ": " << r.body;
    EXPECT_EQ(r.json["ready"], true) << path;
  }
  EXPECT_EQ(Get(port_, "/v2/models/nosuchmodel/ready").status, 404);
}

TEST_F(HttpServerTest, DigitsJsonNestedReachesTheRecordedAccuracy) {
  int correct = 0;
  const size_t total = digits_->inputs.size();
  for (size_t first = 0; first < total; first += 64) {
    const size_t count = std::min<size_t>(64, total - first);
    Reply r =
        Post(port_, "/v2/models/digits/infer", DigitsRequest(*digits_, first, count, false).dump());
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.json["model_name"], "digits");
    EXPECT_EQ(r.json["model_version"], "1");
    const json& out = r.json["outputs"][0];
    ASSERT_EQ(out["name"], "logits");
    ASSERT_EQ(out["datatype"], "FP32");
    ASSERT_EQ(out["shape"], json({count, 10}));
    const auto logits = out["data"].get<std::vector<float>>();
    ASSERT_EQ(logits.size(), count * 10);
    for (size_t i = 0; i < count; ++i) {
      std::vector<float> row(logits.begin() + i * 10, logits.begin() + (i + 1) * 10);
      correct += ArgMax(row) == digits_->labels[first + i];
    }
  }
  EXPECT_EQ(correct, digits_->correct);
}

TEST_F(HttpServerTest, FlatNestedAndBinaryAgree) {
  Reply nested =
      Post(port_, "/v2/models/digits/infer", DigitsRequest(*digits_, 10, 8, false).dump());
  Reply flat = Post(port_, "/v2/models/digits/infer", DigitsRequest(*digits_, 10, 8, true).dump());
  ASSERT_EQ(nested.status, 200) << nested.body;
  ASSERT_EQ(flat.status, 200) << flat.body;
  EXPECT_EQ(nested.json["outputs"], flat.json["outputs"]);

  // Binary inputs, binary output requested.
  InferRequest request;
  request.id = "bin-1";
  std::vector<float> values;
  for (size_t i = 10; i < 18; ++i)
    values.insert(values.end(), digits_->inputs[i].begin(), digits_->inputs[i].end());
  request.inputs.push_back(FloatTensor("input", {8, 64}, values));
  request.outputs.push_back({"logits", /*binary_data=*/true, json::object()});
  auto encoded = EncodeInferRequest(request, /*binary_inputs=*/true);
  ASSERT_TRUE(encoded.ok()) << encoded.status().ToString();
  ASSERT_TRUE(encoded->json_header_length.has_value());
  Reply bin =
      Post(port_, "/v2/models/digits/infer", encoded->body,
           {{"Inference-Header-Content-Length", std::to_string(*encoded->json_header_length)}},
           "application/octet-stream");
  ASSERT_EQ(bin.status, 200) << bin.body;
  const std::string header_length = bin.Header("Inference-Header-Content-Length");
  ASSERT_FALSE(header_length.empty());
  auto response = DecodeInferResponse(bin.body, std::stoul(header_length));
  ASSERT_TRUE(response.ok()) << response.status().ToString();
  EXPECT_EQ(response->id, "bin-1");
  ASSERT_EQ(response->outputs.size(), 1u);
  EXPECT_EQ(response->outputs[0].shape, (std::vector<int64_t>{8, 10}));
  EXPECT_EQ(Floats(response->outputs[0]),
            flat.json["outputs"][0]["data"].get<std::vector<float>>());
}

TEST_F(HttpServerTest, ConcurrentClientsGetTheirOwnRows) {
  // 8 clients at once, each sending different rows: every answer must be the
  // logits of its own rows (dynamic batching merges and splits them).
  Reply reference =
      Post(port_, "/v2/models/digits/infer", DigitsRequest(*digits_, 0, 16, true).dump());
  ASSERT_EQ(reference.status, 200) << reference.body;
  const auto expected = reference.json["outputs"][0]["data"].get<std::vector<float>>();
  std::vector<std::thread> clients;
  std::vector<int> mismatches(8, 0);
  for (int c = 0; c < 8; ++c) {
    clients.emplace_back([&, c] {
      for (int i = 0; i < 10; ++i) {
        const size_t row = static_cast<size_t>((c + i) % 16);
        Reply r =
            Post(port_, "/v2/models/digits/infer", DigitsRequest(*digits_, row, 1, true).dump());
        if (r.status != 200) {
          ++mismatches[c];
          continue;
        }
        // Within float rounding: a row's result may come from a batch of another size.
        const auto got = r.json["outputs"][0]["data"].get<std::vector<float>>();
        for (size_t k = 0; k < 10; ++k) {
          if (got.size() != 10 || std::fabs(got[k] - expected[row * 10 + k]) >
                                      1e-4f * (1 + std::fabs(expected[row * 10 + k]))) {
            ++mismatches[c];
            break;
          }
        }
      }
    });
  }
  for (auto& t : clients) t.join();
  for (int c = 0; c < 8; ++c) EXPECT_EQ(mismatches[c], 0) << "client " << c;
}

TEST_F(HttpServerTest, OutputsFilter) {
  json req = DigitsRequest(*digits_, 0, 2, true);
  req["outputs"] = {{{"name", "logits"}}};
  Reply r = Post(port_, "/v2/models/digits/infer", req.dump());
  ASSERT_EQ(r.status, 200) << r.body;
  ASSERT_EQ(r.json["outputs"].size(), 1u);
  EXPECT_EQ(r.json["outputs"][0]["name"], "logits");

  req["outputs"] = {{{"name", "probabilities"}}};
  ExpectInferError("/v2/models/digits/infer", req.dump(), 400, "probabilities");
}

TEST_F(HttpServerTest, ClientErrorsNameTheProblem) {
  const std::string path = "/v2/models/digits/infer";
  ExpectInferError(path, R"({"inputs": [})", 400, "malformed JSON at byte 12");

  json wrong_shape = DigitsRequest(*digits_, 0, 1, true);
  wrong_shape["inputs"][0]["shape"] = {1, 63};
  wrong_shape["inputs"][0]["data"] = std::vector<float>(63, 0.5f);
  ExpectInferError(path, wrong_shape.dump(), 400, "shape");

  json wrong_dtype = DigitsRequest(*digits_, 0, 1, true);
  wrong_dtype["inputs"][0]["datatype"] = "FP64";
  ExpectInferError(path, wrong_dtype.dump(), 400, "datatype");

  json unknown_input = DigitsRequest(*digits_, 0, 1, true);
  unknown_input["inputs"][0]["name"] = "pixels";
  ExpectInferError(path, unknown_input.dump(), 400, "pixels");

  json unknown_task = DigitsRequest(*digits_, 0, 1, true);
  unknown_task["parameters"] = {{"task", "summarize"}};
  ExpectInferError(path, unknown_task.dump(), 404, "summarize");

  json bad_priority = DigitsRequest(*digits_, 0, 1, true);
  bad_priority["parameters"] = {{"priority", "high"}};
  ExpectInferError(path, bad_priority.dump(), 400, "priority");

  ExpectInferError("/v2/models/nosuchmodel/infer", DigitsRequest(*digits_, 0, 1, true).dump(), 404,
                   "nosuchmodel");
  ExpectInferError("/v2/models/digits/versions/9/infer", DigitsRequest(*digits_, 0, 1, true).dump(),
                   404, "version '9'");

  // Binary header longer than the body.
  Reply r = Post(port_, path, "{}", {{"Inference-Header-Content-Length", "500"}});
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.Error().find("Inference-Header-Content-Length"), std::string::npos) << r.body;
}

TEST_F(HttpServerTest, BodiesOverTheLimitAre413) {
  const std::string limit = std::to_string(kMaxBody);
  std::string big = "{\"inputs\": [" + std::string(kMaxBody, ' ') + "]}";
  Reply r = Post(port_, "/v2/models/digits/infer", big);
  EXPECT_EQ(r.status, 413) << r.body.substr(0, 200);
  EXPECT_NE(r.Error().find(limit), std::string::npos) << r.body;
  ExpectAlive();

  // Chunked (no Content-Length): bounded while reading.
  {
    auto client = MakeClient(port_);
    size_t sent = 0;
    auto res = client.Post(
        "/v2/models/digits/infer",
        [&](size_t, httplib::DataSink& sink) {
          if (sent >= 2 * kMaxBody) {
            sink.done();
            return true;
          }
          const std::string chunk(64 * 1024, ' ');
          sink.write(chunk.data(), chunk.size());
          sent += chunk.size();
          return true;
        },
        "application/json");
    Reply chunked = ToReply(res);
    EXPECT_EQ(chunked.status, 413) << chunked.body.substr(0, 200);
    EXPECT_NE(chunked.Error().find(limit), std::string::npos) << chunked.body;
  }
  // gzip: small on the wire, over the limit once inflated.
  {
    auto client = MakeClient(port_);
    client.set_compress(true);
    Reply gz = ToReply(client.Post("/v2/models/digits/infer", big, "application/json"));
    EXPECT_EQ(gz.status, 413) << gz.body.substr(0, 200);
  }
  ExpectAlive();
}

// Framing a hostile client sends is refused at once with 400 naming the
// header (it was 200 for two different Content-Length headers, and 413
// after 5 s for Content-Length: -1); the server keeps serving.
TEST_F(HttpServerTest, AmbiguousFramingIs400AtOnce) {
  const std::string body = R"({"ready": true})";
  struct Case {
    std::string headers;
    std::string names;
  };
  const std::vector<Case> cases = {
      {"Content-Length: " + std::to_string(body.size()) + "\r\nContent-Length: 3\r\n",
       "conflicting Content-Length headers"},
      {"Content-Length: -1\r\n", "Content-Length '-1' is not a byte count"},
      {"Content-Length: 12abc\r\n", "Content-Length '12abc' is not a byte count"},
      {"Content-Length: " + std::to_string(body.size()) + "\r\nTransfer-Encoding: chunked\r\n",
       "both Content-Length and Transfer-Encoding"},
  };
  for (const Case& c : cases) {
    const auto start = std::chrono::steady_clock::now();
    const std::string raw =
        RawExchange(port_, "POST /v2/repository/index HTTP/1.1\r\nHost: 127.0.0.1\r\n" +
                               c.headers + "Connection: close\r\n\r\n" + body);
    const auto took = std::chrono::steady_clock::now() - start;
    EXPECT_EQ(raw.rfind("HTTP/1.1 400", 0), 0u) << c.headers << "\n" << raw;
    EXPECT_NE(raw.find(c.names), std::string::npos) << raw;
    EXPECT_LT(took, std::chrono::seconds(2)) << c.headers;
  }
  // The same request, framed once, is served.
  const std::string ok = RawExchange(
      port_, "POST /v2/repository/index HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: " +
                 std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body);
  EXPECT_EQ(ok.rfind("HTTP/1.1 200", 0), 0u) << ok;
}

TEST_F(HttpServerTest, UnknownPathsAre404Json) {
  Reply get = Get(port_, "/v2/nothing/here");
  EXPECT_EQ(get.status, 404);
  EXPECT_NE(get.Error().find("/v2/nothing/here"), std::string::npos) << get.body;
  Reply post = Post(port_, "/v3/infer", "{}");
  EXPECT_EQ(post.status, 404);
  EXPECT_NE(post.Error().find("POST /v3/infer"), std::string::npos) << post.body;
}

TEST_F(HttpServerTest, EncodeIsTheMeanOfTheHiddenStates) {
  const json ids = {{{"name", "input_ids"},
                     {"shape", {1, 5}},
                     {"datatype", "INT64"},
                     {"data", {7, 42, 3, 99, 5}}}};
  Reply infer = Post(port_, "/v2/models/bert-base/infer", json({{"inputs", ids}}).dump());
  ASSERT_EQ(infer.status, 200) << infer.body;
  Reply encode = Post(port_, "/v2/models/bert-base/infer",
                      json({{"inputs", ids}, {"parameters", {{"task", "encode"}}}}).dump());
  ASSERT_EQ(encode.status, 200) << encode.body;
  const json& hidden = infer.json["outputs"][0];
  ASSERT_EQ(hidden["shape"], json({1, 5, 64}));
  const json& pooled = encode.json["outputs"][0];
  ASSERT_EQ(pooled["shape"], json({1, 64}));
  const auto h = hidden["data"].get<std::vector<double>>();
  const auto p = pooled["data"].get<std::vector<double>>();
  for (size_t k = 0; k < 64; ++k) {
    double mean = 0;
    for (size_t s = 0; s < 5; ++s) mean += h[s * 64 + k];
    EXPECT_NEAR(p[k], mean / 5, 1e-4) << "feature " << k;
  }
}

TEST_F(HttpServerTest, GenerateWithTaskParameters) {
  const json ids = {{{"name", "input_ids"},
                     {"shape", {1, 4}},
                     {"datatype", "INT64"},
                     {"data", {11, 12, 13, 14}}}};
  auto generate = [&](json params) {
    return Post(port_, "/v2/models/gpt2/infer",
                json({{"inputs", ids}, {"parameters", params}}).dump());
  };
  Reply greedy = generate(
      {{"task", "generate"}, {"max_new_tokens", 3}, {"priority", 2}, {"timeout", 30'000'000}});
  ASSERT_EQ(greedy.status, 200) << greedy.body;
  const json& out = greedy.json["outputs"][0];
  EXPECT_EQ(out["shape"], json({1, 7}));
  const auto tokens = out["data"].get<std::vector<int64_t>>();
  ASSERT_EQ(tokens.size(), 7u);
  EXPECT_EQ(std::vector<int64_t>(tokens.begin(), tokens.begin() + 4),
            (std::vector<int64_t>{11, 12, 13, 14}));
  for (int64_t t : tokens) {
    EXPECT_GE(t, 0);
    EXPECT_LT(t, 1000);  // the small GPT-2's vocabulary
  }
  // Greedy decoding's first new token is the argmax of infer's last-position logits.
  Reply logits = Post(port_, "/v2/models/gpt2/infer", json({{"inputs", ids}}).dump());
  ASSERT_EQ(logits.status, 200) << logits.body;
  const auto l = logits.json["outputs"][0]["data"].get<std::vector<float>>();
  ASSERT_EQ(l.size(), 4u * 1000u);
  EXPECT_EQ(tokens[4], ArgMax(std::vector<float>(l.begin() + 3 * 1000, l.end())));

  // Sampling with a seed is repeatable.
  const json sample = {{"task", "generate"}, {"max_new_tokens", 5}, {"do_sample", true},
                       {"temperature", 0.8}, {"top_k", 50},         {"seed", 1234}};
  Reply a = generate(sample);
  Reply b = generate(sample);
  ASSERT_EQ(a.status, 200) << a.body;
  EXPECT_EQ(a.json["outputs"], b.json["outputs"]);

  // A bad task parameter is the task's 400.
  Reply bad = generate({{"task", "generate"}, {"max_new_tokens", 0}});
  EXPECT_EQ(bad.status, 400) << bad.body;
  EXPECT_NE(bad.Error().find("max_new_tokens"), std::string::npos) << bad.body;
}

TEST_F(HttpServerTest, RepositoryIndex) {
  Reply all = Post(port_, "/v2/repository/index", "");
  ASSERT_EQ(all.status, 200) << all.body;
  ASSERT_TRUE(all.json.is_array());
  std::set<std::string> names;
  for (const json& e : all.json) {
    names.insert(e["name"].get<std::string>());
    EXPECT_EQ(e["state"], "READY") << e.dump();
    EXPECT_TRUE(e.contains("version") && e.contains("reason")) << e.dump();
  }
  EXPECT_EQ(names, (std::set<std::string>{"bert-base", "digits", "gpt2"}));
  Reply ready = Post(port_, "/v2/repository/index", R"({"ready": true})");
  EXPECT_EQ(ready.json.size(), 3u) << ready.body;
  // curl -X POST: neither Content-Length nor a body.
  const std::string raw = RawExchange(port_,
                                      "POST /v2/repository/index HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                      "Connection: close\r\n\r\n");
  EXPECT_EQ(raw.rfind("HTTP/1.1 200", 0), 0u) << raw;
  EXPECT_NE(raw.find("\"digits\""), std::string::npos) << raw;
  Reply bad = Post(port_, "/v2/repository/index", R"({"ready": )");
  EXPECT_EQ(bad.status, 400);
  EXPECT_NE(bad.Error().find("malformed JSON"), std::string::npos) << bad.body;
}

TEST_F(HttpServerTest, StatisticsInTritonShape) {
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(
        Post(port_, "/v2/models/digits/infer", DigitsRequest(*digits_, 0, 2, true).dump()).status,
        200);
  }
  Reply one = Get(port_, "/v2/models/digits/stats");
  ASSERT_EQ(one.status, 200) << one.body;
  ASSERT_EQ(one.json["model_stats"].size(), 1u);
  const json& s = one.json["model_stats"][0];
  EXPECT_EQ(s["name"], "digits");
  EXPECT_EQ(s["version"], "1");
  EXPECT_GE(s["inference_count"].get<uint64_t>(), 6u);
  EXPECT_GE(s["execution_count"].get<uint64_t>(), 1u);
  for (const char* k :
       {"success", "fail", "queue", "compute_input", "compute_infer", "compute_output"}) {
    ASSERT_TRUE(s["inference_stats"].contains(k)) << k;
    EXPECT_TRUE(s["inference_stats"][k]["count"].is_number_unsigned()) << k;
    EXPECT_TRUE(s["inference_stats"][k]["ns"].is_number_unsigned()) << k;
  }
  EXPECT_GE(s["inference_stats"]["success"]["count"].get<uint64_t>(), 3u);
  EXPECT_GT(s["inference_stats"]["compute_infer"]["ns"].get<uint64_t>(), 0u);
  ASSERT_EQ(s["memory_usage"].size(), 1u);
  EXPECT_EQ(s["memory_usage"][0]["type"], "CPU");
  EXPECT_EQ(s["memory_usage"][0]["id"], 0);
  EXPECT_TRUE(s["memory_usage"][0]["byte_size"].is_number_unsigned());

  Reply all = Get(port_, "/v2/models/stats?refresh=1");
  ASSERT_EQ(all.status, 200) << all.body;
  EXPECT_EQ(all.json["model_stats"].size(), 3u);
  EXPECT_EQ(Get(port_, "/v2/models/nosuchmodel/stats").status, 404);
}

TEST_F(HttpServerTest, ModelGridDevicesAndModels) {
  Reply models = Get(port_, "/v2/modelgrid/models");
  ASSERT_EQ(models.status, 200) << models.body;
  uint64_t requests = 0;
  ASSERT_EQ(models.json["models"].size(), 3u);
  for (const json& m : models.json["models"]) {
    for (const char* k :
         {"name", "type", "version", "state", "reason", "device", "estimate", "request_bytes",
          "limit_bytes", "current_bytes", "peak_bytes", "worker_pid", "restarts", "tasks"}) {
      EXPECT_TRUE(m.contains(k)) << k << " in " << m.dump();
    }
    EXPECT_EQ(m["state"], "ready");
    EXPECT_EQ(m["device"], "cpu");
    EXPECT_GT(m["request_bytes"].get<uint64_t>(), 0u);
    EXPECT_GE(m["limit_bytes"].get<uint64_t>(), m["request_bytes"].get<uint64_t>());
    EXPECT_EQ(m["worker_pid"], 0);  // isolation none: in-process
    ASSERT_TRUE(m["estimate"].is_object());
    EXPECT_GT(m["estimate"]["weights_bytes"].get<uint64_t>(), 0u);
    requests += m["request_bytes"].get<uint64_t>();
    if (m["name"] == "digits") {
      EXPECT_EQ(m["tasks"], json({"infer"})) << m.dump();
    }
    if (m["name"] == "gpt2") {
      EXPECT_NE(std::find(m["tasks"].begin(), m["tasks"].end(), "generate"), m["tasks"].end())
          << m.dump();
    }
  }
  Reply devices = Get(port_, "/v2/modelgrid/devices");
  ASSERT_EQ(devices.status, 200) << devices.body;
  ASSERT_EQ(devices.json["devices"].size(), 1u);
  const json& cpu = devices.json["devices"][0];
  EXPECT_EQ(cpu["id"], "cpu");
  EXPECT_EQ(cpu["kind"], "cpu");
  for (const char* k : {"name", "total_bytes", "used_bytes", "free_bytes", "reserved_bytes",
                        "buffer_bytes", "workers", "models"}) {
    EXPECT_TRUE(cpu.contains(k)) << k;
  }
  EXPECT_GT(cpu["total_bytes"].get<uint64_t>(), 0u);
  EXPECT_EQ(cpu["reserved_bytes"].get<uint64_t>(), requests);  // no worker contexts in-process
  EXPECT_EQ(cpu["models"].size(), 3u);
}

// GET /metrics: the Prometheus text, with counters that follow the requests.
TEST_F(HttpServerTest, PrometheusMetricsFollowTheRequests) {
  auto successes = [&]() -> int64_t {
    Reply r = Get(port_, "/metrics");
    EXPECT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.Header("Content-Type").rfind("text/plain; version=0.0.4", 0), 0u)
        << r.Header("Content-Type");
    const std::string key = "nv_inference_request_success{model=\"digits\",version=\"1\"} ";
    const size_t at = r.body.find(key);
    if (at == std::string::npos) {
      ADD_FAILURE() << "no " << key << " in\n" << r.body;
      return -1;
    }
    EXPECT_NE(r.body.find("modelgrid_model_ready{model=\"digits\"} 1"), std::string::npos);
    EXPECT_NE(r.body.find("modelgrid_device_memory_bytes{device=\"cpu\",kind=\"total\"}"),
              std::string::npos);
    return std::stoll(r.body.substr(at + key.size()));
  };
  const int64_t before = successes();
  for (int i = 0; i < 4; ++i) {
    ASSERT_EQ(
        Post(port_, "/v2/models/digits/infer", DigitsRequest(*digits_, 0, 1, true).dump()).status,
        200);
  }
  EXPECT_EQ(successes(), before + 4);
}

// Triton's system shared memory extension: register an object, read the
// status, infer on rows written into it (the same outputs as the same rows
// sent as JSON), write other rows and infer again, unregister.
TEST_F(HttpServerTest, SharedMemoryInputsGiveTheOutputsOfJsonData) {
  constexpr uint64_t kRegionOffset = 1024;  // where the region starts in the object
  constexpr uint64_t kRegionBytes = 4096;
  constexpr uint64_t kTensorOffset = 512;  // where the tensor starts in the region
  constexpr uint64_t kTensorBytes = 4 * 64 * sizeof(float);
  auto created = testing::PosixSharedMemory::Create("/modelgrid_http_test_" + std::to_string(::getpid()),
                                                    kRegionOffset + kRegionBytes);
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  testing::PosixSharedMemory& shm = **created;
  UnregisterAllAtExit cleanup{port_};
  WriteFloats(shm, kRegionOffset + kTensorOffset, RowValues(*digits_, 20, 4));

  Reply empty = Get(port_, "/v2/systemsharedmemory/status");
  ASSERT_EQ(empty.status, 200) << empty.body;
  EXPECT_EQ(empty.json, json::array());
  const std::string region_path = "/v2/systemsharedmemory/region/digits_in";
  Reply reg = Post(
      port_, region_path + "/register",
      json({{"key", shm.key()}, {"offset", kRegionOffset}, {"byte_size", kRegionBytes}}).dump());
  ASSERT_EQ(reg.status, 200) << reg.body;
  EXPECT_EQ(reg.json, json::object());
  const json entry = {{"name", "digits_in"},
                      {"key", shm.key()},
                      {"offset", kRegionOffset},
                      {"byte_size", kRegionBytes}};
  Reply all = Get(port_, "/v2/systemsharedmemory/status");
  EXPECT_EQ(all.status, 200) << all.body;
  EXPECT_EQ(all.json, json::array({entry}));
  Reply one = Get(port_, region_path + "/status");
  EXPECT_EQ(one.status, 200) << one.body;
  EXPECT_EQ(one.json, json::array({entry}));

  const std::string infer = "/v2/models/digits/infer";
  const std::string shared_request =
      SharedDigitsRequest("digits_in", kTensorOffset, kTensorBytes, 4).dump();
  Reply from_json = Post(port_, infer, DigitsRequest(*digits_, 20, 4, true).dump());
  Reply from_shm = Post(port_, infer, shared_request);
  ASSERT_EQ(from_json.status, 200) << from_json.body;
  ASSERT_EQ(from_shm.status, 200) << from_shm.body;
  EXPECT_EQ(from_shm.json["outputs"][0]["shape"], json({4, 10}));
  EXPECT_EQ(from_shm.json["outputs"], from_json.json["outputs"]);

  // The model reads what the object holds at request time.
  WriteFloats(shm, kRegionOffset + kTensorOffset, RowValues(*digits_, 40, 4));
  Reply json_40 = Post(port_, infer, DigitsRequest(*digits_, 40, 4, true).dump());
  Reply shm_40 = Post(port_, infer, shared_request);
  ASSERT_EQ(json_40.status, 200) << json_40.body;
  ASSERT_EQ(shm_40.status, 200) << shm_40.body;
  EXPECT_EQ(shm_40.json["outputs"], json_40.json["outputs"]);
  EXPECT_NE(shm_40.json["outputs"], from_shm.json["outputs"]);

  Reply unreg = Post(port_, region_path + "/unregister", "");
  EXPECT_EQ(unreg.status, 200) << unreg.body;
  EXPECT_EQ(unreg.json, json::object());
  Reply after = Get(port_, "/v2/systemsharedmemory/status");
  EXPECT_EQ(after.status, 200) << after.body;
  EXPECT_EQ(after.json, json::array());
  Reply gone = Get(port_, region_path + "/status");
  EXPECT_EQ(gone.status, 404) << gone.body;
  EXPECT_NE(gone.Error().find("'digits_in' is not registered"), std::string::npos) << gone.body;
  ExpectInferError(infer, shared_request, 404, "'digits_in' is not registered");
}

// Every shared-memory error with its status and message: registration,
// inputs that name a region badly, outputs in shared memory, unregistration.
TEST_F(HttpServerTest, SharedMemoryErrorsNameTheProblem) {
  constexpr uint64_t kBytes = 4096;
  const std::string key = "/modelgrid_http_test_" + std::to_string(::getpid()) + "_err";
  auto shm = testing::PosixSharedMemory::Create(key, kBytes);  // unlinked at the end
  ASSERT_TRUE(shm.ok()) << shm.status().ToString();
  UnregisterAllAtExit cleanup{port_};
  const std::string region = "/v2/systemsharedmemory/region/";
  auto reg = [&](const std::string& name, const json& body) {
    return Post(port_, region + name + "/register", body.dump());
  };
  auto expect_error = [](const Reply& r, int status, const std::string& needle) {
    EXPECT_EQ(r.status, status) << r.body;
    EXPECT_NE(r.Error().find(needle), std::string::npos) << r.body << "\nexpected: " << needle;
  };

  expect_error(reg("r", {{"key", key + "_missing"}, {"byte_size", 16}}), 404,
               "no shared memory object has key '" + key + "_missing'");
  expect_error(reg("r", {{"key", key}, {"byte_size", kBytes + 1}}), 400,
               "holds 4096 bytes, fewer than offset 0 + byte_size 4097");
  expect_error(reg("r", {{"key", key}, {"offset", 4000}, {"byte_size", 100}}), 400,
               "fewer than offset 4000 + byte_size 100");
  expect_error(reg("r", {{"byte_size", 16}}), 400, "missing \"key\"");
  expect_error(reg("r", {{"key", 5}, {"byte_size", 16}}), 400, "\"key\" must be a string");
  expect_error(reg("r", {{"key", key}}), 400, "missing \"byte_size\"");
  expect_error(reg("r", {{"key", key}, {"byte_size", "16"}}), 400,
               "\"byte_size\" must be a non-negative integer, got \"16\"");
  expect_error(reg("r", {{"key", key}, {"offset", -1}, {"byte_size", 16}}), 400,
               "\"offset\" must be a non-negative integer, got -1");
  expect_error(Post(port_, region + "r/register", R"({"key": )"), 400, "malformed JSON");
  Reply none = Get(port_, "/v2/systemsharedmemory/status");
  EXPECT_EQ(none.json, json::array()) << "a failed register left a region: " << none.body;

  Reply ok = reg("r", {{"key", key}, {"byte_size", kBytes}});
  ASSERT_EQ(ok.status, 200) << ok.body;
  expect_error(reg("r", {{"key", key}, {"byte_size", 16}}), 400,
               "shared memory region 'r' is already registered");
  expect_error(Get(port_, region + "nosuch/status"), 404, "'nosuch' is not registered");

  const std::string infer = "/v2/models/digits/infer";
  ExpectInferError(infer, SharedDigitsRequest("nosuch", 0, 256, 1).dump(), 404,
                   "shared memory region 'nosuch' is not registered");
  ExpectInferError(infer, SharedDigitsRequest("r", 0, 252, 1).dump(), 400,
                   "data has 252 bytes but shape [1,64] FP32 needs 256 bytes");
  ExpectInferError(infer, SharedDigitsRequest("r", 4000, 256, 1).dump(), 400,
                   "offset 4000 + byte_size 256 runs past its 4096 bytes");
  json with_data = SharedDigitsRequest("r", 0, 256, 1);
  with_data["inputs"][0]["data"] = std::vector<float>(64, 0.5f);
  ExpectInferError(infer, with_data.dump(), 400,
                   "input 'input': has both \"data\" and shared_memory_region");
  // An output requested into the region is written there: the answer
  // names the region and carries no data; the bytes are the logits a plain
  // request returns. One byte short of them is an error naming the output.
  json shared_output = DigitsRequest(*digits_, 0, 1, true);
  shared_output["outputs"] = {
      {{"name", "logits"},
       {"parameters",
        {{"shared_memory_region", "r"}, {"shared_memory_offset", 1024},
         {"shared_memory_byte_size", 40}}}}};
  Reply written = Post(port_, infer, shared_output.dump());
  ASSERT_EQ(written.status, 200) << written.body;
  const json& out = written.json["outputs"][0];
  EXPECT_FALSE(out.contains("data")) << written.body;
  EXPECT_EQ(out["parameters"]["shared_memory_region"], "r");
  EXPECT_EQ(out["parameters"]["shared_memory_byte_size"], 40);
  Reply plain = Post(port_, infer, DigitsRequest(*digits_, 0, 1, true).dump());
  ASSERT_EQ(plain.status, 200) << plain.body;
  std::vector<float> logits(10);
  std::memcpy(logits.data(), (*shm)->data() + 1024, 40);
  ASSERT_EQ(plain.json["outputs"][0]["data"].size(), 10u);
  for (size_t i = 0; i < 10; ++i) {
    EXPECT_FLOAT_EQ(logits[i], plain.json["outputs"][0]["data"][i].get<float>()) << i;
  }
  shared_output["outputs"][0]["parameters"]["shared_memory_byte_size"] = 39;
  ExpectInferError(infer, shared_output.dump(), 400,
                   "output 'logits': 40 bytes do not fit the 39 of shared_memory_byte_size");
  // A key outside the allowed prefix (--shm-key-prefix, default /modelgrid_).
  expect_error(reg("x", {{"key", "/elsewhere"}, {"byte_size", 16}}), 403,
               "does not start with the allowed prefix '/modelgrid_'");

  expect_error(Post(port_, region + "nosuch/unregister", ""), 404, "'nosuch' is not registered");
  ASSERT_EQ(reg("r2", {{"key", key}, {"offset", 16}, {"byte_size", 16}}).status, 200);
  EXPECT_EQ(Get(port_, "/v2/systemsharedmemory/status").json.size(), 2u);
  Reply all = Post(port_, "/v2/systemsharedmemory/unregister", "");
  EXPECT_EQ(all.status, 200) << all.body;
  EXPECT_EQ(all.json, json::object());
  EXPECT_EQ(Get(port_, "/v2/systemsharedmemory/status").json, json::array());
  // Nothing left to unregister is not an error (as Triton).
  EXPECT_EQ(Post(port_, "/v2/systemsharedmemory/unregister", "").status, 200);
}

// `modelgrid status` reads the running server's devices and models.
TEST_F(HttpServerTest, StatusCommandShowsTheServersModels) {
  const std::string url = "http://127.0.0.1:" + std::to_string(port_);
  auto run = modelgrid::testing::RunCommand(std::string(MODELGRID_CLI_PATH) + " status --url " +
                                            url + " --json 2>/dev/null");
  ASSERT_EQ(run.exit_code, 0) << run.out;
  auto j = json::parse(run.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << run.out;
  EXPECT_EQ(j["server"], url);
  ASSERT_EQ(j["models"].size(), 3u) << j.dump();
  for (const json& m : j["models"]) EXPECT_EQ(m["state"], "ready") << m.dump();
  ASSERT_EQ(j["devices"].size(), 1u);
  EXPECT_EQ(j["devices"][0]["id"], "cpu");

  auto text = modelgrid::testing::RunCommand(std::string(MODELGRID_CLI_PATH) + " status --url " +
                                             url + " 2>&1");
  ASSERT_EQ(text.exit_code, 0) << text.out;
  EXPECT_NE(text.out.find("Server " + url), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("\ndigits "), std::string::npos) << text.out;
}

// ---------------------------------------------------------------------------
// Streamed answers (HttpReply::stream).

using std::chrono::milliseconds;

// A raw HTTP/1.1 connection to 127.0.0.1:port (RawConn) that decodes
// chunked bodies itself. Every read is bounded by a timeout.
class StreamClient : public RawConn {
 public:
  // `receive_buffer` > 0: SO_RCVBUF before connecting (a client that does
  // not read then stalls the server sooner).
  explicit StreamClient(int port, int receive_buffer = 0)
      : RawConn(port, "127.0.0.1", receive_buffer) {}

  // Reads an answer's status line and headers (through the empty line);
  // "" when they did not arrive within `timeout`. Resets the body.
  std::string ReadHead(milliseconds timeout = milliseconds(5000)) {
    const auto deadline = Clock::now() + timeout;
    body_.clear();
    ended_ = false;
    for (;;) {
      if (const size_t end = buffer().find("\r\n\r\n"); end != std::string::npos) {
        std::string head = buffer().substr(0, end + 2);
        buffer().erase(0, end + 4);
        return head;
      }
      if (!Receive(deadline)) return "";
    }
  }

  // Decodes the chunked body as it comes into body() until `until()` holds,
  // the last chunk arrived (ended()), the connection closed (closed()) or
  // `timeout` passed. Returns `until()` (or ended() when `until` is null).
  bool ReadBodyUntil(const std::function<bool()>& until, milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    auto met = [&] { return until ? until() : ended_; };
    for (;;) {
      Decode();
      if (met() || ended_ || malformed_) return met();
      if (!Receive(deadline)) {
        Decode();
        return met();
      }
    }
  }

  // A Content-Length answer (status, body); status 0 when it did not come.
  // Resets the chunked body.
  std::pair<int, std::string> ReadPlain(milliseconds timeout = milliseconds(5000)) {
    body_.clear();
    ended_ = false;
    RawReply r = Read(timeout);
    return {r.status, std::move(r.body)};
  }

  // The bytes received after the head until the connection closed (or
  // `timeout` passed), undecoded.
  std::string ReadToClose(milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    while (Receive(deadline)) {
    }
    return buffer();
  }

  const std::string& body() const { return body_; }
  bool ended() const { return ended_; }
  bool malformed() const { return malformed_; }

  static std::string Lower(std::string s) {
    for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
  }

 private:
  // Moves the complete chunks of buffer() into body_ (RFC 9112 7.1: hex size,
  // optional extensions, CRLF, data, CRLF; a 0 chunk, trailers, CRLF).
  void Decode() {
    while (!ended_ && !malformed_) {
      const size_t line_end = buffer().find("\r\n");
      if (line_end == std::string::npos) return;
      const std::string line = buffer().substr(0, buffer().find_first_of(";\r"));
      char* end = nullptr;
      const unsigned long size = std::strtoul(line.c_str(), &end, 16);
      if (line.empty() || end != line.c_str() + line.size()) {
        malformed_ = true;
        return;
      }
      if (size == 0) {
        // Trailers (none expected), then the empty line.
        const size_t trailer_end = buffer().find("\r\n\r\n", line_end);
        if (trailer_end == std::string::npos) return;
        buffer().erase(0, trailer_end + 4);
        ended_ = true;
        return;
      }
      if (buffer().size() < line_end + 2 + size + 2) return;
      if (buffer().compare(line_end + 2 + size, 2, "\r\n") != 0) {
        malformed_ = true;
        return;
      }
      body_.append(buffer(), line_end + 2, size);
      ++chunks_;
      buffer().erase(0, line_end + 2 + size + 2);
    }
  }

  std::string body_;  // the decoded body of the current answer
  bool ended_ = false;
  bool malformed_ = false;
  int chunks_ = 0;
};

// What a streaming handler did, shared with the test (the route keeps it
// alive as long as the server may call it).
struct StreamProbe {
  std::atomic<int> calls{0};              // stream functions called
  std::atomic<int> written{0};            // pieces the writer accepted
  std::atomic<bool> refused{false};       // a write returned false
  std::atomic<bool> done{false};          // the stream function returned
  std::atomic<int64_t> refused_at_us{0};  // when the refusal came (steady clock, µs)
  std::mutex mu;
  std::condition_variable cv;
  bool go = false;  // the latch a handler may wait on

  void Release() {
    {
      std::lock_guard lock(mu);
      go = true;
    }
    cv.notify_all();
  }
  // Waits for Release, at most `timeout`.
  bool WaitGo(milliseconds timeout) {
    std::unique_lock lock(mu);
    return cv.wait_for(lock, timeout, [this] { return go; });
  }
  // Waits (bounded) until `pred` holds.
  template <typename Pred>
  static bool Eventually(Pred pred, milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    while (!pred()) {
      if (Clock::now() >= deadline) return false;
      std::this_thread::sleep_for(milliseconds(5));
    }
    return true;
  }
};

int64_t NowMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(Clock::now().time_since_epoch())
      .count();
}

// The i-th piece of test streams: an SSE event of about 70 bytes.
std::string Piece(int i) {
  return "data: piece " + std::to_string(i) + " " +
         std::string(56, static_cast<char>('a' + i % 26)) + "\n\n";
}
std::string Pieces(int from, int to) {
  std::string all;
  for (int i = from; i < to; ++i) all += Piece(i);
  return all;
}

// A streamed reply: `produce` runs as its stream function, counted in `probe`.
server::HttpReply StreamReply(
    const std::shared_ptr<StreamProbe>& probe,
    std::function<void(const server::BodyWriter&, StreamProbe&)> produce) {
  server::HttpReply reply;
  reply.content_type = "text/event-stream";
  reply.headers.emplace_back("Cache-Control", "no-cache");
  reply.body = "ignored";
  reply.stream = [probe, produce = std::move(produce)](const server::BodyWriter& write) {
    ++probe->calls;
    produce(write, *probe);
    probe->done = true;
  };
  return reply;
}

// Writes `piece(i)` for i in [0, count) with `pause` between them; stops
// at the first refused write (recorded in the probe).
void WritePieces(const server::BodyWriter& write, StreamProbe& probe, int count, milliseconds pause,
                 const std::function<std::string(int)>& piece = Piece) {
  for (int i = 0; i < count; ++i) {
    if (!write(piece(i))) {
      probe.refused_at_us = NowMicros();
      probe.refused = true;
      return;
    }
    ++probe.written;
    if (pause.count() > 0) std::this_thread::sleep_for(pause);
  }
}


std::string StreamRequest(const std::string& path, const std::string& extra = "") {
  return "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\n" + extra + "\r\n";
}

class HttpStreamTest : public EmptyGridTest {
 protected:
  // Options with one streaming GET route `path` whose reply streams with
  // `produce`.
  static HttpServerOptions WithRoute(
      const std::string& path, const std::shared_ptr<StreamProbe>& probe,
      std::function<void(const server::BodyWriter&, StreamProbe&)> produce,
      HttpServerOptions o = {}) {
    o.extra_routes.push_back({"GET", path, [probe, produce](const server::HttpRequest&) {
                                return StreamReply(probe, produce);
                              }});
    return o;
  }
};

// (1) 20 pieces 20 ms apart arrive as they are written: chunked, no
// Content-Length, not compressed though the client accepts gzip and the
// body is over 1 KiB; the first half arrives while the producer is held
// at a latch (so before it finished), and meanwhile the only handler-pool
// thread and the only event thread serve another request; the de-chunked
// body is the concatenation; the access log records it; the same
// connection then serves a plain request (keep-alive after a stream).
TEST_F(HttpStreamTest, PiecesArriveAsTheyAreWritten) {
  auto probe = std::make_shared<StreamProbe>();
  HttpServerOptions o;
  o.threads = 1;
  o.io_threads = 1;
  InProcessServer server(grid_, WithRoute(
                                 "/test/stream", probe,
                                 [](const server::BodyWriter& write, StreamProbe& p) {
                                   for (int i = 0; i < 20; ++i) {
                                     if (i == 10 && !p.WaitGo(milliseconds(10'000))) return;
                                     if (!write(Piece(i))) {
                                       p.refused = true;
                                       return;
                                     }
                                     ++p.written;
                                     std::this_thread::sleep_for(milliseconds(20));
                                   }
                                 },
                                 o));
  StreamClient client(server.port());
  ASSERT_TRUE(client.ok());
  ASSERT_TRUE(client.Send(StreamRequest("/test/stream", "Accept-Encoding: gzip\r\n")));
  const std::string head = StreamClient::Lower(client.ReadHead());
  ASSERT_EQ(head.rfind("http/1.1 200", 0), 0u) << head;
  EXPECT_NE(head.find("\r\ntransfer-encoding: chunked\r\n"), std::string::npos) << head;
  EXPECT_EQ(head.find("\r\ncontent-length:"), std::string::npos) << head;
  EXPECT_EQ(head.find("\r\ncontent-encoding:"), std::string::npos) << head;
  EXPECT_NE(head.find("\r\ncontent-type: text/event-stream\r\n"), std::string::npos) << head;
  EXPECT_NE(head.find("\r\ncache-control: no-cache\r\n"), std::string::npos) << head;

  // The first piece, then the first half, while the producer has not ended.
  ASSERT_TRUE(client.ReadBodyUntil([&] { return client.body().size() >= Piece(0).size(); },
                                   milliseconds(5000)))
      << client.body();
  EXPECT_FALSE(probe->done.load()) << "the first piece came only after the producer ended";
  EXPECT_EQ(client.body().substr(0, Piece(0).size()), Piece(0));
  const std::string first_half = Pieces(0, 10);
  ASSERT_TRUE(client.ReadBodyUntil([&] { return client.body().size() >= first_half.size(); },
                                   milliseconds(5000)))
      << client.body();
  EXPECT_EQ(client.body(), first_half);
  EXPECT_FALSE(probe->done.load());
  // The stream holds neither the handler pool (1 thread) nor the event
  // thread (1): another request is served meanwhile.
  Reply live = Get(server.port(), "/v2/health/live");
  EXPECT_EQ(live.status, 200) << live.body;
  EXPECT_FALSE(probe->done.load());

  probe->Release();
  ASSERT_TRUE(client.ReadBodyUntil(nullptr, milliseconds(10'000)))
      << "closed: " << client.closed() << " malformed: " << client.malformed();
  const std::string expected = Pieces(0, 20);
  EXPECT_EQ(client.body(), expected);
  EXPECT_GT(expected.size(), 1024u);  // large enough to be compressed, were it not streamed
  EXPECT_TRUE(StreamProbe::Eventually([&] { return probe->done.load(); }, milliseconds(5000)));
  EXPECT_EQ(probe->written.load(), 20);
  EXPECT_FALSE(probe->refused.load());
  EXPECT_EQ(probe->calls.load(), 1);

  // Keep-alive: the same connection serves the next request.
  ASSERT_TRUE(client.Send(StreamRequest("/v2/health/live")));
  auto [status, body] = client.ReadPlain();
  EXPECT_EQ(status, 200);
  EXPECT_EQ(json::parse(body, nullptr, false), json({{"live", true}})) << body;

  // The access log holds the streamed answer with its body bytes.
  ASSERT_TRUE(StreamProbe::Eventually([&] { return !server.Records("/test/stream").empty(); },
                                      milliseconds(5000)));
  const AccessRecord record = server.Records("/test/stream").front();
  EXPECT_EQ(record.status, 200);
  EXPECT_EQ(record.method, "GET");
  EXPECT_EQ(record.remote_address, "127.0.0.1");
  EXPECT_EQ(record.response_bytes, expected.size());
  EXPECT_GT(record.duration_us, 0);
}

// (2) A client that disconnects after the first piece: a later write
// returns false (within a few pieces) and the producer ends.
TEST_F(HttpStreamTest, ClientThatLeavesMakesTheWriterFail) {
  auto probe = std::make_shared<StreamProbe>();
  InProcessServer server(
      grid_, WithRoute("/test/stream", probe, [](const server::BodyWriter& write, StreamProbe& p) {
        WritePieces(write, p, 500, milliseconds(20));
      }));
  {
    StreamClient client(server.port());
    ASSERT_TRUE(client.ok());
    ASSERT_TRUE(client.Send(StreamRequest("/test/stream")));
    ASSERT_FALSE(client.ReadHead().empty());
    ASSERT_TRUE(client.ReadBodyUntil([&] { return client.body().size() >= Piece(0).size(); },
                                     milliseconds(5000)));
  }  // closed here
  const int64_t closed_at = NowMicros();
  ASSERT_TRUE(StreamProbe::Eventually([&] { return probe->done.load(); }, milliseconds(10'000)))
      << "the producer still runs; pieces written: " << probe->written.load();
  EXPECT_TRUE(probe->refused.load());
  EXPECT_LT(probe->written.load(), 500);
  // Noticed at a write after the close (pieces come every 20 ms).
  EXPECT_LT(probe->refused_at_us.load() - closed_at, 5'000'000);
  EXPECT_EQ(Get(server.port(), "/v2/health/live").status, 200);
}

// (3) A client that never reads: once the socket buffers are full, the
// writer waits at most idle_timeout (1 s here) for room, then returns
// false; nothing hangs and the server keeps serving.
TEST_F(HttpStreamTest, ClientThatNeverReadsMakesTheWriterFail) {
  auto probe = std::make_shared<StreamProbe>();
  HttpServerOptions o;
  o.idle_timeout = milliseconds(1000);
  const std::string big(64 << 10, 'x');
  InProcessServer server(grid_, WithRoute(
                                 "/test/stream", probe,
                                 [big](const server::BodyWriter& write, StreamProbe& p) {
                                   // Up to 64 GiB: far more than any socket buffers.
                                   WritePieces(write, p, 1 << 20, milliseconds(0),
                                               [&big](int) { return big; });
                                 },
                                 o));
  StreamClient client(server.port(), /*receive_buffer=*/4096);
  ASSERT_TRUE(client.ok());
  ASSERT_TRUE(client.Send(StreamRequest("/test/stream")));
  ASSERT_TRUE(StreamProbe::Eventually([&] { return probe->done.load(); }, milliseconds(20'000)))
      << "the producer still runs; pieces written: " << probe->written.load();
  EXPECT_TRUE(probe->refused.load());
  EXPECT_LT(probe->written.load(), 1 << 20);
  EXPECT_EQ(Get(server.port(), "/v2/health/live").status, 200);
  // The server closed the connection: what arrived is a cut body.
  EXPECT_FALSE(client.ReadHead(milliseconds(2000)).empty());
  EXPECT_FALSE(client.ReadBodyUntil(nullptr, milliseconds(5000)));
  EXPECT_TRUE(client.closed());
}

// (4) Stop during streams ends them promptly (well before the 5 s given to
// answers being sent): a reading client's and a non-reading client's
// writers return false, the producers end, Run returns, and the reading
// client sees the connection close without the final chunk.
TEST_F(HttpStreamTest, StopDuringStreamsEndsThemPromptly) {
  auto slow = std::make_shared<StreamProbe>();
  auto stuck = std::make_shared<StreamProbe>();
  HttpServerOptions o =
      WithRoute("/test/slow", slow, [](const server::BodyWriter& write, StreamProbe& p) {
        WritePieces(write, p, 500, milliseconds(20));
      });
  const std::string big(64 << 10, 'x');
  o = WithRoute(
      "/test/stuck", stuck,
      [big](const server::BodyWriter& write, StreamProbe& p) {
        WritePieces(write, p, 1 << 20, milliseconds(0), [&big](int) { return big; });
      },
      o);
  auto server = std::make_unique<InProcessServer>(grid_, o);
  StreamClient reader(server->port());
  StreamClient sleeper(server->port(), /*receive_buffer=*/4096);
  ASSERT_TRUE(reader.ok() && sleeper.ok());
  ASSERT_TRUE(reader.Send(StreamRequest("/test/slow")));
  ASSERT_TRUE(sleeper.Send(StreamRequest("/test/stuck")));
  ASSERT_FALSE(reader.ReadHead().empty());
  ASSERT_TRUE(reader.ReadBodyUntil([&] { return reader.body().size() >= Piece(0).size(); },
                                   milliseconds(5000)));
  ASSERT_TRUE(
      StreamProbe::Eventually([&] { return stuck->written.load() >= 1; }, milliseconds(5000)));
  std::this_thread::sleep_for(milliseconds(300));  // the stuck writer fills the buffers
  EXPECT_FALSE(slow->done.load());
  EXPECT_FALSE(stuck->done.load());

  const Clock::duration took = server->Stop();
  EXPECT_LT(took, std::chrono::seconds(3));
  EXPECT_TRUE(slow->done.load());
  EXPECT_TRUE(slow->refused.load());
  EXPECT_TRUE(stuck->done.load());
  EXPECT_TRUE(stuck->refused.load());
  EXPECT_FALSE(reader.ReadBodyUntil(nullptr, milliseconds(5000)));
  EXPECT_TRUE(reader.closed());
  EXPECT_FALSE(reader.ended());
  EXPECT_FALSE(reader.malformed());
  EXPECT_EQ(reader.body().substr(0, Piece(0).size()), Piece(0));
}

// (5) After a streamed answer, a new connection serves keep-alive requests
// as before (and a streamed answer can follow a plain one on a connection).
TEST_F(HttpStreamTest, KeepAliveRequestsWorkAfterAStream) {
  auto probe = std::make_shared<StreamProbe>();
  InProcessServer server(
      grid_, WithRoute("/test/stream", probe, [](const server::BodyWriter& write, StreamProbe& p) {
        WritePieces(write, p, 3, milliseconds(5));
      }));
  {
    StreamClient first(server.port());
    ASSERT_TRUE(first.Send(StreamRequest("/test/stream")));
    ASSERT_FALSE(first.ReadHead().empty());
    ASSERT_TRUE(first.ReadBodyUntil(nullptr, milliseconds(5000)));
    EXPECT_EQ(first.body(), Pieces(0, 3));
  }
  StreamClient next(server.port());
  ASSERT_TRUE(next.ok());
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(next.Send(StreamRequest("/v2/health/live")));
    auto [status, body] = next.ReadPlain();
    EXPECT_EQ(status, 200) << "request " << i;
    EXPECT_EQ(json::parse(body, nullptr, false), json({{"live", true}})) << body;
  }
  ASSERT_TRUE(next.Send(StreamRequest("/test/stream")));
  ASSERT_FALSE(next.ReadHead().empty());
  ASSERT_TRUE(next.ReadBodyUntil(nullptr, milliseconds(5000)));
  EXPECT_EQ(next.body(), Pieces(0, 3));
  ASSERT_TRUE(next.Send(StreamRequest("/v2/health/live")));
  EXPECT_EQ(next.ReadPlain().first, 200);
  EXPECT_EQ(probe->calls.load(), 2);
}

// A producer slower than idle_timeout between two pieces (a model's first
// token) keeps its connection: the idle timeout watches the client, not
// the producer.
TEST_F(HttpStreamTest, ASlowProducerIsNotCutByTheIdleTimeout) {
  auto probe = std::make_shared<StreamProbe>();
  HttpServerOptions o;
  o.idle_timeout = milliseconds(1000);
  InProcessServer server(grid_, WithRoute(
                                 "/test/stream", probe,
                                 [](const server::BodyWriter& write, StreamProbe& p) {
                                   if (!write(Piece(0))) return;
                                   std::this_thread::sleep_for(milliseconds(2500));
                                   WritePieces(write, p, 2, milliseconds(0));
                                 },
                                 o));
  StreamClient client(server.port());
  ASSERT_TRUE(client.Send(StreamRequest("/test/stream")));
  ASSERT_FALSE(client.ReadHead().empty());
  ASSERT_TRUE(client.ReadBodyUntil(nullptr, milliseconds(10'000)))
      << "closed: " << client.closed() << " body: " << client.body();
  EXPECT_EQ(client.body(), Piece(0) + Pieces(0, 2));
  EXPECT_FALSE(probe->refused.load());
}

// An HTTP/1.0 client cannot take chunks: it gets the body as it is, ended
// by the connection's close.
TEST_F(HttpStreamTest, Http10ClientGetsTheBodyEndedByTheClose) {
  auto probe = std::make_shared<StreamProbe>();
  InProcessServer server(
      grid_, WithRoute("/test/stream", probe, [](const server::BodyWriter& write, StreamProbe& p) {
        WritePieces(write, p, 5, milliseconds(5));
      }));
  StreamClient client(server.port());
  ASSERT_TRUE(client.Send("GET /test/stream HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n"));
  const std::string head = StreamClient::Lower(client.ReadHead());
  EXPECT_NE(head.find(" 200 "), std::string::npos) << head;
  EXPECT_EQ(head.find("transfer-encoding"), std::string::npos) << head;
  EXPECT_EQ(head.find("\r\ncontent-length:"), std::string::npos) << head;
  EXPECT_EQ(client.ReadToClose(milliseconds(5000)), Pieces(0, 5));
  EXPECT_TRUE(client.closed());
}

// Past max_streams streams in progress a streamed reply is answered 503
// with Retry-After and its stream function is never called; a stream that
// ended frees its place.
TEST_F(HttpStreamTest, StreamsPastMaxStreamsAre503) {
  auto held = std::make_shared<StreamProbe>();
  auto extra = std::make_shared<StreamProbe>();
  HttpServerOptions o;
  o.max_streams = 1;
  o = WithRoute(
      "/test/held", held,
      [](const server::BodyWriter& write, StreamProbe& p) {
        if (!write(Piece(0))) return;
        p.WaitGo(milliseconds(10'000));
        write(Piece(1));
      },
      o);
  o = WithRoute(
      "/test/extra", extra,
      [](const server::BodyWriter& write, StreamProbe& p) {
        WritePieces(write, p, 2, milliseconds(0));
      },
      o);
  InProcessServer server(grid_, o);
  StreamClient first(server.port());
  ASSERT_TRUE(first.Send(StreamRequest("/test/held")));
  ASSERT_FALSE(first.ReadHead().empty());
  ASSERT_TRUE(first.ReadBodyUntil([&] { return !first.body().empty(); }, milliseconds(5000)));

  StreamClient second(server.port());
  ASSERT_TRUE(second.Send(StreamRequest("/test/extra")));
  const std::string head = StreamClient::Lower(second.ReadHead());
  EXPECT_EQ(head.rfind("http/1.1 503", 0), 0u) << head;
  EXPECT_NE(head.find("\r\nretry-after: 1\r\n"), std::string::npos) << head;
  EXPECT_EQ(extra->calls.load(), 0);

  held->Release();
  ASSERT_TRUE(first.ReadBodyUntil(nullptr, milliseconds(5000)));
  EXPECT_EQ(first.body(), Pieces(0, 2));
  // The place is free once the first stream function returned.
  ASSERT_TRUE(StreamProbe::Eventually([&] { return held->done.load(); }, milliseconds(5000)));
  bool streamed = false;
  for (int attempt = 0; attempt < 50 && !streamed; ++attempt) {
    StreamClient c(server.port());
    ASSERT_TRUE(c.Send(StreamRequest("/test/extra")));
    const std::string h = c.ReadHead();
    if (h.rfind("HTTP/1.1 200", 0) == 0) {
      ASSERT_TRUE(c.ReadBodyUntil(nullptr, milliseconds(5000)));
      EXPECT_EQ(c.body(), Pieces(0, 2));
      streamed = true;
    } else {
      std::this_thread::sleep_for(milliseconds(20));  // the first thread is still finishing
    }
  }
  EXPECT_TRUE(streamed);
  EXPECT_EQ(extra->calls.load(), 1);
}

// A producer that throws after a piece: the connection is closed without
// the final chunk (the client sees an incomplete body) and the server
// keeps serving.
TEST_F(HttpStreamTest, ThrowingProducerCutsTheBody) {
  auto probe = std::make_shared<StreamProbe>();
  InProcessServer server(
      grid_, WithRoute("/test/stream", probe, [](const server::BodyWriter& write, StreamProbe&) {
        write(Piece(0));
        throw std::runtime_error("producer failed");
      }));
  StreamClient client(server.port());
  ASSERT_TRUE(client.Send(StreamRequest("/test/stream")));
  ASSERT_FALSE(client.ReadHead().empty());
  EXPECT_FALSE(client.ReadBodyUntil(nullptr, milliseconds(5000)));
  EXPECT_TRUE(client.closed());
  EXPECT_FALSE(client.ended());
  EXPECT_EQ(client.body(), Piece(0));
  EXPECT_EQ(Get(server.port(), "/v2/health/live").status, 200);
}

// A bad extra route pattern makes Bind fail, naming it; max_streams is
// checked.
TEST_F(HttpStreamTest, BadOptionsFailBind) {
  HttpServerOptions o;
  o.host = "127.0.0.1";
  o.port = 0;
  o.extra_routes.push_back(
      {"GET", "/test/(unclosed", [](const server::HttpRequest&) { return server::HttpReply{}; }});
  HttpServer bad_route(grid_, o);
  auto bound = bad_route.Bind();
  ASSERT_FALSE(bound.ok());
  EXPECT_EQ(bound.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bound.status().message().find("/test/(unclosed"), std::string::npos)
      << bound.status().message();
  HttpServerOptions z;
  z.host = "127.0.0.1";
  z.port = 0;
  z.max_streams = 0;
  HttpServer no_streams(grid_, z);
  auto refused = no_streams.Bind();
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("max_streams"), std::string::npos)
      << refused.status().message();
}

}  // namespace
}  // namespace modelgrid::server_test
