// Message vocabulary: the documented JSON shapes, round trips, and decode
// errors that name the field.
#include "modelgrid/ipc/messages.h"

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <nlohmann/json.hpp>

namespace modelgrid::ipc {
namespace {

using nlohmann::json;

template <typename M>
M RoundTrip(const M& m, uint64_t request_id = 0) {
  const Frame frame = ToFrame(m, request_id);
  EXPECT_EQ(frame.type, static_cast<uint16_t>(M::kType));
  auto back = FromFrame<M>(frame);
  EXPECT_TRUE(back.ok()) << back.status().ToString() << " for " << frame.payload;
  return back.ok() ? *back : M{};
}

template <typename M>
Status Decode(const std::string& text) {
  M m;
  return FromJson(text, &m);
}

bool Mentions(const Status& s, const std::string& text) {
  return s.message().find(text) != std::string::npos;
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
  EXPECT_EQ(kProtocolVersion, 5u);  // 4: swap, infer limit_bytes, error memory_limit; 5: set_limit
  EXPECT_FALSE(ToMessageType(0).has_value());
  EXPECT_FALSE(ToMessageType(999).has_value());
}

TEST(MessagesTest, LoadHasTheDocumentedShape) {
  LoadMessage load{"bert", "/models/bert", "cuda:0", 3ULL << 30, 2ULL << 30, 8};
  EXPECT_EQ(json::parse(ToJson(load)), json::parse(R"({
      "model": "bert", "path": "/models/bert", "device": "cuda:0",
      "limit_bytes": 3221225472, "request_bytes": 2147483648, "max_batch_size": 8})"));
  EXPECT_EQ(RoundTrip(load, 5), load);

  LoadMessage minimal;
  ASSERT_TRUE(
      FromJson(R"({"model":"m","path":"p","device":"cpu","limit_bytes":1024})", &minimal).ok());
  EXPECT_EQ(minimal.limit_bytes, 1024u);
  EXPECT_EQ(minimal.request_bytes, 0u);
  EXPECT_EQ(minimal.max_batch_size, 0u);
}

TEST(MessagesTest, InferAndResultHaveTheDocumentedShape) {
  InferMessage infer;
  infer.request_id = 77;
  infer.model = "resnet";
  infer.task = "forward";
  infer.inputs.push_back({"x", DataType::kFP32, {1, 3, 2, 2}, 128, 48});
  infer.output = {192, 4096};
  EXPECT_EQ(json::parse(ToJson(infer)), json::parse(R"({
      "request_id": 77, "model": "resnet", "task": "forward",
      "inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 3, 2, 2],
                  "offset": 128, "size": 48}],
      "output": {"offset": 192, "size": 4096}, "output_names": [], "params": {}})"));
  EXPECT_EQ(RoundTrip(infer), infer);
  EXPECT_EQ(ToFrame(infer).request_id, 77u);

  // "params" is optional (an empty object when absent) and travels as is.
  InferMessage no_params;
  ASSERT_TRUE(FromJson(R"({"request_id":1,"model":"m","task":"t","inputs":[],
                           "output":{"offset":0,"size":64}})",
                       &no_params)
                  .ok());
  EXPECT_EQ(no_params.params, json::object());
  infer.task = "generate";
  infer.params = json{{"max_new_tokens", 40}, {"do_sample", true}, {"temperature", 0.5}};
  const InferMessage back = RoundTrip(infer);
  EXPECT_EQ(back.params, infer.params);
  EXPECT_EQ(back.params["max_new_tokens"], 40);

  ResultMessage ok{77, "resnet", {{"y", DataType::kInt64, {1, 10}, 192, 80}}, std::nullopt};
  EXPECT_EQ(json::parse(ToJson(ok)), json::parse(R"({
      "request_id": 77, "model": "resnet",
      "outputs": [{"name": "y", "datatype": "INT64", "shape": [1, 10],
                   "offset": 192, "size": 80}]})"));
  EXPECT_EQ(RoundTrip(ok), ok);

  ResultMessage failed{
      78, "resnet", {}, ErrorInfo{StatusCode::kResourceExhausted, "limit of 1024 bytes"}};
  EXPECT_EQ(json::parse(ToJson(failed)), json::parse(R"({
      "request_id": 78, "model": "resnet",
      "error": {"code": "RESOURCE_EXHAUSTED", "message": "limit of 1024 bytes"}})"));
  EXPECT_EQ(RoundTrip(failed), failed);
  EXPECT_EQ(failed.error->ToStatus().code(), StatusCode::kResourceExhausted);
}

