// HuggingFaceBackend on the HF-only zoo ($MODELGRID_TEST_HF_ZOO: folders as
// Hugging Face writes them, no TorchScript) through the ModelBackend
// interface: text in and out with the folder's tokenizer.json (or only a
// SentencePiece tokenizer.model: mistral-spm-tiny), the tasks
// each architecture answers, outputs against the independent Python
// reference ($MODELGRID_TEST_HF_REFERENCE), generation sessions, stop
// strings, streaming, and bad input. Without the zoo the tests fail, naming
// the command that makes it.

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <optional>

#include "modelgrid/backend/backend_kind.h"
#include "modelgrid/backend/hf_backend.h"
#include "modelgrid/tokenizer/tokenizer.h"
#include "testing/reference_tensors.h"

namespace modelgrid {
namespace {

namespace fs = std::filesystem;

constexpr const char* kMakeZoo = "make zoo-small (tools/zoo/README.md, \"Hugging Face-only folders\")";

fs::path EnvDir(const char* var) {
  const char* v = std::getenv(var);
  if (v == nullptr || !fs::is_directory(v)) return {};
  return v;
}

#define REQUIRE_HF_ZOO()                                                                      \
  const fs::path zoo = EnvDir("MODELGRID_TEST_HF_ZOO");                                       \
  const fs::path refs = EnvDir("MODELGRID_TEST_HF_REFERENCE");                                \
  ASSERT_FALSE(zoo.empty() || refs.empty())                                                   \
      << "MODELGRID_TEST_HF_ZOO / MODELGRID_TEST_HF_REFERENCE are not folders: made by " \
      << kMakeZoo

// Loads `name` through the registry, as the worker does.
std::unique_ptr<ModelBackend> LoadHf(const fs::path& zoo, const std::string& name) {
  auto entry = OpenModel(zoo / name);
  EXPECT_TRUE(entry.ok()) << entry.status().ToString();
  if (!entry.ok()) return nullptr;
  auto kind = BackendKindFor(*entry);
  EXPECT_TRUE(kind.ok() && *kind == "huggingface") << name;
  auto backend = CreateBackend("huggingface");
  EXPECT_TRUE(backend.ok());
  Status s = (*backend)->Load(*entry);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return s.ok() ? std::move(*backend) : nullptr;
}

InferTensor Text(const std::vector<std::string>& rows) {
  InferTensor t{"text", DataType::kBytes, {static_cast<int64_t>(rows.size())}, {}};
  for (const auto& r : rows) AppendBytesElement(&t.data, r);
  return t;
}

InferTensor FromTorch(const std::string& name, const torch::Tensor& x) {
  torch::Tensor c = x.contiguous().to(torch::kLong);
  InferTensor t{name, DataType::kInt64, c.sizes().vec(), {}};
  t.data.assign(static_cast<const char*>(c.data_ptr()), c.nbytes());
  return t;
}

const InferTensor& Output(const std::vector<InferTensor>& outs, const std::string& name) {
  for (const auto& t : outs) {
    if (t.name == name) return t;
  }
  ADD_FAILURE() << "no output " << name;
  static const InferTensor kNone;
  return kNone;
}

torch::Tensor AsTorch(const InferTensor& t) {
  auto type = t.datatype == DataType::kInt64 ? torch::kLong : torch::kFloat;
  return torch::from_blob(const_cast<char*>(t.data.data()), t.shape,
                          torch::TensorOptions().dtype(type))
      .clone();
}

std::vector<std::string> Strings(const InferTensor& t) {
  auto parts = SplitBytesElements(t.data);
  EXPECT_TRUE(parts.ok());
  return parts.ok() ? std::vector<std::string>(parts->begin(), parts->end())
                    : std::vector<std::string>{};
}

TEST(HfBackendTest, TasksFollowTheArchitecture) {
  REQUIRE_HF_ZOO();
  auto llama = LoadHf(zoo, "llama-tiny");
  ASSERT_TRUE(llama);
  EXPECT_EQ(llama->kind(), "huggingface");
  EXPECT_EQ(llama->Tasks(), (std::vector<std::string>{"embed", "generate", "infer"}));
  auto clf = LoadHf(zoo, "bert-classifier");
  ASSERT_TRUE(clf);
  EXPECT_EQ(clf->Tasks(), (std::vector<std::string>{"classify", "embed", "infer"}));
  auto bert = LoadHf(zoo, "bert-hf");
  ASSERT_TRUE(bert);
  EXPECT_EQ(bert->Tasks(), (std::vector<std::string>{"embed", "infer"}));
  EXPECT_EQ(bert->Outputs().at(0).name, "last_hidden_state");
  // fp32 files on the CPU are mapped, not copied: the allocator does not see
  // those weights, MappedBytes does (all of the file's tensor bytes here);
  // llama-tiny's fp16 weights are converted, so nothing stays mapped.
  const uint64_t file = fs::file_size(zoo / "bert-hf" / "model.safetensors");
  EXPECT_GT(bert->MappedBytes(), file * 9 / 10);
  EXPECT_LE(bert->MappedBytes(), file);
  EXPECT_EQ(llama->MappedBytes(), 0u);
}

// The sentence-transformers folder's embeddings through the backend equal
// the Python reference's (pooling from 1_Pooling, Normalize from modules.json).
TEST(HfBackendTest, EmbeddingsEqualTheReference) {
  REQUIRE_HF_ZOO();
  auto b = LoadHf(zoo, "minilm-embed");
  ASSERT_TRUE(b);
  auto ref = testing::ReadReferenceTensors(refs / "minilm-embed.safetensors");
  auto out = b->Run("embed", std::vector<InferTensor>{FromTorch("input_ids", ref.at("input_ids")),
                                                      FromTorch("attention_mask",
                                                                ref.at("attention_mask"))});
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  torch::Tensor e = AsTorch(Output(*out, "embedding"));
  ASSERT_EQ(e.sizes(), ref.at("embeddings").sizes());
  EXPECT_LT((e - ref.at("embeddings")).abs().max().item<double>(), 1e-5);
  EXPECT_NEAR(e[0].norm().item<double>(), 1.0, 1e-5);
}

// Text in: the tokenizer's ids give the same embedding as those ids given
// directly; two rows of different lengths are padded and masked.
TEST(HfBackendTest, TextInputEqualsItsTokenIds) {
  REQUIRE_HF_ZOO();
  auto b = LoadHf(zoo, "minilm-embed");
  ASSERT_TRUE(b);
  auto tok = tokenizer::Tokenizer::FromDirectory((zoo / "minilm-embed").string());
  ASSERT_TRUE(tok.ok()) << tok.status().ToString();
  const std::vector<std::string> texts = {"A café in Zürich", "short"};
  auto by_text = b->Run("embed", std::vector<InferTensor>{Text(texts)});
  ASSERT_TRUE(by_text.ok()) << by_text.status().ToString();
  torch::Tensor e = AsTorch(Output(*by_text, "embedding"));
  ASSERT_EQ(e.size(0), 2);
  for (int r = 0; r < 2; ++r) {
    auto enc = tok->Encode(texts[r]);
    ASSERT_TRUE(enc.ok());
    auto ids = torch::tensor(enc->ids, torch::kLong).unsqueeze(0);
    auto alone = b->Run("embed", std::vector<InferTensor>{FromTorch("input_ids", ids)});
    ASSERT_TRUE(alone.ok()) << alone.status().ToString();
    EXPECT_LT((AsTorch(Output(*alone, "embedding"))[0] - e[r]).abs().max().item<double>(), 1e-5);
  }
}

TEST(HfBackendTest, ClassifyGivesLabelsFromId2labelAndTheReferenceLogits) {
  REQUIRE_HF_ZOO();
  auto b = LoadHf(zoo, "bert-classifier");
  ASSERT_TRUE(b);
  auto ref = testing::ReadReferenceTensors(refs / "bert-classifier.safetensors");
  auto out = b->Run("classify", std::vector<InferTensor>{
                                    FromTorch("input_ids", ref.at("input_ids")),
                                    FromTorch("attention_mask", ref.at("attention_mask"))});
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  torch::Tensor logits = AsTorch(Output(*out, "logits"));
  EXPECT_LT((logits - ref.at("logits")).abs().max().item<double>(), 1e-4);
  torch::Tensor scores = AsTorch(Output(*out, "scores"));
  EXPECT_NEAR(scores[0].sum().item<double>(), 1.0, 1e-5);
  const std::vector<std::string> names = {"negative", "neutral", "positive"};
  auto labels = Strings(Output(*out, "label"));
  ASSERT_EQ(labels.size(), 2u);
  for (int r = 0; r < 2; ++r) {
    EXPECT_EQ(labels[r], names[ref.at("logits")[r].argmax().item<int64_t>()]);
  }
}

// Greedy generation through the backend gives the reference's 32 tokens;
// the same in chunks of 5 through a session gives the same tokens.
TEST(HfBackendTest, GreedyGenerationEqualsTheReferenceWholeAndInChunks) {
  REQUIRE_HF_ZOO();
  auto b = LoadHf(zoo, "llama-tiny");
  ASSERT_TRUE(b);
  auto ref = testing::ReadReferenceTensors(refs / "llama-tiny.safetensors");
  const torch::Tensor prompt = ref.at("input_ids").narrow(0, 0, 1);
  const torch::Tensor want = ref.at("greedy_ids").narrow(0, 0, 1);
  const nlohmann::json params = {{"max_new_tokens", 32}, {"ignore_eos", true}};
  auto whole = b->Run("generate", std::vector<InferTensor>{FromTorch("input_ids", prompt)}, params);
  ASSERT_TRUE(whole.ok()) << whole.status().ToString();
  EXPECT_TRUE(torch::equal(AsTorch(Output(*whole, "generated_ids")), want));
  EXPECT_EQ(Strings(Output(*whole, "finish_reason")), std::vector<std::string>{"length"});
  EXPECT_EQ(AsTorch(Output(*whole, "prompt_tokens"))[0].item<int64_t>(), prompt.size(1));

  nlohmann::json chunked = params;
  chunked["session"] = "s1";
  chunked["chunk_tokens"] = 5;
  std::vector<int64_t> got;
  std::string text;
  for (int call = 0; call < 20; ++call) {
    if (call > 0) chunked["continue"] = true;
    auto part =
        b->Run("generate", std::vector<InferTensor>{FromTorch("input_ids", prompt)}, chunked);
    ASSERT_TRUE(part.ok()) << part.status().ToString();
    torch::Tensor ids = AsTorch(Output(*part, "generated_ids"));
    EXPECT_LE(ids.size(1), 5);
    for (int64_t i = 0; i < ids.size(1); ++i) got.push_back(ids[0][i].item<int64_t>());
    text += Strings(Output(*part, "text_output")).at(0);
    if (Strings(Output(*part, "finish_reason")).at(0) == "length") break;
  }
  ASSERT_EQ(got.size(), 32u);
  for (int64_t i = 0; i < 32; ++i) EXPECT_EQ(got[i], want[0][i].item<int64_t>()) << i;
  EXPECT_EQ(text, Strings(Output(*whole, "text_output")).at(0));
  // The session ended with the generation.
  auto gone = b->Run("generate", std::vector<InferTensor>{FromTorch("input_ids", prompt)},
                     nlohmann::json{{"session", "s1"}, {"continue", true}});
  ASSERT_FALSE(gone.ok());
  EXPECT_NE(gone.status().message().find("unknown session 's1'"), std::string::npos);
}

// A stop string cuts the text before it and ends the row ("stop"); the
// streamed pieces add up to the returned text.
TEST(HfBackendTest, StopStringsCutTheTextAndStreamedPiecesAddUp) {
  REQUIRE_HF_ZOO();
  auto b = LoadHf(zoo, "gpt2-hf");
  ASSERT_TRUE(b);
  const nlohmann::json params = {{"max_new_tokens", 24}, {"ignore_eos", true}};
  auto free_run = b->Run("generate", std::vector<InferTensor>{Text({"The quick brown fox"})}, params);
  ASSERT_TRUE(free_run.ok()) << free_run.status().ToString();
  const std::string full = Strings(Output(*free_run, "text_output")).at(0);
  ASSERT_GE(full.size(), 8u) << full;
  const std::string stop = full.substr(full.size() / 2, 3);
  const size_t at = full.find(stop);

  nlohmann::json with_stop = params;
  with_stop["stop"] = nlohmann::json::array({stop});
  std::string streamed;
  int pieces = 0;
  StreamCallback on_piece = [&](const std::vector<InferTensor>& piece) {
    ++pieces;
    streamed += Strings(piece.at(0)).at(0);
    return true;
  };
  std::vector<InferTensor> in{Text({"The quick brown fox"})};
  std::vector<InferTensorView> views;
  for (const auto& t : in) views.push_back(ViewOf(t));
  auto cut = b->Run("generate", views, with_stop, on_piece);
  ASSERT_TRUE(cut.ok()) << cut.status().ToString();
  EXPECT_EQ(Strings(Output(*cut, "text_output")).at(0), full.substr(0, at));
  EXPECT_EQ(Strings(Output(*cut, "finish_reason")).at(0), "stop");
  EXPECT_EQ(streamed, full.substr(0, at));
  EXPECT_GE(pieces, 1);
}

// mistral-spm-tiny is mistral-tiny (same weights) whose only tokenizer is a
// SentencePiece tokenizer.model (no tokenizer.json): text in and out goes
// through libsentencepiece and gives what the tokenizer.json folder gives.
struct SentencePiecePair {
  std::unique_ptr<ModelBackend> spm, json;
  std::optional<tokenizer::Tokenizer> tok;
};

SentencePiecePair LoadSentencePiecePair(const fs::path& zoo) {
  SentencePiecePair p;
  EXPECT_TRUE(fs::exists(zoo / "mistral-spm-tiny" / "tokenizer.model")) << kMakeZoo;
  EXPECT_FALSE(fs::exists(zoo / "mistral-spm-tiny" / "tokenizer.json"));
  p.spm = LoadHf(zoo, "mistral-spm-tiny");
  p.json = LoadHf(zoo, "mistral-tiny");
  auto tok = tokenizer::Tokenizer::FromDirectory((zoo / "mistral-spm-tiny").string());
  EXPECT_TRUE(tok.ok()) << tok.status().ToString();
  if (tok.ok()) p.tok.emplace(std::move(*tok));
  return p;
}

TEST(HfBackendTest, SentencePieceFolderGeneratesTheTokenizerJsonFoldersText) {
  REQUIRE_HF_ZOO();
  SentencePiecePair m = LoadSentencePiecePair(zoo);
  ASSERT_TRUE(m.spm && m.json && m.tok);
  auto json_tok = tokenizer::Tokenizer::FromDirectory((zoo / "mistral-tiny").string());
  ASSERT_TRUE(json_tok.ok());
  const nlohmann::json params = {{"max_new_tokens", 24}, {"ignore_eos", true}};
  // The second prompt has U+1D11E, which Mistral spells as four byte pieces.
  for (const std::string prompt :
       {"The quick brown fox", "Ein Caf\u00e9 in Z\u00fcrich \U0001D11E"}) {
    SCOPED_TRACE(prompt);
    auto ids = m.tok->Encode(prompt);
    ASSERT_TRUE(ids.ok());
    ASSERT_EQ(ids->ids, json_tok->Encode(prompt)->ids);
    std::string streamed;
    StreamCallback on_piece = [&](const std::vector<InferTensor>& piece) {
      streamed += Strings(piece.at(0)).at(0);
      return true;
    };
    std::vector<InferTensor> in{Text({prompt})};
    std::vector<InferTensorView> views;
    for (const auto& t : in) views.push_back(ViewOf(t));
    auto by_spm = m.spm->Run("generate", views, params, on_piece);
    ASSERT_TRUE(by_spm.ok()) << by_spm.status().ToString();
    auto by_json = m.json->Run("generate", std::vector<InferTensor>{Text({prompt})}, params);
    ASSERT_TRUE(by_json.ok()) << by_json.status().ToString();
    EXPECT_EQ(AsTorch(Output(*by_spm, "prompt_tokens"))[0].item<int64_t>(),
              static_cast<int64_t>(ids->size()));
    torch::Tensor generated = AsTorch(Output(*by_spm, "generated_ids"));
    ASSERT_EQ(generated.size(1), 24);
    EXPECT_TRUE(torch::equal(generated, AsTorch(Output(*by_json, "generated_ids"))));
    const std::string text = Strings(Output(*by_spm, "text_output")).at(0);
    EXPECT_EQ(text, Strings(Output(*by_json, "text_output")).at(0));
    EXPECT_EQ(streamed, text);
    // The returned text is the generated ids decoded.
    std::vector<int64_t> gen(generated.data_ptr<int64_t>(),
                             generated.data_ptr<int64_t>() + generated.numel());
    tokenizer::DecodeOptions raw;
    raw.skip_special_tokens = true;
    raw.clean_up_tokenization_spaces = false;
    EXPECT_EQ(m.tok->Decode(gen, raw).value(), text);
    // And the prompt's ids given directly generate the same.
    auto by_ids = m.spm->Run(
        "generate",
        std::vector<InferTensor>{FromTorch("input_ids", torch::tensor(ids->ids).unsqueeze(0))},
        params);
    ASSERT_TRUE(by_ids.ok()) << by_ids.status().ToString();
    EXPECT_TRUE(torch::equal(AsTorch(Output(*by_ids, "generated_ids")), generated));
  }
}

TEST(HfBackendTest, SentencePieceFolderEmbedsTextAsItsTokenIds) {
  REQUIRE_HF_ZOO();
  SentencePiecePair m = LoadSentencePiecePair(zoo);
  ASSERT_TRUE(m.spm && m.json && m.tok);
  const std::vector<std::string> texts = {"A caf\u00e9 in Z\u00fcrich", "short"};
  auto by_text = m.spm->Run("embed", std::vector<InferTensor>{Text(texts)});
  ASSERT_TRUE(by_text.ok()) << by_text.status().ToString();
  auto by_json = m.json->Run("embed", std::vector<InferTensor>{Text(texts)});
  ASSERT_TRUE(by_json.ok()) << by_json.status().ToString();
  torch::Tensor e = AsTorch(Output(*by_text, "embedding"));
  ASSERT_EQ(e.size(0), 2);
  EXPECT_TRUE(torch::equal(e, AsTorch(Output(*by_json, "embedding"))));
  torch::Tensor counts = AsTorch(Output(*by_text, "prompt_tokens"));
  for (int r = 0; r < 2; ++r) {
    auto enc = m.tok->Encode(texts[r]);
    ASSERT_TRUE(enc.ok());
    EXPECT_EQ(counts[r].item<int64_t>(), static_cast<int64_t>(enc->size()));
    auto ids = torch::tensor(enc->ids, torch::kLong).unsqueeze(0);
    auto alone = m.spm->Run("embed", std::vector<InferTensor>{FromTorch("input_ids", ids)});
    ASSERT_TRUE(alone.ok()) << alone.status().ToString();
    EXPECT_LT((AsTorch(Output(*alone, "embedding"))[0] - e[r]).abs().max().item<double>(), 1e-4);
  }
}

TEST(HfBackendTest, BadInputIsRefusedNamingWhatIsWrong) {
  REQUIRE_HF_ZOO();
  auto b = LoadHf(zoo, "gpt2-hf");
  ASSERT_TRUE(b);
  auto expect = [&](const std::string& task, std::vector<InferTensor> in, nlohmann::json params,
                    StatusCode code, const std::string& words) {
    auto r = b->Run(task, in, params);
    ASSERT_FALSE(r.ok()) << task << " " << params.dump();
    EXPECT_EQ(r.status().code(), code) << r.status().ToString();
    EXPECT_NE(r.status().message().find(words), std::string::npos) << r.status().ToString();
  };
  expect("generate", {Text({std::string("ab\xff\xfe", 4)})}, nlohmann::json::object(),
         StatusCode::kInvalidArgument, "row 0");
  expect("generate", {Text({"hi"})}, {{"max_new_tokens", 5000}}, StatusCode::kInvalidArgument,
         "max_new_tokens");
  std::string long_text;
  for (int i = 0; i < 400; ++i) long_text += " word";
  expect("infer", {Text({long_text})}, nlohmann::json::object(), StatusCode::kInvalidArgument,
         "limit");
  // gpt2-hf has 128 positions: 1 prompt token + 128 new ones do not fit.
  expect("generate", {Text({"hi"})}, {{"max_new_tokens", 128}}, StatusCode::kInvalidArgument,
         "limit");
  expect("classify", {Text({"hi"})}, nlohmann::json::object(), StatusCode::kNotFound,
         "unknown task 'classify'");
  expect("generate", {}, nlohmann::json::object(), StatusCode::kInvalidArgument, "missing input");
  expect("generate", {Text({"hi"})}, {{"stop", 3}}, StatusCode::kInvalidArgument, "'stop'");
  // Still serving after all that.
  auto ok = b->Run("generate", std::vector<InferTensor>{Text({"hi"})},
                   nlohmann::json{{"max_new_tokens", 2}});
  EXPECT_TRUE(ok.ok()) << ok.status().ToString();
}

// Swap drops the model and reloads it from its files; outputs are the same.
TEST(HfBackendTest, SwapOutAndInReloadsFromTheFolder) {
  REQUIRE_HF_ZOO();
  auto b = LoadHf(zoo, "bert-classifier");
  ASSERT_TRUE(b);
  std::vector<InferTensor> in{Text({"swap me"})};
  auto before = b->Run("classify", in);
  ASSERT_TRUE(before.ok());
  auto out = b->SwapOut(SwapTarget{});
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_GT(out->bytes, 0u);
  EXPECT_TRUE(b->swapped());
  auto refused = b->Run("classify", in);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kUnavailable);
  auto back = b->SwapIn();
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_TRUE(back->reloaded);
  auto after = b->Run("classify", in);
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(Output(*after, "logits").data, Output(*before, "logits").data);
}

}  // namespace
}  // namespace modelgrid
