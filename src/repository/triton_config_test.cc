// Triton's config.pbtxt: ParseTritonModelConfig on texts written as Triton's
// documentation shows them, malformed and unknown-field texts, the
// precedence of config.yaml in OpenModel, a property test over random and
// mutated texts, and the zoo's Triton-layout repository.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <string>

#include "modelgrid/repository.h"
#include "repository/repository_test_util.h"
#include "testing/zoo.h"

namespace modelgrid {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// A ResNet-50 as Triton's PyTorch backend documentation writes one, with the
// fields ModelGrid reads and some it does not (optimization, model_warmup,
// input.format).
const char* const kResnet = R"cfg(
name: "resnet"
platform: "pytorch_libtorch"
max_batch_size: 8
version_policy: { specific: { versions: [ 1, 3 ] } }
input [
  {
    name: "INPUT__0"
    data_type: TYPE_FP32
    format: FORMAT_NCHW
    dims: [ 3, 224, 224 ]
  }
]
output [
  {
    name: "OUTPUT__0"
    data_type: TYPE_FP32
    dims: [ 1000 ]
    label_filename: "labels.txt"
  }
]
instance_group [
  {
    count: 2
    kind: KIND_GPU
    gpus: [ 0, 1 ]
  }
]
dynamic_batching {
  preferred_batch_size: [ 4, 8 ]
  max_queue_delay_microseconds: 100
  default_queue_policy {
    timeout_action: REJECT
    default_timeout_microseconds: 5000000
    max_queue_size: 64
  }
}
optimization { execution_accelerators { gpu_execution_accelerator : [ { name : "tensorrt" } ] } }
model_warmup [ { name: "w" batch_size: 1 inputs { key: "INPUT__0" value: { data_type: TYPE_FP32 dims: [ 3, 224, 224 ] zero_data: true } } } ]
parameters: { key: "DISABLE_OPTIMIZED_EXECUTION" value: { string_value: "true" } }
parameters: { key: "INFERENCE_MODE" value: { string_value: "true" } }
)cfg";

bool HasWarning(const std::vector<std::string>& warnings, const std::string& what) {
  for (const auto& w : warnings) {
    if (w.find(what) != std::string::npos) return true;
  }
  return false;
}

int CountWarnings(const std::vector<std::string>& warnings, const std::string& what) {
  int n = 0;
  for (const auto& w : warnings) n += w.find(what) != std::string::npos;
  return n;
}

TEST(TritonConfigTest, ParsesAResnetAsTritonWritesIt) {
  auto r = ParseTritonModelConfig(kResnet, "resnet/config.pbtxt");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const ModelConfig& c = r->config;
  EXPECT_EQ(r->name, "resnet");
  EXPECT_EQ(c.platform, "pytorch_torchscript");
  EXPECT_EQ(c.max_batch_size, 8);
  EXPECT_THAT(c.inputs, ElementsAre(TensorSpec{"INPUT__0", DataType::kFP32, {3, 224, 224}}));
  EXPECT_THAT(c.outputs, ElementsAre(TensorSpec{"OUTPUT__0", DataType::kFP32, {1000}}));
  EXPECT_EQ(r->label_files.at("OUTPUT__0"), "labels.txt");
  // count 2 on each of two GPUs: four instances, pinned to both.
  EXPECT_EQ(c.replicas, 4);
  EXPECT_THAT(c.devices, ElementsAre("cuda:0", "cuda:1"));
  EXPECT_TRUE(c.batching.enabled);
  EXPECT_THAT(c.batching.preferred_batch_sizes, ElementsAre(4, 8));
  EXPECT_EQ(c.batching.max_queue_delay_us, 100u);
  EXPECT_EQ(c.batching.default_timeout_us, 5'000'000u);
  EXPECT_EQ(c.batching.max_queue_size, 64u);
  EXPECT_EQ(r->version_policy.kind, VersionPolicy::Kind::kSpecific);
  EXPECT_THAT(r->version_policy.versions, ElementsAre(1, 3));
  EXPECT_EQ(r->parameters.at("DISABLE_OPTIMIZED_EXECUTION"), "true");
  EXPECT_EQ(r->parameters.at("INFERENCE_MODE"), "true");
  // ModelGrid's own fields keep their defaults.
  EXPECT_EQ(c.resolver, Resolver::kWait);
  EXPECT_FALSE(c.memory_request.has_value());
  EXPECT_EQ(c.priority, 0);
}

