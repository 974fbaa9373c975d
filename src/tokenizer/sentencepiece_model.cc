#include "tokenizer/sentencepiece_model.h"

#include <dlfcn.h>

#include <algorithm>
#include <filesystem>
#include <mutex>

namespace modelgrid::tokenizer {

namespace {

constexpr const char* kShimName = "libmodelgrid_sentencepiece.so";

// The functions of libmodelgrid_sentencepiece.so (sentencepiece_shim.h).
struct ShimApi {
#define MG_SPM_FIELD(type, name) type name = nullptr;
  MG_SPM_SYMBOLS(MG_SPM_FIELD)
#undef MG_SPM_FIELD
};

// Deep binding keeps libsentencepiece on its own protobuf; AddressSanitizer
// refuses RTLD_DEEPBIND (such a build must not also load libprotobuf).
#if defined(__SANITIZE_ADDRESS__)
constexpr int kDlopenFlags = RTLD_NOW | RTLD_LOCAL;
#else
constexpr int kDlopenFlags = RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND;
#endif

// Beside the executable, in ../lib from it, and where this build put it.
std::vector<std::filesystem::path> ShimCandidates() {
  std::vector<std::filesystem::path> out;
  std::error_code ec;
  const std::filesystem::path exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    out.push_back(exe.parent_path() / kShimName);
    out.push_back(exe.parent_path().parent_path() / "lib" / kShimName);
  }
  const std::filesystem::path built(MODELGRID_SENTENCEPIECE_SHIM);
  if (std::find(out.begin(), out.end(), built) == out.end()) out.push_back(built);
  return out;
}

Status OpenShim(ShimApi* api) {
  std::string tried;
  for (const std::filesystem::path& path : ShimCandidates()) {
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) {
      tried += " " + path.string() + " (missing)";
      continue;
    }
    void* handle = dlopen(path.c_str(), kDlopenFlags);
    if (handle == nullptr) {
      const char* why = dlerror();
      tried += " " + path.string() + " (" + (why != nullptr ? why : "dlopen failed") + ")";
      continue;
    }
    bool complete = true;
#define MG_SPM_RESOLVE(type, name)                           \
  api->name = reinterpret_cast<type>(dlsym(handle, #name));  \
  if (api->name == nullptr) {                                \
    tried += " " + path.string() + " (no symbol " #name ")"; \
    complete = false;                                        \
  }
    MG_SPM_SYMBOLS(MG_SPM_RESOLVE)
#undef MG_SPM_RESOLVE
    if (complete && api->mg_spm_abi_version() != MG_SPM_ABI_VERSION) {
      tried += " " + path.string() + " (interface version " +
               std::to_string(api->mg_spm_abi_version()) + ", expected " +
               std::to_string(MG_SPM_ABI_VERSION) + ")";
      complete = false;
    }
    if (complete) return Status::Ok();
    dlclose(handle);
  }
  return Status::Internal(
      std::string("cannot load ") + kShimName +
      " (the libsentencepiece wrapper built with modelgrid_tokenizer); tried:" + tried);
}

// The wrapper's functions, loaded once per process (never unloaded).
Result<const ShimApi*> Shim() {
  static ShimApi api;
  static Status status;
  static std::once_flag once;
  std::call_once(once, [] { status = OpenShim(&api); });
  if (!status.ok()) return status;
  return &api;
}

void AppendText(void* context, const char* data, size_t size) {
  static_cast<std::string*>(context)->append(data, size);
}

// Protocol-buffer wire format, read only as far as finding one field: the
// library parses the file; this reads normalizer_spec.add_dummy_prefix,
// which its public API (0.1.97) does not expose.
class WireReader {
 public:
  explicit WireReader(std::string_view data) : data_(data) {}

  // The next field: its number, and its payload (LEN) or value (VARINT).
  // false at the end or on bytes that are not the wire format.
  bool Next(uint32_t* field, uint32_t* wire, std::string_view* payload, uint64_t* value) {
    uint64_t key = 0;
    if (pos_ >= data_.size() || !Varint(&key)) return false;
    *field = static_cast<uint32_t>(key >> 3);
    *wire = static_cast<uint32_t>(key & 7);
    switch (*wire) {
      case 0:
        return Varint(value);
      case 1:
      case 5: {
        size_t width = *wire == 1 ? 8 : 4;
        if (data_.size() - pos_ < width) return false;
        pos_ += width;
        return true;
      }
      case 2: {
        uint64_t size = 0;
        if (!Varint(&size) || size > data_.size() - pos_) return false;
        *payload = data_.substr(pos_, size);
        pos_ += size;
        return true;
      }
      default:
        return false;
    }
  }

 private:
  bool Varint(uint64_t* v) {
    *v = 0;
    for (int shift = 0; shift < 64 && pos_ < data_.size(); shift += 7) {
      auto byte = static_cast<unsigned char>(data_[pos_++]);
      *v |= static_cast<uint64_t>(byte & 0x7F) << shift;
      if ((byte & 0x80) == 0) return true;
    }
    return false;
  }

  std::string_view data_;
  size_t pos_ = 0;
};

constexpr uint32_t kNormalizerSpec = 3;  // ModelProto.normalizer_spec
constexpr uint32_t kAddDummyPrefix = 3;  // NormalizerSpec.add_dummy_prefix (default true)

// add_dummy_prefix of a ModelProto (later occurrences of the embedded
// message merge into earlier ones, so the last value wins).
bool AddsDummyPrefix(std::string_view model) {
  bool result = true;
  WireReader top(model);
  uint32_t field = 0, wire = 0;
  std::string_view payload;
  uint64_t value = 0;
  while (top.Next(&field, &wire, &payload, &value)) {
    if (field != kNormalizerSpec || wire != 2) continue;
    WireReader spec(payload);
    while (spec.Next(&field, &wire, &payload, &value)) {
      if (field == kAddDummyPrefix && wire == 0) result = value != 0;
    }
  }
  return result;
}

// `model` with normalizer_spec.add_dummy_prefix set to false: a second
// normalizer_spec holding only that field merges into the first.
std::string WithoutDummyPrefix(std::string_view model) {
  std::string out(model);
  out += std::string("\x1A\x02\x18\x00", 4);  // field 3 (LEN, 2 bytes): field 3 (VARINT) = 0
  return out;
}

std::optional<int64_t> Reserved(int32_t id) {
  return id >= 0 ? std::optional<int64_t>(id) : std::nullopt;
}

// What mg_spm_encode hands back to.
struct EncodeContext {
  const NormalizedString* input;
  std::vector<Token>* out;
  std::string error;
};

void AppendPiece(void* context, int32_t id, const char* piece, size_t size, uint32_t begin,
                 uint32_t end) {
  auto* c = static_cast<EncodeContext*>(context);
  c->out->push_back({id, std::string(piece, size), c->input->SpanOf(begin, end)});
}

void EncodeError(void* context, const char* data, size_t size) {
  static_cast<EncodeContext*>(context)->error.append(data, size);
}

PieceType TypeOf(int shim_type) {
  switch (shim_type) {
    case MG_SPM_UNKNOWN:
      return PieceType::kUnknown;
    case MG_SPM_CONTROL:
      return PieceType::kControl;
    case MG_SPM_BYTE:
      return PieceType::kByte;
    case MG_SPM_UNUSED:
      return PieceType::kUnused;
    default:
      return PieceType::kNormal;
  }
}

}  // namespace

SentencePieceModel::SentencePieceModel() = default;
SentencePieceModel::~SentencePieceModel() = default;

Result<std::unique_ptr<SentencePieceModel>> SentencePieceModel::Create(std::string_view bytes,
                                                                       const std::string& name,
                                                                       bool legacy) {
  MG_ASSIGN_OR_RETURN(const ShimApi* api, Shim());
  auto load = [&](std::string_view model) -> Result<Handle> {
    std::string error;
    MgSpm* handle = api->mg_spm_load(model.data(), model.size(), AppendText, &error);
    if (handle == nullptr) {
      return Status::Corruption(name + ": not a SentencePiece model that libsentencepiece reads (" +
                                error + ")");
    }
    return Handle(handle, api->mg_spm_free);
  };
  std::unique_ptr<SentencePieceModel> m(new SentencePieceModel());
  m->name_ = name;
  m->encode_ = api->mg_spm_encode;
  MG_ASSIGN_OR_RETURN(m->processor_, load(bytes));
  m->adds_dummy_prefix_ = AddsDummyPrefix(bytes);
  if (!legacy && m->adds_dummy_prefix_) {
    MG_ASSIGN_OR_RETURN(m->without_prefix_, load(WithoutDummyPrefix(bytes)));
  }
  const MgSpm* p = m->processor_.get();
  const int32_t n = api->mg_spm_piece_count(p);
  if (n <= 0) return Status::Corruption(name + ": the SentencePiece model has no pieces");
  m->pieces_.reserve(n);
  m->types_.reserve(n);
  m->vocab_.reserve(n);
  for (int32_t id = 0; id < n; ++id) {
    std::string piece;
    m->types_.push_back(TypeOf(api->mg_spm_piece(p, id, AppendText, &piece)));
    m->vocab_.emplace(piece, id);
    m->pieces_.push_back(std::move(piece));
  }
  int32_t reserved[4];
  api->mg_spm_reserved_ids(p, reserved);
  m->unk_id_ = Reserved(reserved[0]);
  m->bos_id_ = Reserved(reserved[1]);
  m->eos_id_ = Reserved(reserved[2]);
  m->pad_id_ = Reserved(reserved[3]);
  for (std::optional<int64_t>* id : {&m->unk_id_, &m->bos_id_, &m->eos_id_, &m->pad_id_}) {
    if (*id && **id >= n) *id = std::nullopt;
  }
  if (m->unk_id_) m->unk_token_ = m->pieces_[*m->unk_id_];
  return m;
}

Status SentencePieceModel::Tokenize(const NormalizedString& piece, std::vector<Token>* out) const {
  const bool starts_text = piece.SpanAt(0).begin == 0;
  const MgSpm* model = without_prefix_ && !starts_text ? without_prefix_.get() : processor_.get();
  const size_t first = out->size();
  EncodeContext context{&piece, out, ""};
  if (encode_(model, piece.text().data(), piece.size(), AppendPiece, EncodeError, &context) != 0) {
    out->resize(first);
    return Status::Internal(name_ + ": libsentencepiece: " + context.error);
  }
  for (size_t i = first; i < out->size(); ++i) {
    const int64_t id = (*out)[i].id;
    if (id < 0 || static_cast<size_t>(id) >= types_.size()) {
      out->resize(first);
      return Status::Internal(name_ + ": libsentencepiece gave id " + std::to_string(id));
    }
  }
  // The library gives a character's span to its last byte piece and empty
  // spans (at the character's start) to the ones before it.
  for (size_t i = out->size(); i-- > first + 1;) {
    Token& prev = (*out)[i - 1];
    const Token& next = (*out)[i];
    if (prev.offsets.begin == prev.offsets.end && prev.offsets.begin == next.offsets.begin &&
        types_[prev.id] == PieceType::kByte && types_[next.id] == PieceType::kByte) {
      prev.offsets = next.offsets;
    }
  }
  return Status::Ok();
}

}  // namespace modelgrid::tokenizer
