// The gRPC server in process over a Grid on the small zoo's digits
// (isolation none), every RPC through a real channel on 127.0.0.1:
// answers checked field by field against reference/kserve_v2.md and
// against the grid's own answer, errors with their gRPC codes.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <set>

#include "grpc/grpc_client.h"
#include "grpc/grpc_convert.h"
#include "modelgrid/grpc/grpc_server.h"
#include "modelgrid/service/inference_service.h"
#include "testing/posix_shm.h"
#include "testing/test_grid.h"
#include "testing/digits.h"
#include "testing/zoo.h"

namespace modelgrid {
namespace {

using grpc_internal::GrpcClient;


class GrpcServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto zoo = testing::Zoo();
    if (!zoo) GTEST_SKIP() << "MODELGRID_TEST_ZOO is not set or not a folder";
    zoo_ = *zoo;
    grid_ = testing::DigitsGrid(Isolation::kNone, zoo_);
    ASSERT_TRUE(grid_);
    auto st = grid_->Model("digits");
    ASSERT_TRUE(st.ok() && st->state == ModelState::kReady);
    input_ = st->inputs.at(0).name;
    output_ = st->outputs.at(0).name;
    ServiceOptions so;
    so.admin_token = "tok";
    service_ = std::make_unique<InferenceService>(grid_.get(), so);
    GrpcServerOptions go;
    go.port = 0;
    server_ = std::make_unique<GrpcServer>(service_.get(), go);
    auto port = server_->Start();
    ASSERT_TRUE(port.ok()) << port.status().ToString();
    target_ = "127.0.0.1:" + std::to_string(*port);
  }
  void TearDown() override {
    if (server_) server_->Stop();
  }

  InferRequest Rows(size_t first, size_t count) {
    InferRequest r;
    InferTensor t;
    t.name = input_;
    t.datatype = DataType::kFP32;
    t.shape = {static_cast<int64_t>(count), 64};
    t.data = testing::DigitsRows(zoo_, first, count);
    r.inputs.push_back(std::move(t));
    return r;
  }
  // The grid's own answer for the same rows (no transport at all).
  InferTensor Direct(size_t first, size_t count) {
    InferCall call;
    call.inputs = Rows(first, count).inputs;
    auto out = grid_->Infer("digits", std::move(call));
    EXPECT_TRUE(out.ok());
    return out.ok() ? out->at(0) : InferTensor{};
  }

  std::filesystem::path zoo_;
  std::unique_ptr<Grid> grid_;
  std::unique_ptr<InferenceService> service_;
  std::unique_ptr<GrpcServer> server_;
  std::string target_, input_, output_;
};

TEST_F(GrpcServerTest, HealthAndMetadataAnswerAsTheProtocolSays) {
  GrpcClient client(target_);
  auto& stub = client.stub();
  inference::ServerLiveResponse live;
  ASSERT_TRUE(stub.ServerLive(client.Context().get(), {}, &live).ok());
  EXPECT_TRUE(live.live());
  inference::ServerReadyResponse ready;
  ASSERT_TRUE(stub.ServerReady(client.Context().get(), {}, &ready).ok());
  EXPECT_TRUE(ready.ready());

  inference::ModelReadyRequest mr;
  mr.set_name("digits");
  inference::ModelReadyResponse mready;
  ASSERT_TRUE(stub.ModelReady(client.Context().get(), mr, &mready).ok());
  EXPECT_TRUE(mready.ready());
  mr.set_name("nope");
  grpc::Status s = stub.ModelReady(client.Context().get(), mr, &mready);
  EXPECT_EQ(s.error_code(), grpc::NOT_FOUND);
  EXPECT_NE(s.error_message().find("unknown model 'nope'"), std::string::npos) << s.error_message();

  inference::ServerMetadataResponse sm;
  ASSERT_TRUE(stub.ServerMetadata(client.Context().get(), {}, &sm).ok());
  EXPECT_EQ(sm.name(), "modelgrid");
  EXPECT_EQ(sm.version(), MODELGRID_VERSION);
  std::set<std::string> ext(sm.extensions().begin(), sm.extensions().end());
  EXPECT_TRUE(ext.count("system_shared_memory") && ext.count("model_repository") &&
              ext.count("statistics"));

  inference::ModelMetadataRequest mm;
  mm.set_name("digits");
  inference::ModelMetadataResponse meta;
  ASSERT_TRUE(stub.ModelMetadata(client.Context().get(), mm, &meta).ok());
  EXPECT_EQ(meta.name(), "digits");
  EXPECT_EQ(meta.platform(), "pytorch_torchscript");
  ASSERT_EQ(meta.inputs_size(), 1);
  EXPECT_EQ(meta.inputs(0).name(), input_);
  EXPECT_EQ(meta.inputs(0).datatype(), "FP32");
  EXPECT_EQ(std::vector<int64_t>(meta.inputs(0).shape().begin(), meta.inputs(0).shape().end()),
            (std::vector<int64_t>{-1, 64}));
  mm.set_version("42");
  EXPECT_EQ(stub.ModelMetadata(client.Context().get(), mm, &meta).error_code(), grpc::NOT_FOUND);

}