TEST(MessagesTest, OutputNeededAndOutputRegionHaveTheDocumentedShape) {
  const OutputNeededMessage needed{31, "gpt2", 2'048'000};
  EXPECT_EQ(json::parse(ToJson(needed)),
            json::parse(R"({"request_id": 31, "model": "gpt2", "bytes": 2048000})"));
  EXPECT_EQ(RoundTrip(needed), needed);
  EXPECT_EQ(ToFrame(needed).request_id, 31u);
  EXPECT_EQ(ToFrame(needed).type, 22);

  const OutputRegionMessage region{31, 4096, 2'048'000};
  EXPECT_EQ(json::parse(ToJson(region)),
            json::parse(R"({"request_id": 31, "offset": 4096, "size": 2048000})"));
  EXPECT_EQ(RoundTrip(region), region);
  EXPECT_EQ(region.region(), (Region{4096, 2'048'000}));
  EXPECT_EQ(ToFrame(region).type, 23);

  Status s = Decode<OutputRegionMessage>(R"({"request_id":1,"offset":100,"size":64})");
  EXPECT_EQ(s.code(), StatusCode::kCorruption);
  EXPECT_TRUE(Mentions(s, "'output_region' message: field 'offset': 100 is not a multiple of 64"))
      << s.ToString();
  s = Decode<OutputNeededMessage>(R"({"request_id":1,"model":"m"})");
  EXPECT_TRUE(Mentions(s, "'output_needed' message: field 'bytes': missing")) << s.ToString();

  // request ids in header and JSON must agree, as for infer.
  Frame frame = ToFrame(region);
  frame.request_id = 32;
  EXPECT_EQ(FromFrame<OutputRegionMessage>(frame).status().code(), StatusCode::kCorruption);
}

