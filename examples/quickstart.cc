// The seed's quick start, written against the C++ library API (grid.h):
// a ResNet-50, a BERT and a GPT-2 from the zoo, loaded together, `infer` run
// on all of them at once, then the device and model status.
//
//   build/bin/quickstart [MODELS_DIR]     (default: models, the demo repository)
//
// MODELS_DIR holds resnet50/, bert-base/ and gpt2/ as tools/zoo/generate.py
// --profile full writes them (`make demo-repo`). The small zoo has no
// resnet50; there resnet18 (same input) stands in, and the program says so.
#include <cstdio>
#include <filesystem>
#include <cstring>
#include <string>
#include <vector>

#include "modelgrid/bytes.h"
#include "modelgrid/grid.h"

using modelgrid::DataType;
using modelgrid::InferTensor;

namespace {

// A batch of grey images shaped as the model declares ([3, 224, 224] for
// resnet50; the small zoo's resnet18 takes [3, 64, 64]).
InferTensor Image(int64_t batch, const modelgrid::ModelStatus& model) {
  InferTensor t;
  t.name = model.inputs.empty() ? "input" : model.inputs[0].name;
  t.datatype = DataType::kFP32;
  std::vector<int64_t> dims = {3, 224, 224};
  if (!model.inputs.empty() && model.inputs[0].dims.size() == 3) dims = model.inputs[0].dims;
  t.shape = {batch, dims[0], dims[1], dims[2]};
  std::vector<float> pixels(static_cast<size_t>(batch * dims[0] * dims[1] * dims[2]), 0.5f);
  t.data.assign(reinterpret_cast<const char*>(pixels.data()), pixels.size() * sizeof(float));
  return t;
}

InferTensor Tokens(std::vector<int64_t> ids) {
  InferTensor t;
  t.name = "input_ids";
  t.datatype = DataType::kInt64;
  t.shape = {1, static_cast<int64_t>(ids.size())};
  t.data.assign(reinterpret_cast<const char*>(ids.data()), ids.size() * sizeof(int64_t));
  return t;
}

std::string Shape(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? "," : "") + std::to_string(shape[i]);
  return s + "]";
}

}  // namespace

int main(int argc, char** argv) {
  const std::string models = argc > 1 ? argv[1] : "models";

  // 1. A grid: how to place (strategy, buffer, CPU fallback) and isolate.
  modelgrid::GridOptions options;
  options.strategy = modelgrid::Strategy::kMemoryOptimized;
  options.isolation = modelgrid::Isolation::kModel;  // a worker process per model
  options.buffer_bytes = uint64_t{512} << 20;        // kept free on each GPU
  options.max_cpu_models = 8;                        // CPU fallback when GPUs are full
  auto grid = modelgrid::Grid::Create(options);
  if (!grid.ok()) {
    std::fprintf(stderr, "quickstart: %s\n", grid.status().ToString().c_str());
    return 1;
  }

  // 2. Add the models: a folder each; a memory override is optional.
  std::string resnet = "resnet50";
  if (!std::filesystem::exists(models + "/resnet50") && std::filesystem::exists(models + "/resnet18")) {
    resnet = "resnet18";
    std::printf("%s has no resnet50; using resnet18 in its place\n", models.c_str());
  }
  for (const std::string& name : {resnet, std::string("bert-base"), std::string("gpt2")}) {
    modelgrid::ModelSpec spec;
    spec.path = models + "/" + name;
    if (auto s = (*grid)->AddModel(spec); !s.ok()) {
      std::fprintf(stderr, "quickstart: %s\n", s.ToString().c_str());
      return 1;
    }
  }

  // 3. Load all: estimate, plan, start workers, load.
  auto plan = (*grid)->LoadAll([](const modelgrid::ModelStatus& m) {
    std::printf("%-10s %-9s on %-5s request %s\n", m.name.c_str(), modelgrid::ModelStateName(m.state),
                m.device.c_str(), modelgrid::FormatBytes(m.request_bytes).c_str());
  });
  if (!plan.ok()) {
    std::fprintf(stderr, "quickstart: %s\n", plan.status().ToString().c_str());
    return 1;
  }

  // 4. Run `infer` on all three at once; each model gets its own inputs
  //    (token ids below 100 are inside every zoo vocabulary).
  auto image_model = (*grid)->Model(resnet);
  if (!image_model.ok()) return 1;
  auto results = (*grid)->Run("infer",
                              {{resnet, {Image(1, *image_model)}},
                               {"bert-base", {Tokens({1, 7, 42, 2})}},
                               {"gpt2", {Tokens({3, 14, 15, 92})}}},
                              std::chrono::seconds{60});
  int failures = 0;
  for (const auto& [model, result] : results) {
    if (!result.ok()) {
      std::printf("%-10s error: %s\n", model.c_str(), result.status().ToString().c_str());
      ++failures;
      continue;
    }
    for (const auto& out : *result) {
      std::printf("%-10s %s %s %s\n", model.c_str(), out.name.c_str(),
                  std::string(modelgrid::DataTypeName(out.datatype)).c_str(), Shape(out.shape).c_str());
    }
  }

  // 5. Device and model status.
  for (const auto& d : (*grid)->Devices()) {
    std::printf("device %s: total %s, reserved %s, free %s, models %zu\n", d.device.id.c_str(),
                modelgrid::FormatBytes(d.device.total_bytes).c_str(),
                modelgrid::FormatBytes(d.reserved_bytes).c_str(),
                modelgrid::FormatBytes(d.free_bytes).c_str(), d.models.size());
  }
  (*grid)->RefreshMemory();
  for (const auto& m : (*grid)->Models()) {
    std::printf("model %s: %s, measured %s (peak %s), limit %s\n", m.name.c_str(),
                modelgrid::ModelStateName(m.state), modelgrid::FormatBytes(m.current_bytes).c_str(),
                modelgrid::FormatBytes(m.peak_bytes).c_str(),
                modelgrid::FormatBytes(m.limit_bytes).c_str());
  }

  // 6. Unload one; the grid stops the rest when it goes out of scope.
  if (auto s = (*grid)->Unload("gpt2"); !s.ok()) std::printf("unload: %s\n", s.ToString().c_str());
  return failures == 0 ? 0 : 1;
}
