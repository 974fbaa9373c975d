// modelgrid-probe MODEL.pt --shape 8,3,224,224[:FP32] [--shape ...]
//                 [--method forward] [--threads N] [--runs N] [--trace FILE] --json
// Loads MODEL.pt with the counting allocator installed, runs the forward pass
// once at the given input shapes and prints what it measured (src/torch/probe.h).
// Exit status: 0 on success, 1 on a measurement error, 2 on bad usage.

#include <CLI/CLI.hpp>

#include <iostream>

#include "probe.h"

int main(int argc, char** argv) {
  modelgrid::ProbeOptions options;
  std::string model;
  std::vector<std::string> shapes;
  bool json = false;
  CLI::App app{"Measures a TorchScript model's memory: weights and peak bytes of one forward pass"};
  app.add_option("model", model, "TorchScript file (model.pt)")->required();
  app.add_option("--shape", shapes, "input shape with batch, e.g. 8,3,224,224 or 8,128:INT64; once per input")
      ->required();
  app.add_option("--method", options.method, "method to run");
  app.add_option("--threads", options.threads, "intra-op threads (default: LibTorch's)");
  app.add_option("--runs", options.runs, "forward passes (the peak is over all)")->check(CLI::PositiveNumber);
  app.add_option("--device", options.device,
                 "cpu, or cuda:N when LibTorch has CUDA (figures from the CUDA caching allocator and NVML)");
  app.add_option("--trace", options.trace_file, "write every allocation and free of the forward pass there");
  app.add_flag("--json", json, "print JSON (the only output format; accepted for clarity)");
  CLI11_PARSE(app, argc, argv);

  options.model_pt = model;
  for (const std::string& spec : shapes) {
    std::vector<int64_t> shape;
    modelgrid::DataType type;
    if (auto s = modelgrid::ParseShapeSpec(spec, &shape, &type); !s.ok()) {
      std::cerr << "modelgrid-probe: " << s.message() << "\n";
      return 2;
    }
    options.shapes.push_back(shape);
    options.types.push_back(type);
  }
  auto report = modelgrid::RunProbe(options);
  if (!report.ok()) {
    std::cerr << "modelgrid-probe: " << report.status().ToString() << "\n";
    return 1;
  }
  std::cout << report->ToJson() << std::endl;
  return 0;
}
