// NativeModel: loading (config, weights, module), the token-level tasks,
// pooling, and exceptions → Status.
#include "hf/native_model.h"

#include <torch/cuda.h>

#include <regex>

#include "hf/modules.h"
#include "hf/weights.h"
#include "modelgrid/torch/counting_allocator.h"

namespace modelgrid::hf {

namespace {

Result<c10::Device> ParseDevice(const std::string& device) {
  if (device == "cpu") return c10::Device(c10::kCPU);
  static const std::regex kCuda("cuda(:([0-9]{1,3}))?");
  std::smatch match;
  if (!std::regex_match(device, match, kCuda)) {
    return Status::InvalidArgument("device '" + device + "' is not 'cpu' or 'cuda:N'");
  }
  const int index = match[2].matched ? std::stoi(match[2].str()) : 0;
  if (!torch::cuda::is_available()) {
    return Status::NotFound("device '" + device +
                            "' not found: LibTorch has no CUDA or sees no GPU");
  }
  if (index >= static_cast<int>(torch::cuda::device_count())) {
    return Status::NotFound("device '" + device + "' not found: " +
                            std::to_string(torch::cuda::device_count()) + " GPU(s) visible");
  }
  return c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(index));
}

Result<c10::ScalarType> ParseDtype(const std::string& name, const std::string& what) {
  if (name == "float32") return c10::kFloat;
  if (name == "float16") return c10::kHalf;
  if (name == "bfloat16") return c10::kBFloat16;
  return Status::InvalidArgument(what + " '" + name + "' is not one of float32, float16, bfloat16");
}

// Sentence-transformers pooling of hidden [B,S,H] (fp32) under mask [B,S].
torch::Tensor Pool(const PoolingConfig& p, const torch::Tensor& hidden, const torch::Tensor& mask) {
  std::vector<torch::Tensor> parts;
  const torch::Tensor m = mask.unsqueeze(-1).to(hidden.scalar_type());  // [B,S,1]
  if (p.cls) parts.push_back(hidden.select(1, 0));
  if (p.max) parts.push_back(std::get<0>(hidden.masked_fill(m.eq(0), -1e9).max(1)));
  if (p.mean || p.mean_sqrt_len) {
    torch::Tensor sum = (hidden * m).sum(1);
    torch::Tensor count = m.sum(1).clamp_min(1e-9);
    if (p.mean) parts.push_back(sum / count);
    if (p.mean_sqrt_len) parts.push_back(sum / count.sqrt());
  }
  if (p.last_token) {
    // The last position whose mask is 1 (left or right padding alike).
    const int64_t s = mask.size(1);
    torch::Tensor last = (torch::arange(s, mask.options()).unsqueeze(0) * mask).argmax(1);
    parts.push_back(
        hidden.gather(1, last.view({-1, 1, 1}).expand({-1, 1, hidden.size(2)})).squeeze(1));
  }
  torch::Tensor out = parts.size() == 1 ? parts[0] : torch::cat(parts, -1);
  if (p.normalize) out = out / out.norm(2, -1, /*keepdim=*/true).clamp_min(1e-12);
  return out;
}

std::string ErrorText(const std::exception& e) {
  std::string text;
  if (const auto* c10e = dynamic_cast<const c10::Error*>(&e)) {
    text = c10e->what_without_backtrace();
  } else {
    text = e.what();
  }
  constexpr size_t kMaxChars = 2000;
  if (text.size() > kMaxChars) text = text.substr(0, kMaxChars) + "...";
  return text;
}

}  // namespace

RefusalMark MarkRefusals() {
  RefusalMark mark;
  mark.thread_refusals = CountingAllocator::ThreadRefusals();
  CountingAllocator* charged = CountingAllocator::Charged();
  mark.charged = charged;
  mark.charged_refusals = charged != nullptr ? charged->stats().refusals : 0;
  return mark;
}

