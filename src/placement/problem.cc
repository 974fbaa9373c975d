#include "placement/problem.h"

#include <map>
#include <unordered_map>

namespace modelgrid::placement {

Problem BuildProblem(const std::vector<Device>& devices, const std::vector<PlacementItem>& items,
                     const PlanOptions& options) {
  Problem p;
  p.devices = &devices;
  p.inputs = &items;
  p.options = options;
  const int num_devices = static_cast<int>(devices.size());

  std::unordered_map<std::string, int> device_index;
  bool has_accelerator = false;
  for (int d = 0; d < num_devices; ++d) {
    device_index[devices[d].id] = d;
    has_accelerator = has_accelerator || devices[d].is_accelerator();
  }
  p.buffer.resize(num_devices, 0);
  p.is_fallback.resize(num_devices, 0);
  for (int d = 0; d < num_devices; ++d) {
    const bool accel = devices[d].is_accelerator();
    p.buffer[d] = accel ? options.buffer_bytes : 0;
    if (has_accelerator && !accel) {
      p.fallback.push_back(d);
      p.is_fallback[d] = 1;
    } else {
      p.primary.push_back(d);
    }
  }
  p.cpu_limit = has_accelerator && options.max_cpu_models >= 0 ? options.max_cpu_models : -1;

  std::map<std::string, int> model_ids;
  std::vector<int> instances_per_model;
  for (const PlacementItem& in : items) {
    auto [it, inserted] = model_ids.emplace(in.model, static_cast<int>(model_ids.size()));
    if (inserted) {
      instances_per_model.push_back(0);
      p.model_has_replicas.push_back(0);
    }
    ++instances_per_model[it->second];
    if (in.replica != 0) p.model_has_replicas[it->second] = 1;
  }
  for (size_t m = 0; m < instances_per_model.size(); ++m) {
    if (instances_per_model[m] > 1) p.model_has_replicas[m] = 1;
  }
  p.num_models = static_cast<int>(model_ids.size());

  p.items.reserve(items.size());
  for (size_t i = 0; i < items.size(); ++i) {
    const PlacementItem& in = items[i];
    Item item;
    item.index = static_cast<int>(i);
    item.model_id = model_ids.at(in.model);
    item.replica = in.replica;
    item.request = in.request_bytes;
    item.priority = in.priority;
    item.latency_sensitive = in.latency_sensitive;
    item.expected_load = in.expected_load;
    item.allowed.assign(num_devices, in.allowed.empty() ? 1 : 0);
    for (const std::string& id : in.allowed) {
      auto found = device_index.find(id);
      if (found != device_index.end()) item.allowed[found->second] = 1;
    }
    p.items.push_back(std::move(item));
  }
  p.model_items.resize(p.num_models);
  for (const Item& it : p.items) p.model_items[it.model_id].push_back(it.index);
  return p;
}

}  // namespace modelgrid::placement
