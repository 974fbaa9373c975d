// Fuzz harness of Triton's config.pbtxt parser (ParseTritonModelConfig,
// modelgrid/repository.h). Input: the file's text.
// Properties: nothing throws; an error is kInvalidArgument or kUnsupported
// (a platform other than PyTorch's) whose message starts with the file's
// name; a parsed config keeps the promises of the header: max_batch_size
// >= 0, every dims entry -1 or > 0, tensor names non-empty and unique among
// the inputs and among the outputs, a latest policy of >= 1 versions, a
// specific policy of versions >= 0, every warning naming the file.
// (Not checked: that the ModelConfig reads back from ModelConfigToYaml, which
// the header promises only for configs ParseModelConfig made: config.pbtxt's
// uint64 batching fields go past what config.yaml accepts, see README.md.)
#include <set>
#include <string>

#include "fuzz/fuzz_target.h"
#include "modelgrid/repository.h"

namespace modelgrid::fuzz {

namespace {

constexpr const char* kFile = "fuzz/config.pbtxt";

std::string CheckTensors(const std::vector<TensorSpec>& tensors, const char* kind) {
  std::set<std::string> names;
  for (const TensorSpec& t : tensors) {
    if (t.name.empty()) return std::string("parsed an ") + kind + " without a name";
    if (!names.insert(t.name).second) return std::string("parsed two ") + kind + "s named " + t.name;
    for (int64_t d : t.dims) {
      if (d == 0 || d < -1) {
        return std::string(kind) + " '" + t.name + "' parsed with dims entry " + std::to_string(d);
      }
    }
  }
  return "";
}

}  // namespace

std::string CheckTritonConfig(std::string_view input) {
  const Result<TritonModelConfig> r = ParseTritonModelConfig(std::string(input), kFile);
  if (!r.ok()) {
    const Status& s = r.status();
    if (s.code() != StatusCode::kInvalidArgument && s.code() != StatusCode::kUnsupported) {
      return "ParseTritonModelConfig returned " + Describe(s);
    }
    if (s.message().rfind(kFile, 0) != 0) return "an error does not name the file: " + Describe(s);
    return "";
  }
  const ModelConfig& c = r->config;
  if (c.max_batch_size < 0) return "parsed max_batch_size " + std::to_string(c.max_batch_size);
  if (std::string broken = CheckTensors(c.inputs, "input"); !broken.empty()) return broken;
  if (std::string broken = CheckTensors(c.outputs, "output"); !broken.empty()) return broken;
  const VersionPolicy& v = r->version_policy;
  if (v.kind == VersionPolicy::Kind::kLatest && v.num_versions < 1) {
    return "parsed a latest policy of " + std::to_string(v.num_versions) + " versions";
  }
  if (v.kind == VersionPolicy::Kind::kSpecific) {
    if (v.versions.empty()) return "parsed a specific policy without versions";
    for (int64_t n : v.versions) {
      if (n < 0) return "parsed specific version " + std::to_string(n);
    }
  }
  for (const std::string& w : r->warnings) {
    if (w.rfind(kFile, 0) != 0) return "a warning does not name the file: " + w;
  }
  // ModelConfigToYaml must not throw on it (it is used on configs of any origin).
  (void)ModelConfigToYaml(c);
  return "";
}

}  // namespace modelgrid::fuzz

MODELGRID_FUZZ_TARGET(modelgrid::fuzz::CheckTritonConfig)
