// TorchScriptBackend: loading, task table, input checks, running, output
// conversion and the mapping of LibTorch exceptions to Status.
#include "modelgrid/backend/backend.h"

#include <ATen/Parallel.h>
#include <torch/cuda.h>
#include <torch/script.h>
#include <unistd.h>
#if defined(__GLIBC__)
#endif

#include <algorithm>
#include <bit>
#include <chrono>
#include <cstring>
#include <fstream>
#include <mutex>
#include <regex>
#include <shared_mutex>

#include "backend/allocator_memory.h"
#include "backend/loaded_model.h"
#include "modelgrid/torch/counting_allocator.h"
#include "modelgrid/torch/cuda_memory.h"
#include "torch/dtype_map.h"
#include "torch/weight_swap.h"

namespace modelgrid {

static_assert(std::endian::native == std::endian::little,
              "InferTensor bytes are little-endian; a big-endian host would need byte swaps");

using backend_internal::InputSpec;
using backend_internal::LoadedModel;
using backend_internal::TaskInfo;

struct TorchScriptBackend::Impl {
  LoadedModel m;
  // Run holds it shared; SwapOut and SwapIn exclusively.
  mutable std::shared_mutex mu;
  bool swapped = false;                             // guarded by mu
  std::vector<weight_swap::WeightStorage> weights;  // guarded by mu: while swapped
  std::filesystem::path swap_file;                  // guarded by mu: CPU, while swapped
  std::optional<weight_swap::PinnedCopy> pinned;    // guarded by mu: CUDA, while swapped

  ~Impl() {
    std::error_code ec;
    if (!swap_file.empty()) std::filesystem::remove(swap_file, ec);
  }
};

namespace {

std::string ModelPrefix(const std::string& model) { return "model '" + model + "': "; }

std::string JoinNames(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

Result<c10::Device> ParseDevice(const std::string& model, const std::string& device) {
  if (device == "cpu") return c10::Device(c10::kCPU);
  static const std::regex kCuda("cuda(:([0-9]{1,3}))?");
  std::smatch match;
  if (!std::regex_match(device, match, kCuda)) {
    return Status::InvalidArgument(ModelPrefix(model) + "device '" + device +
                                   "' is not 'cpu' or 'cuda:N'");
  }
  int index = match[2].matched ? std::stoi(match[2].str()) : 0;
  if (!torch::cuda::is_available()) {
    return Status::NotFound(ModelPrefix(model) + "device '" + device +
                            "' not found: LibTorch has no CUDA or sees no GPU");
  }
  if (index >= static_cast<int>(torch::cuda::device_count())) {
    return Status::NotFound(ModelPrefix(model) + "device '" + device + "' not found: " +
                            std::to_string(torch::cuda::device_count()) + " GPU(s) visible");
  }
  return c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(index));
}

// The specs of a task calling `method`: config.yaml's inputs when they fit
// the method, else the names of the method's arguments.
TaskInfo MakeTask(const LoadedModel& m, const std::string& method) {
  TaskInfo task;
  task.method = method;
  const auto& args = m.module.get_method(method).function().getSchema().arguments();
  size_t arg_count = args.empty() ? 0 : args.size() - 1;  // without self
  const auto& declared = m.model.config.inputs;
  if (!declared.empty() && (method == "forward" || arg_count == declared.size())) {
    for (const auto& spec : declared) task.inputs.push_back(InputSpec{spec, true, false});
    return task;
  }
  task.by_name = true;
  for (size_t i = 1; i < args.size(); ++i) {
    InputSpec spec;
    spec.spec.name = args[i].name();
    spec.typed = false;
    spec.optional = args[i].default_value().has_value();
    task.inputs.push_back(std::move(spec));
  }
  return task;
}

// Reads the position limit and the causal-LM flag from config.json.
Status ReadHfConfig(LoadedModel* m) {
  std::ifstream in(*m->model.hf_config);
  if (!in)
    return Status::NotFound(ModelPrefix(m->model.name) + "cannot read " +
                            m->model.hf_config->string());
  nlohmann::json cfg = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (!cfg.is_object()) {
    return Status::InvalidArgument(ModelPrefix(m->model.name) + m->model.hf_config->string() +
                                   " is not a JSON object");
  }
  for (const char* key : {"n_positions", "max_position_embeddings", "n_ctx"}) {
    if (cfg.contains(key) && cfg[key].is_number_integer() && cfg[key].get<int64_t>() > 0) {
      m->max_positions = cfg[key].get<int64_t>();
      m->max_positions_key = key;
      break;
    }
  }
  if (cfg.contains("architectures") && cfg["architectures"].is_array()) {
    for (const auto& arch : cfg["architectures"]) {
      if (!arch.is_string()) continue;
      const auto name = arch.get<std::string>();
      if (name.find("CausalLM") != std::string::npos || name.find("LMHead") != std::string::npos) {
        m->causal_lm = true;
      }
    }
  }
  return Status::Ok();
}

Status BuildTasks(LoadedModel* m) {
  if (m->module.find_method("forward")) m->tasks["infer"] = MakeTask(*m, "forward");
  if (m->module.find_method("encode")) m->tasks["encode"] = MakeTask(*m, "encode");
  for (const auto& [task, method] : m->model.config.tasks) {
    if (!m->module.find_method(method)) {
      return Status::NotFound(ModelPrefix(m->model.name) + "config.yaml task '" + task +
                              "' names method '" + method + "', which the module does not have");
    }
    m->tasks[task] = MakeTask(*m, method);
  }
  if (m->model.hf_config) {
    MG_RETURN_IF_ERROR(ReadHfConfig(m));
  } else if (auto it = m->tasks.find("infer"); it != m->tasks.end()) {
    const auto& in = it->second.inputs;
    m->causal_lm = in.size() == 1 && (!in[0].typed || in[0].spec.datatype == DataType::kInt64);
  }
  if (!m->tasks.contains("infer")) m->causal_lm = false;
  return Status::Ok();
}

// The c10 error text without the C++ backtrace, at most a few lines.
// The exception's whole message (LibTorch's text without its C++ backtrace).
std::string FullErrorText(const std::exception& e) {
  if (const auto* c10e = dynamic_cast<const c10::Error*>(&e)) return c10e->what_without_backtrace();
  return e.what();
}

// FullErrorText cut to a size fit for an error message.
std::string ErrorText(const std::exception& e) {
  std::string text = FullErrorText(e);
  constexpr size_t kMaxChars = 2000;
  if (text.size() > kMaxChars) text = text.substr(0, kMaxChars) + "...";
  return text;
}

// What the counting allocator had refused before a call, to tell afterwards,
// from its own record and without reading any error text, whether it
// refused an allocation during the call.
struct RefusalMark {
  uint64_t thread = CountingAllocator::ThreadRefusals();
  CountingAllocator* charged = CountingAllocator::Charged();
  uint64_t charged_count = charged != nullptr ? charged->stats().refusals : 0;

