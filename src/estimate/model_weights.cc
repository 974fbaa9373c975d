#include "estimate/model_weights.h"

#include <array>
#include <cmath>
#include <map>

#include "estimate/safetensors.h"
#include "estimate/torchscript_archive.h"
#include "estimate/transformer_counts.h"

namespace modelgrid::estimate {

namespace {

// Cross-check tolerance between two parameter counts (formats.md counts are
// exact; 0.5 % leaves room for small heads and buffers).
constexpr double kCountTolerance = 0.005;

struct HfTensors {
  std::vector<SafetensorsTensor> tensors;  // all files, all shards
  uint64_t bytes = 0;
  uint64_t elements = 0;
};

Result<HfTensors> ReadAllSafetensors(const ModelEntry& model, std::vector<std::string>* notes) {
  HfTensors out;
  auto take = [&out](const SafetensorsFile& f) {
    out.tensors.insert(out.tensors.end(), f.tensors.begin(), f.tensors.end());
    out.bytes += f.tensor_bytes;
    out.elements += f.parameter_elements;
  };
  if (model.safetensors_index) {
    MG_ASSIGN_OR_RETURN(ShardedSafetensors s, ReadShardedSafetensors(*model.safetensors_index));
    for (const SafetensorsFile& f : s.shards) take(f);
    notes->insert(notes->end(), s.notes.begin(), s.notes.end());
    return out;
  }
  for (const auto& path : model.safetensors) {
    MG_ASSIGN_OR_RETURN(SafetensorsFile f, ReadSafetensorsHeader(path));
    take(f);
  }
  if (model.safetensors.size() > 1) {
    notes->push_back(std::to_string(model.safetensors.size()) +
                     " safetensors files without an index: all of them counted");
  }
  return out;
}

const SafetensorsTensor* FindTensor(const HfTensors& t, std::string_view name) {
  for (const SafetensorsTensor& x : t.tensors) {
    if (x.name == name) return &x;
  }
  return nullptr;
}

// A tied output head stored beside the embedding it shares (transformers
// usually drops it when saving): counted once. Returns the head's name.
std::string DropTiedHead(const HfConfig& c, HfTensors* t, std::vector<std::string>* notes) {
  // Heads: causal LMs, BertForMaskedLM, the roberta family's lm_head,
  // DistilBertForMaskedLM's vocab_projector.
  static constexpr std::array<std::string_view, 4> kHeads = {
      "lm_head.weight", "cls.predictions.decoder.weight", "lm_head.decoder.weight",
      "vocab_projector.weight"};
  static constexpr std::array<std::string_view, 8> kEmbeddings = {
      "transformer.wte.weight",
      "wte.weight",
      "model.embed_tokens.weight",
      "embed_tokens.weight",
      "bert.embeddings.word_embeddings.weight",
      "roberta.embeddings.word_embeddings.weight",
      "distilbert.embeddings.word_embeddings.weight",
      "embeddings.word_embeddings.weight"};
  if (!c.tie_word_embeddings) return "";
  for (std::string_view head : kHeads) {
    const SafetensorsTensor* h = FindTensor(*t, head);
    if (h == nullptr) continue;
    for (std::string_view emb : kEmbeddings) {
      const SafetensorsTensor* e = FindTensor(*t, emb);
      if (e == nullptr || e->bytes != h->bytes) continue;
      notes->push_back(std::string(head) + " is tied to " + std::string(emb) +
                       " (tie_word_embeddings): its " + std::to_string(h->bytes) +
                       " bytes are counted once");
      t->bytes -= h->bytes;
      t->elements -= h->numel;
      const std::string name(head);
      std::erase_if(t->tensors, [&](const SafetensorsTensor& x) { return x.name == name; });
      return name;
    }
  }
  if (c.is_causal_lm()) {
    notes->push_back("lm_head is tied to the input embedding: not in the file, shares its storage");
  }
  return "";
}

// Element size of the floating dtype holding the most bytes, or 0.
uint64_t DominantFloatSize(const std::map<uint64_t, uint64_t>& bytes_by_size) {
  uint64_t best = 0, best_bytes = 0;
  for (const auto& [size, bytes] : bytes_by_size) {
    if (bytes > best_bytes) best = size, best_bytes = bytes;
  }
  return best;
}

uint64_t SafetensorsFloatSize(const HfTensors& t) {
  std::map<uint64_t, uint64_t> by_size;
  for (const SafetensorsTensor& x : t.tensors) {
    if (x.dtype == "F32") by_size[4] += x.bytes;
    if (x.dtype == "F16" || x.dtype == "BF16") by_size[2] += x.bytes;
    if (x.dtype == "F64") by_size[8] += x.bytes;
  }
  return DominantFloatSize(by_size);
}

uint64_t ArchiveFloatSize(const TorchScriptArchive& a) {
  std::map<uint64_t, uint64_t> by_size;
  for (const TorchScriptStorage& s : a.storages) {
    const std::string& t = s.storage_type;
    if (t == "torch.FloatStorage" || t == "torch.HalfStorage" || t == "torch.BFloat16Storage" ||
        t == "torch.DoubleStorage") {
      by_size[s.element_size] += s.record_bytes;
    }
  }
  return DominantFloatSize(by_size);
}

bool Differs(uint64_t a, uint64_t b) {
  const double hi = static_cast<double>(std::max(a, b));
  return hi > 0 &&
         std::fabs(static_cast<double>(a) - static_cast<double>(b)) > kCountTolerance * hi;
}

void CrossCheckCount(const HfConfig& c, uint64_t elements, const std::string& what,
                     std::vector<std::string>* notes) {
  const HeadAdjustedCount expected = ArchitectureParameterCount(c);
  const std::string arch = expected.architecture.empty() ? c.model_type : expected.architecture;
  if (!expected.known) {
    notes->push_back("config.json: architecture '" + expected.architecture +
                     "' has no known head; the cross-check uses the base " + c.model_type +
                     " count");
  }
  if (Differs(elements, expected.parameters)) {
    notes->push_back(what + " " + std::to_string(elements) + " elements but config.json (" + arch +
                     ") gives " + std::to_string(expected.parameters) + " parameters");
  }
}

// Bytes per element a safetensors dtype runs at in the native Hugging Face
// backend (src/hf/native_model.h) on `device`, or 0 when it keeps the file's
// bytes: on the CPU F32, F16 and BF16 all run as float32 (F16/BF16 are
// upcast at load, F32 is a view of the mapped file); on CUDA config.yaml's
// `dtype` when set (the load option), else the file's own size.
uint64_t NativeElementBytes(const std::string& dtype, DeviceKind device,
                            uint64_t cuda_dtype_bytes) {
  if (dtype != "F32" && dtype != "F16" && dtype != "BF16") return 0;
  if (device == DeviceKind::kCpu) return 4;
  return cuda_dtype_bytes;
}

}  // namespace

Result<ModelWeights> GatherWeights(const ModelEntry& model, DeviceKind device) {
  ModelWeights w;
  if (model.hf_config) {
    MG_ASSIGN_OR_RETURN(HfConfig c, ReadHfConfig(*model.hf_config));
    w.config = std::move(c);
  }
  std::optional<HfTensors> st;
  if (model.safetensors_index || !model.safetensors.empty()) {
    MG_ASSIGN_OR_RETURN(HfTensors t, ReadAllSafetensors(model, &w.notes));
    if (w.config) DropTiedHead(*w.config, &t, &w.notes);
    st = std::move(t);
  }
  const uint64_t buffers = w.config ? NonPersistentBufferBytes(*w.config) : 0;
  if (w.config && st)
    CrossCheckCount(*w.config, st->elements, "safetensors headers hold", &w.notes);

  if (model.torchscript) {
    MG_ASSIGN_OR_RETURN(TorchScriptArchive a, ReadTorchScriptArchive(*model.torchscript));
    w.source = "model.pt";
    w.bytes = a.weight_bytes();
    w.allocations = a.record_sizes;
    w.load_transient_bytes = a.other_record_bytes;
    w.parameters = st ? st->elements : a.storage_elements();
    w.compute_dtype_bytes = ArchiveFloatSize(a);
    w.notes.insert(w.notes.end(), a.notes.begin(), a.notes.end());
    if (st && w.bytes != st->bytes + buffers) {
      w.notes.push_back("weights: model.pt holds " + std::to_string(w.bytes) +
                        " bytes; safetensors " + std::to_string(st->bytes) + " + " +
                        std::to_string(buffers) + " non-persistent buffer bytes = " +
                        std::to_string(st->bytes + buffers) + " (model.pt is what runs)");
    }
    if (w.config && !st) {
      CrossCheckCount(*w.config, a.storage_elements(),
                      "model.pt storages (parameters and buffers) hold", &w.notes);
    }
  } else if (st) {
    // No TorchScript export: the native Hugging Face backend runs the
    // folder (backend_kind.h). Its compute dtype decides the resident bytes
    // (native_model.h): float32 on the CPU whatever the file holds (LibTorch
    // 1.13 lacks many fp16 CPU kernels), so fp16/bf16 tensors take twice
    // their file bytes there; on CUDA config.yaml's dtype when set, else
    // the file's dtype.
    uint64_t cuda_dtype_bytes = 0;
    if (device != DeviceKind::kCpu && !model.config.dtype.empty()) {
      Result<uint64_t> b = TorchDtypeBytes(model.config.dtype);
      if (!b.ok()) return b.status().WithPrefix("config.yaml: field 'dtype'");
      cuda_dtype_bytes = b.value();
    }
    w.source = "safetensors";
    w.parameters = st->elements;
    uint64_t converted = 0;  // tensors whose device size differs from the file's
    for (const SafetensorsTensor& t : st->tensors) {
      const uint64_t size = NativeElementBytes(t.dtype, device, cuda_dtype_bytes);
      const uint64_t bytes = size == 0 ? t.bytes : t.numel * size;
      if (bytes != t.bytes) ++converted;
      w.allocations.push_back(bytes);
      w.bytes += bytes;
    }
    const uint64_t file_bytes = st->bytes;
    w.bytes += buffers;
    w.compute_dtype_bytes = SafetensorsFloatSize(*st);
    if (device == DeviceKind::kCpu && w.compute_dtype_bytes != 0) {
      w.compute_dtype_bytes = 4;
    } else if (cuda_dtype_bytes != 0 && w.compute_dtype_bytes != 0) {
      w.compute_dtype_bytes = cuda_dtype_bytes;
    }
    if (converted > 0) {
      w.notes.push_back(
          "weights: " + std::to_string(converted) + " tensor(s) converted at load to " +
          (device == DeviceKind::kCpu ? std::string("float32 (the native backend computes in "
                                                    "float32 on the CPU)")
                                      : "config.yaml's dtype " + model.config.dtype) +
          ": " + std::to_string(w.bytes - buffers) + " bytes on the device for " +
          std::to_string(file_bytes) + " bytes in the files");
    }
    if (w.config) {
      const std::vector<uint64_t> b = NonPersistentBufferAllocations(*w.config);
      w.allocations.insert(w.allocations.end(), b.begin(), b.end());
      if (buffers > 0) {
        w.notes.push_back("weights include " + std::to_string(buffers) +
                          " bytes of non-persistent buffers created at init (" +
                          w.config->model_type + ")");
      }
    }
  } else if (w.config) {
    w.source = "config.json";
    w.parameters = ArchitectureParameterCount(*w.config).parameters;
    w.bytes = w.parameters * w.config->dtype_bytes + buffers;
    w.allocations = {w.parameters * w.config->dtype_bytes};
    w.notes.push_back("no weight files: weights = config.json parameter count × torch_dtype size");
  } else {
    return Status::NotFound(model.dir.string() + ": no model.pt, safetensors or config.json");
  }
  if (w.compute_dtype_bytes == 0) w.compute_dtype_bytes = w.config ? w.config->dtype_bytes : 4;
  if (w.config && w.config->dtype_bytes != w.compute_dtype_bytes && w.source == "safetensors" &&
      device == DeviceKind::kCpu) {
    w.notes.push_back("config.json torch_dtype is " + w.config->torch_dtype +
                      "; the native backend computes in float32 on the CPU: activations and "
                      "the KV cache use 4-byte floats");
  } else if (w.config && w.config->dtype_bytes != w.compute_dtype_bytes) {
    w.notes.push_back("config.json torch_dtype is " + w.config->torch_dtype +
                      " but the weights that run use " + std::to_string(w.compute_dtype_bytes) +
                      "-byte floats; activations use the latter");
  }
  return w;
}

}  // namespace modelgrid::estimate
