// RunProbe: one measured load + forward pass under the counting allocator.

#include "probe.h"

#include <ATen/Parallel.h>
#include <ATen/record_function.h>
#include <c10/core/InferenceMode.h>
#include <torch/script.h>

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <sstream>

#include <unistd.h>

#include "counting_allocator.h"
#include "dtype_map.h"
#include "modelgrid/bytes.h"
#include "modelgrid/device.h"
#include "modelgrid/device/nvml.h"
#include "modelgrid/torch/cuda_memory.h"
#include "modelgrid/torch/torch_info.h"

namespace modelgrid {

namespace fs = std::filesystem;

std::string ProbeReport::ToJson() const {
  nlohmann::json j;
  j["weights_bytes"] = weights_bytes;
  j["load_peak_bytes"] = load_peak_bytes;
  j["peak_bytes"] = peak_bytes;
  j["peak_forward_bytes"] = peak_forward_bytes;
  j["peak_forward_requested_bytes"] = peak_forward_requested_bytes;
  j["input_bytes"] = input_bytes;
  j["forward_ms"] = forward_ms;
  j["threads"] = threads;
  j["torch_version"] = torch_version;
  j["device"] = device;
  j["peak_reserved_bytes"] = peak_reserved_bytes;
  j["nvml_process_bytes"] = nvml_process_bytes;
  return j.dump();
}

Status ParseShapeSpec(const std::string& text, std::vector<int64_t>* shape, DataType* type) {
  const auto bad = [&](const std::string& why) {
    return Status::InvalidArgument("shape '" + text + "': " + why +
                                   " (expected comma-separated sizes, optionally ':TYPE', e.g. 8,3,224,224:FP32)");
  };
  std::string dims = text;
  *type = DataType::kFP32;
  if (const auto colon = text.find(':'); colon != std::string::npos) {
    dims = text.substr(0, colon);
    const auto parsed = ParseDataType(text.substr(colon + 1));
    if (!parsed || *parsed == DataType::kBytes) return bad("unknown or unsupported datatype");
    *type = *parsed;
  }
  shape->clear();
  std::stringstream ss(dims);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (item.empty() || item.find_first_not_of("0123456789") != std::string::npos || item.size() > 12) {
      return bad("'" + item + "' is not a size");
    }
    shape->push_back(std::stoll(item));
  }
  if (shape->empty()) return bad("no sizes");
  return Status::Ok();
}

namespace {

// ------------------------------------------------------------- tracing aid

std::FILE* g_trace = nullptr;
thread_local std::vector<std::string> t_ops;  // "name(shapes)" of the ops running on this thread

std::unique_ptr<at::ObserverContext> OnOpStart(const at::RecordFunction& fn) {
  std::string entry = fn.name();
  entry += "(";
  for (const c10::IValue& v : fn.inputs()) {
    if (v.isTensor()) {
      entry += v.toTensor().defined() ? c10::str(v.toTensor().sizes()) : "undef";
    } else if (v.isScalar()) {
      entry += "s";
    } else {
      entry += v.tagKind();
    }
    entry += " ";
  }
  entry += ")";
  t_ops.push_back(std::move(entry));
  return nullptr;
}

void OnOpEnd(const at::RecordFunction&, at::ObserverContext*) {
  if (!t_ops.empty()) t_ops.pop_back();
}

void TraceAllocation(bool allocated, uint64_t bytes, const void* data) {
  if (g_trace == nullptr) return;
  const CountingAllocator* counters = CountingAllocator::Installed();
  std::string ops;
  for (const auto& op : t_ops) ops += (ops.empty() ? "" : " / ") + op;
  std::fprintf(g_trace, "%c %llu cur=%llu %p %s\n", allocated ? '+' : '-', static_cast<unsigned long long>(bytes),
               static_cast<unsigned long long>(counters ? counters->current_aligned_bytes() : 0), data,
               ops.empty() ? "-" : ops.c_str());
}

// Tracing on for its lifetime: the op callback and the allocation hook.
class TraceScope {
 public:
  Status Open(const fs::path& file) {
    g_trace = std::fopen(file.c_str(), "w");
    if (g_trace == nullptr) return Status::InvalidArgument(file.string() + ": cannot write");
    callback_ = at::addGlobalCallback(
        at::RecordFunctionCallback(&OnOpStart, &OnOpEnd).needsInputs(true).scopes({at::RecordScope::FUNCTION}));
    C10CountingAllocator::SetTraceHook(&TraceAllocation);
    return Status::Ok();
  }
  void Close() {
    if (!callback_) return;
    C10CountingAllocator::SetTraceHook(nullptr);
    at::removeCallback(*callback_);
    callback_.reset();
    std::fclose(g_trace);
    g_trace = nullptr;
  }
  ~TraceScope() { Close(); }