  // The refusal made since the mark: the calling thread's own (exact), else
  // one of an allocation charged to the same counters on another thread
  // (LibTorch's intra-op pool rethrows its workers' exceptions in the
  // caller); nullopt when the allocator refused nothing.
  std::optional<CountingAllocator::Refusal> Since() const {
    if (CountingAllocator::ThreadRefusals() != thread)
      return CountingAllocator::LastThreadRefusal();
    if (charged != nullptr && charged->stats().refusals != charged_count) {
      return charged->last_refusal();
    }
    return std::nullopt;
  }
};

// A refusal of the counting allocator as the error the caller gets:
// kResourceExhausted with its figures in the message and in a
// MemoryLimitDetail.
Status LimitStatus(const LoadedModel& m, const CountingAllocator::Refusal& r,
                   const std::string& during) {
  const CountingAllocator* own = CountingAllocator::ThreadCharge();
  const bool process_total = own != nullptr && r.by != own;
  MemoryLimitDetail detail;
  detail.model = m.model.name;
  detail.device = m.device.str();
  detail.limit_bytes = r.limit_bytes;
  detail.in_use_bytes = r.in_use_bytes;
  detail.requested_bytes = r.requested_bytes;
  StatusDetail details;
  details.memory_limit = detail;
  return Status::ResourceExhausted(
             ModelPrefix(m.model.name) + "memory limit exceeded: limit " +
             std::to_string(r.limit_bytes) + " bytes, in use " + std::to_string(r.in_use_bytes) +
             " bytes, requested " + std::to_string(r.requested_bytes) + " bytes" +
             (process_total ? " (the process's total over all its models)" : "") + " (" + during +
             ")")
      .WithDetail(std::move(details));
}

Status StatusFromException(const std::string& model, const std::string& task,
                           const std::exception& e) {
  // Classify on the whole text: a cause deep in a model sits after a long
  // TorchScript traceback, past where the message is cut. Refusals of the
  // counting allocator never get here (Run and LoadModule recognise them by
  // type or by RefusalMark); an out-of-memory of the CUDA caching allocator
  // or of the system does: by type when it kept it, else (rethrown by the
  // TorchScript interpreter as a std::runtime_error) by its text, which is
  // then all there is.
  const std::string full = FullErrorText(e);
  const std::string text = ErrorText(e);
  if (dynamic_cast<const c10::OutOfMemoryError*>(&e) || IsCudaOutOfMemory(full) ||
      full.find("out of memory") != std::string::npos) {
    return Status::ResourceExhausted(ModelPrefix(model) + "task '" + task + "': " + text);
  }
  // An index past a table (a token id at or past the vocabulary size) is the
  // client's input, not a server fault.
  if (dynamic_cast<const c10::IndexError*>(&e) ||
      full.find("index out of range") != std::string::npos) {
    return Status::InvalidArgument(ModelPrefix(model) + "task '" + task +
                                   "': an input value is out of range for the model (index out "
                                   "of range; e.g. a token id at or past the vocabulary size)");
  }
  return Status::Internal(ModelPrefix(model) + "task '" + task + "' failed: " + text);
}

std::string OutputName(const LoadedModel& m, const std::string& task, size_t i) {
  if (task == "infer" && i < m.model.config.outputs.size()) return m.model.config.outputs[i].name;
  return "output" + std::to_string(i);
}

Result<std::vector<InferTensor>> OutputsToInfer(const LoadedModel& m, const std::string& task,
                                                const c10::IValue& out) {
  std::vector<InferTensor> result;
  auto add = [&](const c10::IValue& v, std::string name) -> Status {
    if (!v.isTensor()) {
      return Status::Unsupported(ModelPrefix(m.model.name) + "task '" + task + "': output '" +
                                 name + "' is a " + v.tagKind() + ", not a tensor");
    }
    auto t = backend_internal::FromTorch(v.toTensor(), name);
    if (!t.ok())
      return t.status().WithPrefix("model '" + m.model.name + "': output '" + name + "'");
    result.push_back(std::move(t).value());
    return Status::Ok();
  };
  if (out.isTensor()) {
    MG_RETURN_IF_ERROR(add(out, OutputName(m, task, 0)));
  } else if (out.isTuple() || out.isList()) {
    std::vector<c10::IValue> elems =
        out.isTuple() ? out.toTupleRef().elements().vec() : out.toListRef().vec();
    for (size_t i = 0; i < elems.size(); ++i)
      MG_RETURN_IF_ERROR(add(elems[i], OutputName(m, task, i)));
  } else if (out.isGenericDict()) {
    for (const auto& entry : out.toGenericDict()) {
      if (!entry.key().isString()) {
        return Status::Unsupported(ModelPrefix(m.model.name) + "task '" + task +
                                   "': a dict output needs string keys");
      }
      MG_RETURN_IF_ERROR(add(entry.value(), entry.key().toStringRef()));
    }
  } else {
    return Status::Unsupported(ModelPrefix(m.model.name) + "task '" + task + "' returned a " +
                               out.tagKind() + ", not tensors");
  }
  return result;
}

Result<std::vector<InferTensor>> RunTask(const LoadedModel& m, const std::string& task_name,
                                         std::span<const InferTensorView> inputs,
                                         const nlohmann::json& params) {
  if (task_name == "generate" && m.causal_lm) return backend_internal::Generate(m, inputs, params);
  auto it = m.tasks.find(task_name);
  if (it == m.tasks.end()) {
    std::vector<std::string> names;
    for (const auto& [name, task] : m.tasks) names.push_back(name);
    if (m.causal_lm) names.push_back("generate");
    std::sort(names.begin(), names.end());
    return Status::NotFound(ModelPrefix(m.model.name) + "no task '" + task_name +
                            "' (tasks: " + JoinNames(names) + ")");
  }
  const TaskInfo& task = it->second;
  MG_ASSIGN_OR_RETURN(auto tensors, backend_internal::ToTorchInputs(m, task_name, task, inputs));
  c10::InferenceMode guard;
  std::vector<c10::IValue> args;
  torch::jit::Kwargs kwargs;
  for (size_t i = 0; i < tensors.size(); ++i) {
    if (!tensors[i].defined()) continue;
    if (task.by_name) {
      kwargs.emplace(task.inputs[i].spec.name, tensors[i]);
    } else {
      args.emplace_back(tensors[i]);
    }
  }
  c10::IValue out = m.module.get_method(task.method)(std::move(args), kwargs);
  return OutputsToInfer(m, task_name, out);
}

}  // namespace

namespace backend_internal {

Result<std::vector<torch::Tensor>> ToTorchInputs(const LoadedModel& m, const std::string& task_name,
                                                 const TaskInfo& task,
                                                 std::span<const InferTensorView> inputs) {
  const std::string prefix = ModelPrefix(m.model.name);
  const int64_t max_batch = m.model.config.max_batch_size;
  std::vector<torch::Tensor> out(task.inputs.size());
  std::vector<bool> seen(task.inputs.size(), false);
  int64_t batch = -1;
  std::string batch_input;
  for (const auto& in : inputs) {
    auto spec_it = std::find_if(task.inputs.begin(), task.inputs.end(),
                                [&](const InputSpec& s) { return s.spec.name == in.name; });
    if (spec_it == task.inputs.end()) {
      std::vector<std::string> names;
      for (const auto& s : task.inputs) names.push_back(s.spec.name);
      return Status::InvalidArgument(prefix + "input '" + std::string(in.name) +
                                     "' is not an input of task '" +
                                     task_name + "' (expected: " + JoinNames(names) + ")");
    }
    const size_t j = static_cast<size_t>(spec_it - task.inputs.begin());
    if (seen[j]) {
      return Status::InvalidArgument(prefix + "input '" + std::string(in.name) + "' given twice");
    }
    seen[j] = true;
    const InputSpec& spec = *spec_it;
    const std::string what = prefix + "input '" + std::string(in.name) + "': ";
    if (spec.typed) {
      if (in.datatype != spec.spec.datatype) {
        return Status::InvalidArgument(what + "expected datatype " +
                                       std::string(DataTypeName(spec.spec.datatype)) + ", got " +
                                       std::string(DataTypeName(in.datatype)));
      }
      std::vector<int64_t> expected;
      if (max_batch > 0) expected.push_back(-1);
      expected.insert(expected.end(), spec.spec.dims.begin(), spec.spec.dims.end());
      bool match = expected.size() == in.shape.size();
      for (size_t d = 0; match && d < expected.size(); ++d) {
        match = expected[d] == -1 || expected[d] == in.shape[d];
      }
      if (!match) {
        return Status::InvalidArgument(what + "expected shape " + FormatShape(expected) +
                                       (max_batch > 0 ? " (first dim = batch)" : "") + ", got " +
                                       FormatShape(in.shape));
      }
      if (max_batch > 0) {
        const int64_t b = in.shape[0];
        if (b < 1 || b > max_batch) {
          return Status::InvalidArgument(what + "batch size " + std::to_string(b) +
                                         " is not in [1, " + std::to_string(max_batch) +
                                         "] (max_batch_size)");
        }
        if (batch != -1 && b != batch) {
          return Status::InvalidArgument(what + "batch size " + std::to_string(b) +
                                         " differs from input '" + batch_input + "' (" +
                                         std::to_string(batch) + ")");
        }
        batch = b;
        batch_input = std::string(in.name);
      }
    }
    Status valid = ValidateTensorData(in, "input");
    if (!valid.ok()) return valid.WithPrefix("model '" + m.model.name + "'");
    auto type = ToScalarType(in.datatype);
    if (!type.ok())
      return type.status().WithPrefix("model '" + m.model.name + "': input '" +
                                      std::string(in.name) + "'");
    torch::Tensor t =
        torch::from_blob(const_cast<char*>(in.data.data()),
                         c10::IntArrayRef(in.shape.data(), in.shape.size()),
                         torch::TensorOptions().dtype(*type));
    if (!m.device.is_cpu()) t = t.to(m.device);
    out[j] = std::move(t);
  }
  for (size_t j = 0; j < task.inputs.size(); ++j) {
    if (!seen[j] && !task.inputs[j].optional) {
      return Status::InvalidArgument(prefix + "task '" + task_name + "': missing input '" +
                                     task.inputs[j].spec.name + "'");
    }
  }
  return out;
}

Result<InferTensor> FromTorch(const torch::Tensor& t, std::string name) {
  torch::Tensor c = t.detach();
  if (!c.device().is_cpu()) c = c.to(c10::kCPU);
  c = c.contiguous();
  MG_ASSIGN_OR_RETURN(DataType type, FromScalarType(c.scalar_type()));
  InferTensor r;
  r.name = std::move(name);
  r.datatype = type;
  r.shape = c.sizes().vec();
  const size_t nbytes = c.nbytes();
  if (nbytes > 0) r.data.assign(static_cast<const char*>(c.data_ptr()), nbytes);
  return r;
}

}  // namespace backend_internal

TorchScriptBackend::TorchScriptBackend() = default;
TorchScriptBackend::~TorchScriptBackend() = default;
TorchScriptBackend::TorchScriptBackend(TorchScriptBackend&&) noexcept = default;
TorchScriptBackend& TorchScriptBackend::operator=(TorchScriptBackend&&) noexcept = default;

namespace {

// Loads m->model's TorchScript file onto m->device and builds the task
// table. Errors: as TorchScriptBackend::Load, and kResourceExhausted with a
// MemoryLimitDetail when the memory limit refused the weights.
Status LoadModule(LoadedModel* m) {
  const ModelEntry& model = m->model;
  const std::filesystem::path& file = *model.torchscript;
  const RefusalMark mark;
  try {
    m->module = torch::jit::load(file.string(), m->device);
    m->module.eval();
  } catch (const std::exception& e) {
    // A refusal by the limit, whatever exception the loader wrapped it in:
    // the allocator's record says so (its type, c10::OutOfMemoryError, when
    // it survives, changes nothing here: only the record has the figures).
    if (auto refusal = mark.Since()) {
      return LimitStatus(*m, *refusal, "loading '" + file.string() + "'");
    }
    return Status::Corruption(ModelPrefix(model.name) + "cannot load TorchScript file '" +
                              file.string() + "': " + ErrorText(e));
  }
  try {
    MG_RETURN_IF_ERROR(BuildTasks(m));
  } catch (const std::exception& e) {
    return Status::Internal(ModelPrefix(model.name) +
                            "reading the module's methods failed: " + ErrorText(e));
  }
  return Status::Ok();
}

std::string SwapFileName(const std::string& model) {
  std::string name;
  for (char c : model) {
    const bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                       c == '.' || c == '_' || c == '-';
    name += plain ? c : '_';
  }
  if (name.empty() || name[0] == '.') name = "_" + name;
  return name + "." + std::to_string(::getpid()) + ".mgswap";
}

uint64_t MicrosSince(std::chrono::steady_clock::time_point start) {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                   std::chrono::steady_clock::now() - start)
                                   .count());
}

}  // namespace