TEST(TritonConfigTest, UnknownFieldsAreWarnedOnceNamingFileLineAndField) {
  auto r = ParseTritonModelConfig(kResnet, "resnet/config.pbtxt");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const auto& w = r->warnings;
  EXPECT_TRUE(HasWarning(w, "resnet/config.pbtxt:38:1: field 'optimization' is not read"))
      << ::testing::PrintToString(w);
  EXPECT_TRUE(HasWarning(w, "resnet/config.pbtxt:39:1: field 'model_warmup' is not read"))
      << ::testing::PrintToString(w);
  EXPECT_TRUE(HasWarning(w, "resnet/config.pbtxt:10:5: field 'input.format' is not read"))
      << ::testing::PrintToString(w);
  EXPECT_EQ(CountWarnings(w, "field 'parameters'"), 1);
  // Every warning names the file.
  for (const auto& x : w) EXPECT_THAT(x, HasSubstr("resnet/config.pbtxt:"));

  // A field repeated in many inputs is one warning.
  auto two = ParseTritonModelConfig(R"cfg(
    input [ { name: "a" data_type: TYPE_INT64 dims: [ -1 ] format: FORMAT_NONE },
            { name: "b" data_type: TYPE_INT64 dims: [ -1 ] format: FORMAT_NONE } ]
    sequence_batching { max_sequence_idle_microseconds: 5000000 }
    response_cache { enable: true }
  )cfg",
                                    "m/config.pbtxt");
  ASSERT_TRUE(two.ok()) << two.status().ToString();
  EXPECT_EQ(CountWarnings(two->warnings, "field 'input.format'"), 1);
  EXPECT_TRUE(HasWarning(two->warnings, "field 'sequence_batching' is not read"));
  EXPECT_TRUE(HasWarning(two->warnings, "field 'response_cache' is not read"));
  EXPECT_EQ(two->warnings.size(), 3u) << ::testing::PrintToString(two->warnings);
}

TEST(TritonConfigTest, DefaultsFollowTriton) {
  auto r = ParseTritonModelConfig("backend: \"pytorch\"\n", "m/config.pbtxt");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->config.platform, "pytorch_torchscript");
  EXPECT_EQ(r->config.max_batch_size, 0);    // Triton's default: no batching dimension
  EXPECT_FALSE(r->config.batching.enabled);  // no dynamic_batching block
  EXPECT_EQ(r->config.replicas, 1);
  EXPECT_TRUE(r->config.devices.empty());
  EXPECT_EQ(r->version_policy, VersionPolicy{});
  EXPECT_TRUE(r->warnings.empty());
  auto empty = ParseTritonModelConfig("", "m/config.pbtxt");
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(empty->config.platform, "");
}

TEST(TritonConfigTest, DataTypesMapToKServeNames) {
  const std::pair<const char*, DataType> cases[] = {
      {"TYPE_BOOL", DataType::kBool},     {"TYPE_UINT8", DataType::kUInt8},
      {"TYPE_UINT16", DataType::kUInt16}, {"TYPE_UINT32", DataType::kUInt32},
      {"TYPE_UINT64", DataType::kUInt64}, {"TYPE_INT8", DataType::kInt8},
      {"TYPE_INT16", DataType::kInt16},   {"TYPE_INT32", DataType::kInt32},
      {"TYPE_INT64", DataType::kInt64},   {"TYPE_FP16", DataType::kFP16},
      {"TYPE_FP32", DataType::kFP32},     {"TYPE_FP64", DataType::kFP64},
      {"TYPE_STRING", DataType::kBytes},  {"TYPE_BF16", DataType::kBF16},
  };
  for (const auto& [name, type] : cases) {
    auto r = ParseTritonModelConfig(
        std::string("input { name: \"x\" data_type: ") + name + " dims: [ 2 ] }", "m/config.pbtxt");
    ASSERT_TRUE(r.ok()) << name << ": " << r.status().ToString();
    EXPECT_EQ(r->config.inputs.at(0).datatype, type) << name;
  }
}

