// The device memory ledger (docs/design.md, "Memory model"): the one account, per
// device, of the bytes ModelGrid hands out there.
//
// Per device it holds
//   capacity  — bytes the ledger may hand out on the device:
//               total − used by others − buffer (the caller measures these);
//   contexts  — one worker process context per worker key ("held" bytes);
//   requests  — each resident instance's request, held while it is resident;
//   borrowed  — bytes granted to instances past their request (bursts),
//               never past an instance's limit, only from free bytes;
// and, beside the devices, one host swap tier (pinned host memory, its own
// capacity = the host swap budget) where a swapped-out instance's request
// bytes live while it is off its device.
//
//   held(d) = contexts(d) + Σ requests of resident instances on d + borrowed(d)
//   free(d) = capacity(d) − held(d)       (0 when held(d) ≥ capacity(d))
//
// Invariant: no operation raises held(d) above capacity(d), nor the host
// tier's bytes above the host capacity. Capacities may be lowered below what
// is held (SetCapacity, SetHostCapacity): nothing is taken back, and nothing
// new is given on that device (or tier) until it fits again.
//
// An instance ("model#replica") never loses its request bytes through
// another instance's operation: grants are only ever past the request, so an
// allocation within its own request never asks the ledger. Only its own
// Update, SwapOut or Remove changes what it holds, and a reclaim plan
// (reclaim.h) is applied by the caller through exactly those calls.
//
// The ledger never blocks and never waits: bytes that are not free are a
// kResourceExhausted error carrying a CollisionDetail (status.h) for the
// model's resolver (reclaim.h) to settle.
//
// Thread-compatible: not internally locked; the grid calls it under its own
// mutex.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "modelgrid/bytes.h"
#include "modelgrid/repository.h"
#include "modelgrid/status.h"

namespace modelgrid::memory {

// Grants are rounded up to this many bytes (32 MiB) unless LedgerOptions
// says otherwise: fewer, larger grants, as the CUDA caching allocator
// reserves memory in segments anyway.
inline constexpr uint64_t kGrantChunkBytes = 32 * kMiB;

// The name collisions on the host swap tier give as their device.
inline constexpr char kHostTier[] = "host";

// Settings of a MemoryLedger.
struct LedgerOptions {
  // Grant() rounds the bytes asked up to a multiple of this (bytes). 0 or 1:
  // no rounding.
  uint64_t grant_chunk_bytes = kGrantChunkBytes;
};

// One instance as the ledger accounts it. Figures in bytes.
struct InstanceAccount {
  std::string instance;        // "model#replica", unique in the ledger
  std::string model;           // the model's name (named in collisions)
  std::string device;          // "cuda:0", "cpu", ...: where it is resident
  uint64_t request_bytes = 0;  // held on the device while resident
  uint64_t limit_bytes = 0;    // request + the most it may borrow; ≥ request
  int priority = 0;            // higher wins collisions (resolver priority)
  Resolver resolver = Resolver::kWait;
  bool pinned = false;  // never reclaimed by a resolver or eviction

  bool operator==(const InstanceAccount&) const = default;
};

// Changes to an admitted instance (Update). Unset fields stay as they are.
struct InstanceUpdate {
  std::optional<uint64_t> request_bytes;
  std::optional<uint64_t> limit_bytes;
  std::optional<int> priority;
  std::optional<Resolver> resolver;
  std::optional<bool> pinned;
};

// One instance's row in a snapshot. Figures in bytes.
struct InstanceView {
  InstanceAccount account;
  uint64_t granted_bytes = 0;  // borrowed past the request (0 while swapped);
                               // may exceed limit − request after Update
                               // lowered the limit, until returned
  bool swapped = false;        // its request bytes are in the host tier
  uint64_t device_bytes = 0;   // held on the device: request + granted, or 0 when swapped
  uint64_t host_bytes = 0;     // held in the host tier: request when swapped, else 0

  bool operator==(const InstanceView&) const = default;
};

// One worker process context charged to a device (bytes).
struct ContextView {
  std::string worker;
  uint64_t bytes = 0;

