// The control vocabulary between the frontend and a modelgrid-worker: message
// types (the `type` of a Frame) and their payloads, with (de)serialization.
// Definitions only: what a worker does with them lives in the worker
// component.
//
// Conventions for every payload:
// - the serialized protocol buffer of src/ipc/worker.proto named after the
//   message type (`load_failed` -> modelgrid.ipc.pb.LoadFailed), one file
//   for the whole protocol; the table below lists each one's fields as
//   {"field": type}; worker.proto documents them (units included);
// - all sizes and offsets are integer bytes (unsigned), durations
//   microseconds;
// - a field the schema does not have is an error (both ends are built from
//   the same tree, so an unknown field is a bug or a version mix-up, never
//   silently dropped);
// - required scalar fields have presence on the wire (proto3 `optional`)
//   and a message without one is refused; fields marked "opt" below may be
//   absent and take the default shown;
// - request ids: `infer`, `result`, `output_needed` and `output_region` carry
//   `request_id` in the payload and the frame header (they must agree); for
//   the other messages the header's request_id correlates a reply with its
//   request (0 = none);
// - errors are {"code": "<StatusCodeName>", "message": "...",
//                "memory_limit": memory_limit opt} (the typed detail of a
//   refusal by a memory limit, status.h MemoryLimitDetail; absent otherwise);
// - text is protobuf `bytes`, so any byte string survives (a model's or a
//   client's text never makes a message undecodable).
//
// type (u16)          direction   payload
// ping (1)            F -> W      {}
// pong (2)            W -> F      {"protocol_version": u32, "pid": i64}
// attach_arena (3)    F -> W      {"name": str, "capacity_bytes": u64}; the frame
//                                 carries the arena's memfd (SCM_RIGHTS)
// load (10)           F -> W      {"model": str, "path": str, "device": str,
//                                  "limit_bytes": u64, "request_bytes": u64 opt 0,
//                                  "max_batch_size": u32 opt 0}; the frame may
//                                 carry one descriptor, the model's lane (below)
// loaded (11)         W -> F      {"model": str, "current_bytes": u64, "peak_bytes": u64,
//                                  "tasks": [str] opt [], "inputs": [spec] opt [],
//                                  "outputs": [spec] opt []}
// load_failed (12)    W -> F      {"model": str, "error": error}; also the reply to
//                                 an `unload` that failed (NOT_FOUND: not loaded)
// infer (20)          F -> W      {"request_id": u64, "model": str, "task": str,
//                                  "inputs": [tensor], "output": region,
//                                  "output_names": [str] opt [],
//                                  "params_json": str opt "" (a JSON object; "" = {}),
//                                  "limit_bytes": u64 opt (absent: the load's limit)}
// result (21)         W -> F      {"request_id": u64, "model": str,
//                                  then exactly one of "outputs": {"tensors": [tensor]}
//                                  or "error": error (a oneof)}
// output_needed (22)  W -> F      {"request_id": u64, "model": str, "bytes": u64}
// output_region (23)  F -> W      {"request_id": u64, "offset": u64, "size": u64}
// get_stats (30)      F -> W      {}
// stats (31)          W -> F      {"current_bytes": u64, "peak_bytes": u64,
//                                  "models": [{"model","current_bytes","peak_bytes",
//                                              "swapped": bool opt false}] opt [],
//                                  "cuda": [cuda] opt []}
// unload (40)         F -> W      {"model": str}
// unloaded (41)       W -> F      {"model": str}
// shutdown (50)       F -> W      {}  (no reply: the worker closes its socket and exits)
// attach_region (60)  F -> W      {"id": u64 >= 1, "map_bytes": u64}; the frame carries
//                                 the descriptor of a registered system shared-memory
//                                 region (shm_registry.h), mapped read-only [0, map_bytes)
// region_attached (61) W -> F     {"id": u64, "error": error opt}
// detach_region (62)  F -> W      {"id": u64}  (no reply; requests in flight keep it)
// swap_out (70)       F -> W      {"model": str, "swap_dir": str opt ""}
// swapped_out (71)    W -> F      {"model": str, "bytes": u64, "duration_us": u64,
//                                  "rss_before_bytes": u64, "rss_after_bytes": u64,
//                                  "error": error opt}
// swap_in (72)        F -> W      {"model": str}
// swapped_in (73)     W -> F      {"model": str, "bytes": u64, "duration_us": u64,
//                                  "reloaded": bool, "reason": str opt "", "error": error opt}
// set_limit (80)      F -> W      {"model": str, "limit_bytes": u64, "reason": str opt ""}
// limit_set (81)      W -> F      {"model": str, "held_bytes": u64, "released_bytes": u64,
//                                  "error": error opt}
//
// tensor = {"name": str, "datatype": KServe v2 name ("FP32", ...),
//           "shape": [i64 >= 0], "offset": u64, "size": u64, "region": u64 opt 0}
//          region 0: the bytes lie in the arena (offset 64-byte aligned);
//          region N: in attached shared-memory region N (any offset; inputs only)
// region = {"offset": u64, "size": u64}
// memory_limit = {"model": str, "device": str, "limit_bytes": u64,
//                 "in_use_bytes": u64, "requested_bytes": u64}
// cuda   = {"index": u32, "allocated_bytes": u64, "reserved_bytes": u64,
//           "peak_reserved_bytes": u64}
// spec   = {"name": str, "datatype": KServe v2 name, "dims": [i64 >= -1]}
//          (a repository TensorSpec: dims exclude the batch dim, -1 = any)
//
// Arena regions (tensor_arena.h): each input tensor lies in a region the
// frontend allocated; `output` is a region the frontend allocated for this
// request, which the worker owns until it replies and fills with the output
// tensors (each 64-byte aligned and inside `output`).
//
// Outputs that do not fit `output`: the worker keeps them (no recomputation)
// and sends `output_needed` with the exact byte count; the frontend allocates
// a region of at least that many bytes and answers `output_region`; the
// worker writes the outputs there and sends the usual `result`, whose
// tensors then lie inside the new region. Both regions stay the frontend's
// to free after the `result`. An `output_region` smaller than `bytes` (the
// frontend could not allocate it, or gave up on the request) makes the
// worker drop the outputs and answer `result` with a RESOURCE_EXHAUSTED
// error. So every `infer` gets exactly one `result`, whatever happens.
//
// Lanes: a `load` frame may carry one end of a connected AF_UNIX stream
// socket, the instance's lane. Once `loaded` has been answered, the frontend
// may send that model's `infer` frames on the lane instead of the control
// socket; the worker's thread for the model reads them itself and answers
// `result` and `output_needed` on the lane, and the frontend answers
// `output_region` there too. The messages are the same. What a lane saves is
// two thread hand-offs per request: the worker's receive loop and the
// frontend's reader thread are not on its path. The frontend sends at most
// one `infer` at a time on a lane and waits for its `result` (the model runs
// one request at a time anyway); a `result` for a request the frontend gave
// up on may still arrive and is matched by request id. The worker closes
// its end when the model is unloaded or its load fails; `load`, `unload`,
// `get_stats`, `swap_out`, `swap_in` and `set_limit` stay on the control
// socket.
//
// Swap (docs/design.md, "Memory model" → swap): `swap_out` moves a loaded
// model's weights off its device (CPU: to one file in `swap_dir`; CUDA: to
// pinned host memory) while the worker keeps the model's graph; `swap_in`
// brings them back (from the model's files instead when the swap file is
// missing or corrupt: `reloaded` true, `reason` why). Both run on the
// model's thread in order with its requests: an `infer` sent before a
// `swap_out` is answered first, and an `infer` for a swapped-out model is
// answered with UNAVAILABLE "model 'M' is swapped out: ...". Each is
// answered once, by its reply message; `error` set means it failed (e.g.
// NOT_FOUND: the worker does not hold the model) and the other figures are
// then 0. A `swap_out` of a swapped-out model and a `swap_in` of a resident
// one change nothing (bytes 0).
//
// Per-execution memory cap: `limit_bytes` of an `infer` replaces the
// model's load-time limit for that one execution (the frontend grants
// bytes past the model's request per batch; 0 = no limit for it); the
// load-time limit is in force again afterwards. A refusal by either comes
// back as RESOURCE_EXHAUSTED with `memory_limit` in the error.
//
// Changing a model's cap at once (docs/design.md, "Memory model" →
// resolver priority): `set_limit` is handled by the worker's receive loop
// itself, not queued behind the model's requests, so it takes effect even
// while the model's thread is in the middle of a request. `limit_bytes`
// becomes the model's cap now (0 = none): for the execution in flight, if
// any, and, in place of the load's limit, for later requests that carry no
// `limit_bytes` of their own (an `infer` that carries one still replaces it
// for its execution, then the set_limit's cap is back). Lowering it below
// what the request in flight already holds makes its next allocation fail:
// that request is answered with RESOURCE_EXHAUSTED (`memory_limit` set) and
// its message ends with "; <reason>" when `reason` is not empty. It also
// gives the model's device cached-but-unused bytes back (CUDA: the caching
// allocator's emptyCache; CPU: nothing is cached). `limit_set` reports the
// bytes the model holds after it (CPU: its own counters; CUDA: the
// allocator's allocated bytes on its device, all of the worker's models
// there) and the bytes given back (CPU: 0). `error`: NOT_FOUND when the
// worker does not hold the model, UNAVAILABLE while it is still loading,
// the CUDA error when the device cap could not be set (then nothing
// changed).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "modelgrid/datatype.h"
#include "modelgrid/ipc/frame.h"
#include "modelgrid/ipc/region_allocator.h"
#include "modelgrid/repository.h"
#include "modelgrid/status.h"