Status TorchScriptBackend::Load(const ModelEntry& model, const std::string& device, int threads) {
  auto impl = std::make_unique<Impl>();
  LoadedModel& m = impl->m;
  m.model = model;
  if (!model.torchscript) {
    return Status::NotFound(ModelPrefix(model.name) +
                            "no TorchScript file (<version>/model.pt) under " + model.dir.string());
  }
  const std::filesystem::path& file = *model.torchscript;
  std::error_code ec;
  if (!std::filesystem::is_regular_file(file, ec)) {
    return Status::NotFound(ModelPrefix(model.name) + "file not found: " + file.string());
  }
  MG_ASSIGN_OR_RETURN(m.device, ParseDevice(model.name, device));
  if (m.device.is_cpu()) CountingAllocator::Install();
  if (threads > 0) at::set_num_threads(threads);
  MG_RETURN_IF_ERROR(LoadModule(&m));
  impl_ = std::move(impl);
  return Status::Ok();
}

bool TorchScriptBackend::loaded() const { return impl_ != nullptr; }

const std::string& TorchScriptBackend::model_name() const {
  static const std::string kEmpty;
  return impl_ ? impl_->m.model.name : kEmpty;
}

std::vector<std::string> TorchScriptBackend::Tasks() const {
  std::vector<std::string> names;
  if (!impl_) return names;
  for (const auto& [name, task] : impl_->m.tasks) names.push_back(name);
  if (impl_->m.causal_lm) names.push_back("generate");
  std::sort(names.begin(), names.end());
  return names;
}

