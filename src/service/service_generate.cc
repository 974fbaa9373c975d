// InferenceService::GenerateAsync / Generate (modelgrid/service/
// inference_service.h): a generation driven in calls of a few tokens through
// one backend session, each call queued anew, so that requests to one model
// interleave at token boundaries and streams get their text as it comes.

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <future>
#include <mutex>
#include <random>

#include "modelgrid/backend/backend_kind.h"
#include "modelgrid/service/inference_service.h"
#include "service/infer_call.h"

namespace modelgrid {

namespace {

// A session id per generation that another client cannot guess (the
// backend's `session`, `continue` and `cancel` parameters are open to
// clients too): 128 bits from the system's random source, in hex.
std::string NewSessionId() {
  static std::mutex mu;
  static std::random_device source;
  std::lock_guard<std::mutex> lock(mu);
  char out[4 + 32 + 1];
  std::snprintf(out, sizeof(out), "gen-%08x%08x%08x%08x", source(), source(), source(), source());
  return out;
}

const InferTensor* Find(const std::vector<InferTensor>& outs, const std::string& name) {
  for (const InferTensor& t : outs) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

// One call's outputs as rows: text_output, generated_ids (-1 = padding),
// finish_reason, prompt_tokens. Errors: kInternal when the backend's
// outputs do not have that shape.
Result<std::vector<GeneratedRow>> ReadChunk(const std::vector<InferTensor>& outs,
                                            const std::string& model) {
  const InferTensor* ids = Find(outs, "generated_ids");
  const InferTensor* reasons = Find(outs, "finish_reason");
  if (!ids || ids->datatype != DataType::kInt64 || ids->shape.size() != 2 || !reasons) {
    return Status::Internal("model '" + model +
                            "': generate did not return generated_ids INT64 [B,N] and "
                            "finish_reason");
  }
  const auto rows = static_cast<size_t>(ids->shape[0]);
  const auto width = static_cast<size_t>(ids->shape[1]);
  std::vector<GeneratedRow> out(rows);
  const auto* p = reinterpret_cast<const int64_t*>(ids->data.data());
  for (size_t r = 0; r < rows; ++r) {
    for (size_t i = 0; i < width; ++i) {
      if (p[r * width + i] >= 0) out[r].ids.push_back(p[r * width + i]);
    }
  }
  MG_ASSIGN_OR_RETURN(auto why, SplitBytesElements(reasons->data));
  if (why.size() != rows) return Status::Internal("model '" + model + "': finish_reason rows");
  for (size_t r = 0; r < rows; ++r) out[r].finish_reason = std::string(why[r]);
  if (const InferTensor* text = Find(outs, "text_output")) {
    MG_ASSIGN_OR_RETURN(auto texts, SplitBytesElements(text->data));
    for (size_t r = 0; r < rows && r < texts.size(); ++r) out[r].text = std::string(texts[r]);
  }
  if (const InferTensor* prompt = Find(outs, "prompt_tokens");
      prompt && prompt->datatype == DataType::kInt64 && prompt->data.size() == rows * 8) {
    const auto* q = reinterpret_cast<const int64_t*>(prompt->data.data());
    for (size_t r = 0; r < rows; ++r) out[r].prompt_tokens = q[r];
  }
  return out;
}

// The state of one generation between its calls.
struct Driver : std::enable_shared_from_this<Driver> {
  Grid* grid = nullptr;
  std::string grid_model;
  std::string session;  // "" = one call (not the huggingface backend)
  int64_t chunk = 4;
  GenerateRequest request;
  GenerationPieces pieces;
  std::function<void(Result<GenerateResponse>)> done;
  GenerateResponse response;
  bool first = true;

  InferCall Call(bool cancel) const {
    InferCall call;
    call.task = "generate";
    call.inputs = request.inputs;
    call.params = request.params;
    call.priority = request.priority;
    call.id = request.id;
    if (!session.empty()) {
      call.params["session"] = session;
      call.params["chunk_tokens"] = chunk;
      if (!first) call.params["continue"] = true;
      if (cancel) call.params["cancel"] = true;
    }
    return call;
  }

  void Next() {
    auto self = shared_from_this();
    grid->InferAsync(grid_model, Call(false), [self](Result<std::vector<InferTensor>> outs) {
      self->OnChunk(std::move(outs));
    });
  }

  void OnChunk(Result<std::vector<InferTensor>> outs) {
    if (!outs.ok()) return done(outs.status());
    auto added = ReadChunk(*outs, grid_model);
    if (!added.ok()) return done(added.status());
    if (first) response.rows.resize(added->size());
    first = false;
    bool all_done = true;
    for (size_t r = 0; r < added->size() && r < response.rows.size(); ++r) {
      GeneratedRow& row = response.rows[r];
      const GeneratedRow& a = (*added)[r];
      row.text += a.text;
      row.ids.insert(row.ids.end(), a.ids.begin(), a.ids.end());
      if (!a.finish_reason.empty()) row.finish_reason = a.finish_reason;
      if (a.prompt_tokens > 0) row.prompt_tokens = a.prompt_tokens;
      all_done = all_done && !row.finish_reason.empty();
    }
    const bool wanted = !pieces || pieces(*added);
    if (all_done || session.empty()) return done(std::move(response));
    if (!wanted) {
      for (GeneratedRow& row : response.rows) {
        if (row.finish_reason.empty()) row.finish_reason = "cancelled";
      }
      // Ends the session in the worker now rather than at its idle timeout.
      grid->InferAsync(grid_model, Call(true), [](Result<std::vector<InferTensor>>) {});
      return done(std::move(response));
    }
    Next();
  }
};

}  // namespace

namespace service {

std::vector<InferTensor> GenerationTensors(const GenerateResponse& response) {
  const auto rows = static_cast<int64_t>(response.rows.size());
  size_t width = 0;
  for (const GeneratedRow& row : response.rows) width = std::max(width, row.ids.size());
  InferTensor text{"text_output", DataType::kBytes, {rows}, {}};
  InferTensor ids{"generated_ids", DataType::kInt64, {rows, static_cast<int64_t>(width)}, {}};
  InferTensor reasons{"finish_reason", DataType::kBytes, {rows}, {}};
  InferTensor prompt{"prompt_tokens", DataType::kInt64, {rows}, {}};
  for (const GeneratedRow& row : response.rows) {
    AppendBytesElement(&text.data, row.text);
    AppendBytesElement(&reasons.data, row.finish_reason);
    std::vector<int64_t> padded(width, -1);
    std::copy(row.ids.begin(), row.ids.end(), padded.begin());
    ids.data.append(reinterpret_cast<const char*>(padded.data()), width * sizeof(int64_t));
    prompt.data.append(reinterpret_cast<const char*>(&row.prompt_tokens), sizeof(int64_t));
  }
  return {std::move(text), std::move(ids), std::move(reasons), std::move(prompt)};
}

}  // namespace service

void InferenceService::GenerateAsync(GenerateRequest request, GenerationPieces pieces,
                                     std::function<void(Result<GenerateResponse>)> done) {
  auto status = FindModel(request.model, request.version);
  if (!status.ok()) return done(status.status());
  if (!status->tasks.empty() &&
      std::find(status->tasks.begin(), status->tasks.end(), "generate") == status->tasks.end()) {
    return done(Status::NotFound("model '" + request.model + "' does not generate text (tasks: " +
                                 [&] {
                                   std::string t;
                                   for (const auto& x : status->tasks) t += (t.empty() ? "" : ", ") + x;
                                   return t;
                                 }() +
                                 ")"));
  }
  auto driver = std::make_shared<Driver>();
  driver->grid = grid_;
  driver->grid_model = status->name;
  driver->chunk = std::max<int64_t>(1, options_.generate_chunk_tokens);
  // A session lives in one instance's worker: with several replicas a
  // later call could reach another one, so such a model generates in one
  // call (no interleaving) until calls can be pinned to an instance.
  auto entry = grid_->Entry(status->name);
  const bool one_instance = entry.ok() && entry->config.replicas <= 1;
  if (status->backend == kHuggingFaceBackendKind && one_instance) {
    driver->session = NewSessionId();
  }
  driver->response.model_name = request.model;
  driver->response.model_version = status->version;
  driver->request = std::move(request);
  driver->pieces = std::move(pieces);
  driver->done = std::move(done);
  driver->Next();
}

Result<GenerateResponse> InferenceService::Generate(GenerateRequest request,
                                                    GenerationPieces pieces) {
  auto promise = std::make_shared<std::promise<Result<GenerateResponse>>>();
  auto future = promise->get_future();
  GenerateAsync(std::move(request), std::move(pieces),
                [promise](Result<GenerateResponse> r) { promise->set_value(std::move(r)); });
  return future.get();
}

}  // namespace modelgrid