TEST(TritonConfigTest, InstanceGroupsAndVersionPolicies) {
  auto cpu = ParseTritonModelConfig("instance_group [ { count: 2 kind: KIND_CPU } ]", "m/c");
  ASSERT_TRUE(cpu.ok());
  EXPECT_EQ(cpu->config.replicas, 2);
  EXPECT_THAT(cpu->config.devices, ElementsAre("cpu"));
  EXPECT_TRUE(HasWarning(cpu->warnings, "2 instances on 1 device(s)"));

  auto any = ParseTritonModelConfig(
      "instance_group [ { count: 1 kind: KIND_GPU gpus: [ 1 ] }, { kind: KIND_AUTO } ]", "m/c");
  ASSERT_TRUE(any.ok());
  EXPECT_EQ(any->config.replicas, 2);
  EXPECT_TRUE(any->config.devices.empty());  // the AUTO group may go anywhere

  auto latest = ParseTritonModelConfig("version_policy: { latest: { num_versions: 2 } }", "m/c");
  ASSERT_TRUE(latest.ok());
  EXPECT_EQ(latest->version_policy.kind, VersionPolicy::Kind::kLatest);
  EXPECT_EQ(latest->version_policy.num_versions, 2u);
  auto all = ParseTritonModelConfig("version_policy: { all { } }", "m/c");
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->version_policy.kind, VersionPolicy::Kind::kAll);
}

// Status message of a parse expected to fail.
std::string ErrorOf(const std::string& text) {
  auto r = ParseTritonModelConfig(text, "m/config.pbtxt");
  EXPECT_FALSE(r.ok()) << text;
  return r.ok() ? "" : r.status().ToString();
}

TEST(TritonConfigTest, MalformedTextNamesFileLineAndColumn) {
  EXPECT_THAT(ErrorOf("name: \"m\"\nmax_batch_size: \"eight\"\n"),
              HasSubstr("m/config.pbtxt:2:17: "));
  EXPECT_THAT(ErrorOf("input [\n  { name: \"x\" data_type: TYPE_FLOAT32 }\n]\n"),
              HasSubstr("m/config.pbtxt:2:39: "));
  EXPECT_THAT(ErrorOf("input [ { name: \"x\" "), HasSubstr("m/config.pbtxt:1:"));
  EXPECT_THAT(ErrorOf("instance_group [ { kind: KIND_TPU } ]"), HasSubstr("m/config.pbtxt:1:35: "));
  EXPECT_THAT(ErrorOf("max_batch_size: 8 }"), HasSubstr("m/config.pbtxt:1:19: "));
}

TEST(TritonConfigTest, BadValuesNameFieldLineAndColumn) {
  EXPECT_THAT(ErrorOf("max_batch_size: -1"),
              HasSubstr("m/config.pbtxt:1:1: field 'max_batch_size': must be >= 0"));
  EXPECT_THAT(ErrorOf("input [\n { name: \"x\" data_type: TYPE_FP32 dims: [ 3, 0 ] } ]"),
              HasSubstr("m/config.pbtxt:2:35: field 'input[0].dims[1]': input 'x': must be -1"));
  EXPECT_THAT(ErrorOf("output { name: \"y\" dims: [ 3 ] }"),
              HasSubstr("field 'output[0].data_type'"));
  EXPECT_THAT(ErrorOf("input { data_type: TYPE_FP32 }"), HasSubstr("field 'input[0].name'"));
  EXPECT_THAT(ErrorOf("input { name: \"x\" data_type: TYPE_FP32 }\n"
                      "input { name: \"x\" data_type: TYPE_FP32 }"),
              HasSubstr("m/config.pbtxt:2:1: field 'input[1].name': input 'x' is declared twice"));
  EXPECT_THAT(ErrorOf("instance_group { count: -2 }"),
              HasSubstr("field 'instance_group[0].count'"));
  EXPECT_THAT(ErrorOf("version_policy { specific { versions: [ -1 ] } }"),
              HasSubstr("field 'version_policy.specific.versions[0]'"));
  auto onnx = ParseTritonModelConfig("platform: \"onnxruntime_onnx\"", "m/config.pbtxt");
  EXPECT_EQ(onnx.status().code(), StatusCode::kUnsupported);
  EXPECT_THAT(onnx.status().message(), HasSubstr("m/config.pbtxt:1:1: field 'platform'"));
}

