// TorchScriptBackend: loading, task table, input checks, running, output
// conversion and the mapping of LibTorch exceptions to Status.
#include "modelgrid/backend/backend.h"

#include <ATen/Parallel.h>
#include <torch/cuda.h>
#include <torch/script.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <fstream>
#include <regex>

#include "backend/loaded_model.h"
#include "torch/dtype_map.h"
#include "modelgrid/torch/counting_allocator.h"

namespace modelgrid {

static_assert(std::endian::native == std::endian::little,
              "InferTensor bytes are little-endian; a big-endian host would need byte swaps");

using backend_internal::InputSpec;
using backend_internal::LoadedModel;
using backend_internal::TaskInfo;

struct TorchScriptBackend::Impl {
  LoadedModel m;
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

Status StatusFromException(const std::string& model, const std::string& task,
                           const std::exception& e) {
  // Classify on the whole text: a refusal deep in a model sits after a long
  // TorchScript traceback, past where the message is cut.
  const std::string full = FullErrorText(e);
  const std::string text = ErrorText(e);
  static const std::regex kLimit(
      "memory limit exceeded: limit [0-9]+ bytes, in use [0-9]+ bytes, requested [0-9]+ bytes");
  std::smatch match;
  if (std::regex_search(full, match, kLimit)) {
    return Status::ResourceExhausted(ModelPrefix(model) + match.str());
  }
  if (dynamic_cast<const c10::OutOfMemoryError*>(&e) ||
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
  try {
    m.module = torch::jit::load(file.string(), m.device);
    m.module.eval();
  } catch (const std::exception& e) {
    return Status::Corruption(ModelPrefix(model.name) + "cannot load TorchScript file '" +
                              file.string() + "': " + ErrorText(e));
  }
  try {
    MG_RETURN_IF_ERROR(BuildTasks(&m));
  } catch (const std::exception& e) {
    return Status::Internal(ModelPrefix(model.name) +
                            "reading the module's methods failed: " + ErrorText(e));
  }
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
                                                         const std::vector<InferTensor>& inputs,
                                                         const nlohmann::json& params) {
  std::vector<InferTensorView> views;
  views.reserve(inputs.size());
  for (const InferTensor& t : inputs) views.push_back(ViewOf(t));
  return Run(task, std::span<const InferTensorView>(views), params);
}

Result<std::vector<InferTensor>> TorchScriptBackend::Run(const std::string& task,
                                                         std::span<const InferTensorView> inputs,
                                                         const nlohmann::json& params) {
  if (!impl_) return Status::Unavailable("task '" + task + "': no model loaded");
  const LoadedModel& m = impl_->m;
  try {
    return RunTask(m, task, inputs, params);
  } catch (const std::exception& e) {
    return StatusFromException(m.model.name, task, e);
  } catch (...) {
    return Status::Internal(ModelPrefix(m.model.name) + "task '" + task +
                            "' failed with a non-standard exception");
  }
}

Status TorchScriptBackend::SetMemoryLimit(std::optional<uint64_t> limit_bytes) {
  if (impl_ && !impl_->m.device.is_cpu()) {
    return Status::Unsupported(
        ModelPrefix(impl_->m.model.name) +
        "memory limits on CUDA devices are set by the worker's caching-allocator cap");
  }
  CountingAllocator::Install().SetLimit(limit_bytes);
  return Status::Ok();
}

BackendMemoryStats TorchScriptBackend::MemoryStats() const {
  BackendMemoryStats out;
  const CountingAllocator* alloc = CountingAllocator::Installed();
  if (!alloc) return out;
  const auto s = alloc->stats();
  out.current_bytes = s.current_aligned_bytes;
  out.peak_bytes = s.peak_aligned_bytes;
  out.limit_bytes = alloc->limit();
  out.refusals = s.refusals;
  return out;
}

void TorchScriptBackend::ResetPeakMemory() {
  if (CountingAllocator* alloc = CountingAllocator::Installed()) alloc->ResetPeak();
}

}  // namespace modelgrid