TEST(MessagesTest, SwapMessagesHaveTheDocumentedShape) {
  const SwapOutMessage out{"resnet18", "/var/tmp/modelgrid-swap"};
  EXPECT_EQ(json::parse(ToJson(out)),
            json::parse(R"({"model": "resnet18", "swap_dir": "/var/tmp/modelgrid-swap"})"));
  EXPECT_EQ(RoundTrip(out, 9), out);
  EXPECT_EQ(ToFrame(out, 9).request_id, 9u);
  EXPECT_EQ(ToFrame(out).type, 70);
  SwapOutMessage no_dir;  // CUDA models need none
  ASSERT_TRUE(FromJson(R"({"model":"m"})", &no_dir).ok());
  EXPECT_EQ(no_dir.swap_dir, "");

  const SwappedOutMessage done{"resnet18",  46'758'048,  81'234,
                               300'000'000, 253'000'000, std::nullopt};
  EXPECT_EQ(json::parse(ToJson(done)), json::parse(R"({
      "model": "resnet18", "bytes": 46758048, "duration_us": 81234,
      "rss_before_bytes": 300000000, "rss_after_bytes": 253000000})"));
  EXPECT_EQ(RoundTrip(done, 9), done);
  SwappedOutMessage failed{"m", 0, 0, 0, 0, ErrorInfo{StatusCode::kNotFound, "not loaded"}};
  EXPECT_EQ(json::parse(ToJson(failed))["error"],
            json::parse(R"({"code": "NOT_FOUND", "message": "not loaded"})"));
  EXPECT_EQ(RoundTrip(failed), failed);

  const SwapInMessage in{"gpt2"};
  EXPECT_EQ(json::parse(ToJson(in)), json::parse(R"({"model": "gpt2"})"));
  EXPECT_EQ(RoundTrip(in, 10), in);
  EXPECT_EQ(ToFrame(in).type, 72);

  const SwappedInMessage back{
      "gpt2", 700'000, 5'100, true, "swap file '/x/gpt2.1.mgswap' is missing", std::nullopt};
  EXPECT_EQ(json::parse(ToJson(back)), json::parse(R"({
      "model": "gpt2", "bytes": 700000, "duration_us": 5100, "reloaded": true,
      "reason": "swap file '/x/gpt2.1.mgswap' is missing"})"));
  EXPECT_EQ(RoundTrip(back, 10), back);
  SwappedInMessage minimal;
  ASSERT_TRUE(
      FromJson(R"({"model":"m","bytes":1,"duration_us":2,"reloaded":false})", &minimal).ok());
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
  Status s = Decode<SwapOutMessage>(R"({"swap_dir":"/tmp"})");
  EXPECT_EQ(s.code(), StatusCode::kCorruption);
  EXPECT_TRUE(Mentions(s, "'swap_out' message: field 'model': missing")) << s.ToString();
  s = Decode<SwapOutMessage>(R"({"model":"","swap_dir":"/tmp"})");
  EXPECT_TRUE(Mentions(s, "'swap_out' message: field 'model': empty")) << s.ToString();
  s = Decode<SwapOutMessage>(R"({"model":"m","swap_dir":7})");
  EXPECT_TRUE(Mentions(s, "field 'swap_dir': expected a string")) << s.ToString();
  s = Decode<SwapOutMessage>(R"({"model":"m","tier":"disk"})");
  EXPECT_TRUE(Mentions(s, "field 'tier': unknown field")) << s.ToString();
  s = Decode<SwapInMessage>(R"({"model":"m","swap_dir":"/tmp"})");
  EXPECT_TRUE(Mentions(s, "'swap_in' message: field 'swap_dir': unknown field")) << s.ToString();
  s = Decode<SwapInMessage>(R"({"model":""})");
  EXPECT_TRUE(Mentions(s, "'swap_in' message: field 'model': empty")) << s.ToString();
  s = Decode<SwappedOutMessage>(
      R"({"model":"m","bytes":-1,"duration_us":0,"rss_before_bytes":0,"rss_after_bytes":0})");
  EXPECT_TRUE(Mentions(s, "'swapped_out' message: field 'bytes': expected a non-negative integer"))
      << s.ToString();
  s = Decode<SwappedOutMessage>(R"({"model":"m","bytes":1,"duration_us":0,"rss_before_bytes":0})");
  EXPECT_TRUE(Mentions(s, "field 'rss_after_bytes': missing")) << s.ToString();
  s = Decode<SwappedInMessage>(R"({"model":"m","bytes":1,"duration_us":0,"reloaded":1})");
  EXPECT_TRUE(Mentions(s, "'swapped_in' message: field 'reloaded': expected a boolean"))
      << s.ToString();
  s = Decode<SwappedInMessage>(R"({"model":"m","bytes":1,"duration_us":0})");
  EXPECT_TRUE(Mentions(s, "field 'reloaded': missing")) << s.ToString();
  s = Decode<SwappedInMessage>(
      R"({"model":"m","bytes":0,"duration_us":0,"reloaded":false,"error":{"code":"OK","message":""}})");
  EXPECT_TRUE(Mentions(s, "'OK' is not an error code")) << s.ToString();
  // A reply of the wrong type is told apart from the one awaited.
  auto wrong = FromFrame<SwappedInMessage>(ToFrame(SwappedOutMessage{}));
  ASSERT_FALSE(wrong.ok());
  EXPECT_TRUE(Mentions(wrong.status(), "expected a 'swapped_in' message, got 'swapped_out'"));
}