class TritonRepositoryTest : public testing::TempRepositoryTest {};

TEST_F(TritonRepositoryTest, OpenModelReadsConfigPbtxtVersionsAndLabels) {
  Write("resnet/config.pbtxt", kResnet);
  Write("resnet/labels.txt", "tench\r\ngoldfish\nshark\n");
  for (const char* v : {"1", "2", "3", "4"}) Write(fs::path("resnet") / v / "model.pt", "x");
  auto m = OpenModel(root_ / "resnet");
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->config.inputs.at(0).name, "INPUT__0");
  EXPECT_THAT(m->versions, ElementsAre("1", "3"));  // specific [1, 3]
  EXPECT_EQ(m->version, "3");
  EXPECT_EQ(m->torchscript, root_ / "resnet/3/model.pt");
  EXPECT_THAT(m->labels.at("OUTPUT__0"), ElementsAre("tench", "goldfish", "shark"));
  EXPECT_FALSE(HasWarning(m->warnings, "version_policy"));  // both versions serve
  EXPECT_TRUE(m->config_pbtxt.has_value());
  EXPECT_FALSE(m->config_yaml.has_value());

  auto scan = ScanRepository(root_);
  ASSERT_TRUE(scan.ok()) << scan.status().ToString();
  ASSERT_EQ(scan->size(), 1u);
}

TEST_F(TritonRepositoryTest, VersionPolicyLatestAndMissingVersions) {
  Write("m/config.pbtxt", "version_policy: { latest: { num_versions: 2 } }");
  for (const char* v : {"1", "2", "10"}) Write(fs::path("m") / v / "model.pt", "x");
  auto m = OpenModel(root_ / "m");
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_THAT(m->versions, ElementsAre("2", "10"));
  EXPECT_EQ(m->version, "10");

  Write("m/config.pbtxt", "version_policy: { specific: { versions: [ 7 ] } }");
  auto missing = OpenModel(root_ / "m");
  EXPECT_EQ(missing.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(missing.status().message(),
              HasSubstr("config.pbtxt: field 'version_policy.specific': versions [7] have no "
                        "version folder holding model.pt (found: 1, 2, 10)"));

  Write("m/config.pbtxt", "version_policy: { all: {} }");
  auto all = OpenModel(root_ / "m");
  ASSERT_TRUE(all.ok());
  EXPECT_THAT(all->versions, ElementsAre("1", "2", "10"));
  EXPECT_EQ(all->version, "10");
}

TEST_F(TritonRepositoryTest, LabelFileErrors) {
  Write("m/1/model.pt", "x");
  Write("m/config.pbtxt",
        R"(output { name: "y" data_type: TYPE_FP32 dims: [ 2 ] label_filename: "nope.txt" })");
  auto r = OpenModel(root_ / "m");
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(), HasSubstr("field 'output.label_filename' of output 'y'"));
  Write("m/config.pbtxt",
        R"(output { name: "y" data_type: TYPE_FP32 dims: [ 2 ] label_filename: "../x" })");
  r = OpenModel(root_ / "m");
  EXPECT_THAT(r.status().message(), HasSubstr("must be a path inside the model folder"));
}