std::vector<TensorSpec> TorchScriptBackend::Inputs(const std::string& task) const {
  std::vector<TensorSpec> specs;
  if (!impl_) return specs;
  const auto& tasks = impl_->m.tasks;
  auto it = tasks.find(task == "generate" && impl_->m.causal_lm ? std::string("infer") : task);
  if (it == tasks.end()) return specs;
  for (const auto& in : it->second.inputs) specs.push_back(in.spec);
  return specs;
}

std::vector<TensorSpec> TorchScriptBackend::Outputs() const {
  std::vector<TensorSpec> specs;
  if (!impl_) return specs;
  const LoadedModel& m = impl_->m;
  if (!m.model.config.outputs.empty()) return m.model.config.outputs;
  auto forward = m.module.find_method("forward");
  if (!forward) return specs;
  const auto& returns = forward->function().getSchema().returns();
  if (returns.size() != 1) return specs;
  const auto& type = returns[0].type();
  size_t count = 0;
  if (type->kind() == c10::TypeKind::TensorType) {
    count = 1;
  } else if (auto tuple = type->cast<c10::TupleType>()) {
    for (const auto& elem : tuple->elements()) {
      if (elem->kind() != c10::TypeKind::TensorType) return {};
    }
    count = tuple->elements().size();
  }
  for (size_t i = 0; i < count; ++i)
    specs.push_back(TensorSpec{"output" + std::to_string(i), DataType::kFP32, {}});
  return specs;
}