 private:
  std::optional<at::CallbackHandle> callback_;
};

at::Tensor MakeInput(const std::vector<int64_t>& shape, c10::ScalarType st) {
  if (c10::isFloatingType(st)) return torch::randn(shape, torch::TensorOptions().dtype(st));
  if (st == c10::kBool) return torch::ones(shape, torch::TensorOptions().dtype(st));
  // Integer inputs are token ids or indices: zeros are valid for every model.
  return torch::zeros(shape, torch::TensorOptions().dtype(st));
}

Result<torch::jit::Module> LoadModule(const std::string& name, const c10::Device& device) {
  try {
    torch::jit::Module module = torch::jit::load(name, device);
    module.eval();
    return module;
  } catch (const c10::Error& e) {
    return Status::Corruption(name + ": cannot load the TorchScript module: " +
                              e.what_without_backtrace());
  } catch (const std::exception& e) {
    return Status::Corruption(name + ": cannot load the TorchScript module: " + e.what());
  }
}

// The forward passes of `options` on `inputs`; errors name the model.
Status RunForward(torch::jit::Module& module, const ProbeOptions& options,
                  const std::vector<c10::IValue>& inputs) {
  const std::string name = options.model_pt.string();
  try {
    torch::jit::Method method = module.get_method(options.method);
    for (int run = 0; run < std::max(1, options.runs); ++run) {
      c10::InferenceMode guard;
      c10::IValue output = method(inputs);
    }
  } catch (const c10::OutOfMemoryError& e) {
    return Status::ResourceExhausted(name + ": " + e.what_without_backtrace());
  } catch (const c10::Error& e) {
    return Status::Internal(name + ": forward failed: " + e.what_without_backtrace());
  } catch (const std::exception& e) {
    return Status::Internal(name + ": forward failed: " + e.what());
  }
  return Status::Ok();
}

// The probe on cuda:`index`: the figures of the CUDA caching allocator
// (allocated bytes for weights and peaks, the reserved peak) and NVML's
// bytes for this process, which include the CUDA context.
Result<ProbeReport> RunCudaProbe(const ProbeOptions& options, int index) {
  const std::string name = options.model_pt.string();
  const c10::Device device(c10::kCUDA, static_cast<c10::DeviceIndex>(index));
  ProbeReport report;
  report.device = options.device;
  report.torch_version = TorchVersion();
  report.threads = at::get_num_threads();
  MG_ASSIGN_OR_RETURN(CudaAllocatorStats before, CudaStats(index));
  MG_RETURN_IF_ERROR(ResetCudaPeak(index));
  MG_ASSIGN_OR_RETURN(torch::jit::Module module, LoadModule(name, device));
  MG_ASSIGN_OR_RETURN(CudaAllocatorStats loaded, CudaStats(index));
  report.weights_bytes = loaded.allocated_bytes - std::min(loaded.allocated_bytes, before.allocated_bytes);
  report.load_peak_bytes = loaded.peak_allocated_bytes;

  std::vector<c10::IValue> inputs;
  for (size_t i = 0; i < options.shapes.size(); ++i) {
    auto st = ToScalarType(options.types[i]);
    if (!st.ok()) return st.status().WithPrefix(name + ": input " + std::to_string(i));
    inputs.emplace_back(MakeInput(options.shapes[i], *st).to(device));
  }
  MG_ASSIGN_OR_RETURN(CudaAllocatorStats with_inputs, CudaStats(index));
  report.input_bytes = with_inputs.allocated_bytes - loaded.allocated_bytes;
  MG_RETURN_IF_ERROR(ResetCudaPeak(index));
  const auto start = std::chrono::steady_clock::now();
  Status failure = RunForward(module, options, inputs);
  if (failure.ok()) {
    failure = SynchronizeCuda(index).WithPrefix(name);
  }
  const auto stop = std::chrono::steady_clock::now();
  if (!failure.ok()) return failure;
  report.forward_ms = std::chrono::duration<double, std::milli>(stop - start).count();
  MG_ASSIGN_OR_RETURN(CudaAllocatorStats after, CudaStats(index));
  report.peak_forward_bytes = after.peak_allocated_bytes;
  report.peak_forward_requested_bytes = after.peak_allocated_bytes;
  report.peak_bytes = std::max(report.load_peak_bytes, report.peak_forward_bytes);
  report.peak_reserved_bytes = std::max(loaded.peak_reserved_bytes, after.peak_reserved_bytes);
  // NVML's view of this process (context included), matched by UUID.
  auto found = ParseDeviceSpec(options.device);
  if (found.ok()) {
    auto processes = AuditDeviceProcesses(*found);
    if (processes.ok()) {
      for (const NvmlProcess& p : *processes) {
        if (p.pid == static_cast<uint32_t>(::getpid()) && p.used_bytes) {
          report.nvml_process_bytes = *p.used_bytes;
        }
      }
    }
  }
  return report;
}

}  // namespace