TEST_F(TritonRepositoryTest, ConfigYamlAddsToAndWinsOverConfigPbtxt) {
  Write("resnet/config.pbtxt", kResnet);
  Write("resnet/labels.txt", "a\n");
  Write("resnet/3/model.pt", "x");
  Write("resnet/config.yaml",
        "max_batch_size: 4\n"        // both speak: the YAML wins
        "devices: [cpu]\n"           // replaces instance_group's pins
        "memory: {request: 1GiB}\n"  // ModelGrid's own
        "resolver: swap\n"
        "pinned: true\n"
        "dynamic_batching: {max_queue_size: 9}\n");  // one field of the block
  auto m = OpenModel(root_ / "resnet");
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  const ModelConfig& c = m->config;
  EXPECT_EQ(c.max_batch_size, 4);
  EXPECT_THAT(c.devices, ElementsAre("cpu"));
  EXPECT_EQ(c.memory_request, uint64_t{1} << 30);
  EXPECT_EQ(c.resolver, Resolver::kSwap);
  EXPECT_TRUE(c.pinned);
  EXPECT_EQ(c.batching.max_queue_size, 9u);
  // What only config.pbtxt says stays.
  EXPECT_EQ(c.batching.max_queue_delay_us, 100u);
  EXPECT_THAT(c.batching.preferred_batch_sizes, ElementsAre(4, 8));
  EXPECT_EQ(c.replicas, 4);
  EXPECT_EQ(c.inputs.at(0).name, "INPUT__0");
  EXPECT_EQ(m->version, "3");
  EXPECT_TRUE(m->config_yaml.has_value());

  // inputs in the YAML replace the pbtxt's list as a whole.
  Write("resnet/config.yaml", "inputs: [{name: pixels, datatype: FP16, dims: [3, 8, 8]}]\n");
  m = OpenModel(root_ / "resnet");
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_THAT(m->config.inputs, ElementsAre(TensorSpec{"pixels", DataType::kFP16, {3, 8, 8}}));
  EXPECT_EQ(m->config.outputs.at(0).name, "OUTPUT__0");
}

