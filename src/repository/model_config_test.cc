#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <string>
#include <utility>

#include "modelgrid/repository.h"

namespace modelgrid {
namespace {

TEST(ModelConfigTest, EmptyFileGivesDefaults) {
  auto c = ParseModelConfig("", "m/config.yaml");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->max_batch_size, 1);
  EXPECT_EQ(c->replicas, 1);
  EXPECT_EQ(c->resolver, Resolver::kWait);
  EXPECT_EQ(c->load, LoadPolicy::kDefault);
  EXPECT_FALSE(c->pinned);
  EXPECT_FALSE(c->memory_request.has_value());
}

TEST(ModelConfigTest, ParsesLoadPolicyAndPinned) {
  struct Case {
    const char* yaml;
    LoadPolicy load;
    bool pinned;
  };
  const Case cases[] = {
      {"load: eager", LoadPolicy::kEager, false},
      {"load: on_demand\npinned: false", LoadPolicy::kOnDemand, false},
      {"pinned: true", LoadPolicy::kDefault, true},
      {"load: eager\npinned: yes", LoadPolicy::kEager, true},
  };
  for (const Case& k : cases) {
    auto c = ParseModelConfig(k.yaml, "m/config.yaml");
    ASSERT_TRUE(c.ok()) << k.yaml << ": " << c.status().ToString();
    EXPECT_EQ(c->load, k.load) << k.yaml;
    EXPECT_EQ(c->pinned, k.pinned) << k.yaml;
  }
}

TEST(ModelConfigTest, ResolverSpellings) {
  const std::pair<Resolver, const char*> spellings[] = {
      {Resolver::kWait, "wait"}, {Resolver::kPriority, "priority"}, {Resolver::kSwap, "swap"}};
  for (const auto& [resolver, text] : spellings) {
    EXPECT_STREQ(ResolverName(resolver), text);
    auto parsed = ParseResolver(text);
    ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
    EXPECT_EQ(*parsed, resolver);
  }
  for (const char* bad : {"teleport", "", "Wait", "swap "}) {
    auto parsed = ParseResolver(bad);
    ASSERT_FALSE(parsed.ok()) << bad;
    EXPECT_EQ(parsed.status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(parsed.status().message(),
              std::string("unknown resolver '") + bad + "' (expected wait, priority or swap)");
  }
}

TEST(ModelConfigTest, LoadPolicySpellings) {
  EXPECT_STREQ(LoadPolicyName(LoadPolicy::kDefault), "default");
  EXPECT_STREQ(LoadPolicyName(LoadPolicy::kEager), "eager");
  EXPECT_STREQ(LoadPolicyName(LoadPolicy::kOnDemand), "on_demand");
  EXPECT_EQ(*ParseLoadPolicy("eager"), LoadPolicy::kEager);
  EXPECT_EQ(*ParseLoadPolicy("on_demand"), LoadPolicy::kOnDemand);
  for (const char* bad : {"default", "lazy", "on-demand", "EAGER", ""}) {
    auto parsed = ParseLoadPolicy(bad);
    ASSERT_FALSE(parsed.ok()) << bad;
    EXPECT_EQ(parsed.status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(parsed.status().message(),
              std::string("unknown load policy '") + bad + "' (expected eager or on_demand)");
  }
}

TEST(ModelConfigTest, ParsesEveryField) {
  const char* yaml = R"(
platform: huggingface
max_batch_size: 8
sequence_length: 64
inputs:
  - {name: input_ids, datatype: INT64, dims: [-1]}
outputs:
  - {name: logits, datatype: FP32, dims: [-1, 1000]}
memory: {request: 2GiB, limit: 3GiB}
devices: [cuda:1, cpu]
replicas: 2
priority: 5
resolver: swap
load: on_demand
pinned: true
latency_sensitive: true
expected_load: 12.5
dynamic_batching: {max_queue_delay_us: 100, preferred_batch_sizes: [4, 8], max_queue_size: 10}
tasks: {encode: encode}
)";
  auto c = ParseModelConfig(yaml, "m/config.yaml");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->platform, "huggingface");
  EXPECT_EQ(c->max_batch_size, 8);
  EXPECT_EQ(c->sequence_length, 64);
  ASSERT_EQ(c->inputs.size(), 1u);
  EXPECT_EQ(c->inputs[0].datatype, DataType::kInt64);
  EXPECT_EQ(c->inputs[0].dims, std::vector<int64_t>{-1});
  EXPECT_EQ(c->outputs[0].dims, (std::vector<int64_t>{-1, 1000}));
  EXPECT_EQ(*c->memory_request, 2ull << 30);
  EXPECT_EQ(*c->memory_limit, 3ull << 30);
  EXPECT_EQ(c->devices, (std::vector<std::string>{"cuda:1", "cpu"}));
  EXPECT_EQ(c->replicas, 2);
  EXPECT_EQ(c->priority, 5);
  EXPECT_EQ(c->resolver, Resolver::kSwap);
  EXPECT_EQ(c->load, LoadPolicy::kOnDemand);
  EXPECT_TRUE(c->pinned);
  EXPECT_TRUE(c->latency_sensitive);
  EXPECT_DOUBLE_EQ(c->expected_load, 12.5);
  EXPECT_EQ(c->batching.max_queue_delay_us, 100u);
  EXPECT_EQ(c->batching.preferred_batch_sizes, (std::vector<int64_t>{4, 8}));
  EXPECT_EQ(c->batching.max_queue_size, 10u);
  EXPECT_EQ(c->tasks.at("encode"), "encode");
}

struct BadCase {
  const char* yaml;
  const char* must_mention;
};

TEST(ModelConfigTest, BadFieldsNameTheFileAndField) {
  const BadCase cases[] = {
      {"max_batch_sise: 4", "unknown field 'max_batch_sise'"},
      {"memory: {requets: 1GiB}", "unknown field 'memory.requets'"},
      {"max_batch_size: -3", "max_batch_size"},
      {"max_batch_size: lots", "max_batch_size"},
      {"inputs: [{name: x, datatype: FLOAT}]", "unknown datatype 'FLOAT'"},
      {"inputs: [{datatype: FP32}]", "inputs[0].name"},
      {"inputs: [{name: x, dims: [0]}]", "inputs[0].dims[0]"},
      {"memory: {request: 2GiB, limit: 1GiB}", "memory.limit"},
      {"memory: {request: two}", "memory.request"},
      {"resolver: kill", "resolver"},
      {"replicas: 0", "replicas"},
      {"platform: tensorflow", "platform"},
      {"tasks: [a, b]", "tasks"},
      {"{unclosed", "not valid YAML"},
  };
  for (const auto& c : cases) {
    auto r = ParseModelConfig(c.yaml, "zoo/m/config.yaml");
    ASSERT_FALSE(r.ok()) << c.yaml;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find("zoo/m/config.yaml"), std::string::npos) << r.status().message();
    EXPECT_NE(r.status().message().find(c.must_mention), std::string::npos)
        << c.yaml << " -> " << r.status().message();
  }
}