TEST(MessagesTest, SetLimitMessagesHaveTheDocumentedShape) {
  const SetLimitMessage set{"lo", 96ULL << 20, "preempted by model 'hi' (priority 5)"};
  EXPECT_EQ(json::parse(ToJson(set)), json::parse(R"j({
      "model": "lo", "limit_bytes": 100663296,
      "reason": "preempted by model 'hi' (priority 5)"})j"));
  EXPECT_EQ(RoundTrip(set, 11), set);
  EXPECT_EQ(ToFrame(set, 11).request_id, 11u);
  EXPECT_EQ(ToFrame(set).type, 80);
  SetLimitMessage no_reason;
  ASSERT_TRUE(FromJson(R"({"model":"m","limit_bytes":0})", &no_reason).ok());
  EXPECT_EQ(no_reason, (SetLimitMessage{"m", 0, ""}));

  const LimitSetMessage done{"lo", 46'758'048, 20ULL << 20, std::nullopt};
  EXPECT_EQ(json::parse(ToJson(done)), json::parse(R"({
      "model": "lo", "held_bytes": 46758048, "released_bytes": 20971520})"));
  EXPECT_EQ(RoundTrip(done, 11), done);
  EXPECT_EQ(ToFrame(done).type, 81);
  const LimitSetMessage failed{"m", 0, 0, ErrorInfo{StatusCode::kNotFound, "not loaded"}};
  EXPECT_EQ(json::parse(ToJson(failed))["error"],
            json::parse(R"({"code": "NOT_FOUND", "message": "not loaded"})"));
  EXPECT_EQ(RoundTrip(failed), failed);

  Status s = Decode<SetLimitMessage>(R"({"limit_bytes":1})");
  EXPECT_EQ(s.code(), StatusCode::kCorruption);
  EXPECT_TRUE(Mentions(s, "'set_limit' message: field 'model': missing")) << s.ToString();
  s = Decode<SetLimitMessage>(R"({"model":"","limit_bytes":1})");
  EXPECT_TRUE(Mentions(s, "'set_limit' message: field 'model': empty")) << s.ToString();
  s = Decode<SetLimitMessage>(R"({"model":"m"})");
  EXPECT_TRUE(Mentions(s, "field 'limit_bytes': missing")) << s.ToString();
  s = Decode<SetLimitMessage>(R"({"model":"m","limit_bytes":-5})");
  EXPECT_TRUE(Mentions(s, "field 'limit_bytes': expected a non-negative integer")) << s.ToString();
  s = Decode<SetLimitMessage>(R"({"model":"m","limit_bytes":1,"why":"x"})");
  EXPECT_TRUE(Mentions(s, "field 'why': unknown field")) << s.ToString();
  s = Decode<LimitSetMessage>(R"({"model":"m","held_bytes":1})");
  EXPECT_TRUE(Mentions(s, "'limit_set' message: field 'released_bytes': missing")) << s.ToString();
  auto wrong = FromFrame<LimitSetMessage>(ToFrame(SwappedInMessage{}));
  ASSERT_FALSE(wrong.ok());
  EXPECT_TRUE(Mentions(wrong.status(), "expected a 'limit_set' message, got 'swapped_in'"));
}

// The per-execution cap of an infer: absent (the load's limit), a value, or
// 0 (none), on both encodings.
TEST(MessagesTest, InferCarriesAnOptionalLimitBytes) {
  InferMessage infer;
  infer.request_id = 8;
  infer.model = "resnet18";
  infer.task = "infer";
  infer.output = {0, 64};
  EXPECT_FALSE(json::parse(ToJson(infer)).contains("limit_bytes"));
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
    EXPECT_EQ(json::parse(ToJson(infer))["limit_bytes"], limit);
    InferMessage from_json;
    ASSERT_TRUE(FromJson(ToJson(infer), &from_json).ok());
    EXPECT_EQ(from_json, infer);
  }
  const Status s = Decode<InferMessage>(R"({"request_id":1,"model":"m","task":"t","inputs":[],
      "output":{"offset":0,"size":0},"limit_bytes":-5})");
  EXPECT_TRUE(Mentions(s, "'infer' message: field 'limit_bytes': expected a non-negative integer"))
      << s.ToString();
}

