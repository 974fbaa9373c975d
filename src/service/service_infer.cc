// The inference path of InferenceService (inference_service.h): Triton's
// request, input and output parameters read once here, the grid called,
// the response assembled in the order the client asked for.
#include <algorithm>
#include <chrono>
#include <future>
#include <memory>
#include <optional>

#include "modelgrid/backend/backend_kind.h"
#include "modelgrid/service/inference_service.h"
#include "service/infer_call.h"
#include "service/output_plan.h"
#include "service/tracer.h"

namespace modelgrid {

namespace {

using nlohmann::json;

constexpr const char* kRegion = "shared_memory_region";
constexpr const char* kByteSize = "shared_memory_byte_size";
constexpr const char* kOffset = "shared_memory_offset";

// `value` as a non-negative integer: JSON decodes 5 as unsigned, gRPC's
// int64_param as signed; both are accepted. nullopt otherwise.
std::optional<uint64_t> NonNegative(const json& value) {
  if (value.is_number_unsigned()) return value.get<uint64_t>();
  if (value.is_number_integer() && value.get<int64_t>() >= 0) {
    return static_cast<uint64_t>(value.get<int64_t>());
  }
  return std::nullopt;
}

// Reads Triton's shared-memory parameters of `params` (an input's or a
// requested output's): nullopt when it names no region. Errors:
// kInvalidArgument "<who>: ..." for a region that is not a string, a
// missing or negative byte size or offset.
Result<std::optional<service::SharedMemoryRef>> ReadSharedMemoryRef(const json& params,
                                                                     const std::string& who) {
  const auto region = params.find(kRegion);
  if (region == params.end()) return std::optional<service::SharedMemoryRef>();
  if (!region->is_string()) {
    return Status::InvalidArgument(who + ": " + kRegion + " must be a string");
  }
  const auto size = params.find(kByteSize);
  if (size == params.end() || !NonNegative(*size)) {
    return Status::InvalidArgument(who + ": " + kByteSize +
                                   " must be a non-negative integer next to " + kRegion);
  }
  const auto offset = params.find(kOffset);
  if (offset != params.end() && !NonNegative(*offset)) {
    return Status::InvalidArgument(who + ": " + kOffset + " must be a non-negative integer");
  }
  service::SharedMemoryRef ref;
  ref.region = region->get<std::string>();
  ref.byte_size = *NonNegative(*size);
  ref.offset = offset == params.end() ? 0 : *NonNegative(*offset);
  return std::optional<service::SharedMemoryRef>(ref);
}

void EraseSharedMemoryParams(json* params) {
  params->erase(kRegion);
  params->erase(kByteSize);
  params->erase(kOffset);
}

}  // namespace

namespace service {

Status ResolveSharedInputs(const Grid& grid, const std::string& model,
                           std::vector<InferTensor>* inputs) {
  for (InferTensor& in : *inputs) {
    const std::string who = "model '" + model + "': input '" + in.name + "'";
    MG_ASSIGN_OR_RETURN(auto ref, ReadSharedMemoryRef(in.parameters, who));
    if (!ref) continue;
    if (!in.data.empty()) {
      return Status::InvalidArgument(who + ": has both data and " + kRegion);
    }
    auto slice = grid.SharedMemorySlice(ref->region, ref->offset, ref->byte_size);
    if (!slice.ok()) return slice.status().WithPrefix(who);
    in.shared = std::move(slice).value();
    EraseSharedMemoryParams(&in.parameters);
  }
  return Status::Ok();
}

Result<std::vector<OutputPlan>> PlanOutputs(const std::string& model,
                                            std::vector<RequestedOutput>* requested) {
  std::vector<OutputPlan> plans;
  for (RequestedOutput& out : *requested) {
    const std::string who = "model '" + model + "': output '" + out.name + "'";
    OutputPlan plan;
    plan.name = out.name;
    MG_ASSIGN_OR_RETURN(plan.shared, ReadSharedMemoryRef(out.parameters, who));
    if (plan.shared) {
      if (out.binary_data) {
        return Status::InvalidArgument(who + ": asks for both binary_data and " + kRegion);
      }
      EraseSharedMemoryParams(&out.parameters);
    }
    MG_ASSIGN_OR_RETURN(plan.classification, ReadClassification(out, who));
    plans.push_back(std::move(plan));
  }
  return plans;
}

Status FinishOutputs(const Grid& grid, const std::string& model,
                     const std::vector<OutputPlan>& plans, std::vector<InferTensor>* outputs) {
  if (plans.empty()) return Status::Ok();
  std::vector<InferTensor> chosen;
  chosen.reserve(plans.size());
  for (const OutputPlan& plan : plans) {
    auto it = std::find_if(outputs->begin(), outputs->end(),
                           [&](const InferTensor& t) { return t.name == plan.name; });
    if (it == outputs->end()) {
      return Status::InvalidArgument("requested output '" + plan.name +
                                     "' is not an output of model '" + model + "'");
    }
    // Moved out unless a later plan names the same output again (gRPC does
    // not refuse a repeated name): the outputs are ours, and a copy of a
    // large tensor on every request is what the request path must avoid.
    const bool again = std::any_of(&plan + 1, plans.data() + plans.size(),
                                   [&](const OutputPlan& later) { return later.name == plan.name; });
    InferTensor tensor = again ? *it : std::move(*it);
    if (plan.classification > 0) {
      MG_ASSIGN_OR_RETURN(tensor, Classify(grid, model, tensor, plan.classification));
    }
    if (plan.shared) {
      const std::string who = "model '" + model + "': output '" + plan.name + "'";
      if (tensor.data.size() > plan.shared->byte_size) {
        return Status::InvalidArgument(who + ": " + std::to_string(tensor.data.size()) +
                                       " bytes do not fit the " +
                                       std::to_string(plan.shared->byte_size) + " of " + kByteSize);
      }
      if (Status s = grid.WriteSharedMemory(plan.shared->region, plan.shared->offset, tensor.data);
          !s.ok()) {
        return s.WithPrefix(who);
      }
      tensor.parameters[kRegion] = plan.shared->region;
      tensor.parameters[kByteSize] = static_cast<uint64_t>(tensor.data.size());
      if (plan.shared->offset != 0) tensor.parameters[kOffset] = plan.shared->offset;
      tensor.data.clear();
    }
    chosen.push_back(std::move(tensor));
  }
  *outputs = std::move(chosen);
  return Status::Ok();
}

}  // namespace service

void InferenceService::InferAsync(const std::string& model, const std::string& version,
                                  InferRequest request,
                                  std::function<void(Result<InferResponse>)> done) {
  const auto request_start = std::chrono::steady_clock::now();
  auto status = FindModel(model, version);
  if (!status.ok()) return done(status.status());
  if (Status s = service::ResolveSharedInputs(*grid_, model, &request.inputs); !s.ok()) {
    return done(s);
  }
  auto plans = service::PlanOutputs(model, &request.outputs);
  if (!plans.ok()) return done(plans.status());
  InferResponse head;
  head.model_name = model;
  head.model_version = status->version;
  head.id = request.id;
  auto call = service::MakeInferCall(std::move(request));
  if (!call.ok()) return done(call.status());
  // The worker copies back only the outputs asked for. A loaded model knows
  // the outputs of its infer task: an unknown name is refused here, before
  // any work (other tasks' workers refuse it, naming the task).
  for (const service::OutputPlan& plan : *plans) {
    const bool known = call->task != "infer" || status->outputs.empty() ||
                       std::any_of(status->outputs.begin(), status->outputs.end(),
                                   [&](const TensorSpec& o) { return o.name == plan.name; });
    if (!known) {
      return done(Status::InvalidArgument("requested output '" + plan.name +
                                          "' is not an output of model '" + model + "'"));
    }
    call->output_names.push_back(plan.name);
  }
  // The grid's model for that version (the model itself, or model@version);
  // Classify reads that one's labels.
  const std::string grid_model = status->name;
  // Text generation on the huggingface backend goes in calls of a few
  // tokens (GenerateAsync), so that it never holds the model for long.
  if (call->task == "generate" && status->backend == kHuggingFaceBackendKind &&
      !call->params.contains("session")) {
    GenerateRequest g;
    g.model = model;
    g.version = version;
    g.inputs = std::move(call->inputs);
    g.params = std::move(call->params);
    g.priority = call->priority;
    g.id = call->id;
    return GenerateAsync(
        std::move(g), {},
        [grid = grid_, model = grid_model, head = std::move(head), plans = std::move(*plans),
         done = std::move(done)](Result<GenerateResponse> r) mutable {
          if (!r.ok()) return done(r.status());
          std::vector<InferTensor> outputs = service::GenerationTensors(*r);
          if (Status s = service::FinishOutputs(*grid, model, plans, &outputs); !s.ok()) {
            return done(s);
          }
          head.outputs = std::move(outputs);
          done(std::move(head));
        });
  }
  // Triton's trace extension: a sampled request's record is written when
  // it ends, before the client hears (so the file holds it by then).
  if (auto trace = tracer_->Sample(model, status->version, call->id, request_start)) {
    call->times = trace->times;
    done = [tracer = tracer_.get(), trace = std::move(*trace),
            done = std::move(done)](Result<InferResponse> r) {
      tracer->Finish(trace, std::chrono::steady_clock::now());
      done(std::move(r));
    };
  }
  grid_->InferAsync(
      grid_model, std::move(*call),
      [grid = grid_, model = grid_model, head = std::move(head), plans = std::move(*plans),
       done = std::move(done)](Result<std::vector<InferTensor>> outputs) mutable {
        if (!outputs.ok()) return done(outputs.status());
        if (Status s = service::FinishOutputs(*grid, model, plans, &*outputs); !s.ok()) {
          return done(s);
        }
        head.outputs = std::move(*outputs);
        done(std::move(head));
      });
}

Result<InferResponse> InferenceService::Infer(const std::string& model, const std::string& version,
                                              InferRequest request) {
  auto promise = std::make_shared<std::promise<Result<InferResponse>>>();
  auto future = promise->get_future();
  InferAsync(model, version, std::move(request),
             [promise](Result<InferResponse> r) { promise->set_value(std::move(r)); });
  return future.get();
}

}  // namespace modelgrid
