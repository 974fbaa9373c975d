// The real `modelgrid serve` on Hugging Face folders as Hugging Face writes
// them (no TorchScript; $MODELGRID_TEST_HF_ZOO), through worker processes:
// the OpenAI-compatible routes (/v1/models, /v1/embeddings, /v1/completions
// with and without streaming, /v1/chat/completions' 501) and KServe v2 with
// text in and out. Outputs are checked against the independent Python
// reference ($MODELGRID_TEST_HF_REFERENCE). Without the HF zoo the tests
// fail, naming the command that makes it.

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "server/serve_test_util.h"
#include "testing/reference_tensors.h"

namespace modelgrid {
namespace {

using nlohmann::json;
using namespace modelgrid::server_test;

std::optional<fs::path> EnvDir(const char* var) {
  const char* v = std::getenv(var);
  if (!v || !fs::is_directory(v)) return std::nullopt;
  return fs::path(v);
}

class OpenAiServeTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto zoo = EnvDir("MODELGRID_TEST_HF_ZOO");
    if (!zoo) return;
    server_.Start(*zoo, "openai", {"gpt2-hf", "minilm-embed", "bert-classifier"}, {});
  }
  static void TearDownTestSuite() { server_.Stop(); }
  void SetUp() override {
    refs_ = EnvDir("MODELGRID_TEST_HF_REFERENCE").value_or(fs::path());
    ASSERT_TRUE(EnvDir("MODELGRID_TEST_HF_ZOO") && !refs_.empty())
        << "MODELGRID_TEST_HF_ZOO / MODELGRID_TEST_HF_REFERENCE are not folders: made by make "
           "zoo-small";
    ASSERT_GT(server_.port(), 0) << server_.Output();
    port_ = server_.port();
  }
  static SuiteServer server_;
  fs::path refs_;
  int port_ = 0;
};
SuiteServer OpenAiServeTest::server_;

std::vector<int64_t> Row(const torch::Tensor& t, int64_t r) {
  torch::Tensor row = t[r].contiguous();
  return std::vector<int64_t>(row.data_ptr<int64_t>(), row.data_ptr<int64_t>() + row.numel());
}

TEST_F(OpenAiServeTest, ModelsListsTheRepository) {
  Reply r = Get(port_, "/v1/models");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json["object"], "list");
  std::set<std::string> ids;
  for (const auto& m : r.json["data"]) {
    ids.insert(m["id"].get<std::string>());
    EXPECT_EQ(m["object"], "model");
  }
  EXPECT_EQ(ids, (std::set<std::string>{"bert-classifier", "gpt2-hf", "minilm-embed"}));
  // The worker counts the weights it maps from the file (fp32 on the CPU:
  // views, not allocations) as the model's bytes.
  Reply models = Get(port_, "/v2/modelgrid/models?refresh=1");
  ASSERT_EQ(models.status, 200) << models.body;
  const uint64_t file =
      fs::file_size(*EnvDir("MODELGRID_TEST_HF_ZOO") / "minilm-embed" / "model.safetensors");
  bool seen = false;
  for (const auto& m : models.json["models"]) {
    if (m.value("name", "") != "minilm-embed") continue;
    seen = true;
    EXPECT_GT(m["current_bytes"].get<uint64_t>(), file * 9 / 10) << m.dump();
  }
  EXPECT_TRUE(seen) << models.body;
}

// Token ids in: the embedding equals the Python reference's; text in: unit
// vectors, one per input, with usage counting the tokenizer's tokens.
TEST_F(OpenAiServeTest, EmbeddingsEqualTheReferenceAndTakeText) {
  auto ref = testing::ReadReferenceTensors(refs_ / "minilm-embed.safetensors");
  const std::vector<int64_t> ids = Row(ref.at("input_ids"), 0);  // row 0 has no padding
  Reply r = Post(port_, "/v1/embeddings", json{{"model", "minilm-embed"}, {"input", ids}}.dump());
  ASSERT_EQ(r.status, 200) << r.body;
  const auto got = r.json["data"][0]["embedding"].get<std::vector<float>>();
  torch::Tensor want = ref.at("embeddings")[0];
  ASSERT_EQ(static_cast<int64_t>(got.size()), want.size(0));
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i].item<float>(), 1e-5) << i;
  EXPECT_EQ(r.json["usage"]["prompt_tokens"], static_cast<int64_t>(ids.size()));

  Reply text = Post(port_, "/v1/embeddings",
                    json{{"model", "minilm-embed"}, {"input", {"hello world", "Grüße, 世界"}}}.dump());
  ASSERT_EQ(text.status, 200) << text.body;
  ASSERT_EQ(text.json["data"].size(), 2u);
  for (const auto& d : text.json["data"]) {
    double norm = 0;
    for (float v : d["embedding"].get<std::vector<float>>()) norm += double(v) * v;
    EXPECT_NEAR(norm, 1.0, 1e-4);
  }
  EXPECT_GT(text.json["usage"]["prompt_tokens"].get<int64_t>(), 4);
}

