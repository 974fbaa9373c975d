// HuggingFaceBackend (modelgrid/backend/hf_backend.h): loading, the
// infer / embed / classify tasks, text in and out, memory and swap. The
// generate task and its sessions are in hf_generate.cc.

#include "modelgrid/backend/hf_backend.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <filesystem>

#include "backend/allocator_memory.h"
#include "backend/hf_internal.h"
#include "backend/loaded_model.h"
#include "modelgrid/torch/counting_allocator.h"

namespace modelgrid {

using backend_internal::FromTorch;
using hf_internal::Batch;
using hf_internal::Impl;

namespace hf_internal {

std::string Impl::Prefix(const std::string& task) const {
  return "model '" + name + "': task '" + task + "': ";
}

namespace {

// The rows of a `text` input: BYTES [B] or [B,1].
Result<std::vector<std::string>> TextRows(const InferTensorView& t, const std::string& prefix) {
  if (t.datatype != DataType::kBytes) {
    return Status::InvalidArgument(prefix + "input 'text': expected datatype BYTES, got " +
                                   std::string(DataTypeName(t.datatype)));
  }
  if (t.shape.size() != 1 && !(t.shape.size() == 2 && t.shape[1] == 1)) {
    return Status::InvalidArgument(prefix + "input 'text': expected shape [B] or [B,1], got " +
                                   FormatShape(t.shape));
  }
  MG_ASSIGN_OR_RETURN(std::vector<std::string_view> elements, SplitBytesElements(t.data));
  if (elements.empty()) return Status::InvalidArgument(prefix + "input 'text' holds no text");
  return std::vector<std::string>(elements.begin(), elements.end());
}

// An INT64 [B,S] input as a tensor (a copy: the view's bytes are not ours).
Result<torch::Tensor> IdsTensor(const InferTensorView& t, const std::string& prefix) {
  if (t.datatype != DataType::kInt64 || t.shape.size() != 2 || t.shape[0] < 1 || t.shape[1] < 1) {
    return Status::InvalidArgument(prefix + "input '" + std::string(t.name) +
                                   "': expected INT64 [B,S] with B, S >= 1, got " +
                                   std::string(DataTypeName(t.datatype)) + " " +
                                   FormatShape(t.shape));
  }
  const auto expected = static_cast<size_t>(t.shape[0] * t.shape[1]) * sizeof(int64_t);
  if (t.data.size() != expected) {
    return Status::InvalidArgument(prefix + "input '" + std::string(t.name) + "': expected " +
                                   std::to_string(expected) + " bytes, got " +
                                   std::to_string(t.data.size()));
  }
  return torch::from_blob(const_cast<char*>(t.data.data()), {t.shape[0], t.shape[1]},
                          torch::TensorOptions().dtype(torch::kInt64))
      .clone();
}

}  // namespace

Result<Batch> Impl::ReadInputs(const std::string& task, std::span<const InferTensorView> inputs,
                               const nlohmann::json& params) const {
  const std::string prefix = Prefix(task);
  const InferTensorView* text = nullptr;
  const InferTensorView* ids = nullptr;
  const InferTensorView* mask = nullptr;
  for (const InferTensorView& in : inputs) {
    const InferTensorView** slot = in.name == "text"             ? &text
                                   : in.name == "input_ids"      ? &ids
                                   : in.name == "attention_mask" ? &mask
                                                                 : nullptr;
    if (!slot) {
      return Status::InvalidArgument(prefix + "unexpected input '" + std::string(in.name) +
                                     "' (expected text, or input_ids with an optional "
                                     "attention_mask)");
    }
    if (*slot) {
      return Status::InvalidArgument(prefix + "input '" + std::string(in.name) + "' given twice");
    }
    *slot = &in;
  }
  if ((text != nullptr) == (ids != nullptr)) {
    return Status::InvalidArgument(prefix + (text ? "give either 'text' or 'input_ids', not both"
                                                  : "missing input: 'text' (BYTES) or "
                                                    "'input_ids' (INT64 [B,S])"));
  }
  if (mask && !ids) {
    return Status::InvalidArgument(prefix + "input 'attention_mask' goes with 'input_ids'");
  }
  Batch batch;
  if (ids) {
    MG_ASSIGN_OR_RETURN(batch.ids, IdsTensor(*ids, prefix));
    if (mask) {
      MG_ASSIGN_OR_RETURN(batch.mask, IdsTensor(*mask, prefix));
      if (batch.mask.sizes() != batch.ids.sizes()) {
        return Status::InvalidArgument(prefix + "input 'attention_mask': expected shape " +
                                       FormatShape(batch.ids.sizes().vec()) + ", got " +
                                       FormatShape(batch.mask.sizes().vec()));
      }
    } else {
      batch.mask = torch::ones_like(batch.ids);
    }
    // Both are contiguous int64 CPU tensors (IdsTensor clones, ones_like);
    // read through accessors, not a tensor op per element.
    const auto id = batch.ids.accessor<int64_t, 2>();
    const auto on = batch.mask.accessor<int64_t, 2>();
    for (int64_t r = 0; r < id.size(0); ++r) {
      std::vector<int64_t> row;
      row.reserve(static_cast<size_t>(id.size(1)));
      for (int64_t c = 0; c < id.size(1); ++c) {
        if (on[r][c] != 0) row.push_back(id[r][c]);
      }
      batch.rows.push_back(std::move(row));
    }
    return batch;
  }
  if (!tokenizer) {
    return Status::NotFound(prefix + "input 'text' needs a tokenizer, and " + dir +
                            " has no tokenizer.json or tokenizer.model (give input_ids instead)");
  }
  MG_ASSIGN_OR_RETURN(std::vector<std::string> texts, TextRows(*text, prefix));
  const bool truncate = params.is_object() && params.value("truncate", false) && task != "generate";
  const int64_t limit = model->max_sequence();
  for (size_t r = 0; r < texts.size(); ++r) {
    tokenizer::EncodeOptions options;
    if (truncate) options.max_length = static_cast<size_t>(limit);
    auto enc = tokenizer->Encode(texts[r], options);
    if (!enc.ok()) {
      return enc.status().WithPrefix(prefix + "input 'text' row " + std::to_string(r));
    }
    if (enc->ids.empty()) {
      return Status::InvalidArgument(prefix + "input 'text' row " + std::to_string(r) +
                                     " gives no tokens");
    }
    if (static_cast<int64_t>(enc->ids.size()) > limit) {
      return Status::InvalidArgument(
          prefix + "input 'text' row " + std::to_string(r) + " is " +
          std::to_string(enc->ids.size()) + " tokens, past the model's limit of " +
          std::to_string(limit) + " (" + model->max_sequence_field() + " in config.json)" +
          (task == "generate" ? "" : "; set parameter truncate to cut it"));
    }
    batch.rows.push_back(std::move(enc->ids));
  }
  // Right-padded [B,S] with the pad id (any id: masked out).
  size_t width = 0;
  for (const auto& row : batch.rows) width = std::max(width, row.size());
  const int64_t pad = model->config().pad_token_id.value_or(0);
  const auto b = static_cast<int64_t>(batch.rows.size());
  batch.ids = torch::full({b, static_cast<int64_t>(width)}, pad, torch::kInt64);
  batch.mask = torch::zeros({b, static_cast<int64_t>(width)}, torch::kInt64);
  for (int64_t r = 0; r < b; ++r) {
    const auto& row = batch.rows[r];
    const auto n = static_cast<int64_t>(row.size());
    batch.ids[r].narrow(0, 0, n).copy_(torch::tensor(row, torch::kInt64));
    batch.mask[r].narrow(0, 0, n).fill_(1);
  }
  return batch;
}

InferTensor Bytes(const std::string& name, const std::vector<std::string>& values) {
  InferTensor t;
  t.name = name;
  t.datatype = DataType::kBytes;
  t.shape = {static_cast<int64_t>(values.size())};
  for (const std::string& v : values) AppendBytesElement(&t.data, v);
  return t;
}

InferTensor Int64(const std::string& name, std::vector<int64_t> shape,
                  const std::vector<int64_t>& values) {
  InferTensor t;
  t.name = name;
  t.datatype = DataType::kInt64;
  t.shape = std::move(shape);
  t.data.assign(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(int64_t));
  return t;
}

}  // namespace hf_internal

namespace {

constexpr const char* kInfer = "infer";
constexpr const char* kEmbed = "embed";
constexpr const char* kClassify = "classify";
constexpr const char* kGenerate = "generate";

}  // namespace

HuggingFaceBackend::HuggingFaceBackend() = default;
HuggingFaceBackend::~HuggingFaceBackend() = default;

Status HuggingFaceBackend::Load(const ModelEntry& model, const std::string& device, int threads) {
  impl_.reset();
  auto impl = std::make_unique<Impl>();
  impl->entry = model;
  impl->name = model.name;
  impl->dir = model.dir.string();
  impl->device = device;
  if (device == "cpu" || device.rfind("cpu", 0) == 0) CountingAllocator::Install();
  if (threads > 0) at::set_num_threads(threads);
  MG_RETURN_IF_ERROR(impl->LoadFiles());
  impl_ = std::move(impl);
  return Status::Ok();
}

namespace hf_internal {

Status Impl::LoadFiles() {
  hf::LoadOptions options;
  options.device = device;
  options.dtype = entry.config.dtype.empty() ? "auto" : entry.config.dtype;
  auto loaded = hf::NativeModel::Load(entry.dir, options);
  if (!loaded.ok()) return loaded.status().WithPrefix("model '" + name + "'");
  model = std::move(*loaded);
  head = model->config().head;
  // tokenizer.json, else a SentencePiece tokenizer.model (FromDirectory's order).
  if (!tokenizer && (std::filesystem::exists(entry.dir / "tokenizer.json") ||
                     std::filesystem::exists(entry.dir / "tokenizer.model"))) {
    auto tok = tokenizer::Tokenizer::FromDirectory(dir);
    if (!tok.ok()) return tok.status().WithPrefix("model '" + name + "'");
    tokenizer = std::make_unique<tokenizer::Tokenizer>(std::move(*tok));
  }
  return Status::Ok();
}

}  // namespace hf_internal

bool HuggingFaceBackend::loaded() const { return impl_ != nullptr; }

const std::string& HuggingFaceBackend::model_name() const {
  static const std::string kNone;
  return impl_ ? impl_->name : kNone;
}

std::vector<std::string> HuggingFaceBackend::Tasks() const {
  if (!impl_) return {};
  std::vector<std::string> tasks = {kEmbed, kInfer};
  if (impl_->head == hf::Head::kSequenceClassification) tasks.push_back(kClassify);
  if (impl_->head == hf::Head::kCausalLm) tasks.push_back(kGenerate);
  std::sort(tasks.begin(), tasks.end());
  return tasks;
}

std::vector<TensorSpec> HuggingFaceBackend::Inputs(const std::string& task) const {
  const auto tasks = Tasks();
  if (std::find(tasks.begin(), tasks.end(), task) == tasks.end()) return {};
  // Either text, or input_ids (+ attention_mask): all listed, none required
  // alone (Run says which combinations it takes).
  std::vector<TensorSpec> specs;
  if (impl_->tokenizer) specs.push_back({"text", DataType::kBytes, {1}});
  specs.push_back({"input_ids", DataType::kInt64, {-1}});
  specs.push_back({"attention_mask", DataType::kInt64, {-1}});
  return specs;
}

std::vector<TensorSpec> HuggingFaceBackend::Outputs() const {
  if (!impl_) return {};
  const hf::ModelConfig& c = impl_->model->config();
  const auto labels = static_cast<int64_t>(c.labels.size());
  switch (impl_->head) {
    case hf::Head::kCausalLm:
      return {{"logits", DataType::kFP32, {-1, c.vocab_size}}};
    case hf::Head::kSequenceClassification:
      return {{"logits", DataType::kFP32, {labels}}};
    case hf::Head::kTokenClassification:
      return {{"logits", DataType::kFP32, {-1, labels}}};
    case hf::Head::kBase:
      break;
  }
  return {{"last_hidden_state", DataType::kFP32, {-1, c.hidden_size}}};
}

Result<std::vector<InferTensor>> HuggingFaceBackend::Run(const std::string& task,
                                                         std::span<const InferTensorView> inputs,
                                                         const nlohmann::json& params,
                                                         const StreamCallback& stream) {
  if (!impl_) return Status::Unavailable("task '" + task + "': no model loaded");
  Impl& m = *impl_;
  std::shared_lock<std::shared_mutex> lock(m.mu);
  if (!m.model) {
    return Status::Unavailable("model '" + m.name + "' is swapped out: swap it in before running "
                               "task '" + task + "'");
  }
  const auto tasks = Tasks();
  if (std::find(tasks.begin(), tasks.end(), task) == tasks.end()) {
    std::string known;
    for (const auto& t : tasks) known += (known.empty() ? "" : ", ") + t;
    return Status::NotFound("model '" + m.name + "': unknown task '" + task + "' (tasks: " +
                            known + ")");
  }
  if (!params.is_object()) {
    return Status::InvalidArgument(m.Prefix(task) + "parameters must be a JSON object");
  }
  if (task == kGenerate) return m.Generate(inputs, params, stream);
  MG_ASSIGN_OR_RETURN(Batch batch, m.ReadInputs(task, inputs, params));
  const hf::NativeModel& model = *m.model;
  if (task == kEmbed) {
    MG_ASSIGN_OR_RETURN(torch::Tensor e, model.Embed(batch.ids, batch.mask));
    MG_ASSIGN_OR_RETURN(InferTensor out, FromTorch(e, "embedding"));
    std::vector<int64_t> counts;
    for (const auto& row : batch.rows) counts.push_back(static_cast<int64_t>(row.size()));
    return std::vector<InferTensor>{
        std::move(out),
        hf_internal::Int64("prompt_tokens", {static_cast<int64_t>(counts.size())}, counts)};
  }
  if (!model.has_logits()) {
    MG_ASSIGN_OR_RETURN(torch::Tensor h, model.Hidden(batch.ids, batch.mask));
    MG_ASSIGN_OR_RETURN(InferTensor out, FromTorch(h, "last_hidden_state"));
    return std::vector<InferTensor>{std::move(out)};
  }
  MG_ASSIGN_OR_RETURN(torch::Tensor logits, model.Logits(batch.ids, batch.mask));
  MG_ASSIGN_OR_RETURN(InferTensor logits_out, FromTorch(logits, "logits"));
  std::vector<InferTensor> outs;
  if (task == kClassify) {
    torch::Tensor scores = torch::softmax(logits.to(torch::kFloat), -1).to(torch::kCPU);
    torch::Tensor best = scores.argmax(-1);
    std::vector<std::string> labels;
    for (int64_t r = 0; r < best.size(0); ++r) {
      const int64_t i = best[r].item<int64_t>();
      const auto& names = model.labels();
      labels.push_back(i < static_cast<int64_t>(names.size()) ? names[i]
                                                              : "LABEL_" + std::to_string(i));
    }
    outs.push_back(hf_internal::Bytes("label", labels));
    MG_ASSIGN_OR_RETURN(InferTensor scores_out, FromTorch(scores, "scores"));
    outs.push_back(std::move(scores_out));
  }
  outs.push_back(std::move(logits_out));
  return outs;
}

Result<SwapOutReport> HuggingFaceBackend::SwapOut(const SwapTarget& /*target*/) {
  if (!impl_) return Status::Unavailable("swap-out: no model loaded");
  std::unique_lock<std::shared_mutex> lock(impl_->mu);
  SwapOutReport report;
  report.location = "repository files";
  if (!impl_->model) return report;
  const auto start = std::chrono::steady_clock::now();
  report.rss_before_bytes = backend_internal::ResidentBytes();
  report.bytes = impl_->model->weight_memory().allocated_bytes +
                 impl_->model->weight_memory().mapped_bytes;
  impl_->DropSessions();
  impl_->model.reset();
  backend_internal::TrimHeap();
  report.rss_after_bytes = backend_internal::ResidentBytes();
  report.duration_us = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                                 std::chrono::steady_clock::now() - start)
                                                 .count());
  return report;
}