TEST_F(GrpcServerTest, InferWithRawAndTypedContentsEqualsTheGridsOwnAnswer) {
  GrpcClient client(target_);
  InferRequest request = Rows(0, 4);
  request.id = "r-1";
  auto got = client.Infer("digits", "", request);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->model_name, "digits");
  EXPECT_EQ(got->model_version, grid_->Model("digits")->version);
  EXPECT_EQ(got->id, "r-1");
  ASSERT_EQ(got->outputs.size(), 1u);
  const InferTensor want = Direct(0, 4);
  EXPECT_EQ(got->outputs[0].name, want.name);
  EXPECT_EQ(got->outputs[0].shape, want.shape);
  EXPECT_EQ(got->outputs[0].data, want.data);

  // The same rows as typed fp32_contents.
  inference::ModelInferRequest typed;
  typed.set_model_name("digits");
  auto* in = typed.add_inputs();
  in->set_name(input_);
  in->set_datatype("FP32");
  in->add_shape(4);
  in->add_shape(64);
  const std::string bytes = testing::DigitsRows(zoo_, 0, 4);
  for (size_t i = 0; i < bytes.size(); i += 4) {
    float v;
    std::memcpy(&v, bytes.data() + i, 4);
    in->mutable_contents()->add_fp32_contents(v);
  }
  inference::ModelInferResponse reply;
  ASSERT_TRUE(client.stub().ModelInfer(client.Context().get(), typed, &reply).ok());
  ASSERT_EQ(reply.raw_output_contents_size(), 1);
  EXPECT_EQ(reply.raw_output_contents(0), want.data);
  EXPECT_EQ(reply.outputs(0).datatype(), std::string(DataTypeName(want.datatype)));

  // Errors: wrong shape, unknown model, unknown output.
  InferRequest bad = Rows(0, 1);
  bad.inputs[0].shape = {1, 63};
  auto e = client.Infer("digits", "", bad);
  EXPECT_EQ(e.status().code(), StatusCode::kInvalidArgument) << e.status().ToString();
  e = client.Infer("no_model", "", Rows(0, 1));
  EXPECT_EQ(e.status().code(), StatusCode::kNotFound);
  InferRequest wrong_out = Rows(0, 1);
  wrong_out.outputs = {RequestedOutput{"zzz", false, nlohmann::json::object()}};
  e = client.Infer("digits", "", wrong_out);
  EXPECT_EQ(e.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(e.status().message().find("'zzz' is not an output"), std::string::npos);
}