namespace modelgrid::ipc {

// Bumped whenever a schema below changes incompatibly; sent in `pong`.
// 6: every payload a protobuf of worker.proto (was JSON but for infer/result).
// 7: `load` names the backend kind; `loaded` echoes it.
inline constexpr uint32_t kProtocolVersion = 7;

enum class MessageType : uint16_t {
  kPing = 1,
  kPong = 2,
  kAttachArena = 3,
  kLoad = 10,
  kLoaded = 11,
  kLoadFailed = 12,
  kInfer = 20,
  kResult = 21,
  kOutputNeeded = 22,
  kOutputRegion = 23,
  kGetStats = 30,
  kStats = 31,
  kUnload = 40,
  kUnloaded = 41,
  kShutdown = 50,
  kAttachRegion = 60,
  kRegionAttached = 61,
  kDetachRegion = 62,
  kSwapOut = 70,
  kSwappedOut = 71,
  kSwapIn = 72,
  kSwappedIn = 73,
  kSetLimit = 80,
  kLimitSet = 81,
};

// The lower-case name used in the table above ("load_failed"); "unknown" for
// a value outside the enum.
std::string_view MessageTypeName(MessageType type);
// The MessageType with wire value `value`, or nullopt when there is none.
std::optional<MessageType> ToMessageType(uint16_t value);

// A Status as it travels in a message: its code, its message and, of its
// typed detail (status.h StatusDetail), the memory limit that refused an
// allocation. (A worker's errors carry no other detail.)
struct ErrorInfo {
  StatusCode code = StatusCode::kInternal;
  std::string message;
  std::optional<MemoryLimitDetail> memory_limit;