// A refusal by a memory limit keeps its typed figures across the worker
// boundary, in `result` (protobuf) and in the JSON replies (load_failed).
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
  EXPECT_EQ(json::parse(ToJson(load_failed))["error"], json::parse(R"({
      "code": "RESOURCE_EXHAUSTED", "message": "model 'resnet18': memory limit exceeded",
      "memory_limit": {"model": "resnet18", "device": "cpu", "limit_bytes": 50000000,
                       "in_use_bytes": 49000000, "requested_bytes": 4194304}})"));
  EXPECT_EQ(RoundTrip(load_failed), load_failed);

  Status s = Decode<LoadFailedMessage>(R"({"model":"m","error":{"code":"RESOURCE_EXHAUSTED",
      "message":"x","memory_limit":{"model":"m","device":"cpu","limit_bytes":1,"in_use_bytes":1}}})");
  EXPECT_TRUE(Mentions(s, "error: memory_limit: field 'requested_bytes': missing")) << s.ToString();
  s = Decode<LoadFailedMessage>(R"({"model":"m","error":{"code":"RESOURCE_EXHAUSTED",
      "message":"x","memory_limit":{"model":"m","device":"cpu","limit_bytes":1,"in_use_bytes":1,
      "requested_bytes":1,"cap":2}}})");
  EXPECT_TRUE(Mentions(s, "field 'cap': unknown field")) << s.ToString();
  s = Decode<LoadFailedMessage>(
      R"({"model":"m","error":{"code":"RESOURCE_EXHAUSTED","message":"x","memory_limit":5}})");
  EXPECT_TRUE(Mentions(s, "field 'memory_limit': expected an object")) << s.ToString();
}

TEST(MessagesTest, StatsMarkSwappedModels) {
  const StatsMessage stats{100, 200, {{"a", 10, 20, false}, {"b", 0, 30, true}}, {}};
  const json j = json::parse(ToJson(stats));
  EXPECT_FALSE(j["models"][0].contains("swapped"));  // the shape of protocol 3 when false
  EXPECT_EQ(j["models"][1]["swapped"], true);
  EXPECT_EQ(RoundTrip(stats), stats);
  EXPECT_TRUE(
      Mentions(Decode<StatsMessage>(R"({"current_bytes":1,"peak_bytes":1,"models":[{"model":"a",
          "current_bytes":1,"peak_bytes":1,"swapped":"yes"}]})"),
               "field 'swapped': expected a boolean"));
}

TEST(MessagesTest, InferParamsMustBeAnObject) {
  const Status s = Decode<InferMessage>(R"({"request_id":1,"model":"m","task":"t","inputs":[],
      "output":{"offset":0,"size":0},"params":[1,2]})");
  EXPECT_EQ(s.code(), StatusCode::kCorruption);
  EXPECT_TRUE(Mentions(s, "field 'params': expected an object")) << s.ToString();
}