Status StatusFromException(const std::string& what, const std::exception* e,
                           const RefusalMark& mark) {
  // A refusal by the counting allocator, from its own record (exact on the
  // calling thread; else one charged to the same counters, rethrown from
  // LibTorch's intra-op pool).
  std::optional<CountingAllocator::Refusal> refusal;
  if (CountingAllocator::ThreadRefusals() != mark.thread_refusals) {
    refusal = CountingAllocator::LastThreadRefusal();
  } else if (const auto* charged = static_cast<const CountingAllocator*>(mark.charged);
             charged != nullptr && charged->stats().refusals != mark.charged_refusals) {
    refusal = charged->last_refusal();
  }
  if (refusal) {
    MemoryLimitDetail detail;
    detail.limit_bytes = refusal->limit_bytes;
    detail.in_use_bytes = refusal->in_use_bytes;
    detail.requested_bytes = refusal->requested_bytes;
    StatusDetail details;
    details.memory_limit = detail;
    return Status::ResourceExhausted(what + ": memory limit exceeded: limit " +
                                     std::to_string(refusal->limit_bytes) + " bytes, in use " +
                                     std::to_string(refusal->in_use_bytes) + " bytes, requested " +
                                     std::to_string(refusal->requested_bytes) + " bytes")
        .WithDetail(std::move(details));
  }
  if (e == nullptr) return Status::Internal(what + ": failed with a non-standard exception");
  const std::string text = ErrorText(*e);
  if (dynamic_cast<const c10::OutOfMemoryError*>(e) != nullptr ||
      text.find("out of memory") != std::string::npos) {
    return Status::ResourceExhausted(what + ": out of memory: " + text);
  }
  if (dynamic_cast<const c10::IndexError*>(e) != nullptr) {
    return Status::InvalidArgument(what + ": an index is out of range: " + text);
  }
  return Status::Internal(what + " failed: " + text);
}

NativeModel::~NativeModel() = default;

std::string NativeModel::Prefix() const { return "model '" + config_.folder.string() + "': "; }

Result<std::shared_ptr<NativeModel>> NativeModel::Load(const std::filesystem::path& folder,
                                                       const LoadOptions& options) {
  std::shared_ptr<NativeModel> m(new NativeModel());
  MG_ASSIGN_OR_RETURN(m->config_, ReadModelConfig(folder));
  const ModelConfig& c = m->config_;
  const std::string prefix = m->Prefix();
  auto device = ParseDevice(options.device);
  if (!device.ok()) return Status(device.status().code(), prefix + device.status().message());
  m->device_ = *device;
  if (options.dtype != "auto") {
    auto dtype = ParseDtype(options.dtype, "load option dtype");
    if (!dtype.ok()) return Status(dtype.status().code(), prefix + dtype.status().message());
    m->dtype_ = *dtype;
  } else {
    MG_ASSIGN_OR_RETURN(m->dtype_, ParseDtype(c.torch_dtype, c.file + ": field 'torch_dtype'"));
  }
  if (m->device_.is_cpu()) m->dtype_ = c10::kFloat;  // see the header: CPU computes in fp32

  m->max_sequence_ = c.max_positions;
  m->max_sequence_field_ = c.max_positions_field;
  if (c.family == Family::kRoberta) m->max_sequence_ = c.max_positions - *c.pad_token_id - 1;
  if (c.sliding_window && *c.sliding_window < m->max_sequence_) {
    m->max_sequence_ = *c.sliding_window;
    m->max_sequence_field_ = "sliding_window";
  }

  MG_ASSIGN_OR_RETURN(std::unique_ptr<WeightFiles> files, WeightFiles::Open(folder));
  const WeightPlacement placement{m->dtype_, m->device_};
  return Guarded<std::shared_ptr<NativeModel>>(
      prefix + "loading the weights", [&]() -> Result<std::shared_ptr<NativeModel>> {
        WeightBinder w(*files, placement);
        m->module_ = c.is_decoder() ? BuildDecoder(c, w, placement) : BuildEncoder(c, w);
        MG_RETURN_IF_ERROR(w.status());
        MG_RETURN_IF_ERROR(
            w.CheckAllUsed([&](const std::string& name) { return IgnorableTensor(c, name); }));
        m->weight_memory_.mapped_bytes = w.bytes().mapped;
        m->weight_memory_.allocated_bytes = w.bytes().allocated;
        return m;
      });
}

uint64_t NativeModel::KvCacheBytes(int64_t batch, int64_t tokens) const {
  if (!config_.is_decoder() || batch <= 0 || tokens <= 0) return 0;
  return 2ULL * static_cast<uint64_t>(config_.num_layers) * static_cast<uint64_t>(batch) *
         static_cast<uint64_t>(config_.num_kv_heads) * static_cast<uint64_t>(tokens) *
         static_cast<uint64_t>(config_.head_dim) * static_cast<uint64_t>(c10::elementSize(dtype_));
}