  ErrorInfo() = default;
  ErrorInfo(StatusCode code_in, std::string message_in,
            std::optional<MemoryLimitDetail> memory_limit_in = std::nullopt)
      : code(code_in), message(std::move(message_in)), memory_limit(std::move(memory_limit_in)) {}

  static ErrorInfo FromStatus(const Status& status) {
    ErrorInfo e(status.code(), status.message());
    if (const MemoryLimitDetail* m = status.memory_limit()) e.memory_limit = *m;
    return e;
  }
  // The Status, with a StatusDetail carrying memory_limit when set.
  Status ToStatus() const {
    Status s(code, message);
    if (!memory_limit) return s;
    StatusDetail detail;
    detail.memory_limit = memory_limit;
    return s.WithDetail(std::move(detail));
  }
  // Field-wise (MemoryLimitDetail has no operator==).
  bool operator==(const ErrorInfo& other) const;
};

// A tensor placed in the arena. `size` is its byte count; for fixed-size
// datatypes it must equal product(shape) * DataTypeSize(datatype) (checked
// when decoding). `offset` must be a multiple of kRegionAlignment.
struct TensorRef {
  std::string name;
  DataType datatype = DataType::kFP32;
  std::vector<int64_t> shape;
  uint64_t offset = 0;
  uint64_t size = 0;
  // 0: the bytes lie in the arena; N: in the shared-memory region attached
  // as N (`attach_region`), `offset` bytes from the start of its file.
  uint64_t region_id = 0;