TEST(MessagesTest, LoadedCarriesTasksAndSpecs) {
  LoadedMessage loaded;
  loaded.model = "digits";
  loaded.current_bytes = 20'480;
  loaded.peak_bytes = 40'960;
  loaded.tasks = {"infer"};
  loaded.inputs = {TensorSpec{"input", DataType::kFP32, {64}}};
  loaded.outputs = {TensorSpec{"logits", DataType::kFP32, {-1, 10}}};
  EXPECT_EQ(json::parse(ToJson(loaded)), json::parse(R"({
      "model": "digits", "current_bytes": 20480, "peak_bytes": 40960, "tasks": ["infer"],
      "inputs": [{"name": "input", "datatype": "FP32", "dims": [64]}],
      "outputs": [{"name": "logits", "datatype": "FP32", "dims": [-1, 10]}]})"));
  EXPECT_EQ(RoundTrip(loaded), loaded);
  LoadedMessage other = loaded;
  other.outputs[0].dims = {10};
  EXPECT_FALSE(other == loaded);

  LoadedMessage minimal;
  ASSERT_TRUE(FromJson(R"({"model":"m","current_bytes":1,"peak_bytes":2})", &minimal).ok());
  EXPECT_TRUE(minimal.tasks.empty() && minimal.inputs.empty() && minimal.outputs.empty());

  Status s = Decode<LoadedMessage>(R"({"model":"m","current_bytes":1,"peak_bytes":2,
      "inputs":[{"name":"x","datatype":"FP32","dims":[-2]}]})");
  EXPECT_TRUE(Mentions(s, "inputs[0]: field 'dims': expected integers >= -1")) << s.ToString();
  s = Decode<LoadedMessage>(R"({"model":"m","current_bytes":1,"peak_bytes":2,
      "outputs":[{"name":"x","datatype":"FP99","dims":[]}]})");
  EXPECT_TRUE(Mentions(s, "unknown datatype 'FP99'")) << s.ToString();
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
  EXPECT_EQ(Decode<StatsMessage>(R"({"current_bytes":1,"peak_bytes":2,"cuda":[{"index":0}]})").code(),
            StatusCode::kCorruption);
  EXPECT_EQ(RoundTrip(UnloadMessage{"bert"}), UnloadMessage{"bert"});
  EXPECT_EQ(RoundTrip(UnloadedMessage{"bert"}), UnloadedMessage{"bert"});
  EXPECT_EQ(RoundTrip(ShutdownMessage{}), ShutdownMessage{});
  EXPECT_EQ(ToFrame(UnloadMessage{"bert"}, 12).request_id, 12u);
  EXPECT_EQ(RoundTrip(AttachRegionMessage{7, 4096}), (AttachRegionMessage{7, 4096}));
  EXPECT_EQ(Decode<AttachRegionMessage>(R"({"id":0,"map_bytes":1})").code(),
            StatusCode::kCorruption);  // 0 is the arena
  const RegionAttachedMessage attached{7, ErrorInfo{StatusCode::kInvalidArgument, "too small"}};
  EXPECT_EQ(RoundTrip(attached), attached);
  EXPECT_EQ(RoundTrip(RegionAttachedMessage{8, std::nullopt}),
            (RegionAttachedMessage{8, std::nullopt}));
  EXPECT_EQ(RoundTrip(DetachRegionMessage{7}), DetachRegionMessage{7});
  // A tensor in a shared-memory region may sit at any offset; in the arena not.
  InferMessage infer;
  infer.request_id = 3;
  infer.model = "m";
  infer.task = "infer";
  infer.inputs = {TensorRef{"x", DataType::kFP32, {2}, 100, 8, 7}};
  EXPECT_EQ(RoundTrip(infer), infer);
  EXPECT_EQ(json::parse(ToJson(infer))["inputs"][0]["region"], 7);
  infer.inputs[0].region_id = 0;
  EXPECT_EQ(Decode<InferMessage>(ToJson(infer)).code(), StatusCode::kCorruption);
}