Result<std::pair<torch::Tensor, torch::Tensor>> NativeModel::PrepareInputs(
    const torch::Tensor& input_ids, const torch::Tensor& mask, const std::string& what) const {
  const std::string prefix = Prefix() + what + ": ";
  if (!input_ids.defined() || input_ids.scalar_type() != c10::kLong || input_ids.dim() != 2 ||
      input_ids.size(0) < 1 || input_ids.size(1) < 1) {
    return Status::InvalidArgument(prefix + "input_ids must be int64 [B,S] with B, S >= 1, got " +
                                   (input_ids.defined()
                                        ? std::string(c10::toString(input_ids.scalar_type())) +
                                              " " + ShapeText(input_ids.sizes())
                                        : std::string("no tensor")));
  }
  const int64_t s = input_ids.size(1);
  if (s > max_sequence_) {
    return Status::InvalidArgument(prefix + "sequence length " + std::to_string(s) +
                                   " exceeds the model's limit " + std::to_string(max_sequence_) +
                                   " (" + max_sequence_field_ + " in " + config_.file + ")");
  }
  const int64_t lo = input_ids.min().item<int64_t>(), hi = input_ids.max().item<int64_t>();
  if (lo < 0 || hi >= config_.vocab_size) {
    return Status::InvalidArgument(prefix + "input_ids hold " + std::to_string(lo < 0 ? lo : hi) +
                                   ", outside the vocabulary [0, " +
                                   std::to_string(config_.vocab_size) + ")");
  }
  torch::Tensor ids = input_ids.to(device_);
  torch::Tensor m;
  if (!mask.defined()) {
    m = torch::ones_like(ids);
  } else {
    if (mask.sizes() != input_ids.sizes() ||
        !(c10::isIntegralType(mask.scalar_type(), /*includeBool=*/true))) {
      return Status::InvalidArgument(prefix + "attention_mask must be an integer or bool tensor " +
                                     ShapeText(input_ids.sizes()) + " like input_ids, got " +
                                     std::string(c10::toString(mask.scalar_type())) + " " +
                                     ShapeText(mask.sizes()));
    }
    m = mask.to(device_, c10::kLong);
    if (m.lt(0).logical_or(m.gt(1)).any().item<bool>()) {
      return Status::InvalidArgument(prefix + "attention_mask must hold only 0 and 1");
    }
  }
  return std::make_pair(ids, m);
}

Result<torch::Tensor> NativeModel::Hidden(const torch::Tensor& input_ids,
                                          const torch::Tensor& attention_mask) const {
  return Guarded<torch::Tensor>(Prefix() + "hidden", [&]() -> Result<torch::Tensor> {
    MG_ASSIGN_OR_RETURN(auto in, PrepareInputs(input_ids, attention_mask, "hidden"));
    return module_->Hidden(in.first, in.second).to(c10::kFloat);
  });
}

Result<torch::Tensor> NativeModel::Logits(const torch::Tensor& input_ids,
                                          const torch::Tensor& attention_mask) const {
  if (!has_logits()) {
    return Status::Unsupported(Prefix() + "logits: architecture '" + config_.architecture +
                               "' is a bare model without a head (a ...ForCausalLM, "
                               "...ForSequenceClassification or ...ForTokenClassification "
                               "architecture has logits)");
  }
  return Guarded<torch::Tensor>(Prefix() + "logits", [&]() -> Result<torch::Tensor> {
    MG_ASSIGN_OR_RETURN(auto in, PrepareInputs(input_ids, attention_mask, "logits"));
    return module_->HeadLogits(module_->Hidden(in.first, in.second)).to(c10::kFloat);
  });
}

Result<torch::Tensor> NativeModel::Embed(const torch::Tensor& input_ids,
                                         const torch::Tensor& attention_mask) const {
  return Guarded<torch::Tensor>(Prefix() + "embed", [&]() -> Result<torch::Tensor> {
    MG_ASSIGN_OR_RETURN(auto in, PrepareInputs(input_ids, attention_mask, "embed"));
    torch::Tensor hidden = module_->Hidden(in.first, in.second).to(c10::kFloat);
    return Pool(config_.pooling, hidden, in.second);
  });
}

}  // namespace modelgrid::hf
