// Text generation reached the way Triton / KServe clients reach it, through
// the real `modelgrid serve` on Hugging Face folders ($MODELGRID_TEST_HF_ZOO:
// gpt2-hf with its tokenizer, minilm-embed, bert-classifier):
//   - gRPC ModelStreamInfer with the decoupled convention (text_input,
//     stream, triton_final_response, triton_enable_empty_final_response):
//     the pieces add up to the whole generation (text and ids, the ids
//     decoding to the text), several requests interleave on one stream,
//     errors answer on the stream, a cancelled stream stops its generation;
//   - Triton's HTTP generate extension (/generate, /generate_stream);
//   - plain ModelInfer with a BYTES `text` input (embed, classify).
// Without the HF zoo the tests fail, naming the command that makes it.
#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <set>

#include "grpc/grpc_client.h"
#include "grpc/grpc_convert.h"
#include "modelgrid/tokenizer/tokenizer.h"
#include "server/serve_test_util.h"

namespace modelgrid::server_test {
namespace {

using grpc_internal::GrpcClient;
using nlohmann::json;

using Stream =
    grpc::ClientReaderWriter<inference::ModelInferRequest, inference::ModelStreamInferResponse>;

std::optional<fs::path> HfZoo() {
  const char* v = std::getenv("MODELGRID_TEST_HF_ZOO");
  if (!v || !fs::is_directory(fs::path(v) / "gpt2-hf")) return std::nullopt;
  return fs::path(v);
}

class GenerateServeTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (auto zoo = HfZoo())
      server_.Start(*zoo, "generate", {"gpt2-hf", "minilm-embed", "bert-classifier"}, {});
  }
  static void TearDownTestSuite() { server_.Stop(); }
  void SetUp() override {
    ASSERT_TRUE(HfZoo()) << "MODELGRID_TEST_HF_ZOO is not the HF zoo: made by make zoo-small";
    ASSERT_GT(server_.port(), 0) << server_.Output();
    ASSERT_GT(server_.grpc_port(), 0) << server_.Output();
    port_ = server_.port();
    target_ = "127.0.0.1:" + std::to_string(server_.grpc_port());
  }

  // The model's execution count (each call of a generation is one).
  uint64_t Executions(const std::string& model) {
    Reply s = Get(port_, "/v2/models/" + model + "/stats");
    return s.status == 200 ? s.json["model_stats"][0]["execution_count"].get<uint64_t>() : 0;
  }

  // Polls (every 20 ms, at most 5 s) until the count holds still for 300 ms.
  uint64_t SettledExecutions(const std::string& model) {
    uint64_t last = Executions(model);
    auto still_since = Clock::now();
    for (int i = 0; i < 250 && Clock::now() - still_since < std::chrono::milliseconds(300); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      const uint64_t now = Executions(model);
      if (now != last) still_since = Clock::now();
      last = now;
    }
    return last;
  }

  static SuiteServer server_;
  int port_ = 0;
  std::string target_;
};
SuiteServer GenerateServeTest::server_;

InferTensor Bytes(const std::string& name, const std::vector<std::string>& rows) {
  InferTensor t{name, DataType::kBytes, {static_cast<int64_t>(rows.size())}, {}};
  for (const std::string& r : rows) AppendBytesElement(&t.data, r);
  return t;
}

InferTensor Bool(const std::string& name, bool value) {
  return InferTensor{name, DataType::kBool, {1}, std::string(1, value ? 1 : 0)};
}

// A text_input request in the vLLM backend's shape: `stream` as a BOOL
// input when `stream_input` is set, the rest as parameters.
inference::ModelInferRequest TextRequest(const std::string& model, const std::string& id,
                                         const std::string& prompt, const json& params,
                                         std::optional<bool> stream_input,
                                         const std::vector<std::string>& outputs = {}) {
  InferRequest r;
  r.id = id;
  r.parameters = params;
  r.inputs.push_back(Bytes("text_input", {prompt}));
  if (stream_input) r.inputs.push_back(Bool("stream", *stream_input));
  for (const std::string& o : outputs)
    r.outputs.push_back(RequestedOutput{o, false, json::object()});
  inference::ModelInferRequest m;
  EXPECT_TRUE(grpc_internal::EncodeModelInferRequest(model, "", r, &m).ok());
  return m;
}