TEST_F(TritonRepositoryTest, ScanSkipsOtherBackendsAndRejectsBrokenConfigs) {
  Write("onnx/config.pbtxt", "platform: \"onnxruntime_onnx\"");
  Write("onnx/1/model.onnx", "x");
  Write("py/config.pbtxt", "backend: \"python\"");
  Write("py/1/model.py", "x");
  Write("torch/config.pbtxt", "platform: \"pytorch_libtorch\" max_batch_size: 2");
  Write("torch/1/model.pt", "x");
  auto scan = ScanRepository(root_);
  ASSERT_TRUE(scan.ok()) << scan.status().ToString();
  ASSERT_EQ(scan->size(), 1u);
  EXPECT_EQ(scan->at(0).name, "torch");

  Write("torch/config.pbtxt", "platform: \"pytorch_libtorch\"\nmax_batch_size: [2\n");
  scan = ScanRepository(root_);
  EXPECT_EQ(scan.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(scan.status().message(), HasSubstr("torch/config.pbtxt:2:"));
}

TEST_F(TritonRepositoryTest, NoConfigurationAtAllStillOpens) {
  Write("bare/1/model.pt", "x");
  auto m = OpenModel(root_ / "bare");
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_TRUE(m->config.inputs.empty());
  EXPECT_FALSE(m->config_yaml || m->config_pbtxt);
  EXPECT_EQ(m->version, "1");
}

// An error must name the file, then a line and a column.
bool NamesFileLineColumn(const std::string& message) {
  static const std::regex kWhere("^m/config\\.pbtxt:[0-9]+:[0-9]+: ");
  return std::regex_search(message, kWhere);
}

RC_GTEST_PROP(TritonConfigProperty, RandomBytesParseOrNameLineAndColumn,
              (const std::string& text)) {
  auto r = ParseTritonModelConfig(text, "m/config.pbtxt");
  if (!r.ok()) {
    RC_ASSERT(r.status().code() == StatusCode::kInvalidArgument ||
              r.status().code() == StatusCode::kUnsupported);
    RC_ASSERT(NamesFileLineColumn(r.status().message()));
  }
}

RC_GTEST_PROP(TritonConfigProperty, MutatedResnetParsesOrNamesLineAndColumn, ()) {
  std::string text = kResnet;
  const int edits = *rc::gen::inRange(1, 6);
  for (int i = 0; i < edits; ++i) {
    const size_t at = *rc::gen::inRange<size_t>(0, text.size());
    switch (*rc::gen::inRange(0, 3)) {
      case 0:  // delete a run of characters
        text.erase(at, *rc::gen::inRange<size_t>(1, 8));
        break;
      case 1:  // insert a character, often one of the grammar's own
        text.insert(at, 1,
                    *rc::gen::oneOf(rc::gen::element('{', '}', '[', ']', ':', '"', ',', '-', '\n'),
                                    rc::gen::arbitrary<char>()));
        break;
      default:  // overwrite one
        text[at] = *rc::gen::arbitrary<char>();
        break;
    }
  }
  auto r = ParseTritonModelConfig(text, "m/config.pbtxt");
  if (!r.ok()) RC_ASSERT(NamesFileLineColumn(r.status().message()));
}

// The zoo's Triton-layout repository (tools/zoo/generate.py --triton-out;
// CTest sets MODELGRID_TEST_TRITON_ZOO): config.pbtxt only, specs equal to the
// ones the generator checked against the TorchScript models (the plain zoo's
// config.yaml, checked by tools/zoo/check_zoo.py).
TEST(TritonZooTest, SpecsMatchTheModels) {
  REQUIRE_ZOO();
  const auto triton_opt = testing::TritonZoo();
  if (!triton_opt) GTEST_SKIP() << "MODELGRID_TEST_TRITON_ZOO is not set or not a folder";
  const fs::path triton = *triton_opt;
  auto scan = ScanRepository(triton);
  ASSERT_TRUE(scan.ok()) << scan.status().ToString();
  ASSERT_GE(scan->size(), 2u);
  bool saw_versions = false, saw_replicas = false, saw_labels = false;
  for (const ModelEntry& m : *scan) {
    SCOPED_TRACE(m.name);
    EXPECT_TRUE(m.config_pbtxt.has_value());
    EXPECT_FALSE(m.config_yaml.has_value());
    auto plain = OpenModel(zoo / m.name);
    ASSERT_TRUE(plain.ok()) << plain.status().ToString();
    EXPECT_EQ(m.config.inputs, plain->config.inputs);
    EXPECT_EQ(m.config.outputs, plain->config.outputs);
    EXPECT_EQ(m.config.max_batch_size, plain->config.max_batch_size);
    EXPECT_EQ(m.config.platform, "pytorch_torchscript");
    ASSERT_TRUE(m.torchscript.has_value());
    EXPECT_TRUE(fs::exists(*m.torchscript));
    if (m.versions.size() == 1 && fs::exists(m.dir / "2")) {
      saw_versions = true;  // two version folders, the policy serves version 1
      EXPECT_EQ(m.version_policy.kind, VersionPolicy::Kind::kSpecific);
      EXPECT_EQ(m.version, "1");
      EXPECT_EQ(*m.torchscript, m.dir / "1" / "model.pt");
    }
    if (m.config.replicas == 2) saw_replicas = true;
    for (const auto& [output, labels] : m.labels) {
      saw_labels = true;
      const auto& out = m.config.outputs;
      auto it = std::find_if(out.begin(), out.end(),
                             [&](const TensorSpec& t) { return t.name == output; });
      ASSERT_NE(it, out.end());
      EXPECT_EQ(static_cast<int64_t>(labels.size()), it->dims.back());
    }
  }
  EXPECT_TRUE(saw_versions);
  EXPECT_TRUE(saw_replicas);
  EXPECT_TRUE(saw_labels);
}

}  // namespace
}  // namespace modelgrid
