// Message vocabulary: the documented protobuf shapes (worker.proto), round
// trips, and decode errors that name the message and the field.
#include "modelgrid/ipc/messages.h"

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <nlohmann/json.hpp>

#include "worker.pb.h"

namespace modelgrid::ipc {
namespace {

using nlohmann::json;

template <typename M>
M RoundTrip(const M& m, uint64_t request_id = 0) {
  const Frame frame = ToFrame(m, request_id);
  EXPECT_EQ(frame.type, static_cast<uint16_t>(M::kType));
  auto back = FromFrame<M>(frame);
  EXPECT_TRUE(back.ok()) << back.status().ToString();
  return back.ok() ? *back : M{};
}

// The protobuf message P that EncodePayload(m) holds.
template <typename P, typename M>
P AsProto(const M& m) {
  P p;
  EXPECT_TRUE(p.ParseFromString(EncodePayload(m)));
  return p;
}

// Decodes the payload `bytes` (a protobuf message serialized by the test,
// e.g. one that lacks a required field) as an M.
template <typename M>
Status Decode(const std::string& bytes) {
  M m;
  return DecodePayload(bytes, &m);
}
template <typename M, typename P>
Status DecodeProto(const P& p) {
  return Decode<M>(p.SerializeAsString());
}

bool Mentions(const Status& s, const std::string& text) {
  return s.message().find(text) != std::string::npos;
}

// Wire bytes of fields the schemas below do not have: field 15 as a varint,
// and field `number` with wire type `wire_type` (for a known field of
// another type).
const std::string kUnknownField15 = "\x78\x01";
std::string FieldOfWireType(int number, int wire_type) {
  std::string out(1, static_cast<char>((number << 3) | wire_type));
  out += wire_type == 2 ? std::string("\x01x", 2) : std::string("\x07", 1);
  return out;
}

// Field `number` holding `bytes` (shorter than 128), length-delimited: a
// nested message built by hand.
std::string LengthDelimited(int number, const std::string& bytes) {
  std::string out(1, static_cast<char>((number << 3) | 2));
  out += static_cast<char>(bytes.size());
  return out + bytes;
}

pb::Error ErrorProto(const std::string& code, const std::string& message) {
  pb::Error e;
  e.set_code(code);
  e.set_message(message);
  return e;
}

TEST(MessagesTest, TypeNamesAndValues) {
  const std::pair<MessageType, std::string_view> expected[] = {
      {MessageType::kPing, "ping"},
      {MessageType::kPong, "pong"},
      {MessageType::kAttachArena, "attach_arena"},
      {MessageType::kLoad, "load"},
      {MessageType::kLoaded, "loaded"},
      {MessageType::kLoadFailed, "load_failed"},
      {MessageType::kInfer, "infer"},
      {MessageType::kResult, "result"},
      {MessageType::kOutputNeeded, "output_needed"},
      {MessageType::kOutputRegion, "output_region"},
      {MessageType::kGetStats, "get_stats"},
      {MessageType::kStats, "stats"},
      {MessageType::kUnload, "unload"},
      {MessageType::kUnloaded, "unloaded"},
      {MessageType::kShutdown, "shutdown"},
      {MessageType::kAttachRegion, "attach_region"},
      {MessageType::kRegionAttached, "region_attached"},
      {MessageType::kDetachRegion, "detach_region"},
      {MessageType::kSwapOut, "swap_out"},
      {MessageType::kSwappedOut, "swapped_out"},
      {MessageType::kSwapIn, "swap_in"},
      {MessageType::kSwappedIn, "swapped_in"},
      {MessageType::kSetLimit, "set_limit"},
      {MessageType::kLimitSet, "limit_set"}};
  for (const auto& [type, name] : expected) {
    EXPECT_EQ(MessageTypeName(type), name);
    EXPECT_EQ(ToMessageType(static_cast<uint16_t>(type)), type);
  }
  EXPECT_EQ(static_cast<uint16_t>(MessageType::kInfer), 20);
  EXPECT_EQ(static_cast<uint16_t>(MessageType::kOutputNeeded), 22);
  EXPECT_EQ(static_cast<uint16_t>(MessageType::kOutputRegion), 23);
  EXPECT_EQ(static_cast<uint16_t>(MessageType::kSwapOut), 70);
  EXPECT_EQ(static_cast<uint16_t>(MessageType::kSwappedOut), 71);
  EXPECT_EQ(static_cast<uint16_t>(MessageType::kSwapIn), 72);
  EXPECT_EQ(static_cast<uint16_t>(MessageType::kSwappedIn), 73);
  EXPECT_FALSE(ToMessageType(74).has_value());
  EXPECT_EQ(static_cast<uint16_t>(MessageType::kSetLimit), 80);
  EXPECT_EQ(static_cast<uint16_t>(MessageType::kLimitSet), 81);
  EXPECT_FALSE(ToMessageType(82).has_value());
  // 4: swap, infer limit_bytes, error memory_limit; 5: set_limit; 6: all protobuf;
  // 7: load names the backend kind.
  EXPECT_EQ(kProtocolVersion, 7u);
  EXPECT_FALSE(ToMessageType(0).has_value());
  EXPECT_FALSE(ToMessageType(999).has_value());
}

TEST(MessagesTest, LoadHasTheDocumentedShape) {
  LoadMessage load{"bert", "/models/bert", "cuda:0", 3ULL << 30, 2ULL << 30, 8, "huggingface"};
  const auto p = AsProto<pb::Load>(load);
  EXPECT_EQ(p.backend(), "huggingface");
  EXPECT_EQ(p.model(), "bert");
  EXPECT_EQ(p.path(), "/models/bert");
  EXPECT_EQ(p.device(), "cuda:0");
  EXPECT_EQ(p.limit_bytes(), 3221225472u);
  EXPECT_EQ(p.request_bytes(), 2147483648u);
  EXPECT_EQ(p.max_batch_size(), 8u);
  EXPECT_EQ(RoundTrip(load, 5), load);

  pb::Load required;  // the optional fields absent
  required.set_model("m");
  required.set_path("p");
  required.set_device("cpu");
  required.set_limit_bytes(1024);
  LoadMessage minimal;
  ASSERT_TRUE(DecodePayload(required.SerializeAsString(), &minimal).ok());
  EXPECT_EQ(minimal.limit_bytes, 1024u);
  EXPECT_EQ(minimal.request_bytes, 0u);
  EXPECT_EQ(minimal.max_batch_size, 0u);
  EXPECT_EQ(minimal.backend, "");  // the worker chooses (BackendKindFor)
}

TEST(MessagesTest, InferAndResultHaveTheDocumentedShape) {
  InferMessage infer;
  infer.request_id = 77;
  infer.model = "resnet";
  infer.task = "forward";
  infer.inputs.push_back({"x", DataType::kFP32, {1, 3, 2, 2}, 128, 48});
  infer.output = {192, 4096};
  const auto p = AsProto<pb::Infer>(infer);
  EXPECT_EQ(p.request_id(), 77u);
  EXPECT_EQ(p.model(), "resnet");
  EXPECT_EQ(p.task(), "forward");
  ASSERT_EQ(p.inputs_size(), 1);
  EXPECT_EQ(p.inputs(0).name(), "x");
  EXPECT_EQ(p.inputs(0).datatype(), "FP32");
  EXPECT_EQ(std::vector<int64_t>(p.inputs(0).shape().begin(), p.inputs(0).shape().end()),
            (std::vector<int64_t>{1, 3, 2, 2}));
  EXPECT_EQ(p.inputs(0).offset(), 128u);
  EXPECT_EQ(p.inputs(0).size(), 48u);
  EXPECT_EQ(p.inputs(0).region(), 0u);
  EXPECT_EQ(p.output().offset(), 192u);
  EXPECT_EQ(p.output().size(), 4096u);
  EXPECT_EQ(p.output_names_size(), 0);
  EXPECT_EQ(p.params_json(), "");  // {} travels as nothing
  EXPECT_FALSE(p.has_limit_bytes());
  EXPECT_EQ(RoundTrip(infer), infer);
  EXPECT_EQ(ToFrame(infer).request_id, 77u);

  // "params" is optional (an empty object when absent) and travels as is.
  EXPECT_EQ(RoundTrip(infer).params, json::object());
  infer.task = "generate";
  infer.params = json{{"max_new_tokens", 40}, {"do_sample", true}, {"temperature", 0.5}};
  EXPECT_EQ(json::parse(AsProto<pb::Infer>(infer).params_json()), infer.params);
  const InferMessage back = RoundTrip(infer);
  EXPECT_EQ(back.params, infer.params);
  EXPECT_EQ(back.params["max_new_tokens"], 40);

  ResultMessage ok{77, "resnet", {{"y", DataType::kInt64, {1, 10}, 192, 80}}, std::nullopt};
  const auto rp = AsProto<pb::Result>(ok);
  EXPECT_EQ(rp.request_id(), 77u);
  EXPECT_EQ(rp.model(), "resnet");
  ASSERT_EQ(rp.outcome_case(), pb::Result::kOutputs);
  ASSERT_EQ(rp.outputs().tensors_size(), 1);
  EXPECT_EQ(rp.outputs().tensors(0).name(), "y");
  EXPECT_EQ(rp.outputs().tensors(0).datatype(), "INT64");
  EXPECT_EQ(rp.outputs().tensors(0).size(), 80u);
  EXPECT_EQ(RoundTrip(ok), ok);
  // No outputs at all is still "outputs" (empty), not "neither".
  const ResultMessage none{79, "resnet", {}, std::nullopt};
  EXPECT_EQ(AsProto<pb::Result>(none).outcome_case(), pb::Result::kOutputs);
  EXPECT_EQ(RoundTrip(none), none);

  ResultMessage failed{
      78, "resnet", {}, ErrorInfo{StatusCode::kResourceExhausted, "limit of 1024 bytes"}};
  const auto fp = AsProto<pb::Result>(failed);
  ASSERT_EQ(fp.outcome_case(), pb::Result::kError);
  EXPECT_EQ(fp.error().code(), "RESOURCE_EXHAUSTED");
  EXPECT_EQ(fp.error().message(), "limit of 1024 bytes");
  EXPECT_FALSE(fp.error().has_memory_limit());
  EXPECT_EQ(RoundTrip(failed), failed);
  EXPECT_EQ(failed.error->ToStatus().code(), StatusCode::kResourceExhausted);
}

TEST(MessagesTest, OutputNeededAndOutputRegionHaveTheDocumentedShape) {
  const OutputNeededMessage needed{31, "gpt2", 2'048'000};
  const auto np = AsProto<pb::OutputNeeded>(needed);
  EXPECT_EQ(np.request_id(), 31u);
  EXPECT_EQ(np.model(), "gpt2");
  EXPECT_EQ(np.bytes(), 2048000u);
  EXPECT_EQ(RoundTrip(needed), needed);
  EXPECT_EQ(ToFrame(needed).request_id, 31u);
  EXPECT_EQ(ToFrame(needed).type, 22);

  const OutputRegionMessage region{31, 4096, 2'048'000};
  const auto rp = AsProto<pb::OutputRegion>(region);
  EXPECT_EQ(rp.request_id(), 31u);
  EXPECT_EQ(rp.offset(), 4096u);
  EXPECT_EQ(rp.size(), 2048000u);
  EXPECT_EQ(RoundTrip(region), region);
  EXPECT_EQ(region.region(), (Region{4096, 2'048'000}));
  EXPECT_EQ(ToFrame(region).type, 23);

  Status s = Decode<OutputRegionMessage>(EncodePayload(OutputRegionMessage{1, 100, 64}));
  EXPECT_EQ(s.code(), StatusCode::kCorruption);
  EXPECT_TRUE(Mentions(s, "'output_region' message: field 'offset': 100 is not a multiple of 64"))
      << s.ToString();
  pb::OutputNeeded no_bytes;
  no_bytes.set_request_id(1);
  no_bytes.set_model("m");
  s = DecodeProto<OutputNeededMessage>(no_bytes);
  EXPECT_TRUE(Mentions(s, "'output_needed' message: field 'bytes': missing")) << s.ToString();

  // request ids in header and payload must agree, as for infer.
  Frame frame = ToFrame(region);
  frame.request_id = 32;
  EXPECT_EQ(FromFrame<OutputRegionMessage>(frame).status().code(), StatusCode::kCorruption);
}

TEST(MessagesTest, SwapMessagesHaveTheDocumentedShape) {
  const SwapOutMessage out{"resnet18", "/var/tmp/modelgrid-swap"};
  const auto op = AsProto<pb::SwapOut>(out);
  EXPECT_EQ(op.model(), "resnet18");
  EXPECT_EQ(op.swap_dir(), "/var/tmp/modelgrid-swap");
  EXPECT_EQ(RoundTrip(out, 9), out);
  EXPECT_EQ(ToFrame(out, 9).request_id, 9u);
  EXPECT_EQ(ToFrame(out).type, 70);
  pb::SwapOut model_only;  // CUDA models need no swap_dir
  model_only.set_model("m");
  SwapOutMessage no_dir;
  ASSERT_TRUE(DecodePayload(model_only.SerializeAsString(), &no_dir).ok());
  EXPECT_EQ(no_dir.swap_dir, "");

  const SwappedOutMessage done{"resnet18",  46'758'048,  81'234,
                               300'000'000, 253'000'000, std::nullopt};
  const auto dp = AsProto<pb::SwappedOut>(done);
  EXPECT_EQ(dp.model(), "resnet18");
  EXPECT_EQ(dp.bytes(), 46758048u);
  EXPECT_EQ(dp.duration_us(), 81234u);
  EXPECT_EQ(dp.rss_before_bytes(), 300000000u);
  EXPECT_EQ(dp.rss_after_bytes(), 253000000u);
  EXPECT_FALSE(dp.has_error());
  EXPECT_EQ(RoundTrip(done, 9), done);
  SwappedOutMessage failed{"m", 0, 0, 0, 0, ErrorInfo{StatusCode::kNotFound, "not loaded"}};
  EXPECT_EQ(AsProto<pb::SwappedOut>(failed).error().code(), "NOT_FOUND");
  EXPECT_EQ(AsProto<pb::SwappedOut>(failed).error().message(), "not loaded");
  EXPECT_EQ(RoundTrip(failed), failed);

  const SwapInMessage in{"gpt2"};
  EXPECT_EQ(AsProto<pb::SwapIn>(in).model(), "gpt2");
  EXPECT_EQ(RoundTrip(in, 10), in);
  EXPECT_EQ(ToFrame(in).type, 72);

  const SwappedInMessage back{
      "gpt2", 700'000, 5'100, true, "swap file '/x/gpt2.1.mgswap' is missing", std::nullopt};
  const auto bp = AsProto<pb::SwappedIn>(back);
  EXPECT_EQ(bp.model(), "gpt2");
  EXPECT_EQ(bp.bytes(), 700000u);
  EXPECT_EQ(bp.duration_us(), 5100u);
  EXPECT_TRUE(bp.reloaded());
  EXPECT_EQ(bp.reason(), "swap file '/x/gpt2.1.mgswap' is missing");
  EXPECT_EQ(RoundTrip(back, 10), back);
  pb::SwappedIn required;
  required.set_model("m");
  required.set_bytes(1);
  required.set_duration_us(2);
  required.set_reloaded(false);
  SwappedInMessage minimal;
  ASSERT_TRUE(DecodePayload(required.SerializeAsString(), &minimal).ok());
  EXPECT_EQ(minimal.reason, "");
  EXPECT_FALSE(minimal.error.has_value());
  const SwappedInMessage refused{
      "m",
      0,
      0,
      false,
      "",
      ErrorInfo{StatusCode::kResourceExhausted, "limit",
                MemoryLimitDetail{"m", "cpu", 1 << 20, 1 << 19, 1 << 20}}};
  EXPECT_EQ(RoundTrip(refused), refused);
}

TEST(MessagesTest, MalformedSwapMessagesAreRefusedNamingTheField) {
  pb::SwapOut no_model;
  no_model.set_swap_dir("/tmp");
  Status s = DecodeProto<SwapOutMessage>(no_model);
  EXPECT_EQ(s.code(), StatusCode::kCorruption);
  EXPECT_TRUE(Mentions(s, "'swap_out' message: field 'model': missing")) << s.ToString();
  s = Decode<SwapOutMessage>(EncodePayload(SwapOutMessage{"", "/tmp"}));
  EXPECT_TRUE(Mentions(s, "'swap_out' message: field 'model': empty")) << s.ToString();
  // swap_dir (field 2) as a varint: of another wire type, so not the field.
  s = Decode<SwapOutMessage>(EncodePayload(SwapOutMessage{"m", ""}) + FieldOfWireType(2, 0));
  EXPECT_TRUE(Mentions(s, "'swap_out' message: unknown field: number 2 (wire type 0)"))
      << s.ToString();
  s = Decode<SwapOutMessage>(EncodePayload(SwapOutMessage{"m", ""}) + kUnknownField15);
  EXPECT_TRUE(Mentions(s, "unknown field: number 15")) << s.ToString();
  // swap_in has no swap_dir.
  s = Decode<SwapInMessage>(EncodePayload(SwapOutMessage{"m", "/tmp"}));
  EXPECT_TRUE(Mentions(s, "'swap_in' message: unknown field: number 2")) << s.ToString();
  s = Decode<SwapInMessage>(EncodePayload(SwapInMessage{""}));
  EXPECT_TRUE(Mentions(s, "'swap_in' message: field 'model': empty")) << s.ToString();
  s = Decode<SwapInMessage>(pb::SwapIn().SerializeAsString());
  EXPECT_TRUE(Mentions(s, "'swap_in' message: field 'model': missing")) << s.ToString();
  pb::SwappedOut partial;
  partial.set_model("m");
  partial.set_bytes(1);
  partial.set_duration_us(0);
  partial.set_rss_before_bytes(0);
  s = DecodeProto<SwappedOutMessage>(partial);
  EXPECT_TRUE(Mentions(s, "'swapped_out' message: field 'rss_after_bytes': missing"))
      << s.ToString();
  pb::SwappedIn no_reloaded;
  no_reloaded.set_model("m");
  no_reloaded.set_bytes(1);
  no_reloaded.set_duration_us(0);
  s = DecodeProto<SwappedInMessage>(no_reloaded);
  EXPECT_TRUE(Mentions(s, "'swapped_in' message: field 'reloaded': missing")) << s.ToString();
  // reloaded (field 4) as bytes: not a boolean.
  s = Decode<SwappedInMessage>(no_reloaded.SerializeAsString() + FieldOfWireType(4, 2));
  EXPECT_TRUE(Mentions(s, "'swapped_in' message: unknown field: number 4 (wire type 2)"))
      << s.ToString();
  pb::SwappedIn ok_error = no_reloaded;
  ok_error.set_reloaded(false);
  *ok_error.mutable_error() = ErrorProto("OK", "");
  s = DecodeProto<SwappedInMessage>(ok_error);
  EXPECT_TRUE(Mentions(s, "'swapped_in' message: error: field 'code': 'OK' is not an error code"))
      << s.ToString();
  // A reply of the wrong type is told apart from the one awaited.
  auto wrong = FromFrame<SwappedInMessage>(ToFrame(SwappedOutMessage{}));
  ASSERT_FALSE(wrong.ok());
  EXPECT_TRUE(Mentions(wrong.status(), "expected a 'swapped_in' message, got 'swapped_out'"));
}

TEST(MessagesTest, SetLimitMessagesHaveTheDocumentedShape) {
  const SetLimitMessage set{"lo", 96ULL << 20, "preempted by model 'hi' (priority 5)"};
  const auto sp = AsProto<pb::SetLimit>(set);
  EXPECT_EQ(sp.model(), "lo");
  EXPECT_EQ(sp.limit_bytes(), 100663296u);
  EXPECT_EQ(sp.reason(), "preempted by model 'hi' (priority 5)");
  EXPECT_EQ(RoundTrip(set, 11), set);
  EXPECT_EQ(ToFrame(set, 11).request_id, 11u);
  EXPECT_EQ(ToFrame(set).type, 80);
  pb::SetLimit required;
  required.set_model("m");
  required.set_limit_bytes(0);
  SetLimitMessage no_reason;
  ASSERT_TRUE(DecodePayload(required.SerializeAsString(), &no_reason).ok());
  EXPECT_EQ(no_reason, (SetLimitMessage{"m", 0, ""}));

  const LimitSetMessage done{"lo", 46'758'048, 20ULL << 20, std::nullopt};
  const auto dp = AsProto<pb::LimitSet>(done);
  EXPECT_EQ(dp.model(), "lo");
  EXPECT_EQ(dp.held_bytes(), 46758048u);
  EXPECT_EQ(dp.released_bytes(), 20971520u);
  EXPECT_FALSE(dp.has_error());
  EXPECT_EQ(RoundTrip(done, 11), done);
  EXPECT_EQ(ToFrame(done).type, 81);
  const LimitSetMessage failed{"m", 0, 0, ErrorInfo{StatusCode::kNotFound, "not loaded"}};
  EXPECT_EQ(AsProto<pb::LimitSet>(failed).error().code(), "NOT_FOUND");
  EXPECT_EQ(RoundTrip(failed), failed);

  pb::SetLimit no_model;
  no_model.set_limit_bytes(1);
  Status s = DecodeProto<SetLimitMessage>(no_model);
  EXPECT_EQ(s.code(), StatusCode::kCorruption);
  EXPECT_TRUE(Mentions(s, "'set_limit' message: field 'model': missing")) << s.ToString();
  s = Decode<SetLimitMessage>(EncodePayload(SetLimitMessage{"", 1, ""}));
  EXPECT_TRUE(Mentions(s, "'set_limit' message: field 'model': empty")) << s.ToString();
  pb::SetLimit no_limit;
  no_limit.set_model("m");
  s = DecodeProto<SetLimitMessage>(no_limit);
  EXPECT_TRUE(Mentions(s, "field 'limit_bytes': missing")) << s.ToString();
  // limit_bytes (field 2) as bytes: not an integer.
  s = Decode<SetLimitMessage>(no_limit.SerializeAsString() + FieldOfWireType(2, 2));
  EXPECT_TRUE(Mentions(s, "unknown field: number 2 (wire type 2)")) << s.ToString();
  s = Decode<SetLimitMessage>(EncodePayload(SetLimitMessage{"m", 1, ""}) + kUnknownField15);
  EXPECT_TRUE(Mentions(s, "'set_limit' message: unknown field")) << s.ToString();
  pb::LimitSet partial;
  partial.set_model("m");
  partial.set_held_bytes(1);
  s = DecodeProto<LimitSetMessage>(partial);
  EXPECT_TRUE(Mentions(s, "'limit_set' message: field 'released_bytes': missing")) << s.ToString();
  auto wrong = FromFrame<LimitSetMessage>(ToFrame(SwappedInMessage{}));
  ASSERT_FALSE(wrong.ok());
  EXPECT_TRUE(Mentions(wrong.status(), "expected a 'limit_set' message, got 'swapped_in'"));
}

// The per-execution cap of an infer: absent (the load's limit), a value, or
// 0 (none).
TEST(MessagesTest, InferCarriesAnOptionalLimitBytes) {
  InferMessage infer;
  infer.request_id = 8;
  infer.model = "resnet18";
  infer.task = "infer";
  infer.output = {0, 64};
  EXPECT_FALSE(AsProto<pb::Infer>(infer).has_limit_bytes());
  auto back = FromFrame<InferMessage>(ToFrame(infer));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_FALSE(back->limit_bytes.has_value());
  for (uint64_t limit : {uint64_t{0}, uint64_t{96} << 20, UINT64_MAX}) {
    infer.limit_bytes = limit;
    back = FromFrame<InferMessage>(ToFrame(infer));
    ASSERT_TRUE(back.ok()) << back.status().ToString();
    ASSERT_TRUE(back->limit_bytes.has_value()) << limit;
    EXPECT_EQ(*back->limit_bytes, limit);
    EXPECT_EQ(*back, infer);
    const auto p = AsProto<pb::Infer>(infer);
    EXPECT_TRUE(p.has_limit_bytes());
    EXPECT_EQ(p.limit_bytes(), limit);
  }
  // limit_bytes (field 8) as bytes: not an integer.
  const Status s = Decode<InferMessage>(EncodePayload(infer) + FieldOfWireType(8, 2));
  EXPECT_TRUE(Mentions(s, "'infer' message: unknown field: number 8 (wire type 2)"))
      << s.ToString();
}

// A refusal by a memory limit keeps its typed figures across the worker
// boundary, in `result` and in the other replies (load_failed).
TEST(MessagesTest, ErrorsCarryTheMemoryLimitDetail) {
  StatusDetail detail;
  detail.memory_limit = MemoryLimitDetail{"resnet18", "cpu", 50'000'000, 49'000'000, 4'194'304};
  const Status refused =
      Status::ResourceExhausted("model 'resnet18': memory limit exceeded").WithDetail(detail);
  const ErrorInfo info = ErrorInfo::FromStatus(refused);
  ASSERT_TRUE(info.memory_limit.has_value());
  EXPECT_EQ(info.memory_limit->limit_bytes, 50'000'000u);

  ResultMessage result{3, "resnet18", {}, info};
  const ResultMessage via_proto = RoundTrip(result);
  EXPECT_EQ(via_proto, result);
  const Status again = via_proto.error->ToStatus();
  EXPECT_EQ(again.code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(again.message(), refused.message());
  ASSERT_NE(again.memory_limit(), nullptr);
  EXPECT_EQ(again.memory_limit()->model, "resnet18");
  EXPECT_EQ(again.memory_limit()->device, "cpu");
  EXPECT_EQ(again.memory_limit()->limit_bytes, 50'000'000u);
  EXPECT_EQ(again.memory_limit()->in_use_bytes, 49'000'000u);
  EXPECT_EQ(again.memory_limit()->requested_bytes, 4'194'304u);
  // Without a detail none appears.
  result.error = ErrorInfo{StatusCode::kInternal, "boom"};
  EXPECT_EQ(RoundTrip(result).error->ToStatus().detail(), nullptr);

  const LoadFailedMessage load_failed{"resnet18", info};
  const auto lp = AsProto<pb::LoadFailed>(load_failed);
  EXPECT_EQ(lp.error().code(), "RESOURCE_EXHAUSTED");
  EXPECT_EQ(lp.error().message(), "model 'resnet18': memory limit exceeded");
  ASSERT_TRUE(lp.error().has_memory_limit());
  EXPECT_EQ(lp.error().memory_limit().model(), "resnet18");
  EXPECT_EQ(lp.error().memory_limit().device(), "cpu");
  EXPECT_EQ(lp.error().memory_limit().limit_bytes(), 50000000u);
  EXPECT_EQ(lp.error().memory_limit().in_use_bytes(), 49000000u);
  EXPECT_EQ(lp.error().memory_limit().requested_bytes(), 4194304u);
  EXPECT_EQ(RoundTrip(load_failed), load_failed);

  pb::LoadFailed partial = lp;
  partial.mutable_error()->mutable_memory_limit()->clear_requested_bytes();
  Status s = DecodeProto<LoadFailedMessage>(partial);
  EXPECT_TRUE(
      Mentions(s, "'load_failed' message: error: memory_limit: field 'requested_bytes': missing"))
      << s.ToString();
  // An unknown field inside the nested memory_limit is found too.
  const std::string limit = lp.error().memory_limit().SerializeAsString() + kUnknownField15;
  pb::Error no_limit = lp.error();
  no_limit.clear_memory_limit();
  const std::string error = no_limit.SerializeAsString() + LengthDelimited(3, limit);
  s = Decode<LoadFailedMessage>(EncodePayload(UnloadMessage{"resnet18"}) +
                                LengthDelimited(2, error));
  EXPECT_TRUE(Mentions(s, "'load_failed' message: error: memory_limit: unknown field: number 15"))
      << s.ToString();
  // memory_limit (field 3) as a varint: not a message.
  pb::LoadFailed plain;
  plain.set_model("m");
  *plain.mutable_error() = ErrorProto("RESOURCE_EXHAUSTED", "x");
  s = Decode<LoadFailedMessage>(
      EncodePayload(UnloadMessage{"m"}) +
      LengthDelimited(2, plain.error().SerializeAsString() + FieldOfWireType(3, 0)));
  EXPECT_TRUE(Mentions(s, "error: unknown field: number 3 (wire type 0)")) << s.ToString();
}

TEST(MessagesTest, StatsMarkSwappedModels) {
  const StatsMessage stats{100, 200, {{"a", 10, 20, false}, {"b", 0, 30, true}}, {}};
  const auto p = AsProto<pb::Stats>(stats);
  EXPECT_FALSE(p.models(0).has_swapped());  // written only when true
  EXPECT_TRUE(p.models(1).swapped());
  EXPECT_EQ(RoundTrip(stats), stats);
  // swapped (field 4) as bytes: not a boolean.
  pb::Stats bad;
  bad.set_current_bytes(1);
  bad.set_peak_bytes(1);
  const std::string model = AsProto<pb::Stats>(StatsMessage{1, 1, {{"a", 1, 1, false}}, {}})
                                .models(0)
                                .SerializeAsString() +
                            FieldOfWireType(4, 2);
  const Status s = Decode<StatsMessage>(bad.SerializeAsString() + LengthDelimited(3, model));
  EXPECT_TRUE(Mentions(s, "'stats' message: models[0]: unknown field: number 4 (wire type 2)"))
      << s.ToString();
}

TEST(MessagesTest, InferParamsMustBeAnObject) {
  pb::Infer p = AsProto<pb::Infer>(InferMessage{});
  p.set_params_json("[1,2]");
  Status s = DecodeProto<InferMessage>(p);
  EXPECT_EQ(s.code(), StatusCode::kCorruption);
  EXPECT_TRUE(Mentions(s, "'infer' message: field 'params': expected a JSON object"))
      << s.ToString();
  p.set_params_json("{not json");
  s = DecodeProto<InferMessage>(p);
  EXPECT_TRUE(Mentions(s, "field 'params': expected a JSON object")) << s.ToString();
}

TEST(MessagesTest, LoadedCarriesTasksAndSpecs) {
  LoadedMessage loaded;
  loaded.model = "digits";
  loaded.current_bytes = 20'480;
  loaded.peak_bytes = 40'960;
  loaded.backend = "torchscript";
  loaded.tasks = {"infer"};
  loaded.inputs = {TensorSpec{"input", DataType::kFP32, {64}}};
  loaded.outputs = {TensorSpec{"logits", DataType::kFP32, {-1, 10}}};
  const auto p = AsProto<pb::Loaded>(loaded);
  EXPECT_EQ(p.model(), "digits");
  EXPECT_EQ(p.backend(), "torchscript");
  EXPECT_EQ(p.current_bytes(), 20480u);
  EXPECT_EQ(p.peak_bytes(), 40960u);
  ASSERT_EQ(p.tasks_size(), 1);
  EXPECT_EQ(p.tasks(0), "infer");
  ASSERT_EQ(p.inputs_size(), 1);
  EXPECT_EQ(p.inputs(0).name(), "input");
  EXPECT_EQ(p.inputs(0).datatype(), "FP32");
  ASSERT_EQ(p.outputs_size(), 1);
  EXPECT_EQ(std::vector<int64_t>(p.outputs(0).dims().begin(), p.outputs(0).dims().end()),
            (std::vector<int64_t>{-1, 10}));
  EXPECT_EQ(RoundTrip(loaded), loaded);
  LoadedMessage other = loaded;
  other.outputs[0].dims = {10};
  EXPECT_FALSE(other == loaded);
  other = loaded;
  other.backend = "huggingface";
  EXPECT_FALSE(other == loaded);

  pb::Loaded required;
  required.set_model("m");
  required.set_current_bytes(1);
  required.set_peak_bytes(2);
  LoadedMessage minimal;
  ASSERT_TRUE(DecodePayload(required.SerializeAsString(), &minimal).ok());
  EXPECT_TRUE(minimal.tasks.empty() && minimal.inputs.empty() && minimal.outputs.empty());

  pb::Loaded bad = required;
  pb::TensorSpec* spec = bad.add_inputs();
  spec->set_name("x");
  spec->set_datatype("FP32");
  spec->add_dims(-2);
  Status s = DecodeProto<LoadedMessage>(bad);
  EXPECT_TRUE(Mentions(s, "'loaded' message: inputs[0]: field 'dims': expected integers >= -1"))
      << s.ToString();
  bad = required;
  spec = bad.add_outputs();
  spec->set_name("x");
  spec->set_datatype("FP99");
  s = DecodeProto<LoadedMessage>(bad);
  EXPECT_TRUE(Mentions(s, "outputs[0]: field 'datatype': unknown datatype 'FP99'")) << s.ToString();
  bad = required;
  bad.add_outputs()->set_name("x");
  s = DecodeProto<LoadedMessage>(bad);
  EXPECT_TRUE(Mentions(s, "outputs[0]: field 'datatype': missing")) << s.ToString();
  required.clear_peak_bytes();
  s = DecodeProto<LoadedMessage>(required);
  EXPECT_TRUE(Mentions(s, "'loaded' message: field 'peak_bytes': missing")) << s.ToString();
}

TEST(MessagesTest, EveryOtherMessageRoundTrips) {
  EXPECT_EQ(RoundTrip(PingMessage{}, 3), PingMessage{});
  EXPECT_EQ(RoundTrip(PongMessage{kProtocolVersion, 4242}), (PongMessage{kProtocolVersion, 4242}));
  EXPECT_EQ(RoundTrip(AttachArenaMessage{"w0", 1ULL << 30}),
            (AttachArenaMessage{"w0", 1ULL << 30}));
  const LoadedMessage loaded{"bert", 440 << 20, 512 << 20, {}, {}, {}};
  EXPECT_EQ(RoundTrip(loaded), loaded);
  const LoadFailedMessage load_failed{"bert", ErrorInfo{StatusCode::kNotFound, "no model.pt"}};
  EXPECT_EQ(RoundTrip(load_failed), load_failed);
  EXPECT_EQ(RoundTrip(GetStatsMessage{}), GetStatsMessage{});
  const StatsMessage stats{1000, 2000, {{"a", 600, 900, false}, {"b", 400, 1100, true}}, {}};
  EXPECT_EQ(RoundTrip(stats), stats);
  const StatsMessage cuda{0, 0, {}, {{0, 10, 2 << 20, 4 << 20}, {3, 0, 0, 1}}};
  EXPECT_EQ(RoundTrip(cuda), cuda);
  pb::Stats index_only = AsProto<pb::Stats>(StatsMessage{1, 2, {}, {}});
  index_only.add_cuda()->set_index(0);
  Status s = DecodeProto<StatsMessage>(index_only);
  EXPECT_EQ(s.code(), StatusCode::kCorruption);
  EXPECT_TRUE(Mentions(s, "'stats' message: cuda[0]: field 'allocated_bytes': missing"))
      << s.ToString();
  s = Decode<StatsMessage>(EncodePayload(StatsMessage{1, 2, {}, {{-1, 0, 0, 0}}}));
  EXPECT_TRUE(Mentions(s, "cuda[0]: field 'index': negative")) << s.ToString();
  pb::Stats no_model = AsProto<pb::Stats>(StatsMessage{1, 2, {{"a", 1, 1, false}}, {}});
  no_model.mutable_models(0)->clear_model();
  s = DecodeProto<StatsMessage>(no_model);
  EXPECT_TRUE(Mentions(s, "'stats' message: models[0]: field 'model': missing")) << s.ToString();
  EXPECT_EQ(RoundTrip(UnloadMessage{"bert"}), UnloadMessage{"bert"});
  EXPECT_EQ(RoundTrip(UnloadedMessage{"bert"}), UnloadedMessage{"bert"});
  EXPECT_EQ(RoundTrip(ShutdownMessage{}), ShutdownMessage{});
  EXPECT_EQ(ToFrame(UnloadMessage{"bert"}, 12).request_id, 12u);
  EXPECT_EQ(RoundTrip(AttachRegionMessage{7, 4096}), (AttachRegionMessage{7, 4096}));
  s = Decode<AttachRegionMessage>(EncodePayload(AttachRegionMessage{0, 1}));
  EXPECT_EQ(s.code(), StatusCode::kCorruption);  // 0 is the arena
  EXPECT_TRUE(Mentions(s, "'attach_region' message: field 'id': must be at least 1"))
      << s.ToString();
  pb::AttachRegion no_map;
  no_map.set_id(3);
  EXPECT_TRUE(Mentions(DecodeProto<AttachRegionMessage>(no_map), "field 'map_bytes': missing"));
  const RegionAttachedMessage attached{7, ErrorInfo{StatusCode::kInvalidArgument, "too small"}};
  EXPECT_EQ(RoundTrip(attached), attached);
  EXPECT_EQ(RoundTrip(RegionAttachedMessage{8, std::nullopt}),
            (RegionAttachedMessage{8, std::nullopt}));
  EXPECT_EQ(RoundTrip(DetachRegionMessage{7}), DetachRegionMessage{7});
  EXPECT_TRUE(
      Mentions(Decode<DetachRegionMessage>(""), "'detach_region' message: field 'id': missing"));
  EXPECT_TRUE(Mentions(Decode<UnloadMessage>(""), "'unload' message: field 'model': missing"));
  EXPECT_TRUE(Mentions(Decode<PongMessage>(EncodePayload(PongMessage{6, 1}).substr(0, 2)),
                       "'pong' message: field 'pid': missing"));
  pb::AttachArena no_capacity;
  no_capacity.set_name("w0");
  EXPECT_TRUE(Mentions(DecodeProto<AttachArenaMessage>(no_capacity),
                       "'attach_arena' message: field 'capacity_bytes': missing"));
  // A tensor in a shared-memory region may sit at any offset; in the arena not.
  InferMessage infer;
  infer.request_id = 3;
  infer.model = "m";
  infer.task = "infer";
  infer.inputs = {TensorRef{"x", DataType::kFP32, {2}, 100, 8, 7}};
  EXPECT_EQ(RoundTrip(infer), infer);
  EXPECT_EQ(AsProto<pb::Infer>(infer).inputs(0).region(), 7u);
  infer.inputs[0].region_id = 0;
  EXPECT_EQ(Decode<InferMessage>(EncodePayload(infer)).code(), StatusCode::kCorruption);
}

TEST(MessagesTest, DecodeErrorsNameTheMessageAndField) {
  pb::Load load;
  load.set_model("m");
  load.set_path("p");
  load.set_device("cpu");
  Status s = DecodeProto<LoadMessage>(load);
  EXPECT_EQ(s.code(), StatusCode::kCorruption);
  EXPECT_TRUE(Mentions(s, "'load' message: field 'limit_bytes': missing")) << s.ToString();

  load.set_limit_bytes(1);
  s = Decode<LoadMessage>(load.SerializeAsString() + kUnknownField15);
  EXPECT_TRUE(Mentions(s, "'load' message: unknown field: number 15 (wire type 0)"))
      << s.ToString();

  // model (field 1) as a varint: not text.
  s = Decode<LoadMessage>(FieldOfWireType(1, 0) + load.SerializeAsString().substr(3));
  EXPECT_TRUE(Mentions(s, "unknown field: number 1 (wire type 0)")) << s.ToString();

  EXPECT_EQ(Decode<PingMessage>("not a protobuf").code(), StatusCode::kCorruption);
  EXPECT_TRUE(Mentions(Decode<PingMessage>("\xff\xff\xff"),
                       "'ping' message: payload is not a valid protobuf modelgrid.ipc.pb.Ping"));
  EXPECT_TRUE(Mentions(Decode<PingMessage>(kUnknownField15), "unknown field"));
  EXPECT_TRUE(Decode<PingMessage>("").ok());
  EXPECT_TRUE(Mentions(Decode<ShutdownMessage>(kUnknownField15), "'shutdown' message: unknown"));
  pb::LoadFailed ok_error;
  ok_error.set_model("m");
  *ok_error.mutable_error() = ErrorProto("OK", "");
  EXPECT_TRUE(Mentions(DecodeProto<LoadFailedMessage>(ok_error), "'OK' is not an error code"));
  *ok_error.mutable_error() = ErrorProto("TEAPOT", "");
  EXPECT_TRUE(
      Mentions(DecodeProto<LoadFailedMessage>(ok_error),
               "'load_failed' message: error: field 'code': 'TEAPOT' is not an error code"));
  ok_error.mutable_error()->clear_message();
  EXPECT_TRUE(Mentions(DecodeProto<LoadFailedMessage>(ok_error),
                       "'load_failed' message: error: field 'message': missing"));
  ok_error.clear_error();
  EXPECT_TRUE(Mentions(DecodeProto<LoadFailedMessage>(ok_error),
                       "'load_failed' message: field 'error': missing"));
}

// Tensors: the checks of every decoded TensorRef, in infer and result.
TEST(MessagesTest, TensorsAreValidatedWhenDecoded) {
  const auto infer_with = [](const TensorRef& tensor) {
    InferMessage infer;
    infer.request_id = 1;
    infer.model = "m";
    infer.task = "t";
    infer.inputs = {tensor};
    return Decode<InferMessage>(EncodePayload(infer));
  };
  EXPECT_TRUE(infer_with({"x", DataType::kFP16, {2, 3}, 64, 12}).ok());
  EXPECT_TRUE(infer_with({"s", DataType::kBytes, {2}, 0, 17}).ok());

  Status s = infer_with({"x", DataType::kFP32, {2, 3}, 64, 12});
  EXPECT_EQ(s.code(), StatusCode::kCorruption);
  EXPECT_TRUE(Mentions(s, "inputs[0]: field 'size': 12 bytes, but the shape holds 6 FP32"))
      << s.ToString();
  s = infer_with({"x", DataType::kFP32, {-1}, 0, 4});
  EXPECT_TRUE(Mentions(s, "negative dimension")) << s.ToString();
  s = infer_with({"x", DataType::kFP32, {1}, 8, 4});
  EXPECT_TRUE(Mentions(s, "'offset': 8 is not a multiple of 64")) << s.ToString();
  s = infer_with({"", DataType::kFP32, {1}, 0, 4});
  EXPECT_TRUE(Mentions(s, "'name': empty")) << s.ToString();
  s = infer_with({"x", DataType::kFP64, {4294967296, 4294967296}, 0, 0});
  EXPECT_TRUE(Mentions(s, "overflows")) << s.ToString();

  pb::Infer p = AsProto<pb::Infer>(InferMessage{});
  pb::Tensor* t = p.add_inputs();
  t->set_name("x");
  t->set_datatype("FP99");
  t->add_shape(1);
  t->set_size(4);
  s = DecodeProto<InferMessage>(p);
  EXPECT_TRUE(Mentions(s, "'infer' message: inputs[0]: field 'datatype': unknown datatype 'FP99'"))
      << s.ToString();
  p.clear_output();
  p.clear_inputs();
  s = DecodeProto<InferMessage>(p);
  EXPECT_TRUE(Mentions(s, "'infer' message: field 'output': missing")) << s.ToString();

  ResultMessage result{1, "m", {{"y", DataType::kFP32, {3}, 0, 4}}, std::nullopt};
  s = Decode<ResultMessage>(EncodePayload(result));
  EXPECT_TRUE(Mentions(s, "'result' message: outputs[0]: field 'size': 4 bytes")) << s.ToString();
}

TEST(MessagesTest, ResultNeedsExactlyOneOfOutputsAndError) {
  pb::Result neither;
  neither.set_request_id(1);
  neither.set_model("m");
  EXPECT_TRUE(Mentions(DecodeProto<ResultMessage>(neither),
                       "'result' message: needs exactly one of 'outputs' and 'error'"));
  // outputs and error are a oneof: the last on the wire is the one kept.
  pb::Result both = neither;
  both.mutable_outputs();
  std::string payload = both.SerializeAsString();
  pb::Result error_only;
  *error_only.mutable_error() = ErrorProto("INTERNAL", "x");
  payload += error_only.SerializeAsString();
  ResultMessage decoded;
  ASSERT_TRUE(DecodePayload(payload, &decoded).ok());
  ASSERT_TRUE(decoded.error.has_value());
  EXPECT_TRUE(decoded.outputs.empty());
}

TEST(MessagesTest, FromFrameChecksTypeAndRequestId) {
  auto wrong = FromFrame<LoadMessage>(ToFrame(PingMessage{}));
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(Mentions(wrong.status(), "expected a 'load' message, got 'ping'"));
  Frame unknown = ToFrame(PingMessage{});
  unknown.type = 999;
  EXPECT_TRUE(Mentions(FromFrame<PingMessage>(unknown).status(), "unknown type 999"));

  InferMessage infer;
  infer.request_id = 5;
  infer.model = "m";
  infer.task = "t";
  Frame frame = ToFrame(infer);
  frame.request_id = 6;
  auto mismatch = FromFrame<InferMessage>(frame);
  ASSERT_FALSE(mismatch.ok());
  EXPECT_EQ(mismatch.status().code(), StatusCode::kCorruption);
  EXPECT_TRUE(Mentions(mismatch.status(), "request_id 5 disagrees"));
}

// Every payload is a protobuf of worker.proto, checked when decoded.
TEST(MessagesTest, PayloadsAreCheckedProtobufs) {
  InferMessage infer;
  infer.request_id = 5;
  infer.model = "digits";
  infer.task = "infer";
  infer.inputs = {TensorRef{"input", DataType::kFP32, {1, 64}, 128, 256}};
  infer.output = {4096, 1024};
  infer.params = json{{"max_new_tokens", 3}};
  const Frame frame = ToFrame(infer);
  ASSERT_FALSE(frame.payload.empty());
  EXPECT_NE(frame.payload.front(), '{') << "infer is JSON again";
  EXPECT_NE(ToFrame(LoadMessage{"m", "p", "cpu", 1, 0, 0}).payload.front(), '{')
      << "load is JSON again";
  auto back = FromFrame<InferMessage>(frame);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, infer);

  InferMessage bad;
  EXPECT_EQ(DecodePayload("\xff\xff\xff", &bad).code(), StatusCode::kCorruption);
  infer.inputs[0].offset = 100;  // not 64-byte aligned
  Status s = DecodePayload(EncodePayload(infer), &bad);
  EXPECT_EQ(s.code(), StatusCode::kCorruption);
  EXPECT_NE(s.message().find("'infer' message: inputs[0]: field 'offset'"), std::string::npos)
      << s.ToString();
  infer.inputs[0] = TensorRef{"input", DataType::kInt64, {3}, 0, 16};  // 3 INT64 = 24 bytes
  s = DecodePayload(EncodePayload(infer), &bad);
  EXPECT_NE(s.message().find("field 'size': 16 bytes, but the shape holds 3 INT64"),
            std::string::npos)
      << s.ToString();
  infer.inputs.clear();
  infer.output = {100, 64};
  s = DecodePayload(EncodePayload(infer), &bad);
  EXPECT_TRUE(Mentions(s, "'infer' message: output: field 'offset': 100 is not a multiple of 64"))
      << s.ToString();

  ResultMessage result;
  result.request_id = 5;
  result.error = ErrorInfo{StatusCode::kOk, "not an error"};
  ResultMessage decoded;
  s = DecodePayload(EncodePayload(result), &decoded);
  EXPECT_EQ(s.code(), StatusCode::kCorruption);
  EXPECT_NE(s.message().find("'OK' is not an error code"), std::string::npos) << s.ToString();
  // Bytes that are not UTF-8 survive: text fields are protobuf `bytes`.
  result.error = ErrorInfo{StatusCode::kInvalidArgument, "input '\xc3\x28' is unknown"};
  ASSERT_TRUE(DecodePayload(EncodePayload(result), &decoded).ok());
  EXPECT_EQ(decoded, result);
  const LoadFailedMessage failed{"m\xff", ErrorInfo{StatusCode::kNotFound, "no '\xc3\x28'"}};
  EXPECT_EQ(RoundTrip(failed), failed);
}

TEST(MessagesTest, CheckTensorsWithinTheOutputRegion) {
  const Region out{1024, 1024};
  EXPECT_TRUE(CheckTensorsWithin({{"a", DataType::kUInt8, {1024}, 1024, 1024}}, out).ok());
  EXPECT_TRUE(CheckTensorsWithin({{"a", DataType::kUInt8, {64}, 1984, 64}}, out).ok());
  EXPECT_EQ(CheckTensorsWithin({{"a", DataType::kUInt8, {65}, 1984, 65}}, out).code(),
            StatusCode::kCorruption);
  EXPECT_EQ(CheckTensorsWithin({{"a", DataType::kUInt8, {1}, 960, 1}}, out).code(),
            StatusCode::kCorruption);
  EXPECT_EQ(CheckTensorsWithin({{"a", DataType::kBytes, {1}, 1088, UINT64_MAX}}, out).code(),
            StatusCode::kCorruption);
}

// ---- property: random infer/result messages survive the trip ----

const std::vector<DataType> kTypes = {DataType::kBool,  DataType::kUInt8, DataType::kInt32,
                                      DataType::kInt64, DataType::kFP16,  DataType::kBF16,
                                      DataType::kFP32,  DataType::kFP64,  DataType::kBytes};

TensorRef RandomTensor() {
  TensorRef t;
  t.name = *rc::gen::nonEmpty(rc::gen::string<std::string>());
  t.datatype = *rc::gen::elementOf(kTypes);
  t.shape = *rc::gen::container<std::vector<int64_t>>(*rc::gen::inRange(0, 5),
                                                      rc::gen::inRange<int64_t>(0, 9));
  t.offset = kRegionAlignment * *rc::gen::inRange<uint64_t>(0, 1 << 20);
  uint64_t elements = 1;
  for (int64_t d : t.shape) elements *= static_cast<uint64_t>(d);
  t.size = t.datatype == DataType::kBytes ? *rc::gen::arbitrary<uint32_t>()
                                          : elements * DataTypeSize(t.datatype);
  return t;
}

RC_GTEST_PROP(MessagesProperty, RandomInferRoundTrips, ()) {
  InferMessage m;
  m.request_id = *rc::gen::arbitrary<uint64_t>();
  m.model = *rc::gen::string<std::string>();
  m.task = *rc::gen::string<std::string>();
  const int n = *rc::gen::inRange(0, 6);
  for (int i = 0; i < n; ++i) m.inputs.push_back(RandomTensor());
  m.output = {kRegionAlignment * *rc::gen::inRange<uint64_t>(0, 1 << 20),
              *rc::gen::arbitrary<uint64_t>()};
  m.output_names = *rc::gen::container<std::vector<std::string>>(*rc::gen::inRange(0, 3),
                                                                 rc::gen::string<std::string>());
  if (*rc::gen::arbitrary<bool>()) m.limit_bytes = *rc::gen::arbitrary<uint64_t>();
  if (*rc::gen::arbitrary<bool>()) {
    m.params = json{{"max_new_tokens", *rc::gen::inRange(1, 1025)},
                    {"seed", *rc::gen::arbitrary<uint32_t>()}};
  }
  // Strings of arbitrary bytes are not all valid UTF-8; keep them ASCII here
  // (PayloadsAreCheckedProtobufs shows that invalid UTF-8 survives too).
  for (std::string* s : {&m.model, &m.task}) {
    for (char& c : *s) c = static_cast<char>(0x20 + (static_cast<unsigned char>(c) % 0x5f));
  }
  for (TensorRef& t : m.inputs) {
    for (char& c : t.name) c = static_cast<char>(0x20 + (static_cast<unsigned char>(c) % 0x5f));
  }
  for (std::string& s : m.output_names) {
    for (char& c : s) c = static_cast<char>(0x20 + (static_cast<unsigned char>(c) % 0x5f));
  }
  auto back = FromFrame<InferMessage>(ToFrame(m));
  RC_ASSERT(back.ok());
  RC_ASSERT(*back == m);
}

RC_GTEST_PROP(MessagesProperty, RandomResultRoundTrips, (uint64_t request_id, bool failed)) {
  ResultMessage m;
  m.request_id = request_id;
  m.model = "model";
  if (failed) {
    m.error = ErrorInfo{*rc::gen::element(StatusCode::kInvalidArgument, StatusCode::kUnavailable,
                                          StatusCode::kResourceExhausted, StatusCode::kInternal),
                        "message with \"quotes\" and \n newline"};
  } else {
    const int n = *rc::gen::inRange(0, 4);
    for (int i = 0; i < n; ++i) {
      TensorRef t = RandomTensor();
      t.name = "out" + std::to_string(i);
      m.outputs.push_back(t);
    }
  }
  auto back = FromFrame<ResultMessage>(ToFrame(m));
  RC_ASSERT(back.ok());
  RC_ASSERT(*back == m);
}

}  // namespace
}  // namespace modelgrid::ipc