// What one request's responses on a stream said.
struct Collected {
  std::string text;
  std::vector<int64_t> ids;
  std::string finish_reason;
  std::string error;
  int pieces = 0;  // responses with outputs
  int finals = 0;  // responses flagged triton_final_response
  bool final_was_empty = false;
  bool piece_after_final = false;
  std::set<std::string> output_names;
};

std::vector<int64_t> Ids(const InferTensor& t) {
  std::vector<int64_t> all(t.data.size() / sizeof(int64_t));
  std::memcpy(all.data(), t.data.data(), all.size() * sizeof(int64_t));
  std::vector<int64_t> ids;
  for (int64_t id : all) {
    if (id >= 0) ids.push_back(id);
  }
  return ids;
}

// Reads `stream` until each of `ids` got its final response (at most 2000
// responses; each read is bounded by the call's deadline). `order` (when
// given) receives the id of every response in arrival order.
void ReadUntilFinal(Stream* stream, const std::set<std::string>& ids,
                    std::map<std::string, Collected>* got,
                    std::vector<std::string>* order = nullptr) {
  std::set<std::string> open = ids;
  inference::ModelStreamInferResponse answer;
  for (int i = 0; i < 2000 && !open.empty() && stream->Read(&answer); ++i) {
    const std::string id = answer.infer_response().id();
    Collected& c = (*got)[id];
    if (order) order->push_back(id);
    const auto& params = answer.infer_response().parameters();
    const bool final =
        params.count("triton_final_response") && params.at("triton_final_response").bool_param();
    if (!answer.error_message().empty()) c.error = answer.error_message();
    if (answer.infer_response().outputs_size() > 0) {
      if (c.finals > 0) c.piece_after_final = true;
      ++c.pieces;
      auto decoded = grpc_internal::DecodeModelInferResponse(answer.mutable_infer_response());
      ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
      for (const InferTensor& t : decoded->outputs) {
        c.output_names.insert(t.name);
        if (t.name == "text_output") {
          auto rows = SplitBytesElements(t.data);
          ASSERT_TRUE(rows.ok() && rows->size() == 1);
          c.text += std::string(rows->at(0));
        } else if (t.name == "generated_ids") {
          for (int64_t id : Ids(t)) c.ids.push_back(id);
        } else if (t.name == "finish_reason") {
          auto rows = SplitBytesElements(t.data);
          ASSERT_TRUE(rows.ok() && rows->size() == 1);
          if (!rows->at(0).empty()) c.finish_reason = std::string(rows->at(0));
        }
      }
    }
    if (final) {
      ++c.finals;
      c.final_was_empty = answer.infer_response().outputs_size() == 0;
      open.erase(id);
    }
  }
  EXPECT_TRUE(open.empty()) << "no final response for " << open.size() << " request(s)";
}

// One request alone on a fresh stream, read to its end.
Collected StreamOne(const std::string& target, const inference::ModelInferRequest& request) {
  GrpcClient client(target);
  auto context = client.Context();
  auto stream = client.stub().ModelStreamInfer(context.get());
  EXPECT_TRUE(stream->Write(request));
  std::map<std::string, Collected> got;
  ReadUntilFinal(stream.get(), {request.id()}, &got);
  stream->WritesDone();
  EXPECT_TRUE(stream->Finish().ok());
  return got[request.id()];
}

const json kGreedy24 = {{"max_tokens", 24}, {"temperature", 0}, {"ignore_eos", true}};

