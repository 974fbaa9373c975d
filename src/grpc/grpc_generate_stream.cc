// StreamTextGeneration (grpc_generate_stream.h): one generation's pieces
// as ModelStreamInferResponses.
#include "grpc/grpc_generate_stream.h"

#include <algorithm>
#include <memory>

#include "grpc/grpc_convert.h"
#include "service/infer_call.h"
#include "service/text_generation.h"

namespace modelgrid::grpc_internal {

namespace {

constexpr const char* kFinal = "triton_final_response";

// The names of the requested outputs (every generation output when none).
// Errors: kInvalidArgument for another name or an output with parameters.
Result<std::vector<std::string>> ChooseOutputs(const std::vector<RequestedOutput>& requested) {
  static const std::vector<std::string> kAll = {"text_output", "generated_ids", "finish_reason",
                                                "prompt_tokens"};
  if (requested.empty()) return kAll;
  std::vector<std::string> names;
  for (const RequestedOutput& out : requested) {
    if (std::find(kAll.begin(), kAll.end(), out.name) == kAll.end()) {
      return Status::InvalidArgument("requested output '" + out.name +
                                     "' is not an output of text generation (text_output, "
                                     "generated_ids, finish_reason, prompt_tokens)");
    }
    if (!out.parameters.empty()) {
      return Status::InvalidArgument("requested output '" + out.name +
                                     "': output parameters are not supported for text generation");
    }
    names.push_back(out.name);
  }
  return names;
}

// One request's generation between its pieces. The pieces and the end of
// one generation come one after the other (GenerateAsync), never at once.
struct Generation {
  StreamSink sink;
  std::string id, model, version;
  std::vector<std::string> outputs;
  bool stream = false;
  bool empty_final = false;
  std::vector<bool> finished;  // per row: its finish_reason came
  bool final_sent = false;
  bool failed = false;

  inference::ModelStreamInferResponse Head(bool final) const {
    inference::ModelStreamInferResponse r;
    auto* m = r.mutable_infer_response();
    m->set_model_name(model);
    m->set_model_version(version);
    m->set_id(id);
    (*m->mutable_parameters())[kFinal].set_bool_param(final);
    return r;
  }

  inference::ModelStreamInferResponse Error(const Status& s) const {
    inference::ModelStreamInferResponse r = Head(true);
    r.set_error_message(s.message());
    return r;
  }

  // Writes a response with `rows`' outputs. An encoding error is written
  // as an error and ends the request's answers.
  bool WriteRows(std::vector<GeneratedRow> rows, bool final) {
    GenerateResponse generated;
    generated.rows = std::move(rows);
    std::vector<InferTensor> all = service::GenerationTensors(generated);
    InferResponse response;
    response.model_name = model;
    response.model_version = version;
    response.id = id;
    response.parameters[kFinal] = final;
    for (const std::string& name : outputs) {
      auto it = std::find_if(all.begin(), all.end(),
                             [&](const InferTensor& t) { return t.name == name; });
      response.outputs.push_back(*it);
    }
    inference::ModelStreamInferResponse r;
    if (Status s = EncodeModelInferResponse(response, r.mutable_infer_response()); !s.ok()) {
      failed = true;
      sink.write(Error(s));
      return false;
    }
    return sink.write(r);
  }

  bool OnPiece(const std::vector<GeneratedRow>& added) {
    if (failed || sink.cancelled()) return false;
    if (finished.size() < added.size()) finished.resize(added.size(), false);
    bool news = false;
    for (size_t r = 0; r < added.size(); ++r) {
      const GeneratedRow& row = added[r];
      if (!row.finish_reason.empty()) finished[r] = true;
      news = news || !row.text.empty() || !row.ids.empty() || !row.finish_reason.empty();
    }
    if (!news) return true;
    const bool last =
        !empty_final && std::all_of(finished.begin(), finished.end(), [](bool f) { return f; });
    final_sent = last;
    return WriteRows(added, last);
  }

  void OnDone(Result<GenerateResponse> result) {
    if (!failed) {
      if (!result.ok()) {
        sink.write(Error(result.status()));
      } else if (!stream) {
        if (WriteRows(std::move(result->rows), !empty_final) && empty_final) sink.write(Head(true));
      } else if (!final_sent) {
        // Triton's empty final response; also the end of a generation
        // whose last piece was not known to be the last (cancelled).
        sink.write(Head(true));
      }
    }
    sink.finish();
  }
};

}  // namespace

void StreamTextGeneration(InferenceService* service, const std::string& model,
                          const std::string& version, InferRequest request, StreamSink sink) {
  auto g = std::make_shared<Generation>();
  g->sink = std::move(sink);
  g->id = request.id;
  g->model = model;
  g->version = version;
  auto fail = [&](const Status& s) {
    g->sink.write(g->Error(s));
    g->sink.finish();
  };
  auto outputs = ChooseOutputs(request.outputs);
  if (!outputs.ok()) return fail(outputs.status());
  g->outputs = std::move(*outputs);
  auto found = service::FindGeneratingModel(*service, model, version);
  if (!found.ok()) return fail(found.status());
  g->version = found->version;
  auto text = service::TextGenerationFromInfer(model, version, std::move(request));
  if (!text.ok()) return fail(text.status());
  g->stream = text->stream;
  g->empty_final = text->empty_final_response;
  GenerationPieces pieces;
  if (g->stream) {
    pieces = [g](const std::vector<GeneratedRow>& added) { return g->OnPiece(added); };
  }
  service->GenerateAsync(std::move(text->request), std::move(pieces),
                         [g](Result<GenerateResponse> r) { g->OnDone(std::move(r)); });
}

}  // namespace modelgrid::grpc_internal
