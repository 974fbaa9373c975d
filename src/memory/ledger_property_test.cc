// MemoryLedger over random operation sequences (rapidcheck), against a
// shadow account written from ledger.h's contract (not from ledger.cc):
// every outcome and every figure must match, and after every operation
//   - held bytes never rose above a device's capacity, host bytes never
//     above the host capacity;
//   - free = capacity − held (0 when over), never negative;
//   - no instance other than the operation's target changed what it holds;
//   - every resident instance holds at least its request.
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "modelgrid/memory/ledger.h"

namespace modelgrid::memory {
namespace {

const std::vector<std::string> kDevices = {"cuda:0", "cuda:1", "tpu:9"};  // tpu:9 is never added
const std::vector<std::string> kWorkers = {"w0", "w1", "w2"};

std::string InstanceName(int i) { return "m" + std::to_string(i) + "#0"; }

// The contract, kept the plainest way.
struct Shadow {
  struct Inst {
    InstanceAccount account;
    uint64_t granted = 0;
    bool swapped = false;
  };
  uint64_t chunk = 1;
  std::map<std::string, uint64_t> capacity;
  std::map<std::string, std::pair<std::string, uint64_t>> contexts;  // worker → device, bytes
  std::map<std::string, Inst> inst;
  uint64_t host_capacity = 0;

