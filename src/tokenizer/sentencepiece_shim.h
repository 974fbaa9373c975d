// The C interface of libmodelgrid_sentencepiece.so, the one place that calls
// libsentencepiece (sentencepiece_shim.cc). SentencePieceModel
// (sentencepiece_model.cc) loads it with dlopen(RTLD_LOCAL | RTLD_DEEPBIND)
// instead of linking libsentencepiece into the process: Debian's
// libsentencepiece0 carries its own protobuf-lite 3.14 and exports its
// symbols, so in a process that also loads the system libprotobuf 3.21
// (LibTorch, gRPC, the worker payloads) its calls would bind to 3.21's
// functions and abort ("compiled against version 3.14.0 of the Protocol
// Buffer runtime library"). Deep binding keeps the library on its own copy.
//
// Plain C types only; strings go out through callbacks, so no heap memory
// changes owner across the boundary; no exception crosses it. A handle is
// immutable after load and may be used from several threads.
#pragma once

#include <cstddef>
#include <cstdint>

extern "C" {

// Bumped when a signature below changes; the loader refuses another value.
#define MG_SPM_ABI_VERSION 1

typedef struct MgSpm MgSpm;
// Receives a string (not NUL-terminated) for the duration of the call.
typedef void (*MgSpmText)(void* context, const char* data, size_t size);
// Receives one encoded piece: id, piece string, [begin, end) bytes of the input.
typedef void (*MgSpmPiece)(void* context, int32_t id, const char* piece, size_t size,
                           uint32_t begin, uint32_t end);

// Piece types (ModelProto.SentencePiece.Type; USER_DEFINED reads as normal).
enum {
  MG_SPM_NORMAL = 0,
  MG_SPM_UNKNOWN = 1,
  MG_SPM_CONTROL = 2,
  MG_SPM_UNUSED = 3,
  MG_SPM_BYTE = 4
};

typedef int (*MgSpmAbiVersionFn)(void);
// Loads a serialised ModelProto (`size` bytes). NULL on failure, after
// passing the library's reason to `error`.
typedef MgSpm* (*MgSpmLoadFn)(const char* bytes, size_t size, MgSpmText error, void* context);
typedef void (*MgSpmFreeFn)(MgSpm* model);
typedef int32_t (*MgSpmPieceCountFn)(const MgSpm* model);
// Passes piece `id` (0 <= id < count) to `out`; returns its MG_SPM_* type.
typedef int (*MgSpmPieceFn)(const MgSpm* model, int32_t id, MgSpmText out, void* context);
// ids[0..3] = unk, bos, eos, pad ids (-1 where the model has none).
typedef void (*MgSpmReservedIdsFn)(const MgSpm* model, int32_t ids[4]);
// Segments `size` bytes of UTF-8 text, passing each piece to `piece`.
// Returns 0, or -1 after passing the library's reason to `error`.
typedef int (*MgSpmEncodeFn)(const MgSpm* model, const char* text, size_t size, MgSpmPiece piece,
                             MgSpmText error, void* context);

}  // extern "C"

// The exported names, in the order of the types above.
#define MG_SPM_SYMBOLS(X)                    \
  X(MgSpmAbiVersionFn, mg_spm_abi_version)   \
  X(MgSpmLoadFn, mg_spm_load)                \
  X(MgSpmFreeFn, mg_spm_free)                \
  X(MgSpmPieceCountFn, mg_spm_piece_count)   \
  X(MgSpmPieceFn, mg_spm_piece)              \
  X(MgSpmReservedIdsFn, mg_spm_reserved_ids) \
  X(MgSpmEncodeFn, mg_spm_encode)