  bool operator==(const ContextView&) const = default;
};

// A device's account at one moment. Figures in bytes.
struct DeviceLedger {
  std::string device;
  uint64_t capacity_bytes = 0;
  uint64_t request_bytes = 0;           // Σ requests of resident instances
  uint64_t context_bytes = 0;           // Σ worker contexts
  uint64_t borrowed_bytes = 0;          // Σ grants of resident instances
  uint64_t held_bytes = 0;              // request + context + borrowed
  uint64_t free_bytes = 0;              // capacity − held, 0 when held ≥ capacity
  uint64_t swapped_bytes = 0;           // host-tier bytes of this device's swapped instances
  uint64_t host_free_bytes = 0;         // free bytes of the (shared) host swap tier
  std::vector<InstanceView> instances;  // resident and swapped, sorted by instance
  std::vector<ContextView> contexts;    // sorted by worker
};

// The account. See the file comment for the model and the invariants.
class MemoryLedger {
 public:
  explicit MemoryLedger(LedgerOptions options = {});

  // --- Devices and the host tier ---

  // Opens the account of `device` with `capacity_bytes` to hand out.
  // Errors: kInvalidArgument if `device` is empty; kAlreadyExists if known.
  Status AddDevice(const std::string& device, uint64_t capacity_bytes);

  // Sets `device`'s capacity (bytes), e.g. after another process's use
  // changed. It may be lowered below what is held: nothing is taken back, and
  // nothing new is given there until held bytes fit again.
  // Errors: kNotFound for an unknown device.
  Status SetCapacity(const std::string& device, uint64_t capacity_bytes);

  // Sets the host swap tier's capacity (bytes; 0 at construction: no swap).
  // May be lowered below what it holds, with SetCapacity's meaning.
  void SetHostCapacity(uint64_t bytes);

  // --- Worker contexts ---

  // Charges a worker process's context (`bytes`) to `device` under
  // `worker_key` until ReleaseContext.
  // Errors: kNotFound for an unknown device; kAlreadyExists if `worker_key`
  // is charged already; kResourceExhausted with a CollisionDetail (model =
  // worker_key) when `bytes` are not free on the device.
  Status ChargeContext(const std::string& device, const std::string& worker_key, uint64_t bytes);

  // Returns `worker_key`'s context bytes to its device. Unknown keys: no-op.
  void ReleaseContext(const std::string& worker_key);

  // --- Instances ---

  // Opens `account.instance` resident on `account.device`, holding
  // `account.request_bytes` there.
  // Errors: kInvalidArgument if the instance name is empty or limit_bytes <
  // request_bytes; kNotFound for an unknown device; kAlreadyExists if the
  // instance is known; kResourceExhausted with a CollisionDetail (asked =
  // request bytes, the device's free bytes and holders) when the request is
  // not free.
  Status Admit(const InstanceAccount& account);

  // Closes `instance`'s account, returning everything it holds: request and
  // grants on its device, or its host-tier bytes when swapped (the instance
  // was unloaded). Unknown instances: no-op.
  void Remove(const std::string& instance);

  // Lends `instance` bytes past its request for a burst and returns the bytes
  // granted: `bytes` rounded up to the grant chunk, cut to the instance's
  // limit room (limit − request − granted) and to the device's free bytes,
  // never less than `bytes` (0 asks for nothing and gets 0).
  // Errors: kNotFound for an unknown instance; kUnavailable while it is
  // swapped out (SwapIn first); kResourceExhausted with a MemoryLimitDetail
  // (limit, in use = request + granted, requested = bytes) when `bytes`
  // exceed the limit room; kResourceExhausted with a CollisionDetail (asked =
  // bytes) when `bytes` are not free on the device. The ledger never waits.
  Result<uint64_t> Grant(const std::string& instance, uint64_t bytes);

  // Gives back up to `bytes` of `instance`'s grant (more than it holds
  // returns all of it). Unknown instances: no-op.
  void Return(const std::string& instance, uint64_t bytes);

