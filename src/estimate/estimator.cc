// EstimateModel (include/modelgrid/estimate.h): weights from file headers
// (model_weights.h), activations from a graph walk or config.json
// (activation_bytes.h), KV cache (transformer_counts.h), allocator slack
// and workspaces (allocator_model.h).
#include <algorithm>
#include <cmath>

#include "estimate/activation_bytes.h"
#include "estimate/allocator_model.h"
#include "estimate/model_weights.h"
#include "estimate/transformer_counts.h"
#include "modelgrid/estimate.h"

namespace modelgrid {

namespace {

using estimate::HfConfig;

bool IsIntegerType(DataType t) {
  switch (t) {
    case DataType::kBool:
    case DataType::kUInt8:
    case DataType::kUInt16:
    case DataType::kUInt32:
    case DataType::kUInt64:
    case DataType::kInt8:
    case DataType::kInt16:
    case DataType::kInt32:
    case DataType::kInt64:
      return true;
    default:
      return false;
  }
}

// Why a model without declared inputs cannot be walked.
std::string NoInputsReason(const ModelEntry& model) {
  std::string where;
  if (!model.config_pbtxt && !model.config_yaml) {
    where = "it has no configuration (neither config.pbtxt nor config.yaml in " +
            model.dir.string() + ")";
  } else {
    where = "neither its config.pbtxt nor its config.yaml lists them";
  }
  return "model '" + model.name + "' declares no inputs: " + where +
         "; the graph walk needs their shapes";
}

// Input shapes for the graph walk: config.yaml dims with the batch prepended
// when the model batches; -1 becomes the sequence length for the integer
// (token id, mask, type id) inputs of HF models.
Status WalkInputs(const ModelEntry& model, bool is_hf, int64_t batch, int64_t seq,
                  std::vector<std::vector<int64_t>>* shapes, std::vector<DataType>* types) {
  if (model.config.inputs.empty()) return Status::InvalidArgument(NoInputsReason(model));
  for (const TensorSpec& in : model.config.inputs) {
    std::vector<int64_t> shape;
    if (model.config.max_batch_size > 0) shape.push_back(batch);
    for (int64_t d : in.dims) {
      if (d == -1 && is_hf && IsIntegerType(in.datatype)) {
        shape.push_back(seq);
      } else if (d < 0) {
        return Status::InvalidArgument(
            "model '" + model.name + "': input '" + in.name + "' has a variable dimension (" +
            std::to_string(d) +
            ") the graph walk cannot size; give it a fixed size in config.yaml");
      } else {
        shape.push_back(d);
      }
    }
    shapes->push_back(std::move(shape));
    types->push_back(in.datatype);
  }
  return Status::Ok();
}

// A causal LM served by the native backend: `infer` (logits for every
// position, no cache: `e->activations` as analysed) and `generate` (a KV
// cache of batch × seq tokens, the prefill's logits for the last position
// only, src/hf/generation.cc). Sets e->tasks and e->activations to the
// worst task's figure, or `task`'s. Errors: kInvalidArgument for a task the
// model does not have.
Status SplitByTask(const HfConfig& cfg, int64_t batch, int64_t seq, uint64_t dtype_bytes,
                   const std::string& task, MemoryEstimate* e) {
  const estimate::ActivationBreakdown prefill = estimate::AnalyzeActivations(
      cfg, static_cast<uint64_t>(batch), static_cast<uint64_t>(seq), dtype_bytes,
      /*logit_positions=*/1);
  e->tasks = {{"generate", prefill.peak + e->kv_cache}, {"infer", e->activations}};
  const MemoryEstimate::TaskActivations* chosen = nullptr;
  for (const auto& t : e->tasks) {
    if (task.empty() ? (chosen == nullptr || t.activations > chosen->activations)
                     : t.task == task) {
      chosen = &t;
    }
  }
  if (chosen == nullptr) {
    return Status::InvalidArgument("model '" + e->model + "': no task '" + task +
                                   "' to estimate (its tasks: generate, infer)");
  }
  e->activations = chosen->activations;
  e->task = task;
  e->notes.push_back("kv_cache " + std::to_string(e->kv_cache) +
                     " bytes included in the generate task's activations (a cache of batch × "
                     "sequence_length tokens); activations by task: generate " +
                     std::to_string(e->tasks[0].activations) + ", infer " +
                     std::to_string(e->tasks[1].activations) + " bytes; " +
                     (task.empty() ? "the worst counts" : "'" + task + "' asked for"));
  return Status::Ok();
}

}  // namespace

Result<MemoryEstimate> EstimateModel(const ModelEntry& model, const EstimateOptions& options,
                                     GraphWalker* walker) {
  const std::string who = "model '" + model.name + "'";
  if (!std::isfinite(options.margin_fraction) || options.margin_fraction < 0) {
    return Status::InvalidArgument(who + ": margin fraction " +
                                   std::to_string(options.margin_fraction) +
                                   " must be a finite number ≥ 0");
  }
  const int64_t batch = options.batch.value_or(std::max<int64_t>(1, model.config.max_batch_size));
  if (batch < 1) {
    return Status::InvalidArgument(who + ": batch " + std::to_string(batch) +
                                   " must be at least 1");
  }
  Result<estimate::ModelWeights> gathered = estimate::GatherWeights(model, options.device);
  if (!gathered.ok()) return gathered.status().WithPrefix(who);
  estimate::ModelWeights& w = gathered.value();
  const bool is_hf = model.format == ModelFormat::kHuggingFace || w.config.has_value();
  const int64_t seq = options.sequence_length.value_or(model.config.sequence_length);
  if (is_hf && seq < 1) {
    return Status::InvalidArgument(who + ": sequence length " + std::to_string(seq) +
                                   " must be at least 1");
  }

  MemoryEstimate e;
  e.model = model.name;
  e.batch = batch;
  e.sequence_length = is_hf ? seq : 0;
  e.device_type = options.device == DeviceKind::kCpu ? "cpu" : "cuda";
  e.parameters = w.parameters;
  e.weights = w.bytes;
  e.notes = w.notes;
  if (model.config.max_batch_size == 0 && batch > 1) {
    e.notes.push_back("the model does not batch (max_batch_size 0); batch " +
                      std::to_string(batch) + " only scales the analytic figures");
  }

  // Activations.
  const HfConfig* cfg = w.config ? &*w.config : nullptr;
  bool walked = false;  // activations (and, on the CPU, weights) come from the walk
  // Without declared inputs the walk cannot run: an error, or (when asked)
  // the weights alone with the reason, unless config.json gives activations.
  const bool skip_walk = model.config.inputs.empty() && options.weights_only_without_inputs;
  if (model.torchscript && walker != nullptr && !skip_walk) {
    std::vector<std::vector<int64_t>> shapes;
    std::vector<DataType> types;
    MG_RETURN_IF_ERROR(WalkInputs(model, is_hf, batch, seq, &shapes, &types));
    Result<GraphWalker::Profile> p =
        walker->Walk(*model.torchscript, shapes, types, options.device);
    if (!p.ok()) return p.status().WithPrefix(who);
    e.activations = p->peak_activation_bytes;
    e.workspace = p->peak_workspace_bytes;
    e.method = "graph walk";
    walked = true;
    if (!p->notes.empty()) e.notes.push_back("graph walk: " + p->notes);
    // On the CPU the walk's weights are what LibTorch holds after loading, in
    // c10's 64-byte blocks (the archive's tensor records plus what loading
    // keeps, e.g. debug records): that is what the instance really holds.
    if (options.device == DeviceKind::kCpu && p->weight_bytes != 0 && p->weight_bytes != e.weights) {
      e.notes.push_back("weights: the loaded module holds " + std::to_string(p->weight_bytes) +
                        " bytes; the archive's tensor records " + std::to_string(e.weights));
      e.weights = p->weight_bytes;
    }
  } else if (cfg != nullptr) {
    const estimate::ActivationBreakdown a = estimate::AnalyzeActivations(
        *cfg, static_cast<uint64_t>(batch), static_cast<uint64_t>(seq), w.compute_dtype_bytes);
    e.activations = a.peak;
    e.method = "analytic (config.json)";
    e.notes.push_back("activations peak at the " + a.peak_stage + " stage (" +
                      std::to_string(a.peak) + " bytes)");
  } else if (model.torchscript && walker != nullptr) {  // skip_walk
    e.method = "none";
    e.activations_unknown = NoInputsReason(model);
    e.notes.push_back("activations unknown: " + e.activations_unknown +
                      "; the request covers the weights only");
  } else {
    e.method = "none";
    e.notes.push_back("no graph walker: activations not estimated");
  }

  // KV cache: part of `activations` only where the model keeps a cache.
  if (cfg != nullptr && cfg->is_causal_lm()) {
    e.kv_cache = estimate::KvCacheBytesPerToken(*cfg, w.compute_dtype_bytes) *
                 static_cast<uint64_t>(batch) * static_cast<uint64_t>(seq);
    if (model.torchscript) {
      e.notes.push_back(
          "kv_cache " + std::to_string(e.kv_cache) +
          " bytes reported but not added to activations: model.pt runs a full forward that "
          "recomputes attention without a cache");
    } else if (!walked) {
      MG_RETURN_IF_ERROR(SplitByTask(*cfg, batch, seq, w.compute_dtype_bytes, options.task, &e));
    }
  }

  // Allocator slack and workspaces.
  if (options.device == DeviceKind::kCpu) {
    // The walk's figures are already whole 64-byte allocator blocks.
    if (!walked) {
      e.allocator_slack = estimate::CpuAlignmentSlack(w.allocations) +
                          (e.activations > 0 ? estimate::kCpuActivationSlackBound : 0);
    }
  } else {
    e.allocator_slack = estimate::CudaWeightSlack(w.allocations) +
                        estimate::CudaActivationSlackBound(e.activations + e.workspace);
    e.workspace += estimate::kCublasWorkspaceBytes;
    e.notes.push_back("workspace includes the 32 MiB cuBLAS workspace");
  }

  // Loading peaks at the weights plus the archive records LibTorch reads
  // alongside them; a model whose run needs less than that (a tiny model)
  // would be refused its own load by a limit set from the run alone.
  if (options.device == DeviceKind::kCpu && w.load_transient_bytes > 0 &&
      e.weights + w.load_transient_bytes > e.instance_peak()) {
    const uint64_t raise = e.weights + w.load_transient_bytes - e.instance_peak();
    e.workspace += raise;
    e.notes.push_back("workspace raised by " + std::to_string(raise) +
                      " bytes to the load peak: weights + " +
                      std::to_string(w.load_transient_bytes) +
                      " bytes of code and pickle records read while loading");
  }

  // Rounded to the nearest byte: ceil would turn 49,920 × 0.1 (0.1 is not
  // exact in binary) into 4,993.
  e.margin = static_cast<uint64_t>(
      std::llround(static_cast<long double>(e.instance_peak()) * options.margin_fraction));
  e.context = options.context_bytes.value_or(DefaultContextBytes(options.device));
  return e;
}

}  // namespace modelgrid
