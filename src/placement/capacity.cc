#include "placement/capacity.h"

#include <cassert>

namespace modelgrid::placement {

CapacityState::CapacityState(const Problem& problem)
    : p_(&problem),
      assign_(problem.num_items(), -1),
      instances_(problem.num_devices(), 0),
      model_bytes_(problem.num_devices(), 0),
      load_(problem.num_devices(), 0.0),
      latency_sensitive_(problem.num_devices(), 0),
      model_on_device_(static_cast<size_t>(problem.num_devices()) * problem.num_models, 0) {
  committed_.resize(problem.num_devices());
  for (int d = 0; d < problem.num_devices(); ++d) committed_[d] = ComputeCommitted(d);
}

uint64_t CapacityState::ComputeCommitted(int d) const {
  const Device& dev = p_->device(d);
  uint64_t c = SatAdd(dev.used_bytes, p_->buffer[d]);
  c = SatAdd(c, SatMul(dev.context_bytes, static_cast<uint64_t>(Workers(d))));
  return SatAdd(c, model_bytes_[d]);
}

void CapacityState::Place(int item, int d) {
  assert(assign_[item] < 0);
  const Item& it = p_->items[item];
  assign_[item] = d;
  ++instances_[d];
  model_bytes_[d] = SatAdd(model_bytes_[d], it.request);
  load_[d] += it.expected_load;
  latency_sensitive_[d] += it.latency_sensitive ? 1 : 0;
  ++model_on_device_[static_cast<size_t>(it.model_id) * p_->num_devices() + d];
  if (p_->is_fallback[d]) ++cpu_instances_;
  committed_[d] = ComputeCommitted(d);
  ++count_;
  bytes_ = SatAdd(bytes_, it.request);
}

void CapacityState::Remove(int item) {
  const int d = assign_[item];
  assert(d >= 0);
  const Item& it = p_->items[item];
  assign_[item] = -1;
  --instances_[d];
  model_bytes_[d] -= it.request;
  load_[d] -= it.expected_load;
  latency_sensitive_[d] -= it.latency_sensitive ? 1 : 0;
  --model_on_device_[static_cast<size_t>(it.model_id) * p_->num_devices() + d];
  if (p_->is_fallback[d]) --cpu_instances_;
  committed_[d] = ComputeCommitted(d);
  --count_;
  bytes_ -= it.request;
}

}  // namespace modelgrid::placement
