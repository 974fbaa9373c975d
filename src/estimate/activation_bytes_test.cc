#include "estimate/activation_bytes.h"

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

namespace modelgrid::estimate {
namespace {

HfConfig TinyGpt2() {
  HfConfig c;
  c.family = HfFamily::kGpt2;
  c.model_type = "gpt2";
  c.hidden_size = 4;
  c.num_layers = 1;
  c.num_heads = 2;
  c.num_kv_heads = 2;
  c.head_dim = 2;
  c.intermediate_size = 16;
  c.vocab_size = 10;
  c.max_positions = 8;
  c.hidden_act = "gelu_new";
  return c;
}

// Hand-evaluated from the derivation in activation_bytes.h for B=2, S=3,
// d=4: T=6, r=96, A=2·2·9·4=144, F=6·16·4=384, logits=6·10·4=240.
TEST(ActivationBytesTest, TinyGpt2ByHand) {
  ActivationBreakdown a = AnalyzeActivations(TinyGpt2(), 2, 3, 4);
  EXPECT_EQ(a.inputs, 2u * 6 * 8 + 2 * 9 * 4);  // 168
  EXPECT_EQ(a.embeddings, 3u * 96);             // 288
  EXPECT_EQ(a.attention, 5u * 96 + 144 + 192);  // 816
  EXPECT_EQ(a.mlp, 2u * 96 + 4 * 384);          // 1728
  EXPECT_EQ(a.output, 96u + 240);               // 336
  EXPECT_EQ(a.peak, 168u + 1728);
  EXPECT_EQ(a.peak_stage, "mlp");
}

TEST(ActivationBytesTest, Gpt2LogitsDominateAtRealSize) {
  HfConfig c = TinyGpt2();
  c.hidden_size = 768;
  c.num_heads = 12;
  c.num_kv_heads = 12;
  c.head_dim = 64;
  c.intermediate_size = 3072;
  c.vocab_size = 50257;
  c.num_layers = 12;
  ActivationBreakdown a = AnalyzeActivations(c, 1, 128, 4);
  EXPECT_EQ(a.peak_stage, "output");
  // logits 128·50257·4 + ln_f output 128·768·4 + inputs 2·128·8 + mask 128²·4
  EXPECT_EQ(a.peak, 25'731'584u + 393'216 + 2'048 + 65'536);
}

TEST(ActivationBytesTest, LlamaGqaAndFloat32Softmax) {
  HfConfig c;
  c.family = HfFamily::kLlama;
  c.hidden_size = 8;
  c.num_heads = 4;
  c.num_kv_heads = 2;
  c.head_dim = 2;
  c.intermediate_size = 12;
  c.vocab_size = 5;
  c.num_layers = 1;
  c.architectures = {"LlamaModel"};
  // B=1, S=4, d=2: T=4, r=64, r_kv=4·2·2·2=32, A=1·4·16·2=128, F=96.
  ActivationBreakdown a = AnalyzeActivations(c, 1, 4, 2);
  const uint64_t base = 3 * 64 + 2 * 32;  // 256
  EXPECT_EQ(a.attention,
            std::max<uint64_t>(base + 192, base + 128 + std::max<uint64_t>(128 + 128, 128 + 256)));
  EXPECT_EQ(a.mlp, 2u * 64 + 3 * 96);
  EXPECT_EQ(a.output, 64u + 2 * 1 * 8 * 2);  // no LM head
}

HfConfig TinyEncoder(HfFamily family, const std::string& model_type, const std::string& arch) {
  HfConfig c = TinyGpt2();
  c.family = family;
  c.model_type = model_type;
  c.architectures = {arch};
  c.hidden_act = "gelu";
  return c;
}

// The bert derivation with the encoder's own inputs, by hand for B=2, S=3,
// d=4: T=6, r=96, A=144, F=384, logits 240; gelu adds one F.
TEST(ActivationBytesTest, EncoderFamiliesByHand) {
  const uint64_t attention = 4u * 96 + 144 + 192;  // 720
  const uint64_t mlp = 96u + 2 * 384;              // 864
  ActivationBreakdown bert = AnalyzeActivations(
      TinyEncoder(HfFamily::kBert, "bert", "BertForSequenceClassification"), 2, 3, 4);
  EXPECT_EQ(bert.inputs, 3u * 6 * 8 + 2 * 3 * 4);  // ids, mask, token types + extended mask
  EXPECT_EQ(bert.embeddings, 3u * 96);
  EXPECT_EQ(bert.attention, attention);
  EXPECT_EQ(bert.mlp, mlp);
  EXPECT_EQ(bert.output, 96u + 2 * 2 * 4 * 4);  // pooler
  // roberta: bert's figures plus the int64 position ids in the embeddings.
  ActivationBreakdown roberta = AnalyzeActivations(
      TinyEncoder(HfFamily::kBert, "xlm-roberta", "XLMRobertaForSequenceClassification"), 2, 3, 4);
  EXPECT_EQ(roberta.inputs, bert.inputs);
  EXPECT_EQ(roberta.embeddings, 3u * 96 + 6 * 8);
  EXPECT_EQ(roberta.attention, attention);
  EXPECT_EQ(roberta.mlp, mlp);
  EXPECT_EQ(roberta.output, bert.output);
  ActivationBreakdown roberta_mlm =
      AnalyzeActivations(TinyEncoder(HfFamily::kBert, "roberta", "RobertaForMaskedLM"), 2, 3, 4);
  EXPECT_EQ(roberta_mlm.output, 2u * 96 + 240);
  // distilbert: no token types; same layer figures.
  ActivationBreakdown distil = AnalyzeActivations(
      TinyEncoder(HfFamily::kDistilBert, "distilbert", "DistilBertModel"), 2, 3, 4);
  EXPECT_EQ(distil.inputs, 2u * 6 * 8 + 2 * 3 * 4);
  EXPECT_EQ(distil.embeddings, 3u * 96);
  EXPECT_EQ(distil.attention, attention);
  EXPECT_EQ(distil.mlp, mlp);
  EXPECT_EQ(distil.output, 96u + 2 * 2 * 4 * 4);
  EXPECT_EQ(distil.peak, distil.inputs + mlp);
  ActivationBreakdown distil_mlm = AnalyzeActivations(
      TinyEncoder(HfFamily::kDistilBert, "distilbert", "DistilBertForMaskedLM"), 2, 3, 4);
  EXPECT_EQ(distil_mlm.output, 2u * 96 + 240);
}

TEST(ActivationBytesTest, Qwen2IsTheLlamaDerivation) {
  HfConfig c;
  c.family = HfFamily::kLlama;
  c.model_type = "qwen2";
  c.qkv_bias = true;
  c.hidden_size = 8;
  c.num_heads = 4;
  c.num_kv_heads = 2;
  c.head_dim = 2;
  c.intermediate_size = 12;
  c.vocab_size = 5;
  c.num_layers = 1;
  c.architectures = {"Qwen2Model"};
  HfConfig llama = c;
  llama.model_type = "llama";
  llama.qkv_bias = false;
  llama.architectures = {"LlamaModel"};
  ActivationBreakdown q = AnalyzeActivations(c, 1, 4, 2);
  ActivationBreakdown l = AnalyzeActivations(llama, 1, 4, 2);
  EXPECT_EQ(q.attention, l.attention);
  EXPECT_EQ(q.mlp, l.mlp);
  EXPECT_EQ(q.output, 64u + 2 * 1 * 8 * 2);  // Qwen2Model: no LM head
  c.architectures = {"Qwen2ForCausalLM"};
  EXPECT_EQ(AnalyzeActivations(c, 1, 4, 2).output, 64u + 4 * 5 * 2);  // logits T·V·d
}

TEST(ActivationBytesTest, VitUsesPatchTokens) {
  HfConfig c;
  c.family = HfFamily::kVit;
  c.hidden_size = 768;
  c.num_heads = 12;
  c.num_kv_heads = 12;
  c.head_dim = 64;
  c.intermediate_size = 3072;
  c.num_layers = 12;
  c.image_size = 224;
  c.patch_size = 16;
  c.num_channels = 3;
  c.num_labels = 1000;
  c.hidden_act = "gelu";
  ActivationBreakdown a = AnalyzeActivations(c, 1, 999, 4);  // seq ignored: S = 197
  EXPECT_EQ(a.inputs, 3u * 224 * 224 * 4);
  EXPECT_EQ(a.mlp, 2u * 197 * 768 * 4 + 2u * 197 * 3072 * 4);
}

TEST(ActivationBytesTest, SaturatesInsteadOfWrapping) {
  EXPECT_EQ(ActivationBytes(TinyGpt2(), uint64_t{1} << 40, uint64_t{1} << 40, 4), UINT64_MAX);
}

RC_GTEST_PROP(ActivationBytesProperty, MonotoneInBatchAndSequence, ()) {
  const HfConfig c = TinyGpt2();
  const uint64_t b = *rc::gen::inRange<uint64_t>(1, 64);
  const uint64_t s = *rc::gen::inRange<uint64_t>(1, 512);
  const uint64_t base = ActivationBytes(c, b, s, 4);
  RC_ASSERT(ActivationBytes(c, b + 1, s, 4) > base);
  RC_ASSERT(ActivationBytes(c, b, s + 1, 4) > base);
  RC_ASSERT(ActivationBytes(c, 2 * b, s, 4) == 2 * base);  // every term is linear in B
}

}  // namespace
}  // namespace modelgrid::estimate
