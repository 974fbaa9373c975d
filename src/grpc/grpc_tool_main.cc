// modelgrid-grpc: a command-line client of the KServe v2 gRPC protocol
// (ModelGrid's `--grpc-port`, or Triton's). Prints JSON.
//
//   modelgrid-grpc [--url 127.0.0.1:8001] [--token T] live | ready
//   modelgrid-grpc metadata [MODEL] | config MODEL | stats [MODEL] | index
//   modelgrid-grpc infer MODEL [--version V] --json FILE|-   (a KServe v2
//       JSON infer request, the HTTP body; its data goes as raw contents;
//       the answer is printed as the HTTP JSON response)
//   modelgrid-grpc stream MODEL [--version V] --json FILE|-   (the same
//       request on ModelStreamInfer; every response printed as it comes,
//       one JSON per line with its "parameters", e.g. a text generation's
//       pieces and triton_final_response)
//   modelgrid-grpc load MODEL | unload MODEL
//
// Exit status 0 on success, 1 on an error (printed on stderr with its gRPC
// status), 2 on bad arguments.
#include <CLI/CLI.hpp>
#include <google/protobuf/util/json_util.h>

#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>

#include "grpc/grpc_client.h"
#include "grpc/grpc_convert.h"

namespace {

using modelgrid::grpc_internal::GrpcClient;

int Fail(const std::string& what) {
  std::cerr << "modelgrid-grpc: " << what << "\n";
  return 1;
}

// Prints `message` as JSON (protobuf's JSON mapping, field names as in the
// .proto) or fails with the call's status.
int Print(const grpc::Status& status, const google::protobuf::Message& message) {
  if (!status.ok()) {
    return Fail(modelgrid::grpc_internal::FromGrpcStatus(status).ToString());
  }
  std::string json;
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = true;
  (void)google::protobuf::util::MessageToJsonString(message, &json, options);
  std::cout << json << "\n";
  return 0;
}

std::string ReadAll(const std::string& path) {
  if (path == "-") {
    return std::string(std::istreambuf_iterator<char>(std::cin), {});
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return "";
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// The HTTP JSON response for `response` (`requested` as the request asked),
// with the response's parameters added.
std::string ResponseJson(const modelgrid::InferResponse& response,
                         const std::vector<modelgrid::RequestedOutput>& requested) {
  // An empty response (Triton's empty final one) has none of the outputs.
  auto encoded = modelgrid::EncodeInferResponse(
      response.model_name, response.model_version, response.id, response.outputs,
      response.outputs.empty() ? std::vector<modelgrid::RequestedOutput>{} : requested);
  if (!encoded.ok()) return "";
  nlohmann::json body = nlohmann::json::parse(encoded->body, nullptr, false);
  if (!response.parameters.empty()) body["parameters"] = response.parameters;
  return body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// Sends `request` on ModelStreamInfer, prints every response, closes.
int Stream(GrpcClient& client, const std::string& model, const std::string& version,
           const modelgrid::InferRequest& request) {
  inference::ModelInferRequest message;
  if (auto s = modelgrid::grpc_internal::EncodeModelInferRequest(model, version, request, &message);
      !s.ok()) {
    return Fail(s.ToString());
  }
  auto context = client.Context();
  auto stream = client.stub().ModelStreamInfer(context.get());
  if (!stream->Write(message)) return Fail("the stream closed before the request was sent");
  stream->WritesDone();
  int status = 0;
  inference::ModelStreamInferResponse answer;
  while (stream->Read(&answer)) {
    if (!answer.error_message().empty()) {
      std::cerr << "modelgrid-grpc: " << answer.error_message() << "\n";
      status = 1;
      continue;
    }
    auto decoded =
        modelgrid::grpc_internal::DecodeModelInferResponse(answer.mutable_infer_response());
    if (!decoded.ok()) return Fail(decoded.status().ToString());
    std::cout << ResponseJson(*decoded, request.outputs) << std::endl;
  }
  const grpc::Status end = stream->Finish();
  if (!end.ok()) return Fail(modelgrid::grpc_internal::FromGrpcStatus(end).ToString());
  return status;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"modelgrid-grpc: a KServe v2 gRPC client (ModelGrid, Triton)"};
  app.require_subcommand(1);
  std::string url = "127.0.0.1:8001", token, model, version, json_path;
  int timeout_s = 60;
  app.add_option("--url", url, "server address HOST:PORT (default 127.0.0.1:8001)");
  app.add_option("--token", token, "admin token (sent as authorization: Bearer)");
  app.add_option("--timeout", timeout_s, "seconds per call (default 60)");
  auto* live = app.add_subcommand("live", "ServerLive");
  auto* ready = app.add_subcommand("ready", "ServerReady, or ModelReady with a model");
  ready->add_option("model", model);
  auto* metadata = app.add_subcommand("metadata", "ServerMetadata, or ModelMetadata with a model");
  metadata->add_option("model", model);
  auto* config = app.add_subcommand("config", "ModelConfig");
  config->add_option("model", model)->required();
  auto* stats = app.add_subcommand("stats", "ModelStatistics (every model without one)");
  stats->add_option("model", model);
  auto* index = app.add_subcommand("index", "RepositoryIndex");
  auto* infer = app.add_subcommand("infer", "ModelInfer from a KServe v2 JSON request");
  infer->add_option("model", model)->required();
  infer->add_option("--json", json_path, "the request's JSON (a file, or - for stdin)")->required();
  auto* stream = app.add_subcommand(
      "stream", "ModelStreamInfer from a KServe v2 JSON request, each response as it comes");
  stream->add_option("model", model)->required();
  stream->add_option("--json", json_path, "the request's JSON (a file, or - for stdin)")
      ->required();
  auto* load = app.add_subcommand("load", "RepositoryModelLoad");
  load->add_option("model", model)->required();
  auto* unload = app.add_subcommand("unload", "RepositoryModelUnload");
  unload->add_option("model", model)->required();
  for (auto* sub : {ready, metadata, config, stats, infer, stream}) {
    sub->add_option("--version", version, "model version (default: the one served)");
  }
  CLI11_PARSE(app, argc, argv);

  GrpcClient client(url, token, std::chrono::seconds(timeout_s));
  auto& stub = client.stub();
  auto context = client.Context();
  if (live->parsed()) {
    inference::ServerLiveResponse out;
    return Print(stub.ServerLive(context.get(), {}, &out), out);
  }
  if (ready->parsed()) {
    if (model.empty()) {
      inference::ServerReadyResponse out;
      return Print(stub.ServerReady(context.get(), {}, &out), out);
    }
    inference::ModelReadyRequest in;
    in.set_name(model);
    in.set_version(version);
    inference::ModelReadyResponse out;
    return Print(stub.ModelReady(context.get(), in, &out), out);
  }
  if (metadata->parsed()) {
    if (model.empty()) {
      inference::ServerMetadataResponse out;
      return Print(stub.ServerMetadata(context.get(), {}, &out), out);
    }
    inference::ModelMetadataRequest in;
    in.set_name(model);
    in.set_version(version);
    inference::ModelMetadataResponse out;
    return Print(stub.ModelMetadata(context.get(), in, &out), out);
  }
  if (config->parsed()) {
    inference::ModelConfigRequest in;
    in.set_name(model);
    in.set_version(version);
    inference::ModelConfigResponse out;
    return Print(stub.ModelConfig(context.get(), in, &out), out);
  }
  if (stats->parsed()) {
    inference::ModelStatisticsRequest in;
    in.set_name(model);
    in.set_version(version);
    inference::ModelStatisticsResponse out;
    return Print(stub.ModelStatistics(context.get(), in, &out), out);
  }
  if (index->parsed()) {
    inference::RepositoryIndexResponse out;
    return Print(stub.RepositoryIndex(context.get(), {}, &out), out);
  }
  if (load->parsed() || unload->parsed()) {
    if (load->parsed()) {
      inference::RepositoryModelLoadRequest in;
      in.set_model_name(model);
      inference::RepositoryModelLoadResponse out;
      return Print(stub.RepositoryModelLoad(context.get(), in, &out), out);
    }
    inference::RepositoryModelUnloadRequest in;
    in.set_model_name(model);
    inference::RepositoryModelUnloadResponse out;
    return Print(stub.RepositoryModelUnload(context.get(), in, &out), out);
  }
  // infer, stream
  const std::string body = ReadAll(json_path);
  if (body.empty()) return Fail("cannot read the request JSON from '" + json_path + "'");
  auto request = modelgrid::DecodeInferRequest(body, std::nullopt);
  if (!request.ok()) return Fail(request.status().ToString());
  if (stream->parsed()) return Stream(client, model, version, *request);
  const auto requested = request->outputs;
  auto response = client.Infer(model, version, *request);
  if (!response.ok()) return Fail(response.status().ToString());
  auto encoded = modelgrid::EncodeInferResponse(response->model_name, response->model_version,
                                                response->id, response->outputs, requested);
  if (!encoded.ok()) return Fail(encoded.status().ToString());
  std::cout << encoded->body << "\n";
  return 0;
}
