// CreateBackend, RegisterBackend and BackendKinds
// (modelgrid/backend/model_backend.h): the built-in kinds and those added
// at run time, in one table.

#include <map>
#include <mutex>

#include "modelgrid/heap.h"
#include "modelgrid/backend/backend.h"
#include "modelgrid/backend/backend_kind.h"
#include "modelgrid/backend/hf_backend.h"
#include "modelgrid/backend/model_backend.h"

namespace modelgrid {

namespace {

struct Registry {
  std::mutex mu;
  std::map<std::string, BackendFactory, std::less<>> factories;
};

Registry& TheRegistry() {
  static Registry* r = [] {
    auto* reg = new Registry;
    reg->factories.emplace(std::string(kTorchScriptBackendKind),
                           [] { return std::make_unique<TorchScriptBackend>(); });
    reg->factories.emplace(std::string(kHuggingFaceBackendKind),
                           [] { return std::make_unique<HuggingFaceBackend>(); });
    return reg;
  }();
  return *r;
}

}  // namespace

Result<std::unique_ptr<ModelBackend>> CreateBackend(std::string_view kind) {
  TuneHeapForTensors();
  Registry& r = TheRegistry();
  BackendFactory factory;
  {
    std::lock_guard<std::mutex> lock(r.mu);
    auto it = r.factories.find(kind);
    if (it != r.factories.end()) factory = it->second;
  }
  if (!factory) {
    std::string known;
    for (const std::string& k : BackendKinds()) known += (known.empty() ? "" : ", ") + k;
    return Status::Unsupported("unknown backend kind '" + std::string(kind) + "' (known: " + known +
                               ")");
  }
  return factory();
}

void RegisterBackend(std::string kind, BackendFactory factory) {
  Registry& r = TheRegistry();
  std::lock_guard<std::mutex> lock(r.mu);
  r.factories[std::move(kind)] = std::move(factory);
}

std::vector<std::string> BackendKinds() {
  Registry& r = TheRegistry();
  std::lock_guard<std::mutex> lock(r.mu);
  std::vector<std::string> kinds;
  for (const auto& [k, f] : r.factories) kinds.push_back(k);
  return kinds;
}

}  // namespace modelgrid