  // Gives back all of `instance`'s grant. Unknown instances: no-op.
  void ReturnAll(const std::string& instance);

  // Moves `instance` off its device: its grant is returned and its request
  // bytes move from the device to the host tier.
  // Errors: kNotFound for an unknown instance; kInvalidArgument when it is
  // already swapped; kResourceExhausted with a CollisionDetail (device =
  // kHostTier, holders = swapped instances) when the host tier lacks room for
  // its request.
  Status SwapOut(const std::string& instance);

  // Brings a swapped `instance` back: its request bytes leave the host tier
  // and are held on its device again (no grant).
  // Errors: kNotFound for an unknown instance; kInvalidArgument when it is
  // not swapped; kResourceExhausted with a CollisionDetail (asked = request)
  // when the request is not free on the device.
  Status SwapIn(const std::string& instance);

  // True when `instance` is known and swapped out.
  bool IsSwapped(const std::string& instance) const;

  // Reconfigures `instance` at runtime. Raising the request needs the extra
  // bytes free where the request lives (its device, or the host tier when
  // swapped); lowering the limit below what it holds (request + granted) is
  // allowed and recorded: nothing is taken back, no new grant is given until
  // returns bring it under the limit. All-or-nothing: on error nothing
  // changes.
  // Errors: kNotFound for an unknown instance; kInvalidArgument when the new
  // limit is below the new request; kResourceExhausted with a
  // CollisionDetail (asked = the increase) when a raised request is not free.
  Status Update(const std::string& instance, const InstanceUpdate& update);

  // --- Queries ---

  // `device`'s account now. Errors: kNotFound for an unknown device.
  Result<DeviceLedger> Snapshot(const std::string& device) const;

  // `device`'s free bytes (capacity − held, 0 when over); 0 for an unknown
  // device.
  uint64_t FreeBytes(const std::string& device) const;

  // `device`'s instance rows sorted by instance; empty for an unknown device.
  std::vector<InstanceView> Instances(const std::string& device) const;

  // `instance`'s row, or nullopt when unknown.
  std::optional<InstanceView> Find(const std::string& instance) const;

  // Known devices, sorted.
  std::vector<std::string> Devices() const;

  // The host swap tier: its capacity, the bytes swapped instances hold there,
  // and its free bytes (capacity − held, 0 when over).
  uint64_t host_capacity_bytes() const { return host_capacity_; }
  uint64_t host_bytes() const { return host_bytes_; }
  uint64_t HostFreeBytes() const;

  // Recomputes every total from the rows and returns "" when they agree
  // (and free = capacity − held), else a description of the first mismatch.
  // Run after every mutation under assert in debug builds; tests call it.
  std::string CheckConsistency() const;

 private:
  struct Instance {
    InstanceAccount account;
    uint64_t granted = 0;
    bool swapped = false;
  };
  struct Device {
    uint64_t capacity = 0;
    uint64_t requests = 0;  // resident instances only
    uint64_t contexts = 0;
    uint64_t borrowed = 0;
    uint64_t held() const { return requests + contexts + borrowed; }
    uint64_t free() const { return capacity > held() ? capacity - held() : 0; }
  };
  struct Context {
    std::string device;
    uint64_t bytes = 0;
  };

  // A kResourceExhausted Status with a CollisionDetail naming the device's
  // holders (or the host tier's when `device` is kHostTier). `resolver` is
  // ResolverName's spelling, "" for a worker context.
  Status Collision(const std::string& model, const std::string& resolver, const std::string& device,
                   uint64_t asked, uint64_t free, const std::string& what) const;
  InstanceView View(const Instance& inst) const;
  void DebugCheck() const;

  LedgerOptions options_;
  std::map<std::string, Device> devices_;
  std::map<std::string, Instance> instances_;
  std::map<std::string, Context> contexts_;
  uint64_t host_capacity_ = 0;
  uint64_t host_bytes_ = 0;
};

}  // namespace modelgrid::memory