// Each bad value: the message names the file, the field (in the form
// "field 'F'") and what is wrong with it.
TEST(ModelConfigTest, BadValuesNameFileFieldAndWhy) {
  struct Case {
    const char* yaml;
    const char* field;
    const char* why;
  };
  const Case cases[] = {
      {"memory: {request: -1GiB}", "memory.request", "must not be negative, got '-1GiB'"},
      {"memory: {limit: -5}", "memory.limit", "must not be negative"},
      {"memory: {request: 12 parsecs}", "memory.request", "invalid byte quantity '12 parsecs'"},
      {"memory: {limit: lots}", "memory.limit", "invalid byte quantity 'lots'"},
      {"memory: {request: 0}", "memory.request", "at least 1 byte"},
      {"memory: {request: [1GiB]}", "memory.request", "expected a byte quantity"},
      {"memory: {request: 2GiB, limit: 1GiB}", "memory.limit",
       "must be >= memory.request (1073741824 < 2147483648 bytes)"},
      {"resolver: teleport", "resolver",
       "unknown resolver 'teleport' (expected wait, priority or swap)"},
      {"resolver: {a: b}", "resolver", "expected a string"},
      {"load: lazy", "load", "unknown load policy 'lazy' (expected eager or on_demand)"},
      {"load: default", "load", "unknown load policy 'default'"},
      {"load: [eager]", "load", "expected a string"},
      {"pinned: maybe", "pinned", "expected true or false, got 'maybe'"},
      {"pinned: [true]", "pinned", "expected true or false"},
  };
  for (const Case& c : cases) {
    auto r = ParseModelConfig(c.yaml, "zoo/m/config.yaml");
    ASSERT_FALSE(r.ok()) << c.yaml;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << c.yaml;
    const std::string msg = r.status().message();
    EXPECT_EQ(msg.rfind("zoo/m/config.yaml: ", 0), 0u) << msg;
    EXPECT_NE(msg.find(std::string("field '") + c.field + "'"), std::string::npos)
        << c.yaml << " -> " << msg;
    EXPECT_NE(msg.find(c.why), std::string::npos) << c.yaml << " -> " << msg;
  }
}