// Streamed, the 24 tokens come in several pieces (4 tokens per call) that
// add up to the whole answer of the same request unstreamed, over gRPC, over
// HTTP /generate and over KServe infer; the ids decode to the text; only the
// last response is final.
TEST_F(GenerateServeTest, StreamedPiecesAddUpToTheWholeGeneration) {
  const std::string prompt = "Once upon a time";
  Collected whole = StreamOne(target_, TextRequest("gpt2-hf", "whole", prompt, kGreedy24, false));
  ASSERT_EQ(whole.error, "");
  EXPECT_EQ(whole.pieces, 1);
  EXPECT_EQ(whole.finals, 1);
  EXPECT_FALSE(whole.final_was_empty);
  ASSERT_EQ(whole.ids.size(), 24u);
  EXPECT_EQ(whole.finish_reason, "length");
  EXPECT_EQ(whole.output_names, (std::set<std::string>{"text_output", "generated_ids",
                                                       "finish_reason", "prompt_tokens"}));

  Collected streamed = StreamOne(target_, TextRequest("gpt2-hf", "s", prompt, kGreedy24, true));
  ASSERT_EQ(streamed.error, "");
  EXPECT_GE(streamed.pieces, 3) << "24 tokens in calls of 4";
  EXPECT_EQ(streamed.finals, 1);
  EXPECT_FALSE(streamed.final_was_empty) << "the last piece carries the final flag";
  EXPECT_FALSE(streamed.piece_after_final);
  EXPECT_EQ(streamed.text, whole.text);
  EXPECT_EQ(streamed.ids, whole.ids);
  EXPECT_EQ(streamed.finish_reason, "length");

  auto tokenizer = tokenizer::Tokenizer::FromDirectory((*HfZoo() / "gpt2-hf").string());
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status().ToString();
  auto decoded = tokenizer->Decode(streamed.ids, /*skip_special_tokens=*/true);
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  EXPECT_EQ(*decoded, streamed.text);

  Reply http = Post(port_, "/v2/models/gpt2-hf/generate",
                    json{{"text_input", prompt}, {"parameters", kGreedy24}}.dump());
  ASSERT_EQ(http.status, 200) << http.body;
  EXPECT_EQ(http.json["model_name"], "gpt2-hf");
  EXPECT_TRUE(http.json["model_version"].is_string());
  EXPECT_EQ(http.json["text_output"], whole.text);
  EXPECT_EQ(http.json["generated_ids"].get<std::vector<int64_t>>(), whole.ids);
  EXPECT_EQ(http.json["finish_reason"], "length");
  EXPECT_GT(http.json["prompt_tokens"].get<int64_t>(), 0);

  json kserve = {
      {"inputs", {{{"name", "text"}, {"datatype", "BYTES"}, {"shape", {1}}, {"data", {prompt}}}}},
      {"parameters", {{"task", "generate"}, {"max_new_tokens", 24}, {"ignore_eos", true}}}};
  Reply k = Post(port_, "/v2/models/gpt2-hf/infer", kserve.dump());
  ASSERT_EQ(k.status, 200) << k.body;
  for (const auto& o : k.json["outputs"]) {
    if (o["name"] == "text_output") {
      EXPECT_EQ(o["data"][0], whole.text);
    }
  }
}

// triton_enable_empty_final_response: no piece is final, an empty response
// is; only the requested output comes.
TEST_F(GenerateServeTest, EmptyFinalResponseAndRequestedOutputs) {
  json params = kGreedy24;
  params["stream"] = true;  // as a parameter this time
  params["triton_enable_empty_final_response"] = true;
  Collected c = StreamOne(
      target_, TextRequest("gpt2-hf", "e", "The sea", params, std::nullopt, {"text_output"}));
  ASSERT_EQ(c.error, "");
  EXPECT_GE(c.pieces, 3);
  EXPECT_EQ(c.finals, 1);
  EXPECT_TRUE(c.final_was_empty);
  EXPECT_EQ(c.output_names, std::set<std::string>{"text_output"});
  EXPECT_FALSE(c.text.empty());
}

// Two streamed requests on one stream: their pieces interleave (the model
// takes turns between their calls) and each adds up to its own answer.
TEST_F(GenerateServeTest, TwoStreamedRequestsInterleaveOnOneStream) {
  GrpcClient client(target_);
  auto context = client.Context();
  auto stream = client.stub().ModelStreamInfer(context.get());
  ASSERT_TRUE(stream->Write(TextRequest("gpt2-hf", "a", "Once upon a time", kGreedy24, true)));
  ASSERT_TRUE(stream->Write(TextRequest("gpt2-hf", "b", "The weather today", kGreedy24, true)));
  std::map<std::string, Collected> got;
  std::vector<std::string> order;
  ReadUntilFinal(stream.get(), {"a", "b"}, &got, &order);
  stream->WritesDone();
  EXPECT_TRUE(stream->Finish().ok());
  ASSERT_EQ(got["a"].error, "");
  ASSERT_EQ(got["b"].error, "");
  // Interleaved: some piece of one request arrives between two of the other.
  const auto first_b = std::find(order.begin(), order.end(), "b");
  const auto last_a = std::find(order.rbegin(), order.rend(), "a").base();
  EXPECT_TRUE(first_b < last_a) << "every piece of 'a' came before 'b' began";
  for (const auto& [id, prompt] :
       std::map<std::string, std::string>{{"a", "Once upon a time"}, {"b", "The weather today"}}) {
    Reply whole = Post(port_, "/v2/models/gpt2-hf/generate",
                       json{{"text_input", prompt}, {"parameters", kGreedy24}}.dump());
    ASSERT_EQ(whole.status, 200) << whole.body;
    EXPECT_EQ(got[id].text, whole.json["text_output"]) << id;
    EXPECT_EQ(got[id].ids, whole.json["generated_ids"].get<std::vector<int64_t>>()) << id;
    EXPECT_EQ(got[id].finals, 1) << id;
  }
}

