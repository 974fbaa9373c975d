// Request parameters -> InferCall: task selection, priority, timeout, task
// params; inputs (shared-memory ones included) passed through.
#include "service/infer_call.h"

#include <gtest/gtest.h>

namespace modelgrid::service {
namespace {

using nlohmann::json;

InferRequest WithParameters(json parameters) {
  InferRequest r;
  r.id = "req-7";
  r.parameters = std::move(parameters);
  InferTensor t;
  t.name = "input_ids";
  t.datatype = DataType::kInt64;
  t.shape = {1, 2};
  t.data = std::string(16, '\0');
  r.inputs.push_back(t);
  return r;
}

TEST(InferCallTest, DefaultsToInferWithModelDefaults) {
  auto call = MakeInferCall(WithParameters(json::object()));
  ASSERT_TRUE(call.ok()) << call.status().ToString();
  EXPECT_EQ(call->task, "infer");
  EXPECT_EQ(call->priority, 0);
  EXPECT_FALSE(call->timeout.has_value());
  EXPECT_EQ(call->params, json::object());
  EXPECT_EQ(call->id, "req-7");
  ASSERT_EQ(call->inputs.size(), 1u);
  EXPECT_EQ(call->inputs[0].name, "input_ids");
  EXPECT_EQ(call->inputs[0].data.size(), 16u);
}

// An input in shared memory (no data) reaches the grid as decoded: the grid
// resolves its parameters and checks the bytes against the shape.
TEST(InferCallTest, SharedMemoryInputsPassThrough) {
  InferRequest r = WithParameters(json::object());
  InferTensor shared;
  shared.name = "mask";
  shared.datatype = DataType::kInt64;
  shared.shape = {1, 2};
  shared.parameters = {{"shared_memory_region", "in"}, {"shared_memory_byte_size", 16}};
  r.inputs.push_back(shared);
  auto call = MakeInferCall(std::move(r));
  ASSERT_TRUE(call.ok()) << call.status().ToString();
  ASSERT_EQ(call->inputs.size(), 2u);
  EXPECT_EQ(call->inputs[1], shared);
  EXPECT_EQ(call->params, json::object());
}

TEST(InferCallTest, TaskPriorityTimeoutAndTaskParams) {
  auto call = MakeInferCall(WithParameters({{"task", "generate"},
                                            {"priority", 3},
                                            {"timeout", 2'500},
                                            {"max_new_tokens", 4},
                                            {"do_sample", true},
                                            {"temperature", 0.7},
                                            {"binary_data_output", true}}));
  ASSERT_TRUE(call.ok()) << call.status().ToString();
  EXPECT_EQ(call->task, "generate");
  EXPECT_EQ(call->priority, 3);
  ASSERT_TRUE(call->timeout.has_value());
  EXPECT_EQ(call->timeout->count(), 3);  // 2500 us rounded up to whole ms
  EXPECT_EQ(call->params, json({{"max_new_tokens", 4}, {"do_sample", true}, {"temperature", 0.7}}));
}

TEST(InferCallTest, NegativePriorityAndZeroTimeout) {
  auto call = MakeInferCall(WithParameters({{"priority", -2}, {"timeout", 0}}));
  ASSERT_TRUE(call.ok());
  EXPECT_EQ(call->priority, -2);
  EXPECT_FALSE(call->timeout.has_value());
}

TEST(InferCallTest, BadParametersNameThemselves) {
  struct Case {
    json params;
    std::string expected;
  };
  const Case cases[] = {
      {{{"task", 5}}, "parameter 'task' must be a non-empty string, got 5"},
      {{{"task", ""}}, "parameter 'task' must be a non-empty string"},
      {{{"priority", "high"}}, "parameter 'priority' must be an integer, got \"high\""},
      {{{"priority", 1.5}}, "parameter 'priority' must be an integer"},
      {{{"priority", 4'000'000'000LL}}, "parameter 'priority' must be an integer in int range"},
      {{{"timeout", -1}}, "parameter 'timeout' must be a non-negative integer (microseconds)"},
      {{{"timeout", "1s"}}, "parameter 'timeout' must be a non-negative integer"},
  };
  for (const Case& c : cases) {
    auto call = MakeInferCall(WithParameters(c.params));
    ASSERT_FALSE(call.ok()) << c.params.dump();
    EXPECT_EQ(call.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(call.status().message().find(c.expected), std::string::npos)
        << call.status().message() << " / expected: " << c.expected;
  }
}

}  // namespace
}  // namespace modelgrid::service
