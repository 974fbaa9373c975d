#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "modelgrid/repository.h"
#include "repository/repository_test_util.h"

namespace modelgrid {
namespace {

namespace fs = std::filesystem;

class ModelEntryTest : public testing::TempRepositoryTest {};

TEST_F(ModelEntryTest, TritonLayoutPicksTheHighestVersion) {
  Write("resnet/1/model.pt", "x");
  Write("resnet/3/model.pt", "x");
  Write("resnet/2/model.pt", "x");
  Write("resnet/10/notes.txt", "no model here");
  auto m = OpenModel(root_ / "resnet");
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->name, "resnet");
  EXPECT_EQ(m->version, "3");
  EXPECT_EQ(m->format, ModelFormat::kTorchScript);
  EXPECT_EQ(m->config.platform, "pytorch_torchscript");
  EXPECT_EQ(m->torchscript->filename(), "model.pt");
}

TEST_F(ModelEntryTest, HuggingFaceFolderWithShards) {
  Write("gpt2/config.json", "{}");
  Write("gpt2/model.safetensors.index.json",
        R"({"metadata":{"total_size":8},"weight_map":{"a":"model-00002-of-00002.safetensors","b":"model-00001-of-00002.safetensors"}})");
  Write("gpt2/model-00001-of-00002.safetensors", "");
  Write("gpt2/model-00002-of-00002.safetensors", "");
  Write("gpt2/1/model.pt", "x");
  Write("gpt2/config.yaml", "max_batch_size: 4\n");
  auto m = OpenModel(root_ / "gpt2");
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->format, ModelFormat::kHuggingFace);
  ASSERT_EQ(m->safetensors.size(), 2u);
  EXPECT_EQ(m->safetensors[0].filename(), "model-00001-of-00002.safetensors");
  EXPECT_TRUE(m->safetensors_index.has_value());
  EXPECT_EQ(m->config.max_batch_size, 4);
  EXPECT_EQ(m->config.platform, "huggingface");
}

TEST_F(ModelEntryTest, ScanSkipsNonModelsAndSorts) {
  Write("b/1/model.pt", "x");
  Write("a/1/model.pt", "x");
  Write("docs/readme.txt", "not a model");
  auto models = ScanRepository(root_);
  ASSERT_TRUE(models.ok()) << models.status().ToString();
  ASSERT_EQ(models->size(), 2u);
  EXPECT_EQ((*models)[0].name, "a");
  EXPECT_EQ((*models)[1].name, "b");
}

TEST_F(ModelEntryTest, BrokenConfigRejectsTheRepositoryNamingTheFile) {
  Write("a/1/model.pt", "x");
  Write("a/config.yaml", "max_batch_size: [1]\n");
  auto models = ScanRepository(root_);
  ASSERT_FALSE(models.ok());
  EXPECT_NE(models.status().message().find("a/config.yaml"), std::string::npos);
  EXPECT_NE(models.status().message().find("max_batch_size"), std::string::npos);
}

TEST_F(ModelEntryTest, ConfigWithoutModelFilesIsAnError) {
  Write("empty/config.yaml", "max_batch_size: 1\n");
  auto models = ScanRepository(root_);
  ASSERT_FALSE(models.ok());
  EXPECT_NE(models.status().message().find("no model files"), std::string::npos);
}

TEST_F(ModelEntryTest, MissingPathsAreNotFound) {
  EXPECT_EQ(OpenModel(root_ / "nope").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(ScanRepository(root_ / "nope").status().code(), StatusCode::kNotFound);
  Write("weird.txt", "x");
  EXPECT_EQ(OpenModel(root_ / "weird.txt").status().code(), StatusCode::kInvalidArgument);
}

TEST_F(ModelEntryTest, BadShardIndexIsCorruption) {
  Write("m/config.json", "{}");
  Write("m/model.safetensors.index.json", R"({"weight_map": 3})");
  auto m = OpenModel(root_ / "m");
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), StatusCode::kCorruption);
  EXPECT_NE(m.status().message().find("weight_map"), std::string::npos);
}

TEST_F(ModelEntryTest, DirectFilePaths) {
  Write("m/1/model.pt", "x");
  auto m = OpenModel(root_ / "m/1/model.pt");
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->name, "m");
  Write("loose.pt", "x");
  auto l = OpenModel(root_ / "loose.pt");
  ASSERT_TRUE(l.ok());
  EXPECT_EQ(l->name, "loose");
}

}  // namespace
}  // namespace modelgrid
