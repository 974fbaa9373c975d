// Triton's classification extension in the inference path (output_plan.h),
// over ClassifyOutput (modelgrid/kserve/classification.h).
#include "modelgrid/kserve/classification.h"
#include "service/output_plan.h"

namespace modelgrid::service {

Result<uint64_t> ReadClassification(RequestedOutput& output, const std::string& who) {
  auto k = RequestedClassCount(output);
  if (!k.ok()) return k.status().WithPrefix(who);
  output.parameters.erase(std::string(kClassificationParameter));
  output.parameters.erase(std::string(kClassCountParameter));
  return k->value_or(0);
}

Result<InferTensor> Classify(const Grid& grid, const std::string& model, const InferTensor& scores,
                             uint64_t k) {
  MG_ASSIGN_OR_RETURN(ModelStatus status, grid.Model(model));
  MG_ASSIGN_OR_RETURN(ModelEntry entry, grid.Entry(model));
  static const std::vector<std::string> kNoLabels;
  const auto labels = entry.labels.find(scores.name);
  return ClassifyOutput(scores, k, /*batched=*/status.max_batch_size > 0,
                        labels == entry.labels.end() ? kNoLabels : labels->second);
}

}  // namespace modelgrid::service
