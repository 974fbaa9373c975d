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