  Region region() const { return {offset, size}; }
  bool operator==(const TensorRef&) const = default;
};

// F -> W: are you alive? Answered by `pong` with the same header request_id.
struct PingMessage {
  static constexpr MessageType kType = MessageType::kPing;
  bool operator==(const PingMessage&) const = default;
};

// W -> F: the answer to `ping`.
struct PongMessage {
  static constexpr MessageType kType = MessageType::kPong;
  uint32_t protocol_version = kProtocolVersion;
  int64_t pid = 0;  // the worker's process id
  bool operator==(const PongMessage&) const = default;
};

// F -> W: the arena to read inputs from and write outputs to. The frame
// carries the memfd (Channel::Send with fds = {arena.fd()}). No reply.
struct AttachArenaMessage {
  static constexpr MessageType kType = MessageType::kAttachArena;
  std::string name;
  uint64_t capacity_bytes = 0;  // pass to SharedMemory::MapFromFd with the received fd
  bool operator==(const AttachArenaMessage&) const = default;
};

// F -> W: map a registered system shared-memory region (its descriptor rides
// on the frame) under `id`, so that input tensors may point into it.
// Answered by `region_attached`.
struct AttachRegionMessage {
  static constexpr MessageType kType = MessageType::kAttachRegion;
  uint64_t id = 0;
  uint64_t map_bytes = 0;  // bytes of the file to map, from offset 0
  bool operator==(const AttachRegionMessage&) const = default;
};

// W -> F: the answer to `attach_region`; `error` set when the mapping failed.
struct RegionAttachedMessage {
  static constexpr MessageType kType = MessageType::kRegionAttached;
  uint64_t id = 0;
  std::optional<ErrorInfo> error;
  bool operator==(const RegionAttachedMessage&) const = default;
};

// F -> W: forget region `id` (unregistered). No reply.
struct DetachRegionMessage {
  static constexpr MessageType kType = MessageType::kDetachRegion;
  uint64_t id = 0;
  bool operator==(const DetachRegionMessage&) const = default;
};

// F -> W: load a model instance under a memory limit. Answered by `loaded`
// or `load_failed`.
struct LoadMessage {
  static constexpr MessageType kType = MessageType::kLoad;
  std::string model;
  std::string path;             // the model's folder, a repository entry (e.g.
                                // ".../models/resnet50"), opened with OpenModel
  std::string device;           // "cpu", "cuda:0"
  uint64_t limit_bytes = 0;     // most bytes the instance may hold; 0 = no limit
  uint64_t request_bytes = 0;   // bytes guaranteed; 0 = limit_bytes (the
                                // frontend's bookkeeping; the worker enforces
                                // limit_bytes only)
  uint32_t max_batch_size = 0;  // the frontend's batch cap: when it and the
                                // model's config.yaml value are both > 0 it
                                // replaces the latter; 0 keeps config.yaml's
  std::string backend;          // the backend kind (CreateBackend,
                                // modelgrid/backend/model_backend.h): "torchscript",
                                // "huggingface"; "" = the worker asks BackendKindFor
  bool operator==(const LoadMessage&) const = default;
};

// W -> F: the instance is ready; its memory as measured by the worker, and
// what it answers (so that the frontend, which has no LibTorch, can publish
// the model's metadata).
struct LoadedMessage {
  static constexpr MessageType kType = MessageType::kLoaded;
  std::string model;
  uint64_t current_bytes = 0;       // bytes the instance holds after loading (the
                                    // allocator's live bytes after minus before)
  uint64_t peak_bytes = 0;          // most bytes it held while loading (above
                                    // those live before the load)
  std::string backend;              // the kind that loaded it (ModelBackend::kind())
  std::vector<std::string> tasks;   // ModelBackend::Tasks()
  std::vector<TensorSpec> inputs;   // ModelBackend::Inputs("infer")
  std::vector<TensorSpec> outputs;  // ModelBackend::Outputs()
  // Field-wise (TensorSpec has no operator==).
  bool operator==(const LoadedMessage& other) const;
};

// W -> F: the instance could not be loaded (e.g. RESOURCE_EXHAUSTED when
// the limit was hit, NOT_FOUND for a missing file), or could not be
// unloaded (NOT_FOUND: the worker does not hold it).
struct LoadFailedMessage {
  static constexpr MessageType kType = MessageType::kLoadFailed;
  std::string model;
  ErrorInfo error;
  bool operator==(const LoadFailedMessage&) const = default;
};

// F -> W: run `task` of `model` on inputs already in the arena. Answered by
// `result` with the same request_id.
struct InferMessage {
  static constexpr MessageType kType = MessageType::kInfer;
  uint64_t request_id = 0;
  std::string model;
  std::string task;  // what to run, e.g. "forward"
  std::vector<TensorRef> inputs;
  Region output;                          // where the worker writes outputs
  std::vector<std::string> output_names;  // empty = all outputs
  // Task parameters (e.g. generate's max_new_tokens), a JSON object handed to
  // TorchScriptBackend::Run as is.
  nlohmann::json params = nlohmann::json::object();
  // The memory cap of this one execution, bytes (the model's request plus
  // the bytes the frontend granted it for this batch; 0 = none); nullopt =
  // the limit of the model's `load`. The worker applies it to the model's
  // allocator (CPU: its counting allocator's limit; CUDA: the caching
  // allocator's cap, raised or lowered by the difference) while the request
  // runs and restores the load's limit after it.
  std::optional<uint64_t> limit_bytes;
  bool operator==(const InferMessage&) const = default;
};

// The reply to `infer`: outputs when `error` is empty, else the error.
struct ResultMessage {
  static constexpr MessageType kType = MessageType::kResult;
  uint64_t request_id = 0;
  std::string model;
  std::vector<TensorRef> outputs;
  std::optional<ErrorInfo> error;
  bool operator==(const ResultMessage&) const = default;
};

// W -> F: the outputs of request `request_id` need `bytes` bytes (from the
// start of the region, each tensor 64-byte aligned), more than its `output`
// region holds. The worker keeps them and waits for `output_region`.
struct OutputNeededMessage {
  static constexpr MessageType kType = MessageType::kOutputNeeded;
  uint64_t request_id = 0;
  std::string model;
  uint64_t bytes = 0;
  bool operator==(const OutputNeededMessage&) const = default;
};

// F -> W: the answer to `output_needed`: a region the frontend allocated for
// the outputs of `request_id`. A size below the `bytes` asked for (e.g.
// {0, 0}) means "none": the worker answers `result` with RESOURCE_EXHAUSTED.
struct OutputRegionMessage {
  static constexpr MessageType kType = MessageType::kOutputRegion;
  uint64_t request_id = 0;
  uint64_t offset = 0;  // a multiple of kRegionAlignment
  uint64_t size = 0;