  uint64_t Held(const std::string& d) const {
    uint64_t held = 0;
    for (const auto& [w, c] : contexts) held += c.first == d ? c.second : 0;
    for (const auto& [n, i] : inst) {
      if (i.account.device == d && !i.swapped) held += i.account.request_bytes + i.granted;
    }
    return held;
  }
  uint64_t Free(const std::string& d) const {
    const uint64_t held = Held(d);
    return capacity.at(d) >= held ? capacity.at(d) - held : 0;
  }
  uint64_t Host() const {
    uint64_t host = 0;
    for (const auto& [n, i] : inst) host += i.swapped ? i.account.request_bytes : 0;
    return host;
  }
  uint64_t HostFree() const { return host_capacity >= Host() ? host_capacity - Host() : 0; }
};

// The rows of every instance, keyed by name.
std::map<std::string, InstanceView> Rows(const MemoryLedger& ledger) {
  std::map<std::string, InstanceView> rows;
  for (const std::string& d : ledger.Devices()) {
    for (const InstanceView& v : ledger.Instances(d)) rows[v.account.instance] = v;
  }
  return rows;
}

// Compares every figure of `ledger` with `shadow`.
void CheckFigures(const MemoryLedger& ledger, const Shadow& shadow) {
  RC_ASSERT(ledger.CheckConsistency() == "");
  RC_ASSERT(ledger.host_bytes() == shadow.Host());
  RC_ASSERT(ledger.host_capacity_bytes() == shadow.host_capacity);
  RC_ASSERT(ledger.HostFreeBytes() == shadow.HostFree());
  for (const auto& [d, cap] : shadow.capacity) {
    const auto snap = ledger.Snapshot(d);
    RC_ASSERT(snap.ok());
    const uint64_t held = shadow.Held(d);
    RC_ASSERT(snap->capacity_bytes == cap);
    RC_ASSERT(snap->held_bytes == held);
    RC_ASSERT(snap->held_bytes == snap->request_bytes + snap->context_bytes + snap->borrowed_bytes);
    RC_ASSERT(snap->free_bytes == shadow.Free(d));
    RC_ASSERT(snap->free_bytes == (cap >= held ? cap - held : 0));
    RC_ASSERT(ledger.FreeBytes(d) == snap->free_bytes);
    RC_ASSERT(snap->host_free_bytes == shadow.HostFree());
    uint64_t requests = 0, borrowed = 0, swapped = 0, contexts = 0, rows = 0;
    for (const auto& [n, i] : shadow.inst) {
      if (i.account.device != d) continue;
      ++rows;
      if (i.swapped)
        swapped += i.account.request_bytes;
      else
        requests += i.account.request_bytes, borrowed += i.granted;
    }
    for (const auto& [w, c] : shadow.contexts) contexts += c.first == d ? c.second : 0;
    RC_ASSERT(snap->request_bytes == requests);
    RC_ASSERT(snap->borrowed_bytes == borrowed);
    RC_ASSERT(snap->swapped_bytes == swapped);
    RC_ASSERT(snap->context_bytes == contexts);
    RC_ASSERT(snap->instances.size() == rows);
  }
  const auto rows = Rows(ledger);
  RC_ASSERT(rows.size() == shadow.inst.size());
  for (const auto& [n, i] : shadow.inst) {
    const InstanceView& v = rows.at(n);
    RC_ASSERT(v.account == i.account);
    RC_ASSERT(v.granted_bytes == i.granted);
    RC_ASSERT(v.swapped == i.swapped);
    RC_ASSERT(ledger.IsSwapped(n) == i.swapped);
    // A resident instance holds at least its whole request.
    if (!i.swapped)
      RC_ASSERT(v.device_bytes == i.account.request_bytes + i.granted);
    else
      RC_ASSERT(v.device_bytes == 0u && v.host_bytes == i.account.request_bytes);
  }
}

enum class Op {
  kAdmit,
  kGrant,
  kReturn,
  kReturnAll,
  kSwapOut,
  kSwapIn,
  kRemove,
  kUpdate,
  kSetCapacity,
  kSetHostCapacity,
  kChargeContext,
  kReleaseContext,
};

// A collision's figures: asked, the free bytes the shadow computes, and the
// holders being exactly the place's holders.
void CheckCollision(const Status& s, uint64_t asked, uint64_t free) {
  RC_ASSERT(s.code() == StatusCode::kResourceExhausted);
  RC_ASSERT(s.collision() != nullptr);
  RC_ASSERT(s.collision()->asked_bytes == asked);
  RC_ASSERT(s.collision()->free_bytes == free);
  RC_ASSERT(asked > free);
}

RC_GTEST_PROP(LedgerProperty, RandomSequencesKeepTheAccount, ()) {
  Shadow shadow;
  shadow.chunk = *rc::gen::element<uint64_t>(0, 1, 7, 32);
  MemoryLedger ledger(LedgerOptions{shadow.chunk});
  if (shadow.chunk == 0) shadow.chunk = 1;
  for (int d = 0; d < 2; ++d) {
    const uint64_t cap = *rc::gen::inRange<uint64_t>(0, 1000);
    RC_ASSERT(ledger.AddDevice(kDevices[d], cap).ok());
    shadow.capacity[kDevices[d]] = cap;
  }
  const int steps = *rc::gen::inRange(1, 120);
  for (int step = 0; step < steps; ++step) {
    const Op op = *rc::gen::element(Op::kAdmit, Op::kGrant, Op::kGrant, Op::kGrant, Op::kReturn,
                                    Op::kReturnAll, Op::kSwapOut, Op::kSwapIn, Op::kRemove,
                                    Op::kUpdate, Op::kSetCapacity, Op::kSetHostCapacity,
                                    Op::kChargeContext, Op::kReleaseContext);
    const std::string name = InstanceName(*rc::gen::inRange(0, 6));
    const std::string device = kDevices[*rc::gen::inRange(0, 3)];
    const uint64_t bytes = *rc::gen::inRange<uint64_t>(0, 400);
    const auto before = Rows(ledger);
    std::map<std::string, uint64_t> held_before;
    for (const auto& [d, c] : shadow.capacity) held_before[d] = shadow.Held(d);
    const uint64_t host_before = shadow.Host();
    const bool known = shadow.inst.count(name) != 0;
    Shadow::Inst* inst = known ? &shadow.inst.at(name) : nullptr;
    std::string target = name;  // whose rows may change

    switch (op) {
      case Op::kAdmit: {
        InstanceAccount a;
        a.instance = name;
        a.model = name.substr(0, name.find('#'));
        a.device = device;
        a.request_bytes = bytes;
        a.limit_bytes = *rc::gen::inRange<uint64_t>(bytes > 20 ? bytes - 20 : 0, bytes + 300);
        a.priority = *rc::gen::inRange(0, 3);
        a.resolver = *rc::gen::element(Resolver::kWait, Resolver::kPriority, Resolver::kSwap);
        a.pinned = *rc::gen::arbitrary<bool>();
        RC_LOG() << "Admit " << name << " on " << device << " " << a.request_bytes << "/"
                 << a.limit_bytes << "\n";
        const Status s = ledger.Admit(a);
        if (a.limit_bytes < a.request_bytes) {
          RC_ASSERT(s.code() == StatusCode::kInvalidArgument);
        } else if (shadow.capacity.count(device) == 0) {
          RC_ASSERT(s.code() == StatusCode::kNotFound);
        } else if (known) {
          RC_ASSERT(s.code() == StatusCode::kAlreadyExists);
        } else if (bytes > shadow.Free(device)) {
          CheckCollision(s, bytes, shadow.Free(device));
          RC_ASSERT(s.collision()->model == a.model);
          RC_ASSERT(s.collision()->resolver == ResolverName(a.resolver));
          uint64_t holders = 0;
          for (const CollisionHolder& h : s.collision()->holders) holders += h.bytes;
          uint64_t resident = 0;
          for (const auto& [n, i] : shadow.inst) {
            if (i.account.device == device && !i.swapped) {
              resident += i.account.request_bytes + i.granted;
            }
          }
          RC_ASSERT(holders == resident);
        } else {
          RC_ASSERT(s.ok());
          shadow.inst[name] = Shadow::Inst{a, 0, false};
        }
        break;
      }
      case Op::kGrant: {
        RC_LOG() << "Grant " << name << " " << bytes << "\n";
        const auto g = ledger.Grant(name, bytes);
        if (!known) {
          RC_ASSERT(g.status().code() == StatusCode::kNotFound);
        } else if (inst->swapped) {
          RC_ASSERT(g.status().code() == StatusCode::kUnavailable);
        } else if (bytes == 0) {
          RC_ASSERT(g.ok() && *g == 0u);
        } else {
          const uint64_t in_use = inst->account.request_bytes + inst->granted;
          const uint64_t room =
              inst->account.limit_bytes > in_use ? inst->account.limit_bytes - in_use : 0;
          const uint64_t free = shadow.Free(inst->account.device);
          if (bytes > room) {
            RC_ASSERT(g.status().code() == StatusCode::kResourceExhausted);
            RC_ASSERT(g.status().memory_limit() != nullptr);
            RC_ASSERT(g.status().memory_limit()->limit_bytes == inst->account.limit_bytes);
            RC_ASSERT(g.status().memory_limit()->in_use_bytes == in_use);
            RC_ASSERT(g.status().memory_limit()->requested_bytes == bytes);
          } else if (bytes > free) {
            CheckCollision(g.status(), bytes, free);
          } else {
            const uint64_t chunks = (bytes + shadow.chunk - 1) / shadow.chunk;
            const uint64_t expected = std::min({chunks * shadow.chunk, room, free});
            RC_ASSERT(g.ok());
            RC_ASSERT(*g == expected);
            RC_ASSERT(*g >= bytes);
            inst->granted += expected;
          }
        }
        break;
      }
      case Op::kReturn:
        RC_LOG() << "Return " << name << " " << bytes << "\n";
        ledger.Return(name, bytes);
        if (known) inst->granted -= std::min(bytes, inst->granted);
        break;
      case Op::kReturnAll:
        RC_LOG() << "ReturnAll " << name << "\n";
        ledger.ReturnAll(name);
        if (known) inst->granted = 0;
        break;
      case Op::kSwapOut: {
        RC_LOG() << "SwapOut " << name << "\n";
        const Status s = ledger.SwapOut(name);
        if (!known) {
          RC_ASSERT(s.code() == StatusCode::kNotFound);
        } else if (inst->swapped) {
          RC_ASSERT(s.code() == StatusCode::kInvalidArgument);
        } else if (inst->account.request_bytes > shadow.HostFree()) {
          CheckCollision(s, inst->account.request_bytes, shadow.HostFree());
          RC_ASSERT(s.collision()->device == kHostTier);
        } else {
          RC_ASSERT(s.ok());
          inst->swapped = true;
          inst->granted = 0;
        }
        break;
      }
      case Op::kSwapIn: {
        RC_LOG() << "SwapIn " << name << "\n";
        const Status s = ledger.SwapIn(name);
        if (!known) {
          RC_ASSERT(s.code() == StatusCode::kNotFound);
        } else if (!inst->swapped) {
          RC_ASSERT(s.code() == StatusCode::kInvalidArgument);
        } else if (inst->account.request_bytes > shadow.Free(inst->account.device)) {
          CheckCollision(s, inst->account.request_bytes, shadow.Free(inst->account.device));
        } else {
          RC_ASSERT(s.ok());
          inst->swapped = false;
        }
        break;
      }
      case Op::kRemove:
        RC_LOG() << "Remove " << name << "\n";
        ledger.Remove(name);
        shadow.inst.erase(name);
        break;
      case Op::kUpdate: {
        InstanceUpdate u;
        if (*rc::gen::arbitrary<bool>()) u.request_bytes = bytes;
        if (*rc::gen::arbitrary<bool>()) u.limit_bytes = *rc::gen::inRange<uint64_t>(0, 700);
        if (*rc::gen::arbitrary<bool>()) u.priority = *rc::gen::inRange(0, 3);
        if (*rc::gen::arbitrary<bool>()) u.pinned = *rc::gen::arbitrary<bool>();
        if (*rc::gen::arbitrary<bool>()) {
          u.resolver = *rc::gen::element(Resolver::kWait, Resolver::kPriority, Resolver::kSwap);
        }
        RC_LOG() << "Update " << name << " request " << u.request_bytes.value_or(0) << " limit "
                 << u.limit_bytes.value_or(0) << "\n";
        const Status s = ledger.Update(name, u);
        if (!known) {
          RC_ASSERT(s.code() == StatusCode::kNotFound);
          break;
        }
        const uint64_t request = u.request_bytes.value_or(inst->account.request_bytes);
        const uint64_t limit = u.limit_bytes.value_or(inst->account.limit_bytes);
        const uint64_t more =
            request > inst->account.request_bytes ? request - inst->account.request_bytes : 0;
        const uint64_t free = inst->swapped ? shadow.HostFree() : shadow.Free(inst->account.device);
        if (limit < request) {
          RC_ASSERT(s.code() == StatusCode::kInvalidArgument);
        } else if (more > free) {
          CheckCollision(s, more, free);
        } else {
          RC_ASSERT(s.ok());
          inst->account.request_bytes = request;
          inst->account.limit_bytes = limit;
          if (u.priority) inst->account.priority = *u.priority;
          if (u.pinned) inst->account.pinned = *u.pinned;
          if (u.resolver) inst->account.resolver = *u.resolver;
        }
        break;
      }
      case Op::kSetCapacity: {
        const uint64_t cap = *rc::gen::inRange<uint64_t>(0, 1000);
        RC_LOG() << "SetCapacity " << device << " " << cap << "\n";
        const Status s = ledger.SetCapacity(device, cap);
        if (shadow.capacity.count(device) == 0) {
          RC_ASSERT(s.code() == StatusCode::kNotFound);
        } else {
          RC_ASSERT(s.ok());
          shadow.capacity[device] = cap;
        }
        target = "";
        break;
      }
      case Op::kSetHostCapacity: {
        const uint64_t cap = *rc::gen::inRange<uint64_t>(0, 800);
        RC_LOG() << "SetHostCapacity " << cap << "\n";
        ledger.SetHostCapacity(cap);
        shadow.host_capacity = cap;
        target = "";
        break;
      }
      case Op::kChargeContext: {
        const std::string worker = kWorkers[*rc::gen::inRange(0, 3)];
        RC_LOG() << "ChargeContext " << worker << " on " << device << " " << bytes << "\n";
        const Status s = ledger.ChargeContext(device, worker, bytes);
        if (shadow.capacity.count(device) == 0) {
          RC_ASSERT(s.code() == StatusCode::kNotFound);
        } else if (shadow.contexts.count(worker) != 0) {
          RC_ASSERT(s.code() == StatusCode::kAlreadyExists);
        } else if (bytes > shadow.Free(device)) {
          CheckCollision(s, bytes, shadow.Free(device));
        } else {
          RC_ASSERT(s.ok());
          shadow.contexts[worker] = {device, bytes};
        }
        target = "";
        break;
      }
      case Op::kReleaseContext: {
        const std::string worker = kWorkers[*rc::gen::inRange(0, 3)];
        RC_LOG() << "ReleaseContext " << worker << "\n";
        ledger.ReleaseContext(worker);
        shadow.contexts.erase(worker);
        target = "";
        break;
      }
    }

    CheckFigures(ledger, shadow);
    // Held bytes never rose above a capacity; host bytes never above the host's.
    for (const auto& [d, cap] : shadow.capacity) {
      const uint64_t held = shadow.Held(d);
      RC_ASSERT(held <= cap || held <= held_before[d]);
    }
    RC_ASSERT(shadow.Host() <= shadow.host_capacity || shadow.Host() <= host_before);
    // Nobody else's holdings changed.
    const auto after = Rows(ledger);
    for (const auto& [n, v] : before) {
      if (n == target) continue;
      RC_ASSERT(after.count(n) == 1u);
      RC_ASSERT(after.at(n) == v);
    }
  }
}

}  // namespace
}  // namespace modelgrid::memory