Result<std::vector<InferTensor>> TorchScriptBackend::Run(const std::string& task,
                                                         std::span<const InferTensorView> inputs,
                                                         const nlohmann::json& params,
                                                         const StreamCallback& /*stream*/) {
  if (!impl_) return Status::Unavailable("task '" + task + "': no model loaded");
  std::shared_lock<std::shared_mutex> lock(impl_->mu);
  const LoadedModel& m = impl_->m;
  if (impl_->swapped) {
    return Status::Unavailable("model '" + m.model.name + "' is swapped out: swap it in before " +
                               "running task '" + task + "'");
  }
  const RefusalMark mark;
  try {
    return RunTask(m, task, inputs, params);
  } catch (const c10::OutOfMemoryError& e) {
    // A refusal, by its type; its figures from the allocator's record. No
    // record: the CUDA caching allocator's or the system's, without figures.
    if (auto refusal = mark.Since()) return LimitStatus(m, *refusal, "task '" + task + "'");
    return StatusFromException(m.model.name, task, e);
  } catch (const std::exception& e) {
    // The type can be lost: an error inside a scripted method that has a
    // serialized-code traceback reaches here as the std::runtime_error the
    // TorchScript interpreter rethrows (seen with LibTorch 1.13 on the zoo's
    // gpt2 and bert-base; a traced resnet18 keeps c10::OutOfMemoryError).
    // The allocator's record still tells a refusal, without reading the text.
    if (auto refusal = mark.Since()) return LimitStatus(m, *refusal, "task '" + task + "'");
    return StatusFromException(m.model.name, task, e);
  } catch (...) {
    return Status::Internal(ModelPrefix(m.model.name) + "task '" + task +
                            "' failed with a non-standard exception");
  }
}