Result<SwapInReport> HuggingFaceBackend::SwapIn() {
  if (!impl_) return Status::Unavailable("swap-in: no model loaded");
  std::unique_lock<std::shared_mutex> lock(impl_->mu);
  SwapInReport report;
  if (impl_->model) return report;
  const auto start = std::chrono::steady_clock::now();
  MG_RETURN_IF_ERROR(impl_->LoadFiles());
  report.bytes = impl_->model->weight_memory().allocated_bytes +
                 impl_->model->weight_memory().mapped_bytes;
  report.reloaded = true;
  report.reason = "the huggingface backend swaps to its repository files: loaded again";
  report.duration_us = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                                 std::chrono::steady_clock::now() - start)
                                                 .count());
  return report;
}

bool HuggingFaceBackend::swapped() const { return impl_ && !impl_->model; }

Status HuggingFaceBackend::SetMemoryLimit(std::optional<uint64_t> limit_bytes) {
  if (impl_ && impl_->device.rfind("cuda", 0) == 0) {
    return Status::Unsupported("model '" + impl_->name +
                               "': memory limits on CUDA devices are set by the worker's "
                               "caching-allocator cap");
  }
  return backend_internal::SetCpuMemoryLimit(limit_bytes);
}

BackendMemoryStats HuggingFaceBackend::MemoryStats() const {
  return backend_internal::CpuMemoryStats();
}

void HuggingFaceBackend::ResetPeakMemory() { backend_internal::ResetCpuPeak(); }

uint64_t HuggingFaceBackend::MappedBytes() const {
  if (!impl_) return 0;
  std::shared_lock<std::shared_mutex> lock(impl_->mu);
  return impl_->model ? impl_->model->weight_memory().mapped_bytes : 0;
}

}  // namespace modelgrid
