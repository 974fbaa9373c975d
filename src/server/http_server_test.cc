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

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <set>
#include <thread>

#include "modelgrid/kserve/infer_codec.h"
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

}  // namespace
}  // namespace modelgrid::server_test