// Errors answer on the stream, flagged final and carrying the id, naming
// the problem; the stream stays open and serves the next request.
TEST_F(GenerateServeTest, ErrorsAnswerOnTheStreamWhichStaysOpen) {
  GrpcClient client(target_);
  auto context = client.Context();
  auto stream = client.stub().ModelStreamInfer(context.get());
  const std::map<std::string, std::pair<inference::ModelInferRequest, std::string>> cases = {
      {"unknown", {TextRequest("nope", "unknown", "x", kGreedy24, true), "unknown model 'nope'"}},
      {"embed",
       {TextRequest("minilm-embed", "embed", "x", kGreedy24, true), "does not generate text"}},
      {"limit",
       {TextRequest("gpt2-hf", "limit", "x", {{"max_tokens", 5000}}, true), "max_new_tokens"}},
      {"field", {TextRequest("gpt2-hf", "field", "x", {{"beam_width", 2}}, true), "'beam_width'"}},
      {"echo",
       {TextRequest("gpt2-hf", "echo", "x", {{"exclude_input_in_output", false}}, true),
        "exclude_input_in_output"}},
      {"output", {TextRequest("gpt2-hf", "output", "x", kGreedy24, true, {"logits"}), "'logits'"}},
  };
  std::set<std::string> ids;
  for (const auto& [id, c] : cases) {
    ASSERT_TRUE(stream->Write(c.first));
    ids.insert(id);
  }
  std::map<std::string, Collected> got;
  ReadUntilFinal(stream.get(), ids, &got);
  for (const auto& [id, c] : cases) {
    EXPECT_NE(got[id].error.find(c.second), std::string::npos) << id << ": " << got[id].error;
    EXPECT_EQ(got[id].pieces, 0) << id;
  }
  ASSERT_TRUE(stream->Write(TextRequest("gpt2-hf", "ok", "Hello", kGreedy24, true)));
  ReadUntilFinal(stream.get(), {"ok"}, &got);
  EXPECT_EQ(got["ok"].error, "");
  EXPECT_EQ(got["ok"].ids.size(), 24u);
  stream->WritesDone();
  EXPECT_TRUE(stream->Finish().ok());
}

// A client that cancels its stream after two pieces stops the generation:
// the model runs far fewer calls than the 30 that 120 tokens take, and
// serves the next request.
TEST_F(GenerateServeTest, CancellingAStreamStopsItsGeneration) {
  const uint64_t before = SettledExecutions("gpt2-hf");
  {
    GrpcClient client(target_);
    auto context = client.Context();
    auto stream = client.stub().ModelStreamInfer(context.get());
    const json params = {{"max_tokens", 120}, {"temperature", 0}, {"ignore_eos", true}};
    ASSERT_TRUE(stream->Write(TextRequest("gpt2-hf", "long", "Once", params, true)));
    inference::ModelStreamInferResponse answer;
    for (int i = 0; i < 2; ++i) {
      ASSERT_TRUE(stream->Read(&answer));
      ASSERT_EQ(answer.error_message(), "");
    }
    context->TryCancel();
    while (stream->Read(&answer)) {
    }
    EXPECT_EQ(stream->Finish().error_code(), grpc::CANCELLED);
  }
  const uint64_t after = SettledExecutions("gpt2-hf");
  EXPECT_LT(after - before, 20u) << "the cancelled generation went on";
  Collected next = StreamOne(target_, TextRequest("gpt2-hf", "next", "Hello", kGreedy24, true));
  EXPECT_EQ(next.error, "");
  EXPECT_EQ(next.ids.size(), 24u);
}

