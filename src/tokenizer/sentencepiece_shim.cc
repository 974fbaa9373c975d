// libmodelgrid_sentencepiece.so: the C interface of sentencepiece_shim.h over
// libsentencepiece's SentencePieceProcessor. The only file that includes
// <sentencepiece_processor.h> in the library (tests train models with it).
#include "tokenizer/sentencepiece_shim.h"

#include <sentencepiece_processor.h>

#include <exception>
#include <memory>
#include <string>

#define MG_SPM_EXPORT __attribute__((visibility("default")))

struct MgSpm {
  sentencepiece::SentencePieceProcessor processor;
};

namespace {

void Report(MgSpmText error, void* context, const std::string& message) {
  if (error != nullptr) error(context, message.data(), message.size());
}

}  // namespace

extern "C" {

MG_SPM_EXPORT int mg_spm_abi_version(void) { return MG_SPM_ABI_VERSION; }

MG_SPM_EXPORT MgSpm* mg_spm_load(const char* bytes, size_t size, MgSpmText error, void* context) {
  try {
    auto model = std::make_unique<MgSpm>();
    auto status = model->processor.LoadFromSerializedProto(std::string(bytes, size));
    if (!status.ok()) {
      Report(error, context, status.ToString());
      return nullptr;
    }
    return model.release();
  } catch (const std::exception& e) {
    Report(error, context, e.what());
  } catch (...) {
    Report(error, context, "unknown exception");
  }
  return nullptr;
}

MG_SPM_EXPORT void mg_spm_free(MgSpm* model) { delete model; }

MG_SPM_EXPORT int32_t mg_spm_piece_count(const MgSpm* model) {
  return model->processor.GetPieceSize();
}

MG_SPM_EXPORT int mg_spm_piece(const MgSpm* model, int32_t id, MgSpmText out, void* context) {
  const sentencepiece::SentencePieceProcessor& p = model->processor;
  const std::string& piece = p.IdToPiece(id);
  out(context, piece.data(), piece.size());
  if (p.IsUnknown(id)) return MG_SPM_UNKNOWN;
  if (p.IsControl(id)) return MG_SPM_CONTROL;
  if (p.IsByte(id)) return MG_SPM_BYTE;
  if (p.IsUnused(id)) return MG_SPM_UNUSED;
  return MG_SPM_NORMAL;
}

MG_SPM_EXPORT void mg_spm_reserved_ids(const MgSpm* model, int32_t ids[4]) {
  const sentencepiece::SentencePieceProcessor& p = model->processor;
  ids[0] = p.unk_id();
  ids[1] = p.bos_id();
  ids[2] = p.eos_id();
  ids[3] = p.pad_id();
}

MG_SPM_EXPORT int mg_spm_encode(const MgSpm* model, const char* text, size_t size, MgSpmPiece piece,
                                MgSpmText error, void* context) {
  try {
    sentencepiece::ImmutableSentencePieceText spt;
    auto status = model->processor.Encode(std::string_view(text, size), spt.mutable_proto());
    if (!status.ok()) {
      Report(error, context, status.ToString());
      return -1;
    }
    for (const auto& p : spt.pieces()) {
      piece(context, static_cast<int32_t>(p.id()), p.piece().data(), p.piece().size(), p.begin(),
            p.end());
    }
    return 0;
  } catch (const std::exception& e) {
    Report(error, context, e.what());
  } catch (...) {
    Report(error, context, "unknown exception");
  }
  return -1;
}

}  // extern "C"
