// Helpers shared by the memory tests: instance accounts in MiB and a clock in
// seconds.
#pragma once

#include <chrono>
#include <string>

#include "modelgrid/bytes.h"
#include "modelgrid/memory/ledger.h"
#include "modelgrid/memory/reclaim.h"

namespace modelgrid::memory::testing {

// An account for `instance` ("model#replica") on `device` with request and
// limit in MiB.
inline InstanceAccount Account(const std::string& instance, const std::string& device,
                               uint64_t request_mib, uint64_t limit_mib, int priority = 0,
                               Resolver resolver = Resolver::kWait, bool pinned = false) {
  InstanceAccount a;
  a.instance = instance;
  a.model = instance.substr(0, instance.find('#'));
  a.device = device;
  a.request_bytes = request_mib * kMiB;
  a.limit_bytes = limit_mib * kMiB;
  a.priority = priority;
  a.resolver = resolver;
  a.pinned = pinned;
  return a;
}

// `s` seconds after the (arbitrary) epoch of the tests' steady clock.
inline ReclaimTime At(double s) {
  return ReclaimTime{} +
         std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::duration<double>(s));
}

}  // namespace modelgrid::memory::testing