// The body's other shapes: TensorRT-LLM's top-level fields and vLLM's
// sampling_parameters string give the same greedy text; a stream's events
// add up to it, the last one saying why it ended.
TEST_F(GenerateServeTest, HttpGenerateAndGenerateStreamAgree) {
  const std::string prompt = "It was a dark and stormy night";
  Reply whole = Post(port_, "/v2/models/gpt2-hf/generate",
                     json{{"text_input", prompt}, {"id", "42"}, {"parameters", kGreedy24}}.dump());
  ASSERT_EQ(whole.status, 200) << whole.body;
  EXPECT_EQ(whole.json["id"], "42");
  const std::string text = whole.json["text_output"].get<std::string>();
  const auto ids = whole.json["generated_ids"].get<std::vector<int64_t>>();
  ASSERT_EQ(ids.size(), 24u);

  json trt = {
      {"text_input", prompt}, {"max_tokens", 24}, {"temperature", 0.0}, {"ignore_eos", true}};
  Reply r = Post(port_, "/v2/models/gpt2-hf/generate", trt.dump());
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json["text_output"], text);

  json vllm = {{"text_input", {prompt}},
               {"stream", {false}},
               {"exclude_input_in_output", true},
               {"sampling_parameters",
                json{{"max_tokens", 24}, {"temperature", 0}, {"ignore_eos", true}}.dump()}};
  r = Post(port_, "/v2/models/gpt2-hf/generate", vllm.dump());
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json["text_output"], text);

  Reply s = Post(port_, "/v2/models/gpt2-hf/generate_stream",
                 json{{"text_input", prompt}, {"parameters", kGreedy24}}.dump());
  ASSERT_EQ(s.status, 200) << s.body;
  EXPECT_NE(s.Header("Content-Type").find("text/event-stream"), std::string::npos);
  std::string streamed;
  std::vector<int64_t> streamed_ids;
  std::string last_finish;
  int events = 0;
  for (size_t at = 0; (at = s.body.find("data: ", at)) != std::string::npos;) {
    const size_t end = s.body.find("\n\n", at);
    ASSERT_NE(end, std::string::npos);
    json event = json::parse(s.body.substr(at + 6, end - at - 6));
    at = end;
    ++events;
    ASSERT_FALSE(event.contains("error")) << event.dump();
    EXPECT_EQ(event["model_name"], "gpt2-hf");
    streamed += event["text_output"].get<std::string>();
    for (int64_t id : event["generated_ids"]) streamed_ids.push_back(id);
    last_finish = event["finish_reason"].get<std::string>();
  }
  EXPECT_GE(events, 3);
  EXPECT_EQ(streamed, text);
  EXPECT_EQ(streamed_ids, ids);
  EXPECT_EQ(last_finish, "length");
}

// Errors before any generation are KServe's {"error"} with the status;
// /generate_stream too, as long as nothing was streamed.
TEST_F(GenerateServeTest, HttpErrorsAreKServeShapedAndNameTheProblem) {
  auto check = [&](const std::string& path, const std::string& body, int status,
                   const std::string& words) {
    for (const char* route : {"/generate", "/generate_stream"}) {
      Reply r = Post(port_, path + route, body);
      EXPECT_EQ(r.status, status) << path << route << " " << body << " -> " << r.body;
      EXPECT_NE(r.Error().find(words), std::string::npos) << path << route << " -> " << r.body;
    }
  };
  const std::string ok_prompt = json{{"text_input", "x"}}.dump();
  check("/v2/models/nope", ok_prompt, 404, "unknown model 'nope'");
  check("/v2/models/minilm-embed", ok_prompt, 400, "does not generate text");
  check("/v2/models/gpt2-hf",
        json{{"text_input", "x"}, {"parameters", {{"max_tokens", 5000}}}}.dump(), 400,
        "max_new_tokens");
  check("/v2/models/gpt2-hf", json{{"prompt", "x"}}.dump(), 400, "'prompt'");
  check("/v2/models/gpt2-hf", json{{"parameters", json::object()}}.dump(), 400, "text_input");
  check("/v2/models/gpt2-hf", json{{"text_input", 7}}.dump(), 400, "'text_input'");
  check("/v2/models/gpt2-hf", "{not json", 400, "malformed JSON");
  // Still serving.
  Reply ok = Post(port_, "/v2/models/gpt2-hf/generate", ok_prompt);
  EXPECT_EQ(ok.status, 200) << ok.body;
}

