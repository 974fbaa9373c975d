// GrpcServer (modelgrid/grpc/grpc_server.h): gRPC's synchronous server
// over the InferenceService. The only file that implements the generated
// service; the conversions are in grpc_convert.cc.
#include "modelgrid/grpc/grpc_server.h"

#include <google/protobuf/util/json_util.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/resource_quota.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "grpc/grpc_convert.h"
#include "grpc/grpc_generate_stream.h"
#include "grpc/grpc_settings.h"
#include "kserve_grpc.grpc.pb.h"
#include "modelgrid/service/inference_service.h"
#include "service/text_generation.h"

namespace modelgrid {

namespace {

using grpc::ServerContext;
using grpc_internal::ToGrpcStatus;

// Triton's stream parameters: on every answer, and the request option.
constexpr const char* kFinalResponse = "triton_final_response";
constexpr const char* kEnableEmptyFinal = "triton_enable_empty_final_response";

// The admin token of a call: its `authorization` metadata ("Bearer <token>").
std::string CallToken(const ServerContext* context) {
  const auto& md = context->client_metadata();
  auto it = md.find("authorization");
  if (it == md.end()) return "";
  return BearerToken(std::string_view(it->second.data(), it->second.size()));
}

// ToGrpcStatus, adding `retry-after` trailing metadata when the status says
// when to come back (a full queue, a restarting model).
grpc::Status Answer(grpc::ServerContextBase* context, const Status& status) {
  if (auto seconds = status.retry_after_seconds()) {
    context->AddTrailingMetadata("retry-after", std::to_string(*seconds));
  }
  return ToGrpcStatus(status);
}

// ModelInfer uses gRPC's callback API (the others the synchronous one): no
// server thread waits while the model runs; the grid's thread that finishes
// the request sends the answer.
class KServeService final : public inference::GRPCInferenceService::WithCallbackMethod_ModelInfer<
                                inference::GRPCInferenceService::Service> {
 public:
  explicit KServeService(InferenceService* service) : service_(service) {}

  grpc::Status ServerLive(ServerContext*, const inference::ServerLiveRequest*,
                          inference::ServerLiveResponse* out) override {
    out->set_live(service_->Live());
    return grpc::Status::OK;
  }

  grpc::Status ServerReady(ServerContext*, const inference::ServerReadyRequest*,
                           inference::ServerReadyResponse* out) override {
    out->set_ready(service_->ServerReady().ready);
    return grpc::Status::OK;
  }

  grpc::Status ModelReady(ServerContext* context, const inference::ModelReadyRequest* in,
                          inference::ModelReadyResponse* out) override {
    auto ready = service_->ModelReady(in->name(), in->version());
    if (!ready.ok()) return Answer(context, ready.status());
    out->set_ready(ready->ready);
    return grpc::Status::OK;
  }

  grpc::Status ServerMetadata(ServerContext*, const inference::ServerMetadataRequest*,
                              inference::ServerMetadataResponse* out) override {
    const modelgrid::ServerMetadata m = service_->Metadata();
    out->set_name(m.name);
    out->set_version(m.version);
    for (const std::string& e : m.extensions) out->add_extensions(e);
    return grpc::Status::OK;
  }

  grpc::Status ModelMetadata(ServerContext* context, const inference::ModelMetadataRequest* in,
                             inference::ModelMetadataResponse* out) override {
    auto m = service_->Metadata(in->name(), in->version());
    if (!m.ok()) return Answer(context, m.status());
    out->set_name(m->name);
    for (const std::string& v : m->versions) out->add_versions(v);
    out->set_platform(m->platform);
    auto add = [](const std::vector<TensorMetadata>& from, auto* to) {
      for (const TensorMetadata& t : from) {
        auto* e = to->Add();
        e->set_name(t.name);
        e->set_datatype(std::string(DataTypeName(t.datatype)));
        for (int64_t d : t.shape) e->add_shape(d);
      }
    };
    add(m->inputs, out->mutable_inputs());
    add(m->outputs, out->mutable_outputs());
    return grpc::Status::OK;
  }

  grpc::ServerUnaryReactor* ModelInfer(grpc::CallbackServerContext* context,
                                       const inference::ModelInferRequest* in,
                                       inference::ModelInferResponse* out) override {
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    // The request is ours to take apart (it lives until Finish): its raw
    // contents move into the tensors instead of being copied.
    auto* request = const_cast<inference::ModelInferRequest*>(in);
    auto decoded = grpc_internal::DecodeModelInferRequest(request);
    if (!decoded.ok()) {
      reactor->Finish(Answer(context, decoded.status()));
      return reactor;
    }
    service_->InferAsync(in->model_name(), in->model_version(), std::move(*decoded),
                         [context, reactor, out](Result<InferResponse> response) {
                           if (!response.ok()) {
                             return reactor->Finish(Answer(context, response.status()));
                           }
                           reactor->Finish(Answer(
                               context, grpc_internal::EncodeModelInferResponse(
                                            std::move(*response), out)));
                         });
    return reactor;
  }

  // Each request read from the stream runs at once (InferAsync); its answer
  // is written when it is ready, so answers may come in another order than
  // the requests (their ids tell them apart). A request following the text
  // generation convention (a `stream` input or parameter) is answered piece
  // by piece instead (grpc_generate_stream.h). Every answer carries
  // Triton's `triton_final_response` parameter (true on a request's last
  // one). Errors go on the stream as error_message; the stream stays open.
  grpc::Status ModelStreamInfer(
      ServerContext* context,
      grpc::ServerReaderWriter<inference::ModelStreamInferResponse, inference::ModelInferRequest>*
          stream) override {
    struct Shared {
      std::mutex mu;
      std::condition_variable cv;
      int in_flight = 0;
    };
    auto shared = std::make_shared<Shared>();
    auto write = [stream, shared](const inference::ModelStreamInferResponse& answer) {
      std::lock_guard<std::mutex> lock(shared->mu);
      return stream->Write(answer);
    };
    auto finish = [shared] {
      std::lock_guard<std::mutex> lock(shared->mu);
      --shared->in_flight;
      shared->cv.notify_all();
    };
    auto error = [](const std::string& id, const Status& s) {
      inference::ModelStreamInferResponse answer;
      answer.set_error_message(s.message());
      answer.mutable_infer_response()->set_id(id);
      (*answer.mutable_infer_response()->mutable_parameters())[kFinalResponse].set_bool_param(true);
      return answer;
    };
    inference::ModelInferRequest request;
    while (stream->Read(&request)) {
      auto decoded = grpc_internal::DecodeModelInferRequest(&request);
      if (!decoded.ok()) {
        write(error(request.id(), decoded.status()));
        continue;
      }
      {
        std::lock_guard<std::mutex> lock(shared->mu);
        ++shared->in_flight;
      }
      if (service::IsTextGenerationRequest(*decoded)) {
        grpc_internal::StreamTextGeneration(
            service_, request.model_name(), request.model_version(), std::move(*decoded),
            {write, [context] { return context->IsCancelled(); }, finish});
        continue;
      }
      // Triton's request parameters for streams; a one-answer request's
      // answer is always final, so the option changes nothing here.
      decoded->parameters.erase(kEnableEmptyFinal);
      const std::string id = request.id();
      service_->InferAsync(
          request.model_name(), request.model_version(), std::move(*decoded),
          [write, finish, error, id](Result<InferResponse> r) {
            inference::ModelStreamInferResponse answer;
            Status s = Status::Ok();
            if (r.ok()) {
              r->parameters[kFinalResponse] = true;
              s = grpc_internal::EncodeModelInferResponse(*r, answer.mutable_infer_response());
            }
            write(r.ok() && s.ok() ? answer : error(id, r.ok() ? s : r.status()));
            finish();
          });
    }
    // The client closed its side (or cancelled): answer what is still
    // running first; a cancelled generation stops at its next piece.
    std::unique_lock<std::mutex> lock(shared->mu);
    shared->cv.wait(lock, [&] { return shared->in_flight == 0; });
    return grpc::Status::OK;
  }

  grpc::Status ModelConfig(ServerContext* context, const inference::ModelConfigRequest* in,
                           inference::ModelConfigResponse* out) override {
    auto config = service_->Config(in->name(), in->version());
    if (!config.ok()) return Answer(context, config.status());
    google::protobuf::util::JsonParseOptions options;
    options.ignore_unknown_fields = true;  // ModelGrid's own "modelgrid" block
    auto parsed = google::protobuf::util::JsonStringToMessage(config->dump(),
                                                              out->mutable_config(), options);
    if (!parsed.ok()) {
      return ToGrpcStatus(Status::Internal("model '" + in->name() +
                                           "': configuration does not fit Triton's "
                                           "ModelConfig: " + parsed.ToString()));
    }
    return grpc::Status::OK;
  }

  grpc::Status ModelStatistics(ServerContext* context, const inference::ModelStatisticsRequest* in,
                               inference::ModelStatisticsResponse* out) override {
    auto stats = service_->Statistics(in->name(), in->version(), /*refresh=*/false);
    if (!stats.ok()) return Answer(context, stats.status());
    auto duration = [](const StatisticDuration& d, inference::StatisticDuration* to) {
      to->set_count(d.count);
      to->set_ns(d.ns);
    };
    for (const modelgrid::ModelStatistics& s : *stats) {
      auto* m = out->add_model_stats();
      m->set_name(s.name);
      m->set_version(s.version);
      m->set_last_inference(s.last_inference_ms);
      m->set_inference_count(s.inference_count);
      m->set_execution_count(s.execution_count);
      auto* is = m->mutable_inference_stats();
      duration(s.success, is->mutable_success());
      duration(s.fail, is->mutable_fail());
      duration(s.queue, is->mutable_queue());
      duration(s.compute_input, is->mutable_compute_input());
      duration(s.compute_infer, is->mutable_compute_infer());
      duration(s.compute_output, is->mutable_compute_output());
      for (const MemoryUsage& u : s.memory_usage) {
        auto* mu = m->add_memory_usage();
        mu->set_type(u.type);
        mu->set_id(u.id);
        mu->set_byte_size(u.byte_size);
      }
    }
    return grpc::Status::OK;
  }

  grpc::Status RepositoryIndex(ServerContext*, const inference::RepositoryIndexRequest* in,
                               inference::RepositoryIndexResponse* out) override {
    for (const RepositoryEntry& e : service_->RepositoryIndex(in->ready())) {
      auto* m = out->add_models();
      m->set_name(e.name);
      m->set_version(e.version);
      m->set_state(e.state);
      m->set_reason(e.reason);
    }
    return grpc::Status::OK;
  }

  grpc::Status RepositoryModelLoad(ServerContext* context,
                                   const inference::RepositoryModelLoadRequest* in,
                                   inference::RepositoryModelLoadResponse*) override {
    if (!in->parameters().empty()) {
      return Answer(context, Status::Unsupported(
                                 "load parameters are not supported (got '" +
                                 in->parameters().begin()->first +
                                 "'): ModelGrid loads the model as the repository holds it"));
    }
    return Answer(context, service_->LoadModel(in->model_name(), CallToken(context)));
  }

  grpc::Status RepositoryModelUnload(ServerContext* context,
                                     const inference::RepositoryModelUnloadRequest* in,
                                     inference::RepositoryModelUnloadResponse*) override {
    return Answer(context, service_->UnloadModel(in->model_name(), CallToken(context)));
  }

  grpc::Status SystemSharedMemoryStatus(ServerContext* context,
                                        const inference::SystemSharedMemoryStatusRequest* in,
                                        inference::SystemSharedMemoryStatusResponse* out) override {
    auto regions = service_->SharedMemoryStatus(in->name());
    if (!regions.ok()) return Answer(context, regions.status());
    for (const ipc::SharedMemoryRegion& r : *regions) {
      auto& status = (*out->mutable_regions())[r.name];
      status.set_name(r.name);
      status.set_key(r.key);
      status.set_offset(r.offset);
      status.set_byte_size(r.byte_size);
    }
    return grpc::Status::OK;
  }

  grpc::Status SystemSharedMemoryRegister(ServerContext* context,
                                          const inference::SystemSharedMemoryRegisterRequest* in,
                                          inference::SystemSharedMemoryRegisterResponse*) override {
    return Answer(context, service_->RegisterSharedMemory(in->name(), in->key(), in->offset(),
                                                          in->byte_size(), CallToken(context)));
  }

  grpc::Status SystemSharedMemoryUnregister(
      ServerContext* context, const inference::SystemSharedMemoryUnregisterRequest* in,
      inference::SystemSharedMemoryUnregisterResponse*) override {
    return Answer(context, service_->UnregisterSharedMemory(in->name(), CallToken(context)));
  }

  // Triton's trace extension: a request naming settings changes them (the
  // admin token applies), one naming none only reads them.
  grpc::Status TraceSetting(ServerContext* context, const inference::TraceSettingRequest* in,
                            inference::TraceSettingResponse* out) override {
    auto settings =
        in->settings().empty()
            ? service_->GetTraceSettings(in->model_name())
            : service_->UpdateTraceSettings(in->model_name(), grpc_internal::TraceSettingsJson(*in),
                                            CallToken(context));
    if (!settings.ok()) return Answer(context, settings.status());
    grpc_internal::EncodeTraceSettings(*settings, out);
    return grpc::Status::OK;
  }

  // Triton's logging extension, likewise.
  grpc::Status LogSettings(ServerContext* context, const inference::LogSettingsRequest* in,
                           inference::LogSettingsResponse* out) override {
    auto settings =
        in->settings().empty()
            ? service_->GetLogSettings()
            : service_->UpdateLogSettings(grpc_internal::LogSettingsJson(*in), CallToken(context));
    if (!settings.ok()) return Answer(context, settings.status());
    grpc_internal::EncodeLogSettings(*settings, out);
    return grpc::Status::OK;
  }

 private:
  InferenceService* service_;
};

}  // namespace

struct GrpcServer::Impl {
  InferenceService* service = nullptr;
  GrpcServerOptions options;
  std::unique_ptr<KServeService> kserve;
  std::unique_ptr<grpc::Server> server;
  std::mutex mu;
  bool started = false;
  int port = 0;
};

GrpcServer::GrpcServer(InferenceService* service, GrpcServerOptions options)
    : impl_(std::make_unique<Impl>()) {
  impl_->service = service;
  impl_->options = std::move(options);
}

GrpcServer::~GrpcServer() { Stop(); }

Result<int> GrpcServer::Start() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  const GrpcServerOptions& o = impl_->options;
  if (impl_->started) return Status::Internal("GrpcServer::Start called twice");
  if (o.port < 0 || o.port > 65535) {
    return Status::InvalidArgument("gRPC port " + std::to_string(o.port) +
                                   " is outside 0..65535");
  }
  impl_->started = true;
  grpc::EnableDefaultHealthCheckService(true);
  impl_->kserve = std::make_unique<KServeService>(impl_->service);
  const std::string address = (o.host.find(':') != std::string::npos ? "[" + o.host + "]" : o.host) +
                              ":" + std::to_string(o.port);
  int threads = o.threads;
  if (threads <= 0) threads = std::max(8, 2 * static_cast<int>(std::thread::hardware_concurrency()));
  const int max_message = static_cast<int>(
      std::min<uint64_t>(o.max_message_bytes, static_cast<uint64_t>(INT32_MAX)));
  grpc::ServerBuilder builder;
  int bound = 0;
  builder.AddListeningPort(address, grpc::InsecureServerCredentials(), &bound);
  builder.SetMaxReceiveMessageSize(max_message);
  builder.SetMaxSendMessageSize(max_message);
  grpc::ResourceQuota quota("modelgrid-grpc");
  quota.SetMaxThreads(threads + 2);  // the server's own pollers need threads too
  builder.SetResourceQuota(quota);
  builder.SetSyncServerOption(grpc::ServerBuilder::SyncServerOption::MAX_POLLERS, 2);
  builder.RegisterService(impl_->kserve.get());
  impl_->server = builder.BuildAndStart();
  if (!impl_->server || bound == 0) {
    impl_->server.reset();
    return Status::Unavailable("cannot listen for gRPC on " + address +
                               " (port taken or bad address)");
  }
  impl_->port = bound;
  return bound;
}

void GrpcServer::Stop() {
  std::unique_ptr<grpc::Server> server;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    server = std::move(impl_->server);
  }
  if (!server) return;
  server->Shutdown(std::chrono::system_clock::now() + impl_->options.shutdown_grace);
  server->Wait();
}

int GrpcServer::port() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->port;
}

}  // namespace modelgrid