Result<ProbeReport> RunProbe(const ProbeOptions& options) {
  CountingAllocator& counters = CountingAllocator::Install();
  const std::string name = options.model_pt.string();
  const int cuda = CudaIndex(options.device);
  if (options.device != "cpu" && cuda < 0) {
    return Status::Unsupported("device '" + options.device + "': expected cpu or cuda:N");
  }
  if (cuda >= 0 && !CudaBuild()) {
    return Status::Unsupported("device '" + options.device +
                               "': this build's LibTorch has no CUDA (MODELGRID_WITH_CUDA is OFF)");
  }
  if (options.shapes.size() != options.types.size()) {
    return Status::InvalidArgument("shapes and types differ in number");
  }
  std::error_code ec;
  if (!fs::is_regular_file(options.model_pt, ec)) return Status::NotFound(name + ": no such file");
  if (options.threads > 0) at::set_num_threads(options.threads);

  TraceScope trace;
  if (!options.trace_file.empty()) MG_RETURN_IF_ERROR(trace.Open(options.trace_file));

  if (cuda >= 0) return RunCudaProbe(options, cuda);

  ProbeReport report;
  report.torch_version = TorchVersion();
  report.threads = at::get_num_threads();
  counters.ResetPeak();
  MG_ASSIGN_OR_RETURN(torch::jit::Module module, LoadModule(name, c10::Device(c10::kCPU)));
  report.weights_bytes = counters.current_aligned_bytes();
  report.load_peak_bytes = counters.peak_aligned_bytes();

  std::vector<c10::IValue> inputs;
  const uint64_t before_inputs = counters.current_aligned_bytes();
  for (size_t i = 0; i < options.shapes.size(); ++i) {
    auto st = ToScalarType(options.types[i]);
    if (!st.ok()) return st.status().WithPrefix(name + ": input " + std::to_string(i));
    inputs.emplace_back(MakeInput(options.shapes[i], *st));
  }
  report.input_bytes = counters.current_aligned_bytes() - before_inputs;

  counters.ResetPeak();
  if (g_trace != nullptr) std::fprintf(g_trace, "=== forward\n");
  const auto start = std::chrono::steady_clock::now();
  Status failure = RunForward(module, options, inputs);
  const auto stop = std::chrono::steady_clock::now();
  trace.Close();
  if (!failure.ok()) return failure;
  report.forward_ms = std::chrono::duration<double, std::milli>(stop - start).count();
  const CountingAllocator::Stats stats = counters.stats();
  report.peak_forward_bytes = stats.peak_aligned_bytes;
  report.peak_forward_requested_bytes = stats.peak_bytes;
  report.peak_bytes = std::max(report.load_peak_bytes, report.peak_forward_bytes);
  return report;
}

}  // namespace modelgrid