// Greedy generation through the server (in chunks of a few tokens, through a
// worker) gives the reference's 32 tokens; the text is the same streamed
// or not, and the stream is server-sent events ending in [DONE].
TEST_F(OpenAiServeTest, CompletionsGreedyEqualTheReferenceStreamedOrNot) {
  auto ref = testing::ReadReferenceTensors(refs_ / "gpt2-hf.safetensors");
  const std::vector<int64_t> prompt = Row(ref.at("input_ids"), 0);
  const std::vector<int64_t> want = Row(ref.at("greedy_ids"), 0);

  json kserve = {
      {"inputs",
       {{{"name", "input_ids"}, {"datatype", "INT64"}, {"shape", {1, prompt.size()}}, {"data", prompt}}}},
      {"parameters", {{"task", "generate"}, {"max_new_tokens", 32}, {"ignore_eos", true}}}};
  Reply k = Post(port_, "/v2/models/gpt2-hf/infer", kserve.dump());
  ASSERT_EQ(k.status, 200) << k.body;
  std::vector<int64_t> got;
  std::string kserve_text;
  for (const auto& o : k.json["outputs"]) {
    if (o["name"] == "generated_ids") got = o["data"].get<std::vector<int64_t>>();
    if (o["name"] == "text_output") kserve_text = o["data"][0].get<std::string>();
  }
  EXPECT_EQ(got, want);

  json body = {{"model", "gpt2-hf"}, {"prompt", prompt}, {"max_tokens", 32},
               {"temperature", 0},   {"ignore_eos", true}};
  Reply c = Post(port_, "/v1/completions", body.dump());
  ASSERT_EQ(c.status, 200) << c.body;
  EXPECT_EQ(c.json["object"], "text_completion");
  const std::string text = c.json["choices"][0]["text"].get<std::string>();
  EXPECT_EQ(text, kserve_text);
  EXPECT_EQ(c.json["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(c.json["usage"]["completion_tokens"], 32);
  EXPECT_EQ(c.json["usage"]["prompt_tokens"], static_cast<int64_t>(prompt.size()));

  body["stream"] = true;
  Reply s = Post(port_, "/v1/completions", body.dump());
  ASSERT_EQ(s.status, 200) << s.body;
  EXPECT_NE(s.Header("Content-Type").find("text/event-stream"), std::string::npos);
  std::string streamed;
  int events = 0;
  bool done = false;
  json last_finish;
  for (size_t at = 0; (at = s.body.find("data: ", at)) != std::string::npos;) {
    const size_t end = s.body.find("\n\n", at);
    ASSERT_NE(end, std::string::npos);
    const std::string data = s.body.substr(at + 6, end - at - 6);
    at = end;
    if (data == "[DONE]") {
      done = true;
      continue;
    }
    json chunk = json::parse(data);
    ++events;
    for (const auto& ch : chunk["choices"]) {
      streamed += ch["text"].get<std::string>();
      if (!ch["finish_reason"].is_null()) last_finish = ch["finish_reason"];
    }
  }
  EXPECT_TRUE(done);
  EXPECT_GE(events, 2);  // 32 tokens come in several calls
  EXPECT_EQ(streamed, text);
  EXPECT_EQ(last_finish, "length");
}

// A short request to a model that is busy with a long generation is served
// before the long one ends: the generation gives the model up between calls.
TEST_F(OpenAiServeTest, AShortRequestIsServedDuringALongGeneration) {
  // Wait until the long generation has run its first call (its executions
  // are counted in the model's statistics), polling for at most 5 s; a fixed
  // sleep let a fast machine finish all 120 tokens before the short request.
  auto executions = [&] {
    Reply s = Get(port_, "/v2/models/gpt2-hf/stats");
    return s.status == 200 ? s.json["model_stats"][0]["execution_count"].get<uint64_t>() : 0;
  };
  const uint64_t before_long = executions();
  std::atomic<bool> long_done{false};
  std::thread long_one([&] {
    json body = {{"model", "gpt2-hf"}, {"prompt", "Once"}, {"max_tokens", 120},
                 {"temperature", 0},   {"ignore_eos", true}};
    Reply r = Post(port_, "/v1/completions", body.dump());
    EXPECT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.json["usage"]["completion_tokens"], 120);
    long_done = true;
  });
  for (int i = 0; i < 5000 && executions() == before_long && !long_done; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  json small = {{"model", "gpt2-hf"}, {"prompt", "Hi"}, {"max_tokens", 1}, {"temperature", 0}};
  Reply r = Post(port_, "/v1/completions", small.dump());
  const bool before = !long_done.load();
  ASSERT_EQ(r.status, 200) << r.body;
  long_one.join();
  EXPECT_TRUE(before) << "the 1-token request waited for the 120-token generation";
}

TEST_F(OpenAiServeTest, KServeTextInClassifyOut) {
  json req = {{"inputs", {{{"name", "text"}, {"datatype", "BYTES"}, {"shape", {2}},
                           {"data", {"this is fine", "ça ne va pas"}}}}},
              {"parameters", {{"task", "classify"}}}};
  Reply r = Post(port_, "/v2/models/bert-classifier/infer", req.dump());
  ASSERT_EQ(r.status, 200) << r.body;
  const std::set<std::string> names = {"negative", "neutral", "positive"};
  bool saw_label = false;
  for (const auto& o : r.json["outputs"]) {
    if (o["name"] != "label") continue;
    saw_label = true;
    EXPECT_EQ(o["datatype"], "BYTES");
    ASSERT_EQ(o["data"].size(), 2u);
    for (const auto& l : o["data"]) EXPECT_TRUE(names.contains(l.get<std::string>())) << l;
  }
  EXPECT_TRUE(saw_label) << r.body;
}

TEST_F(OpenAiServeTest, ErrorsAreOpenAiShapedAndNameTheProblem) {
  auto check = [&](const std::string& path, const json& body, int status,
                   const std::string& words) {
    Reply r = Post(port_, path, body.dump());
    EXPECT_EQ(r.status, status) << path << " " << body.dump() << " -> " << r.body;
    ASSERT_TRUE(r.json.is_object() && r.json["error"].is_object()) << r.body;
    EXPECT_NE(r.json["error"]["message"].get<std::string>().find(words), std::string::npos)
        << r.body;
    EXPECT_TRUE(r.json["error"].contains("type"));
  };
  check("/v1/chat/completions", {{"model", "gpt2-hf"}, {"messages", json::array()}}, 501,
        "chat templates");
  check("/v1/completions", {{"model", "nope"}, {"prompt", "x"}}, 404, "nope");
  check("/v1/completions", {{"model", "gpt2-hf"}, {"prompt", 3}}, 400, "'prompt'");
  check("/v1/completions", {{"model", "gpt2-hf"}, {"prompt", "x"}, {"max_tokens", 5000}}, 400,
        "max_new_tokens");
  check("/v1/completions", {{"model", "gpt2-hf"}, {"prompt", "x"}, {"n", 2}}, 400, "'n'");
  check("/v1/completions", {{"model", "minilm-embed"}, {"prompt", "x"}}, 400, "does not generate");
  check("/v1/embeddings", {{"model", "minilm-embed"}}, 400, "'input'");
  // The model still serves.
  Reply ok = Post(port_, "/v1/completions",
                  json{{"model", "gpt2-hf"}, {"prompt", "x"}, {"max_tokens", 2}}.dump());
  EXPECT_EQ(ok.status, 200) << ok.body;
}

}  // namespace
}  // namespace modelgrid
