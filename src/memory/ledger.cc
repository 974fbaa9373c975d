#include "modelgrid/memory/ledger.h"

#include <algorithm>
#include <cassert>

namespace modelgrid::memory {
namespace {

// a − b, or 0 when b ≥ a.
uint64_t Minus(uint64_t a, uint64_t b) { return a > b ? a - b : 0; }

}  // namespace

MemoryLedger::MemoryLedger(LedgerOptions options) : options_(options) {}

Status MemoryLedger::AddDevice(const std::string& device, uint64_t capacity_bytes) {
  if (device.empty()) return Status::InvalidArgument("memory ledger: empty device name");
  if (devices_.count(device) != 0) {
    return Status::AlreadyExists("memory ledger: device " + device + " is already known");
  }
  devices_[device].capacity = capacity_bytes;
  return Status::Ok();
}

Status MemoryLedger::SetCapacity(const std::string& device, uint64_t capacity_bytes) {
  auto it = devices_.find(device);
  if (it == devices_.end()) return Status::NotFound("memory ledger: unknown device " + device);
  it->second.capacity = capacity_bytes;
  return Status::Ok();
}

void MemoryLedger::SetHostCapacity(uint64_t bytes) { host_capacity_ = bytes; }

uint64_t MemoryLedger::HostFreeBytes() const { return Minus(host_capacity_, host_bytes_); }

Status MemoryLedger::ChargeContext(const std::string& device, const std::string& worker_key,
                                   uint64_t bytes) {
  auto it = devices_.find(device);
  if (it == devices_.end()) return Status::NotFound("memory ledger: unknown device " + device);
  if (contexts_.count(worker_key) != 0) {
    return Status::AlreadyExists("memory ledger: worker " + worker_key +
                                 " already has a context charged");
  }
  Device& d = it->second;
  if (bytes > d.free()) {
    return Collision(worker_key, "", device, bytes, d.free(), "worker context of " + worker_key);
  }
  d.contexts += bytes;
  contexts_[worker_key] = Context{device, bytes};
  assert(bytes == 0 || d.held() <= d.capacity);  // held rose: it must fit
  DebugCheck();
  return Status::Ok();
}

void MemoryLedger::ReleaseContext(const std::string& worker_key) {
  auto it = contexts_.find(worker_key);
  if (it == contexts_.end()) return;
  devices_.at(it->second.device).contexts -= it->second.bytes;
  contexts_.erase(it);
  DebugCheck();
}

Status MemoryLedger::Admit(const InstanceAccount& account) {
  if (account.instance.empty()) {
    return Status::InvalidArgument("memory ledger: empty instance name (model " + account.model +
                                   ")");
  }
  if (account.limit_bytes < account.request_bytes) {
    return Status::InvalidArgument("memory ledger: " + account.instance + ": limit " +
                                   FormatBytes(account.limit_bytes) + " is below its request " +
                                   FormatBytes(account.request_bytes));
  }
  auto dit = devices_.find(account.device);
  if (dit == devices_.end()) {
    return Status::NotFound("memory ledger: " + account.instance + ": unknown device " +
                            account.device);
  }
  if (instances_.count(account.instance) != 0) {
    return Status::AlreadyExists("memory ledger: instance " + account.instance +
                                 " is already admitted");
  }
  Device& d = dit->second;
  if (account.request_bytes > d.free()) {
    return Collision(account.model, ResolverName(account.resolver), account.device,
                     account.request_bytes, d.free(), "request of " + account.instance);
  }
  d.requests += account.request_bytes;
  instances_[account.instance] = Instance{account, 0, false};
  assert(account.request_bytes == 0 || d.held() <= d.capacity);
  DebugCheck();
  return Status::Ok();
}

void MemoryLedger::Remove(const std::string& instance) {
  auto it = instances_.find(instance);
  if (it == instances_.end()) return;
  const Instance& inst = it->second;
  if (inst.swapped) {
    host_bytes_ -= inst.account.request_bytes;
  } else {
    Device& d = devices_.at(inst.account.device);
    d.requests -= inst.account.request_bytes;
    d.borrowed -= inst.granted;
  }
  instances_.erase(it);
  DebugCheck();
}

Result<uint64_t> MemoryLedger::Grant(const std::string& instance, uint64_t bytes) {
  auto it = instances_.find(instance);
  if (it == instances_.end())
    return Status::NotFound("memory ledger: unknown instance " + instance);
  Instance& inst = it->second;
  if (inst.swapped) {
    return Status::Unavailable("memory ledger: " + instance +
                               " is swapped out; swap it in before it borrows");
  }
  if (bytes == 0) return uint64_t{0};
  const InstanceAccount& a = inst.account;
  const uint64_t in_use = a.request_bytes + inst.granted;
  const uint64_t room = Minus(a.limit_bytes, in_use);
  if (bytes > room) {
    MemoryLimitDetail limit;
    limit.model = a.model;
    limit.device = a.device;
    limit.limit_bytes = a.limit_bytes;
    limit.in_use_bytes = in_use;
    limit.requested_bytes = bytes;
    StatusDetail detail;
    detail.memory_limit = limit;
    return Status::ResourceExhausted("memory ledger: " + instance + " on " + a.device + " asks " +
                                     FormatBytes(bytes) + " past its limit " +
                                     FormatBytes(a.limit_bytes) + " (holds " + FormatBytes(in_use) +
                                     ")")
        .WithDetail(std::move(detail));
  }
  Device& d = devices_.at(a.device);
  const uint64_t free = d.free();
  if (bytes > free) {
    return Collision(a.model, ResolverName(a.resolver), a.device, bytes, free,
                     "grant for " + instance);
  }
  // Round up to the chunk, but never past the limit room or the free bytes.
  const uint64_t cap = std::min(room, free);
  const uint64_t chunk = options_.grant_chunk_bytes;
  const uint64_t pad = chunk > 1 ? (chunk - bytes % chunk) % chunk : 0;
  const uint64_t amount = bytes + std::min(pad, cap - bytes);
  inst.granted += amount;
  d.borrowed += amount;
  assert(d.held() <= d.capacity);  // amount ≥ bytes > 0
  DebugCheck();
  return amount;
}

void MemoryLedger::Return(const std::string& instance, uint64_t bytes) {
  auto it = instances_.find(instance);
  if (it == instances_.end()) return;
  Instance& inst = it->second;
  const uint64_t amount = std::min(bytes, inst.granted);
  inst.granted -= amount;
  devices_.at(inst.account.device).borrowed -= amount;
  DebugCheck();
}

void MemoryLedger::ReturnAll(const std::string& instance) { Return(instance, UINT64_MAX); }

Status MemoryLedger::SwapOut(const std::string& instance) {
  auto it = instances_.find(instance);
  if (it == instances_.end())
    return Status::NotFound("memory ledger: unknown instance " + instance);
  Instance& inst = it->second;
  const InstanceAccount& a = inst.account;
  if (inst.swapped) {
    return Status::InvalidArgument("memory ledger: " + instance + " is already swapped out");
  }
  if (a.request_bytes > HostFreeBytes()) {
    return Collision(a.model, ResolverName(a.resolver), kHostTier, a.request_bytes, HostFreeBytes(),
                     "swap-out of " + instance);
  }
  Device& d = devices_.at(a.device);
  d.requests -= a.request_bytes;
  d.borrowed -= inst.granted;
  inst.granted = 0;
  inst.swapped = true;
  host_bytes_ += a.request_bytes;
  assert(a.request_bytes == 0 || host_bytes_ <= host_capacity_);
  DebugCheck();
  return Status::Ok();
}

Status MemoryLedger::SwapIn(const std::string& instance) {
  auto it = instances_.find(instance);
  if (it == instances_.end())
    return Status::NotFound("memory ledger: unknown instance " + instance);
  Instance& inst = it->second;
  const InstanceAccount& a = inst.account;
  if (!inst.swapped) {
    return Status::InvalidArgument("memory ledger: " + instance + " is not swapped out");
  }
  Device& d = devices_.at(a.device);
  if (a.request_bytes > d.free()) {
    return Collision(a.model, ResolverName(a.resolver), a.device, a.request_bytes, d.free(),
                     "swap-in of " + instance);
  }
  host_bytes_ -= a.request_bytes;
  d.requests += a.request_bytes;
  inst.swapped = false;
  assert(a.request_bytes == 0 || d.held() <= d.capacity);
  DebugCheck();
  return Status::Ok();
}

bool MemoryLedger::IsSwapped(const std::string& instance) const {
  auto it = instances_.find(instance);
  return it != instances_.end() && it->second.swapped;
}

Status MemoryLedger::Update(const std::string& instance, const InstanceUpdate& update) {
  auto it = instances_.find(instance);
  if (it == instances_.end())
    return Status::NotFound("memory ledger: unknown instance " + instance);
  Instance& inst = it->second;
  InstanceAccount& a = inst.account;
  const uint64_t request = update.request_bytes.value_or(a.request_bytes);
  const uint64_t limit = update.limit_bytes.value_or(a.limit_bytes);
  if (limit < request) {
    return Status::InvalidArgument("memory ledger: " + instance + ": limit " + FormatBytes(limit) +
                                   " is below its request " + FormatBytes(request));
  }
  Device& d = devices_.at(a.device);
  if (request > a.request_bytes) {
    const uint64_t more = request - a.request_bytes;
    const Resolver resolver = update.resolver.value_or(a.resolver);
    if (inst.swapped && more > HostFreeBytes()) {
      return Collision(a.model, ResolverName(resolver), kHostTier, more, HostFreeBytes(),
                       "larger request of swapped " + instance);
    }
    if (!inst.swapped && more > d.free()) {
      return Collision(a.model, ResolverName(resolver), a.device, more, d.free(),
                       "larger request of " + instance);
    }
  }
  uint64_t& pool = inst.swapped ? host_bytes_ : d.requests;
  const bool rose = request > a.request_bytes;
  pool = pool - a.request_bytes + request;
  assert(!rose || (inst.swapped ? host_bytes_ <= host_capacity_ : d.held() <= d.capacity));
  (void)rose;
  a.request_bytes = request;
  a.limit_bytes = limit;
  if (update.priority) a.priority = *update.priority;
  if (update.resolver) a.resolver = *update.resolver;
  if (update.pinned) a.pinned = *update.pinned;
  DebugCheck();
  return Status::Ok();
}

Result<DeviceLedger> MemoryLedger::Snapshot(const std::string& device) const {
  auto dit = devices_.find(device);
  if (dit == devices_.end()) return Status::NotFound("memory ledger: unknown device " + device);
  const Device& d = dit->second;
  DeviceLedger out;
  out.device = device;
  out.capacity_bytes = d.capacity;
  out.request_bytes = d.requests;
  out.context_bytes = d.contexts;
  out.borrowed_bytes = d.borrowed;
  out.held_bytes = d.held();
  out.free_bytes = d.free();
  out.instances = Instances(device);
  for (const InstanceView& v : out.instances) out.swapped_bytes += v.host_bytes;
  out.host_free_bytes = HostFreeBytes();
  for (const auto& [worker, c] : contexts_) {
    if (c.device == device) out.contexts.push_back(ContextView{worker, c.bytes});
  }
  return out;
}

uint64_t MemoryLedger::FreeBytes(const std::string& device) const {
  auto dit = devices_.find(device);
  return dit == devices_.end() ? 0 : dit->second.free();
}

std::vector<InstanceView> MemoryLedger::Instances(const std::string& device) const {
  std::vector<InstanceView> out;
  for (const auto& [name, inst] : instances_) {
    if (inst.account.device == device) out.push_back(View(inst));
  }
  return out;
}

std::optional<InstanceView> MemoryLedger::Find(const std::string& instance) const {
  auto it = instances_.find(instance);
  if (it == instances_.end()) return std::nullopt;
  return View(it->second);
}

std::vector<std::string> MemoryLedger::Devices() const {
  std::vector<std::string> out;
  for (const auto& [name, d] : devices_) out.push_back(name);
  return out;
}

InstanceView MemoryLedger::View(const Instance& inst) const {
  InstanceView v;
  v.account = inst.account;
  v.granted_bytes = inst.granted;
  v.swapped = inst.swapped;
  v.device_bytes = inst.swapped ? 0 : inst.account.request_bytes + inst.granted;
  v.host_bytes = inst.swapped ? inst.account.request_bytes : 0;
  return v;
}

Status MemoryLedger::Collision(const std::string& model, const std::string& resolver,
                               const std::string& device, uint64_t asked, uint64_t free,
                               const std::string& what) const {
  CollisionDetail c;
  c.model = model;
  c.device = device;
  c.resolver = resolver;
  c.asked_bytes = asked;
  c.free_bytes = free;
  const bool host = device == kHostTier;
  for (const auto& [name, inst] : instances_) {
    if (host ? !inst.swapped : (inst.swapped || inst.account.device != device)) continue;
    const uint64_t bytes =
        host ? inst.account.request_bytes : inst.account.request_bytes + inst.granted;
    if (bytes == 0) continue;
    c.holders.push_back(CollisionHolder{name, bytes, inst.account.priority});
  }
  std::stable_sort(
      c.holders.begin(), c.holders.end(),
      [](const CollisionHolder& x, const CollisionHolder& y) { return x.bytes > y.bytes; });
  std::string message = "memory ledger: " + what + " on " + device + " asks " + FormatBytes(asked) +
                        ", " + FormatBytes(free) + " free";
  if (!host) {
    const Device& d = devices_.at(device);
    message += " (capacity " + FormatBytes(d.capacity) + ", held " + FormatBytes(d.held()) + ")";
  } else {
    message += " (host swap capacity " + FormatBytes(host_capacity_) + ")";
  }
  StatusDetail detail;
  detail.collision = std::move(c);
  return Status::ResourceExhausted(std::move(message)).WithDetail(std::move(detail));
}

std::string MemoryLedger::CheckConsistency() const {
  std::map<std::string, Device> sums;
  uint64_t host = 0;
  for (const auto& [name, d] : devices_) sums[name].capacity = d.capacity;
  for (const auto& [name, inst] : instances_) {
    if (name != inst.account.instance) return name + ": keyed under another name";
    auto it = sums.find(inst.account.device);
    if (it == sums.end()) return name + ": on unknown device " + inst.account.device;
    if (inst.account.limit_bytes < inst.account.request_bytes) return name + ": limit < request";
    if (inst.swapped) {
      if (inst.granted != 0) return name + ": swapped but holds a grant";
      host += inst.account.request_bytes;
    } else {
      it->second.requests += inst.account.request_bytes;
      it->second.borrowed += inst.granted;
    }
  }
  for (const auto& [worker, c] : contexts_) {
    auto it = sums.find(c.device);
    if (it == sums.end()) return "worker " + worker + ": on unknown device " + c.device;
    it->second.contexts += c.bytes;
  }
  for (const auto& [name, d] : devices_) {
    const Device& s = sums.at(name);
    if (s.requests != d.requests) return name + ": request total disagrees with the rows";
    if (s.borrowed != d.borrowed) return name + ": borrowed total disagrees with the rows";
    if (s.contexts != d.contexts) return name + ": context total disagrees with the rows";
    if (d.free() + d.held() != std::max(d.capacity, d.held()))
      return name + ": free != capacity - held";
  }
  if (host != host_bytes_) return "host tier total disagrees with the rows";
  return "";
}

void MemoryLedger::DebugCheck() const {
#ifndef NDEBUG
  const std::string problem = CheckConsistency();
  assert(problem.empty() && "memory ledger totals disagree with its rows");
#endif
}

}  // namespace modelgrid::memory
