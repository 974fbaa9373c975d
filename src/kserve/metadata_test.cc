// Server and model metadata bodies.
#include "modelgrid/kserve/metadata.h"

#include <gtest/gtest.h>

namespace modelgrid {
namespace {

using nlohmann::json;

TEST(MetadataTest, Server) {
  EXPECT_EQ(ServerMetadataJson("modelgrid", "0.1.0", {"binary_tensor_data", "statistics"}),
            json::parse(R"({"name":"modelgrid","version":"0.1.0",
                            "extensions":["binary_tensor_data","statistics"]})"));
  EXPECT_EQ(ServerMetadataJson("modelgrid", "0.1.0", {})["extensions"], json::array());
}

TEST(MetadataTest, BatchingModelGetsAVariableBatchDimension) {
  const std::vector<TensorSpec> inputs = {{"input__0", DataType::kFP32, {3, 224, 224}}};
  const std::vector<TensorSpec> outputs = {{"output__0", DataType::kFP16, {-1, 1000}}};
  const json m = ModelMetadataJson("resnet50", {"1"}, "pytorch_torchscript", inputs, outputs, 8);
  EXPECT_EQ(m, json::parse(R"({"name":"resnet50","versions":["1"],"platform":"pytorch_torchscript",
      "inputs":[{"name":"input__0","datatype":"FP32","shape":[-1,3,224,224]}],
      "outputs":[{"name":"output__0","datatype":"FP16","shape":[-1,-1,1000]}]})"));
}

TEST(MetadataTest, NonBatchingModelKeepsItsDims) {
  const std::vector<TensorSpec> io = {{"ids", DataType::kInt64, {1, 128}}};
  const json m = ModelMetadataJson("bert", {}, "pytorch_torchscript", io, {}, 0);
  EXPECT_FALSE(m.contains("versions"));
  EXPECT_EQ(m["inputs"][0]["shape"], json::parse("[1,128]"));
  EXPECT_EQ(m["outputs"], json::array());
  EXPECT_EQ(MetadataShape(io[0], 0), (std::vector<int64_t>{1, 128}));
  EXPECT_EQ(MetadataShape(io[0], 4), (std::vector<int64_t>{-1, 1, 128}));
}

TEST(MetadataTest, BadBytesInNamesStillDump) {
  const json m = ModelMetadataJson("bad\xff", {}, "p", {}, {}, 0);
  EXPECT_EQ(m["name"], "bad\xef\xbf\xbd");
  EXPECT_NO_THROW((void)m.dump());
}

}  // namespace
}  // namespace modelgrid