// A /generate_stream client that goes away after the first event stops the
// generation, as a cancelled gRPC stream does.
TEST_F(GenerateServeTest, HttpStreamClientGoingAwayStopsTheGeneration) {
  const uint64_t before = SettledExecutions("gpt2-hf");
  {
    auto client = MakeClient(port_);
    const json body = {
        {"text_input", "Once"},
        {"parameters", {{"max_tokens", 120}, {"temperature", 0}, {"ignore_eos", true}}}};
    std::string received;
    httplib::Request req;
    req.method = "POST";
    req.path = "/v2/models/gpt2-hf/generate_stream";
    req.body = body.dump();
    req.set_header("Content-Type", "application/json");
    req.content_receiver = [&](const char* data, size_t size, uint64_t, uint64_t) {
      received.append(data, size);
      return received.find("\n\n") == std::string::npos;  // stop after one event
    };
    client.send(req);
    EXPECT_NE(received.find("data: "), std::string::npos) << received;
  }
  const uint64_t after = SettledExecutions("gpt2-hf");
  EXPECT_LT(after - before, 20u) << "the abandoned generation went on";
}

// Plain ModelInfer (unary) with text in: embeddings equal HTTP's, the
// classifier answers labels. Never tested over gRPC before.
TEST_F(GenerateServeTest, ModelInferTakesTextForEmbedAndClassify) {
  GrpcClient client(target_);
  InferRequest embed;
  embed.inputs.push_back(Bytes("text", {"hello world", "Grüße, 世界"}));
  embed.parameters = {{"task", "embed"}};
  auto got = client.Infer("minilm-embed", "", embed);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  const InferTensor* emb = nullptr;
  for (const InferTensor& t : got->outputs) {
    if (t.name == "embedding") emb = &t;
  }
  ASSERT_NE(emb, nullptr);
  ASSERT_EQ(emb->shape.size(), 2u);
  ASSERT_EQ(emb->shape[0], 2);
  std::vector<float> v(emb->data.size() / sizeof(float));
  std::memcpy(v.data(), emb->data.data(), emb->data.size());
  const auto dim = static_cast<size_t>(emb->shape[1]);
  for (size_t r = 0; r < 2; ++r) {
    double norm = 0;
    for (size_t i = 0; i < dim; ++i) norm += double(v[r * dim + i]) * v[r * dim + i];
    EXPECT_NEAR(norm, 1.0, 1e-4) << r;
  }
  json http = {{"inputs",
                {{{"name", "text"},
                  {"datatype", "BYTES"},
                  {"shape", {2}},
                  {"data", {"hello world", "Grüße, 世界"}}}}},
               {"outputs", {{{"name", "embedding"}}}},
               {"parameters", {{"task", "embed"}}}};
  Reply h = Post(port_, "/v2/models/minilm-embed/infer", http.dump());
  ASSERT_EQ(h.status, 200) << h.body;
  const auto want = h.json["outputs"][0]["data"].get<std::vector<float>>();
  ASSERT_EQ(want.size(), v.size());
  for (size_t i = 0; i < v.size(); ++i) EXPECT_FLOAT_EQ(v[i], want[i]) << i;

  InferRequest classify;
  classify.inputs.push_back(Bytes("text", {"this is fine", "ça ne va pas"}));
  classify.parameters = {{"task", "classify"}};
  classify.outputs = {RequestedOutput{"label", false, json::object()}};
  auto labels = client.Infer("bert-classifier", "", classify);
  ASSERT_TRUE(labels.ok()) << labels.status().ToString();
  ASSERT_EQ(labels->outputs.size(), 1u);
  EXPECT_EQ(labels->outputs[0].datatype, DataType::kBytes);
  auto rows = SplitBytesElements(labels->outputs[0].data);
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->size(), 2u);
  for (std::string_view l : *rows) {
    EXPECT_TRUE(l == "negative" || l == "neutral" || l == "positive") << l;
  }
}

}  // namespace
}  // namespace modelgrid::server_test
