// gRPC messages <-> service structs (grpc_convert.h): typed contents read
// into raw bytes with range checks, raw contents moved, mismatches named,
// parameters both ways, status codes as Triton maps them.
#include "grpc/grpc_convert.h"

#include <gtest/gtest.h>

#include <cstring>

namespace modelgrid::grpc_internal {
namespace {

template <typename T>
std::string Raw(std::initializer_list<T> values) {
  std::string out;
  for (T v : values) out.append(reinterpret_cast<const char*>(&v), sizeof(T));
  return out;
}

inference::ModelInferRequest::InferInputTensor* AddInput(inference::ModelInferRequest* r,
                                                         const std::string& name,
                                                         const std::string& datatype,
                                                         std::initializer_list<int64_t> shape) {
  auto* in = r->add_inputs();
  in->set_name(name);
  in->set_datatype(datatype);
  for (int64_t d : shape) in->add_shape(d);
  return in;
}

TEST(GrpcConvert, TypedContentsBecomeRawBytesOfTheirDatatype) {
  inference::ModelInferRequest r;
  r.set_id("7");
  auto* a = AddInput(&r, "a", "INT16", {3});
  for (int v : {-2, 0, 300}) a->mutable_contents()->add_int_contents(v);
  auto* b = AddInput(&r, "b", "FP32", {1, 2});
  b->mutable_contents()->add_fp32_contents(1.5f);
  b->mutable_contents()->add_fp32_contents(-2.0f);
  auto* c = AddInput(&r, "c", "BYTES", {2});
  c->mutable_contents()->add_bytes_contents("hi");
  c->mutable_contents()->add_bytes_contents("");
  auto* d = AddInput(&r, "d", "BOOL", {2});
  d->mutable_contents()->add_bool_contents(true);
  d->mutable_contents()->add_bool_contents(false);
  (*r.mutable_parameters())["priority"].set_int64_param(3);
  auto* o = r.add_outputs();
  o->set_name("y");
  (*o->mutable_parameters())["classification"].set_int64_param(2);

  auto got = DecodeModelInferRequest(&r);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->id, "7");
  ASSERT_EQ(got->inputs.size(), 4u);
  EXPECT_EQ(got->inputs[0].data, Raw<int16_t>({-2, 0, 300}));
  EXPECT_EQ(got->inputs[1].data, Raw<float>({1.5f, -2.0f}));
  EXPECT_EQ(got->inputs[2].data, std::string("\x02\0\0\0hi\0\0\0\0", 10));
  EXPECT_EQ(got->inputs[3].data, std::string("\x01\x00", 2));
  EXPECT_EQ(got->parameters["priority"], 3);
  ASSERT_EQ(got->outputs.size(), 1u);
  EXPECT_EQ(got->outputs[0].parameters["classification"], 2);
}

TEST(GrpcConvert, RawContentsAreTakenPerInputInOrder) {
  inference::ModelInferRequest r;
  AddInput(&r, "x", "FP16", {2});
  AddInput(&r, "y", "INT64", {1});
  r.add_raw_input_contents(std::string("\x00\x3c\x00\xc0", 4));  // 1.0, -2.0 in FP16
  r.add_raw_input_contents(Raw<int64_t>({-9}));
  auto got = DecodeModelInferRequest(&r);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->inputs[0].data, std::string("\x00\x3c\x00\xc0", 4));
  EXPECT_EQ(got->inputs[1].data, Raw<int64_t>({-9}));
}

