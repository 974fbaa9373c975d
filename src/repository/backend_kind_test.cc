// BackendKindFor (modelgrid/backend/backend_kind.h) on folders as users have
// them: a TorchScript export, a Hugging Face folder without one, both, and
// config.yaml's `backend` field.

#include "modelgrid/backend/backend_kind.h"

#include <gtest/gtest.h>

#include "repository/repository_test_util.h"

namespace modelgrid {
namespace {

// An empty but well-formed safetensors file: 8-byte header length, then "{}"
// padded with spaces to 8 bytes.
std::string EmptySafetensors() { return std::string("\x08\0\0\0\0\0\0\0", 8) + "{}      "; }

class BackendKindTest : public testing::TempRepositoryTest {
 protected:
  void WriteHuggingFace(const std::string& model) {
    Write(model + "/config.json", R"({"model_type": "gpt2"})");
    Write(model + "/model.safetensors", EmptySafetensors());
  }
  Result<std::string> KindOf(const std::string& model) {
    auto entry = OpenModel(root_ / model);
    if (!entry.ok()) return entry.status();
    return BackendKindFor(*entry);
  }
};

TEST_F(BackendKindTest, AnExportRunsOnTorchScriptAndAHuggingFaceFolderOnTheNativeBackend) {
  Write("exported/1/model.pt", "not read here");
  WriteHuggingFace("hf_only");
  WriteHuggingFace("hf_with_export");
  Write("hf_with_export/1/model.pt", "not read here");
  EXPECT_EQ(KindOf("exported").value(), "torchscript");
  EXPECT_EQ(KindOf("hf_only").value(), "huggingface");
  EXPECT_EQ(KindOf("hf_with_export").value(), "torchscript");
}

TEST_F(BackendKindTest, ConfigYamlChoosesTheBackendAndNeedsItsFiles) {
  WriteHuggingFace("m");
  Write("m/1/model.pt", "not read here");
  Write("m/config.yaml", "backend: huggingface\n");
  EXPECT_EQ(KindOf("m").value(), "huggingface");

  WriteHuggingFace("no_export");
  Write("no_export/config.yaml", "backend: torchscript\n");
  Result<std::string> r = KindOf("no_export");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_NE(r.status().message().find("backend torchscript needs <version>/model.pt"),
            std::string::npos)
      << r.status().ToString();
  EXPECT_NE(r.status().message().find("no_export"), std::string::npos);
}

TEST_F(BackendKindTest, AnUnknownBackendInConfigYamlIsRefusedNamingTheField) {
  WriteHuggingFace("m");
  Write("m/config.yaml", "backend: onnxruntime\n");
  auto entry = OpenModel(root_ / "m");
  ASSERT_FALSE(entry.ok());
  EXPECT_NE(entry.status().message().find("backend"), std::string::npos);
  EXPECT_NE(entry.status().message().find("onnxruntime"), std::string::npos);
}

TEST_F(BackendKindTest, DtypeIsReadAndWrittenBack) {
  auto c = ParseModelConfig("backend: huggingface\ndtype: bfloat16\n", "config.yaml");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->backend, "huggingface");
  EXPECT_EQ(c->dtype, "bfloat16");
  auto again = ParseModelConfig(ModelConfigToYaml(*c), "again.yaml");
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(*again, *c);
  auto bad = ParseModelConfig("dtype: float8\n", "config.yaml");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("'dtype'"), std::string::npos) << bad.status().ToString();
}

}  // namespace
}  // namespace modelgrid