Result<SwapOutReport> TorchScriptBackend::SwapOut(const SwapTarget& target) {
  if (!impl_) return Status::Unavailable("swap-out: no model loaded");
  std::unique_lock<std::shared_mutex> lock(impl_->mu);
  Impl& im = *impl_;
  LoadedModel& m = im.m;
  const std::string prefix = "model '" + m.model.name + "': swap-out";
  SwapOutReport report;
  if (im.swapped) {
    report.location = m.device.is_cpu() ? im.swap_file.string() : "pinned host memory";
    return report;
  }
  const auto start = std::chrono::steady_clock::now();
  report.rss_before_bytes = backend_internal::ResidentBytes();
  std::vector<weight_swap::WeightStorage> weights = weight_swap::CollectWeights(m.module, m.device);
  try {
    if (m.device.is_cpu()) {
      if (target.swap_dir.empty()) {
        return Status::InvalidArgument(prefix + ": no swap_dir: a CPU model swaps to a file");
      }
      std::error_code ec;
      std::filesystem::create_directories(target.swap_dir, ec);
      const std::filesystem::path file =
          std::filesystem::path(target.swap_dir) / SwapFileName(m.model.name);
      Status written = weight_swap::WriteSwapFile(file, weights);
      if (!written.ok()) return written.WithPrefix(prefix);
      weight_swap::ReleaseAll(weights);
      backend_internal::TrimHeap();
      im.swap_file = file;
      report.location = file.string();
    } else {
      auto pinned = weight_swap::CopyToPinned(weights);
      if (!pinned.ok()) return pinned.status().WithPrefix(prefix);
      weight_swap::ReleaseAll(weights);
      const int index = m.device.index() < 0 ? 0 : m.device.index();
      // The freed blocks sit in the caching allocator's cache until emptied.
      if (auto released = EmptyCudaCache(index); !released.ok()) {
        return released.status().WithPrefix(prefix + " (weights in pinned memory, cache kept)");
      }
      im.pinned = std::move(pinned).value();
      report.location = "pinned host memory";
    }
  } catch (const std::exception& e) {
    return Status::Internal(prefix + " failed: " + ErrorText(e));
  }
  report.bytes = weight_swap::TotalBytes(weights);
  im.weights = std::move(weights);
  im.swapped = true;
  report.duration_us = MicrosSince(start);
  report.rss_after_bytes = backend_internal::ResidentBytes();
  return report;
}