// Each bad request gets kInvalidArgument with a message naming the problem.
TEST(GrpcConvert, BadRequestsAreNamed) {
  auto expect_error = [](inference::ModelInferRequest r, const std::string& part) {
    auto got = DecodeModelInferRequest(&r);
    ASSERT_FALSE(got.ok()) << part;
    EXPECT_EQ(got.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(got.status().message().find(part), std::string::npos) << got.status().message();
  };
  inference::ModelInferRequest r;
  AddInput(&r, "x", "FP33", {1});
  expect_error(r, "unknown datatype 'FP33'");

  r.Clear();
  AddInput(&r, "x", "INT8", {1})->mutable_contents()->add_int_contents(200);
  expect_error(r, "value 200 out of range for INT8");

  r.Clear();
  AddInput(&r, "x", "FP32", {3})->mutable_contents()->add_fp32_contents(1);
  expect_error(r, "shape [3] needs 3 elements, got 1");

  r.Clear();
  AddInput(&r, "x", "FP32", {1})->mutable_contents()->add_int_contents(1);
  expect_error(r, "FP32 values go in fp32_contents, got int_contents");

  r.Clear();
  AddInput(&r, "x", "FP16", {1})->mutable_contents()->add_fp32_contents(1);
  expect_error(r, "FP16 has no typed contents field");

  r.Clear();
  AddInput(&r, "x", "FP32", {2});
  AddInput(&r, "y", "FP32", {2});
  r.add_raw_input_contents(Raw<float>({1, 2}));
  expect_error(r, "raw_input_contents has 1 entries for 2 inputs");

  r.Clear();
  AddInput(&r, "x", "FP32", {2});
  r.add_raw_input_contents(Raw<float>({1}));
  expect_error(r, "input 'x'");

  r.Clear();
  AddInput(&r, "x", "FP32", {1});
  AddInput(&r, "x", "FP32", {1});
  expect_error(r, "appears twice");

  r.Clear();
  AddInput(&r, "x", "FP32", {-1});
  expect_error(r, "negative dimension");
}

TEST(GrpcConvert, ResponsesRoundTripWithRawContents) {
  InferResponse response;
  response.model_name = "m";
  response.model_version = "2";
  response.id = "abc";
  InferTensor t;
  t.name = "out";
  t.datatype = DataType::kFP32;
  t.shape = {2};
  t.data = Raw<float>({0.25f, -1.0f});
  t.parameters = {{"note", "x"}, {"count", 5}, {"big", uint64_t{1} << 63}};
  response.outputs = {t};
  inference::ModelInferResponse message;
  ASSERT_TRUE(EncodeModelInferResponse(response, &message).ok());
  EXPECT_EQ(message.raw_output_contents_size(), 1);
  EXPECT_EQ(message.outputs(0).parameters().at("big").uint64_param(), uint64_t{1} << 63);
  auto back = DecodeModelInferResponse(&message);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->model_version, "2");
  EXPECT_EQ(back->outputs[0].data, t.data);
  EXPECT_EQ(back->outputs[0].parameters["note"], "x");
  EXPECT_EQ(back->outputs[0].parameters["count"], 5);

  ParameterMap map;
  EXPECT_EQ(ParametersFromJson({{"bad", {1, 2}}}, "request", &map).code(),
            StatusCode::kInvalidArgument);
}

TEST(GrpcConvert, StatusCodesFollowTritonsMapping) {
  EXPECT_EQ(ToGrpcStatus(Status::InvalidArgument("x")).error_code(), grpc::INVALID_ARGUMENT);
  EXPECT_EQ(ToGrpcStatus(Status::NotFound("x")).error_code(), grpc::NOT_FOUND);
  EXPECT_EQ(ToGrpcStatus(Status::Unavailable("x")).error_code(), grpc::UNAVAILABLE);
  EXPECT_EQ(ToGrpcStatus(Status::ResourceExhausted("x")).error_code(), grpc::RESOURCE_EXHAUSTED);
  EXPECT_EQ(ToGrpcStatus(Status::Unsupported("x")).error_code(), grpc::UNIMPLEMENTED);
  EXPECT_EQ(ToGrpcStatus(Status::PermissionDenied("x")).error_code(), grpc::PERMISSION_DENIED);
  EXPECT_EQ(ToGrpcStatus(Status::Internal("boom")).error_message(), "boom");
  EXPECT_EQ(FromGrpcStatus(grpc::Status(grpc::NOT_FOUND, "m")).code(), StatusCode::kNotFound);
  EXPECT_EQ(FromGrpcStatus(grpc::Status(grpc::DEADLINE_EXCEEDED, "m")).code(),
            StatusCode::kUnavailable);
}

}  // namespace
}  // namespace modelgrid::grpc_internal