TEST(MessagesTest, DecodeErrorsNameTheMessageAndField) {
  Status s = Decode<LoadMessage>(R"({"model":"m","path":"p","device":"cpu"})");
  EXPECT_EQ(s.code(), StatusCode::kCorruption);
  EXPECT_TRUE(Mentions(s, "'load' message: field 'limit_bytes': missing")) << s.ToString();

  s = Decode<LoadMessage>(R"({"model":"m","path":"p","device":"cpu","limit_bytes":-5})");
  EXPECT_TRUE(Mentions(s, "'limit_bytes': expected a non-negative integer")) << s.ToString();

  s = Decode<LoadMessage>(R"({"model":"m","path":"p","device":"cpu","limit_bytes":1,"gpu":1})");
  EXPECT_TRUE(Mentions(s, "field 'gpu': unknown field")) << s.ToString();

  s = Decode<LoadMessage>(R"({"model":7,"path":"p","device":"cpu","limit_bytes":1})");
  EXPECT_TRUE(Mentions(s, "field 'model': expected a string")) << s.ToString();

  EXPECT_EQ(Decode<PingMessage>("not json").code(), StatusCode::kCorruption);
  EXPECT_TRUE(Mentions(Decode<PingMessage>("[1,2]"), "expected an object"));
  EXPECT_TRUE(Mentions(Decode<PingMessage>(R"({"x":1})"), "unknown field"));
  EXPECT_TRUE(
      Mentions(Decode<LoadFailedMessage>(R"({"model":"m","error":{"code":"OK","message":""}})"),
               "'OK' is not an error code"));
}

TEST(MessagesTest, TensorsAreValidatedWhenDecoded) {
  const auto infer_with = [](const std::string& tensor) {
    return Decode<InferMessage>(R"({"request_id":1,"model":"m","task":"t","inputs":[)" + tensor +
                                R"(],"output":{"offset":0,"size":0}})");
  };
  EXPECT_TRUE(
      infer_with(R"({"name":"x","datatype":"FP16","shape":[2,3],"offset":64,"size":12})").ok());
  EXPECT_TRUE(
      infer_with(R"({"name":"s","datatype":"BYTES","shape":[2],"offset":0,"size":17})").ok());

  Status s = infer_with(R"({"name":"x","datatype":"FP32","shape":[2,3],"offset":64,"size":12})");
  EXPECT_EQ(s.code(), StatusCode::kCorruption);
  EXPECT_TRUE(Mentions(s, "inputs[0]: field 'size': 12 bytes, but the shape holds 6 FP32"))
      << s.ToString();
  s = infer_with(R"({"name":"x","datatype":"FP99","shape":[1],"offset":0,"size":4})");
  EXPECT_TRUE(Mentions(s, "unknown datatype 'FP99'")) << s.ToString();
  s = infer_with(R"({"name":"x","datatype":"FP32","shape":[-1],"offset":0,"size":4})");
  EXPECT_TRUE(Mentions(s, "negative dimension")) << s.ToString();
  s = infer_with(R"({"name":"x","datatype":"FP32","shape":[1],"offset":8,"size":4})");
  EXPECT_TRUE(Mentions(s, "'offset': 8 is not a multiple of 64")) << s.ToString();
  s = infer_with(R"({"name":"","datatype":"FP32","shape":[1],"offset":0,"size":4})");
  EXPECT_TRUE(Mentions(s, "'name': empty")) << s.ToString();
  s = infer_with(
      R"({"name":"x","datatype":"FP64","shape":[4294967296,4294967296],"offset":0,"size":0})");
  EXPECT_TRUE(Mentions(s, "overflows")) << s.ToString();
}

TEST(MessagesTest, ResultNeedsExactlyOneOfOutputsAndError) {
  EXPECT_TRUE(Mentions(Decode<ResultMessage>(R"({"request_id":1,"model":"m"})"), "exactly one"));
  EXPECT_TRUE(Mentions(
      Decode<ResultMessage>(
          R"({"request_id":1,"model":"m","outputs":[],"error":{"code":"INTERNAL","message":"x"}})"),
      "exactly one"));
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

// infer and result travel as protobuf (request.proto) and get the checks of
// their JSON form when decoded.
TEST(MessagesTest, InferAndResultPayloadsAreCheckedProtobufs) {
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
  // (invalid UTF-8 is replaced on encoding, by design).
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