  Region region() const { return {offset, size}; }
  bool operator==(const OutputRegionMessage&) const = default;
};

// F -> W: report memory. Answered by `stats`.
struct GetStatsMessage {
  static constexpr MessageType kType = MessageType::kGetStats;
  bool operator==(const GetStatsMessage&) const = default;
};

// One instance's memory inside a `stats` reply, in bytes (aligned blocks).
// CPU models: the bytes charged to the model's own counters (the
// allocations of its thread: exact; src/worker/README.md says what is not
// charged to it); CUDA models: the device bytes its load added (0 while
// swapped out) and the device's allocated peak during its load.
struct ModelMemory {
  std::string model;
  uint64_t current_bytes = 0;
  uint64_t peak_bytes = 0;  // since its load
  bool swapped = false;     // its weights are swapped out ("swapped" on the wire,
                            // written only when true)
  bool operator==(const ModelMemory&) const = default;
};

// What the worker's CUDA caching allocator holds on one device (absent in
// workers without CUDA models). `reserved_bytes` is what the GPU sees of the
// allocator; NVML's per-process figure minus it is the worker's CUDA
// context and library overhead.
struct CudaMemory {
  int32_t index = 0;  // N of cuda:N, as the worker sees it
  uint64_t allocated_bytes = 0;
  uint64_t reserved_bytes = 0;
  uint64_t peak_reserved_bytes = 0;
  bool operator==(const CudaMemory&) const = default;
};

// Memory of the whole worker process, and per instance when it hosts several.
struct StatsMessage {
  static constexpr MessageType kType = MessageType::kStats;
  uint64_t current_bytes = 0;
  uint64_t peak_bytes = 0;
  std::vector<ModelMemory> models;
  std::vector<CudaMemory> cuda;  // optional on the wire ("cuda": [...])
  bool operator==(const StatsMessage&) const = default;
};

// F -> W: drop an instance and free its memory. Answered by `unloaded`.
struct UnloadMessage {
  static constexpr MessageType kType = MessageType::kUnload;
  std::string model;
  bool operator==(const UnloadMessage&) const = default;
};

// W -> F: the instance is gone.
struct UnloadedMessage {
  static constexpr MessageType kType = MessageType::kUnloaded;
  std::string model;
  bool operator==(const UnloadedMessage&) const = default;
};

// F -> W: move a loaded model's weights off its device (CPU models: to the
// file "<swap_dir>/<model>.<pid>.mgswap"; CUDA models: to pinned host
// memory, swap_dir ignored), after the requests sent to it before.
// Answered by `swapped_out`.
struct SwapOutMessage {
  static constexpr MessageType kType = MessageType::kSwapOut;
  std::string model;
  std::string swap_dir;  // a folder; created when missing; required for CPU models
  bool operator==(const SwapOutMessage&) const = default;
};

// W -> F: the answer to `swap_out`: what moved, how long it took, and the
// worker's resident memory (VmRSS) before and after; `error` set when the
// swap-out failed (the model then still serves, its weights in place).
struct SwappedOutMessage {
  static constexpr MessageType kType = MessageType::kSwappedOut;
  std::string model;
  uint64_t bytes = 0;             // weight bytes moved off the device
  uint64_t duration_us = 0;       // microseconds
  uint64_t rss_before_bytes = 0;  // the worker process's resident bytes
  uint64_t rss_after_bytes = 0;
  std::optional<ErrorInfo> error;
  bool operator==(const SwappedOutMessage&) const = default;
};

// F -> W: bring a swapped-out model's weights back onto its device.
// Answered by `swapped_in`.
struct SwapInMessage {
  static constexpr MessageType kType = MessageType::kSwapIn;
  std::string model;
  bool operator==(const SwapInMessage&) const = default;
};

// W -> F: the answer to `swap_in`; `reloaded` when the swap tier failed and
// the model was loaded again from its repository files (`reason` says why);
// `error` set when the swap-in failed (the model then stays swapped out).
struct SwappedInMessage {
  static constexpr MessageType kType = MessageType::kSwappedIn;
  std::string model;
  uint64_t bytes = 0;        // weight bytes back on the device
  uint64_t duration_us = 0;  // microseconds
  bool reloaded = false;
  std::string reason;
  std::optional<ErrorInfo> error;
  bool operator==(const SwappedInMessage&) const = default;
};

// F -> W: set `model`'s memory cap to `limit_bytes` at once, even while it
// runs a request (see "Changing a model's cap at once" above), and give its
// device's cached-but-unused bytes back. Answered by `limit_set`.
struct SetLimitMessage {
  static constexpr MessageType kType = MessageType::kSetLimit;
  std::string model;
  uint64_t limit_bytes = 0;  // the new cap, bytes; 0 = none
  // Why, e.g. "preempted by model 'hi' (priority 5)": appended to the
  // memory-limit error of a request that this cap refuses. "" = none.
  std::string reason;
  bool operator==(const SetLimitMessage&) const = default;
};

// W -> F: the answer to `set_limit`; `error` set when nothing changed (the
// figures are then 0).
struct LimitSetMessage {
  static constexpr MessageType kType = MessageType::kLimitSet;
  std::string model;
  // Bytes the model holds right after the change (CPU: its own counters'
  // aligned bytes; CUDA: the caching allocator's allocated bytes on the
  // model's device, every model of the worker there).
  uint64_t held_bytes = 0;
  // Cached bytes given back to the device (CUDA: what emptyCache released
  // there; CPU: always 0).
  uint64_t released_bytes = 0;
  std::optional<ErrorInfo> error;
  bool operator==(const LimitSetMessage&) const = default;
};

// F -> W: exit now. No reply: the frontend waits for end of stream and the
// child's exit status.
struct ShutdownMessage {
  static constexpr MessageType kType = MessageType::kShutdown;
  bool operator==(const ShutdownMessage&) const = default;
};

// The frame payload of a message: the serialized protobuf message of
// src/ipc/worker.proto named after its type (`load` -> modelgrid.ipc.pb.Load).
// Never fails.
std::string EncodePayload(const PingMessage& m);
std::string EncodePayload(const PongMessage& m);
std::string EncodePayload(const AttachArenaMessage& m);
std::string EncodePayload(const LoadMessage& m);
std::string EncodePayload(const LoadedMessage& m);
std::string EncodePayload(const LoadFailedMessage& m);
std::string EncodePayload(const InferMessage& m);
std::string EncodePayload(const ResultMessage& m);
std::string EncodePayload(const OutputNeededMessage& m);
std::string EncodePayload(const OutputRegionMessage& m);
std::string EncodePayload(const GetStatsMessage& m);
std::string EncodePayload(const StatsMessage& m);
std::string EncodePayload(const UnloadMessage& m);
std::string EncodePayload(const UnloadedMessage& m);
std::string EncodePayload(const ShutdownMessage& m);
std::string EncodePayload(const AttachRegionMessage& m);
std::string EncodePayload(const RegionAttachedMessage& m);
std::string EncodePayload(const DetachRegionMessage& m);
std::string EncodePayload(const SwapOutMessage& m);
std::string EncodePayload(const SwappedOutMessage& m);
std::string EncodePayload(const SwapInMessage& m);
std::string EncodePayload(const SwappedInMessage& m);
std::string EncodePayload(const SetLimitMessage& m);
std::string EncodePayload(const LimitSetMessage& m);

// Parses a frame payload made by EncodePayload into `*out` (left unspecified
// on error). Errors: kCorruption naming the message type and, where one is
// at fault, the field ("'load' message: field 'limit_bytes': missing"):
// bytes that are not the protobuf message, a field the schema does not have
// (or of another wire type), a missing required field (worker.proto marks
// them), an unknown datatype or error code (or "OK"), a tensor with an
// empty name, a negative dimension or a size that disagrees with its shape,
// a misaligned arena offset, a missing `output` region or a "params" that
// is not a JSON object (infer), a spec dim below -1, an empty model
// (swap_out, swap_in, set_limit), a region id 0 (attach_region), a
// negative CUDA device index (stats), or (result) neither outputs nor error.
Status DecodePayload(std::string_view payload, PingMessage* out);
Status DecodePayload(std::string_view payload, PongMessage* out);
Status DecodePayload(std::string_view payload, AttachArenaMessage* out);
Status DecodePayload(std::string_view payload, LoadMessage* out);
Status DecodePayload(std::string_view payload, LoadedMessage* out);
Status DecodePayload(std::string_view payload, LoadFailedMessage* out);
Status DecodePayload(std::string_view payload, InferMessage* out);
Status DecodePayload(std::string_view payload, ResultMessage* out);
Status DecodePayload(std::string_view payload, OutputNeededMessage* out);
Status DecodePayload(std::string_view payload, OutputRegionMessage* out);
Status DecodePayload(std::string_view payload, GetStatsMessage* out);
Status DecodePayload(std::string_view payload, StatsMessage* out);
Status DecodePayload(std::string_view payload, UnloadMessage* out);
Status DecodePayload(std::string_view payload, UnloadedMessage* out);
Status DecodePayload(std::string_view payload, ShutdownMessage* out);
Status DecodePayload(std::string_view payload, AttachRegionMessage* out);
Status DecodePayload(std::string_view payload, RegionAttachedMessage* out);
Status DecodePayload(std::string_view payload, DetachRegionMessage* out);
Status DecodePayload(std::string_view payload, SwapOutMessage* out);
Status DecodePayload(std::string_view payload, SwappedOutMessage* out);
Status DecodePayload(std::string_view payload, SwapInMessage* out);
Status DecodePayload(std::string_view payload, SwappedInMessage* out);
Status DecodePayload(std::string_view payload, SetLimitMessage* out);
Status DecodePayload(std::string_view payload, LimitSetMessage* out);

// Checks that every tensor lies inside `bounds` ([offset, offset + size) of
// each within [bounds.offset, bounds.offset + bounds.size)) — what the
// frontend verifies of a worker's outputs against the request's output
// region before reading them. Errors: kCorruption naming the tensor.
Status CheckTensorsWithin(const std::vector<TensorRef>& tensors, const Region& bounds);

// A frame carrying `m`. Messages with a `request_id` field (infer, result,
// output_needed, output_region)
// put it in the header and ignore `request_id`; the others use `request_id`.
template <typename M>
Frame ToFrame(const M& m, uint64_t request_id = 0) {
  Frame frame;
  frame.type = static_cast<uint16_t>(M::kType);
  if constexpr (requires { m.request_id; }) {
    frame.request_id = m.request_id;
  } else {
    frame.request_id = request_id;
  }
  frame.payload = EncodePayload(m);
  return frame;
}

// Decodes `frame` as an M. Errors: kInvalidArgument when the frame's type is
// not M::kType (an unexpected message, both types named); kCorruption as
// DecodePayload, or when the payload's request_id disagrees with the header's.
template <typename M>
Result<M> FromFrame(const Frame& frame) {
  if (frame.type != static_cast<uint16_t>(M::kType)) {
    const auto got = ToMessageType(frame.type);
    return Status::InvalidArgument("expected a '" + std::string(MessageTypeName(M::kType)) +
                                   "' message, got " +
                                   (got ? "'" + std::string(MessageTypeName(*got)) + "'"
                                        : "unknown type " + std::to_string(frame.type)));
  }
  M m;
  Status s = DecodePayload(frame.payload, &m);
  if (!s.ok()) return s;
  if constexpr (requires { m.request_id; }) {
    if (m.request_id != frame.request_id) {
      return Status::Corruption("'" + std::string(MessageTypeName(M::kType)) +
                                "' message: request_id " + std::to_string(m.request_id) +
                                " disagrees with the frame header's " +
                                std::to_string(frame.request_id));
    }
  }
  return m;
}

}  // namespace modelgrid::ipc