Result<SwapInReport> TorchScriptBackend::SwapIn() {
  if (!impl_) return Status::Unavailable("swap-in: no model loaded");
  std::unique_lock<std::shared_mutex> lock(impl_->mu);
  Impl& im = *impl_;
  LoadedModel& m = im.m;
  SwapInReport report;
  if (!im.swapped) return report;
  const auto start = std::chrono::steady_clock::now();
  Status restored = Status::Ok();
  const RefusalMark mark;
  try {
    restored = m.device.is_cpu() ? weight_swap::ReadSwapFile(im.swap_file, im.weights)
                                 : weight_swap::RestoreFromPinned(im.weights, *im.pinned);
  } catch (const std::exception& e) {
    // The limit refused the blocks: reloading would meet the same limit.
    if (auto refusal = mark.Since()) return LimitStatus(m, *refusal, "swap-in");
    if (dynamic_cast<const c10::OutOfMemoryError*>(&e) != nullptr ||
        IsCudaOutOfMemory(FullErrorText(e))) {
      return Status::ResourceExhausted(ModelPrefix(m.model.name) +
                                       "swap-in: out of memory: " + ErrorText(e));
    }
    restored = Status::Internal("copying the weights back failed: " + ErrorText(e));
  }
  if (restored.ok()) {
    report.bytes = weight_swap::TotalBytes(im.weights);
  } else {
    // The swap tier failed (a missing or corrupt file, a failed copy): the
    // repository's files still hold the weights.
    report.reloaded = true;
    report.reason = restored.message();
    LoadedModel fresh;
    fresh.model = m.model;
    fresh.device = m.device;
    Status loaded = LoadModule(&fresh);
    if (!loaded.ok()) {
      return loaded.WithPrefix(ModelPrefix(m.model.name) + "swap-in failed (" + report.reason +
                               ") and so did loading it again");
    }
    report.bytes = weight_swap::TotalBytes(weight_swap::CollectWeights(fresh.module, fresh.device));
    m = std::move(fresh);
  }
  std::error_code ec;
  if (!im.swap_file.empty()) std::filesystem::remove(im.swap_file, ec);
  im.swap_file.clear();
  im.pinned.reset();
  im.weights.clear();
  im.swapped = false;
  report.duration_us = MicrosSince(start);
  return report;
}

bool TorchScriptBackend::swapped() const {
  if (!impl_) return false;
  std::shared_lock<std::shared_mutex> lock(impl_->mu);
  return impl_->swapped;
}

Status TorchScriptBackend::SetMemoryLimit(std::optional<uint64_t> limit_bytes) {
  if (impl_ && !impl_->m.device.is_cpu()) {
    return Status::Unsupported(
        ModelPrefix(impl_->m.model.name) +
        "memory limits on CUDA devices are set by the worker's caching-allocator cap");
  }
  return backend_internal::SetCpuMemoryLimit(limit_bytes);
}

BackendMemoryStats TorchScriptBackend::MemoryStats() const {
  return backend_internal::CpuMemoryStats();
}

void TorchScriptBackend::ResetPeakMemory() { backend_internal::ResetCpuPeak(); }

}  // namespace modelgrid