TEST_F(GrpcServerTest, StreamInferAnswersEveryRequestAndKeepsTheStreamOpenOnErrors) {
  GrpcClient client(target_);
  auto context = client.Context();
  auto stream = client.stub().ModelStreamInfer(context.get());
  constexpr int kRequests = 6;
  for (int i = 0; i < kRequests; ++i) {
    inference::ModelInferRequest m;
    InferRequest r = Rows(static_cast<size_t>(i), 1);
    r.id = "s" + std::to_string(i);
    ASSERT_TRUE(grpc_internal::EncodeModelInferRequest(i == 3 ? "missing" : "digits", "", r, &m)
                    .ok());
    ASSERT_TRUE(stream->Write(m));
  }
  stream->WritesDone();
  std::map<std::string, inference::ModelStreamInferResponse> answers;
  inference::ModelStreamInferResponse answer;
  while (stream->Read(&answer)) answers[answer.infer_response().id()] = answer;
  EXPECT_TRUE(stream->Finish().ok());
  ASSERT_EQ(answers.size(), static_cast<size_t>(kRequests));
  for (int i = 0; i < kRequests; ++i) {
    const auto& a = answers.at("s" + std::to_string(i));
    // Every answer is a request's last: Triton's final flag says so.
    const auto& params = a.infer_response().parameters();
    ASSERT_TRUE(params.count("triton_final_response")) << i;
    EXPECT_TRUE(params.at("triton_final_response").bool_param()) << i;
    if (i == 3) {
      EXPECT_NE(a.error_message().find("unknown model 'missing'"), std::string::npos);
      continue;
    }
    EXPECT_EQ(a.error_message(), "");
    ASSERT_EQ(a.infer_response().raw_output_contents_size(), 1);
    EXPECT_EQ(a.infer_response().raw_output_contents(0), Direct(static_cast<size_t>(i), 1).data);
  }
}

TEST_F(GrpcServerTest, RepositoryStatisticsAndConfig) {
  GrpcClient admin(target_, "tok"), anonymous(target_);
  inference::RepositoryIndexResponse index;
  ASSERT_TRUE(anonymous.stub().RepositoryIndex(anonymous.Context().get(), {}, &index).ok());
  ASSERT_EQ(index.models_size(), 1);
  EXPECT_EQ(index.models(0).name(), "digits");
  EXPECT_EQ(index.models(0).state(), "READY");

  inference::RepositoryModelUnloadRequest unload;
  unload.set_model_name("digits");
  inference::RepositoryModelUnloadResponse unloaded;
  EXPECT_EQ(anonymous.stub().RepositoryModelUnload(anonymous.Context().get(), unload, &unloaded)
                .error_code(),
            grpc::PERMISSION_DENIED);
  EXPECT_EQ(grid_->Model("digits")->state, ModelState::kReady);
  ASSERT_TRUE(admin.stub().RepositoryModelUnload(admin.Context().get(), unload, &unloaded).ok());
  EXPECT_EQ(grid_->Model("digits")->state, ModelState::kUnloaded);
  inference::RepositoryIndexRequest ready_only;
  ready_only.set_ready(true);
  ASSERT_TRUE(anonymous.stub().RepositoryIndex(anonymous.Context().get(), ready_only, &index).ok());
  EXPECT_EQ(index.models_size(), 0);
  inference::RepositoryModelLoadRequest load;
  load.set_model_name("digits");
  inference::RepositoryModelLoadResponse loaded;
  ASSERT_TRUE(admin.stub().RepositoryModelLoad(admin.Context().get(), load, &loaded).ok());
  EXPECT_EQ(grid_->Model("digits")->state, ModelState::kReady);

  ASSERT_TRUE(anonymous.Infer("digits", "", Rows(0, 2)).ok());
  inference::ModelStatisticsRequest sr;
  sr.set_name("digits");
  inference::ModelStatisticsResponse stats;
  ASSERT_TRUE(anonymous.stub().ModelStatistics(anonymous.Context().get(), sr, &stats).ok());
  ASSERT_EQ(stats.model_stats_size(), 1);
  const auto& ms = stats.model_stats(0);
  EXPECT_EQ(ms.name(), "digits");
  EXPECT_GE(ms.inference_count(), 2u);
  EXPECT_GE(ms.inference_stats().success().count(), 1u);
  EXPECT_GT(ms.last_inference(), 1'600'000'000'000u);  // ms since the epoch, after 2020
  ASSERT_EQ(ms.memory_usage_size(), 1);
  EXPECT_EQ(ms.memory_usage(0).type(), "CPU");

  inference::ModelConfigRequest cr;
  cr.set_name("digits");
  inference::ModelConfigResponse config;
  grpc::Status s = anonymous.stub().ModelConfig(anonymous.Context().get(), cr, &config);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(config.config().name(), "digits");
  EXPECT_EQ(config.config().platform(), "pytorch_libtorch");
  ASSERT_EQ(config.config().input_size(), 1);
  EXPECT_EQ(config.config().input(0).data_type(), modelgrid::triton::TYPE_FP32);
  EXPECT_EQ(config.config().input(0).dims(0), 64);
  EXPECT_EQ(config.config().max_batch_size(), grid_->Model("digits")->max_batch_size);
}