// Memory sizes at their edges: 1 byte and a limit equal to the request pass.
TEST(ModelConfigTest, SmallestMemorySizesPass) {
  auto c = ParseModelConfig("memory: {request: 1, limit: 1}", "m/config.yaml");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(*c->memory_request, 1u);
  EXPECT_EQ(*c->memory_limit, 1u);
}

TEST(ModelConfigTest, WriterSpellsLoadAndPinned) {
  ModelConfig c;
  c.load = LoadPolicy::kOnDemand;
  c.pinned = true;
  std::string yaml = ModelConfigToYaml(c);
  EXPECT_NE(yaml.find("\nload: on_demand\n"), std::string::npos) << yaml;
  EXPECT_NE(yaml.find("pinned: true\n"), std::string::npos) << yaml;
  auto back = ParseModelConfig(yaml, "written.yaml");
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->load, LoadPolicy::kOnDemand);
  EXPECT_TRUE(back->pinned);

  c.load = LoadPolicy::kEager;
  c.pinned = false;
  yaml = ModelConfigToYaml(c);
  EXPECT_NE(yaml.find("\nload: eager\n"), std::string::npos) << yaml;
  EXPECT_NE(yaml.find("pinned: false\n"), std::string::npos) << yaml;
  EXPECT_EQ(ParseModelConfig(yaml, "written.yaml")->load, LoadPolicy::kEager);

  // kDefault is written by leaving the field out.
  c.load = LoadPolicy::kDefault;
  yaml = ModelConfigToYaml(c);
  EXPECT_EQ(yaml.find("\nload:"), std::string::npos) << yaml;
  EXPECT_EQ(ParseModelConfig(yaml, "written.yaml")->load, LoadPolicy::kDefault);
}

// Whatever bytes a user writes, the parser answers with a config or an error.
RC_GTEST_PROP(ModelConfigProperty, ArbitraryTextNeverCrashes, (const std::string& text)) {
  auto r = ParseModelConfig(text, "fuzz.yaml");
  if (!r.ok()) RC_ASSERT(r.status().message().find("fuzz.yaml") != std::string::npos);
}

RC_GTEST_PROP(ModelConfigProperty, BatchSizeRoundTrips, (uint16_t batch, uint8_t replicas)) {
  const int reps = 1 + replicas % 16;
  auto r = ParseModelConfig("max_batch_size: " + std::to_string(batch) +
                                "\nreplicas: " + std::to_string(reps),
                            "x.yaml");
  RC_ASSERT(r.ok());
  RC_ASSERT(r->max_batch_size == batch);
  RC_ASSERT(r->replicas == reps);
}


// A config as ParseModelConfig could return it, with every field drawn.
rc::Gen<ModelConfig> ValidConfig() {
  const auto text = rc::gen::container<std::string>(rc::gen::inRange<char>(32, 127));
  const auto tensor = rc::gen::apply(
      [](std::string name, int type, std::vector<int64_t> dims) {
        TensorSpec t;
        t.name = std::move(name);
        t.datatype = static_cast<DataType>(type);
        t.dims = std::move(dims);
        return t;
      },
      text, rc::gen::inRange<int>(0, static_cast<int>(DataType::kBytes) + 1),
      rc::gen::container<std::vector<int64_t>>(rc::gen::oneOf(
          rc::gen::just<int64_t>(-1), rc::gen::inRange<int64_t>(1, int64_t{1} << 40))));
  return rc::gen::exec([=] {
    ModelConfig c;
    c.platform = *rc::gen::element<std::string>("", "pytorch_torchscript", "huggingface");
    c.max_batch_size = *rc::gen::inRange<int64_t>(0, 1 << 20);
    c.sequence_length = *rc::gen::inRange<int64_t>(1, 1 << 20);
    c.inputs = *rc::gen::container<std::vector<TensorSpec>>(tensor);
    c.outputs = *rc::gen::container<std::vector<TensorSpec>>(tensor);
    if (*rc::gen::arbitrary<bool>()) c.memory_request = *rc::gen::inRange<uint64_t>(1, uint64_t{1} << 50);
    if (*rc::gen::arbitrary<bool>()) {
      c.memory_limit = c.memory_request.value_or(1) + *rc::gen::inRange<uint64_t>(0, uint64_t{1} << 50);
    }
    c.devices = *rc::gen::container<std::vector<std::string>>(text);
    c.replicas = *rc::gen::inRange<int>(1, 1025);
    c.priority = *rc::gen::arbitrary<int>();
    c.resolver = *rc::gen::element(Resolver::kWait, Resolver::kPriority, Resolver::kSwap);
    c.load = *rc::gen::element(LoadPolicy::kDefault, LoadPolicy::kEager, LoadPolicy::kOnDemand);
    c.pinned = *rc::gen::arbitrary<bool>();
    c.latency_sensitive = *rc::gen::arbitrary<bool>();
    c.expected_load = *rc::gen::inRange<int>(0, 1 << 30) / 7.0;
    c.batching.enabled = *rc::gen::arbitrary<bool>();
    c.batching.max_queue_delay_us = *rc::gen::inRange<uint64_t>(0, uint64_t{1} << 62);
    c.batching.preferred_batch_sizes =
        *rc::gen::container<std::vector<int64_t>>(rc::gen::inRange<int64_t>(0, 1 << 20));
    c.batching.max_queue_size = *rc::gen::inRange<uint64_t>(0, uint64_t{1} << 62);
    c.batching.default_timeout_us = *rc::gen::inRange<uint64_t>(0, uint64_t{1} << 62);
    c.tasks = *rc::gen::container<std::map<std::string, std::string>>(text, text);
    return c;
  });
}

// What ModelConfigToYaml writes, ParseModelConfig reads back equal.
RC_GTEST_PROP(ModelConfigProperty, WrittenYamlParsesBackEqual, ()) {
  const ModelConfig c = *ValidConfig();
  const std::string yaml = ModelConfigToYaml(c);
  auto back = ParseModelConfig(yaml, "written.yaml");
  RC_ASSERT(back.ok());
  RC_ASSERT(*back == c);
}

TEST(ModelConfigTest, DefaultsWrittenAndReadBackStayDefaults) {
  const ModelConfig defaults;
  const std::string yaml = ModelConfigToYaml(defaults);
  EXPECT_NE(yaml.find("max_batch_size: 1"), std::string::npos) << yaml;
  auto back = ParseModelConfig(yaml, "written.yaml");
  ASSERT_TRUE(back.ok()) << back.status().ToString() << "\n" << yaml;
  EXPECT_EQ(*back, defaults);
}

}  // namespace
}  // namespace modelgrid