TEST_F(GrpcServerTest, SharedMemoryRegisterNeedsTheTokenAndFeedsInputs) {
  GrpcClient admin(target_, "tok"), anonymous(target_);
  const std::string key = "/modelgrid_grpc_test_" + std::to_string(::getpid());
  auto shm = testing::PosixSharedMemory::Create(key, 8192);
  ASSERT_TRUE(shm.ok());
  const std::string rows = testing::DigitsRows(zoo_, 5, 2);
  std::memcpy((*shm)->data(), rows.data(), rows.size());

  inference::SystemSharedMemoryRegisterRequest reg;
  reg.set_name("in");
  reg.set_key(key);
  reg.set_byte_size(8192);
  inference::SystemSharedMemoryRegisterResponse registered;
  EXPECT_EQ(anonymous.stub().SystemSharedMemoryRegister(anonymous.Context().get(), reg, &registered)
                .error_code(),
            grpc::PERMISSION_DENIED);
  reg.set_key("/elsewhere");
  EXPECT_EQ(admin.stub().SystemSharedMemoryRegister(admin.Context().get(), reg, &registered)
                .error_code(),
            grpc::PERMISSION_DENIED);
  reg.set_key(key);
  ASSERT_TRUE(admin.stub().SystemSharedMemoryRegister(admin.Context().get(), reg, &registered).ok());
  inference::SystemSharedMemoryStatusResponse status;
  ASSERT_TRUE(
      anonymous.stub().SystemSharedMemoryStatus(anonymous.Context().get(), {}, &status).ok());
  ASSERT_EQ(status.regions().count("in"), 1u);
  EXPECT_EQ(status.regions().at("in").key(), key);
  EXPECT_EQ(status.regions().at("in").byte_size(), 8192u);

  InferRequest request = Rows(5, 2);
  request.inputs[0].data.clear();
  request.inputs[0].parameters = {{"shared_memory_region", "in"},
                                  {"shared_memory_byte_size", rows.size()}};
  request.outputs = {RequestedOutput{output_, false,
                                     {{"shared_memory_region", "in"},
                                      {"shared_memory_offset", 4096},
                                      {"shared_memory_byte_size", 4096}}}};
  auto got = anonymous.Infer("digits", "", request);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  const InferTensor want = Direct(5, 2);
  EXPECT_TRUE(got->outputs.at(0).data.empty());
  EXPECT_EQ(got->outputs[0].parameters.value("shared_memory_byte_size", int64_t{0}),
            static_cast<int64_t>(want.data.size()));
  EXPECT_EQ(std::string((*shm)->data() + 4096, want.data.size()), want.data);

  inference::SystemSharedMemoryUnregisterRequest unreg;
  inference::SystemSharedMemoryUnregisterResponse unregistered;
  ASSERT_TRUE(
      admin.stub().SystemSharedMemoryUnregister(admin.Context().get(), unreg, &unregistered).ok());
  EXPECT_TRUE(grid_->SharedMemoryRegions().empty());
}

}  // namespace
}  // namespace modelgrid
