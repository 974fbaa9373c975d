#include "estimate/torchscript_archive.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include "estimate/test_fixtures.h"

namespace modelgrid::estimate {
namespace {

using ::testing::HasSubstr;
using testing::PickleWriter;
using testing::TempDir;
using testing::WriteZip;

using Entries = std::vector<std::pair<std::string, std::string>>;

std::string DataPkl() {
  std::map<std::string, int> memo;
  PickleWriter p;
  p.Proto(2).Global("__torch__", "M").Put(100).EmptyTuple().NewObj().EmptyDict().Mark();
  p.Unicode("weight").Tensor("FloatStorage", "0", 10, {2, 5}, &memo);
  p.Unicode("half").Tensor("HalfStorage", "1", 70000, {70000}, &memo);
  p.SetItems().Build().Stop();
  return p.bytes();
}

std::string ConstantsPkl() {
  std::map<std::string, int> memo;
  PickleWriter p;
  p.Proto(2).Mark().Tensor("LongStorage", "0", 3, {3}, &memo).Tuple().Stop();
  return p.bytes();
}

Entries ValidEntries() {
  return {{"model/version", "3\n"},
          {"model/data.pkl", DataPkl()},
          {"model/code/__torch__/m.py", "class M(Module):\n  pass\n"},
          {"model/data/0", std::string(40, '\1')},
          {"model/data/1", std::string(140000, '\2')},
          {"model/constants.pkl", ConstantsPkl()},
          {"model/constants/0", std::string(24, '\3')}};
}

TEST(TorchScriptArchiveTest, ElementSizes) {
  EXPECT_EQ(StorageElementSize("torch.FloatStorage"), 4u);
  EXPECT_EQ(StorageElementSize("torch.HalfStorage"), 2u);
  EXPECT_EQ(StorageElementSize("torch.BFloat16Storage"), 2u);
  EXPECT_EQ(StorageElementSize("torch.LongStorage"), 8u);
  EXPECT_EQ(StorageElementSize("torch.BoolStorage"), 1u);
  EXPECT_EQ(StorageElementSize("torch.ComplexDoubleStorage"), 16u);
  EXPECT_EQ(StorageElementSize("torch.Storage"), 0u);
  EXPECT_EQ(StorageElementSize("numpy.FloatStorage"), 0u);
  EXPECT_EQ(StorageElementSize("torch.Float"), 0u);
}

TEST(TorchScriptArchiveTest, ReadsRecordsAndStorages) {
  TempDir dir;
  ASSERT_TRUE(WriteZip(dir / "model.pt", ValidEntries()));
  auto r = ReadTorchScriptArchive(dir / "model.pt");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const TorchScriptArchive& a = r.value();
  EXPECT_EQ(a.root, "model");
  EXPECT_EQ(a.data_bytes, 140040u);
  EXPECT_EQ(a.constants_bytes, 24u);
  EXPECT_EQ(a.weight_bytes(), 140064u);
  EXPECT_EQ(a.record_sizes, (std::vector<uint64_t>{40, 140000, 24}));
  EXPECT_EQ(a.code_files, (std::vector<std::string>{"code/__torch__/m.py"}));
  ASSERT_EQ(a.storages.size(), 3u);
  EXPECT_EQ(a.storages[0].record, "data/0");
  EXPECT_EQ(a.storages[0].element_size, 4u);
  EXPECT_EQ(a.storages[0].numel, 10u);
  EXPECT_EQ(a.storages[0].record_bytes, 40u);
  EXPECT_EQ(a.storages[1].record, "data/1");
  EXPECT_EQ(a.storages[1].storage_type, "torch.HalfStorage");
  EXPECT_EQ(a.storages[1].record_bytes, 140000u);
  EXPECT_EQ(a.storages[2].record, "constants/0");
  EXPECT_EQ(a.storages[2].element_size, 8u);
  EXPECT_EQ(a.storage_elements(), 10u + 70000 + 3);
  EXPECT_TRUE(a.notes.empty());
}

TEST(TorchScriptArchiveTest, MissingFile) {
  TempDir dir;
  auto r = ReadTorchScriptArchive(dir / "model.pt");
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
}

TEST(TorchScriptArchiveTest, NotAZip) {
  TempDir dir;
  for (const std::string& bytes :
       {std::string(), std::string("this is not a zip archive at all")}) {
    testing::WriteFile(dir / "model.pt", bytes);
    auto r = ReadTorchScriptArchive(dir / "model.pt");
    EXPECT_EQ(r.status().code(), StatusCode::kCorruption);
    EXPECT_THAT(r.status().message(), HasSubstr("model.pt: not a zip archive"));
  }
}

TEST(TorchScriptArchiveTest, TruncatedZip) {
  TempDir dir;
  ASSERT_TRUE(WriteZip(dir / "full.pt", ValidEntries()));
  std::string bytes = testing::ReadFile(dir / "full.pt");
  for (size_t cut : {size_t{10}, bytes.size() / 2, bytes.size() - 100}) {
    testing::WriteFile(dir / "model.pt", bytes.substr(0, cut));
    auto r = ReadTorchScriptArchive(dir / "model.pt");
    EXPECT_EQ(r.status().code(), StatusCode::kCorruption) << cut;
    EXPECT_THAT(r.status().message(), HasSubstr("model.pt: truncated or corrupt zip archive"))
        << cut;
  }
}

TEST(TorchScriptArchiveTest, MissingDataPkl) {
  TempDir dir;
  Entries e = ValidEntries();
  e.erase(e.begin() + 1);
  ASSERT_TRUE(WriteZip(dir / "model.pt", e));
  auto r = ReadTorchScriptArchive(dir / "model.pt");
  EXPECT_EQ(r.status().code(), StatusCode::kCorruption);
  EXPECT_THAT(r.status().message(), HasSubstr("model.pt: missing model/data.pkl"));
}

TEST(TorchScriptArchiveTest, ReferencedRecordAbsent) {
  TempDir dir;
  Entries e = ValidEntries();
  e.erase(e.begin() + 4);  // model/data/1
  ASSERT_TRUE(WriteZip(dir / "model.pt", e));
  auto r = ReadTorchScriptArchive(dir / "model.pt");
  EXPECT_EQ(r.status().code(), StatusCode::kCorruption);
  EXPECT_THAT(
      r.status().message(),
      HasSubstr("data.pkl references storage '1' but the archive has no record 'model/data/1'"));
}

TEST(TorchScriptArchiveTest, RecordTooSmall) {
  TempDir dir;
  Entries e = ValidEntries();
  e[4].second.resize(1000);
  ASSERT_TRUE(WriteZip(dir / "model.pt", e));
  auto r = ReadTorchScriptArchive(dir / "model.pt");
  EXPECT_EQ(r.status().code(), StatusCode::kCorruption);
  EXPECT_THAT(r.status().message(), HasSubstr("record 'data/1' has 1000 bytes"));
}

TEST(TorchScriptArchiveTest, TwoTopLevelFolders) {
  TempDir dir;
  Entries e = ValidEntries();
  e.push_back({"other/x", "y"});
  ASSERT_TRUE(WriteZip(dir / "model.pt", e));
  auto r = ReadTorchScriptArchive(dir / "model.pt");
  EXPECT_EQ(r.status().code(), StatusCode::kCorruption);
  EXPECT_THAT(r.status().message(), HasSubstr("two top-level folders"));
}

TEST(TorchScriptArchiveTest, GarbagePickle) {
  TempDir dir;
  Entries e = ValidEntries();
  e[1].second = "\x80\x02\xfe";
  ASSERT_TRUE(WriteZip(dir / "model.pt", e));
  auto r = ReadTorchScriptArchive(dir / "model.pt");
  EXPECT_EQ(r.status().code(), StatusCode::kCorruption);
  EXPECT_THAT(r.status().message(),
              HasSubstr("model.pt: data.pkl: pickle byte 2: unknown opcode 0xfe"));
}

RC_GTEST_PROP(TorchScriptArchiveProperty, DamagedArchivesNeverCrash, ()) {
  TempDir dir;
  RC_ASSERT(WriteZip(dir / "full.pt", ValidEntries()));
  std::string bytes = testing::ReadFile(dir / "full.pt");
  if (*rc::gen::arbitrary<bool>()) {
    bytes.resize(*rc::gen::inRange<size_t>(0, bytes.size()));
  } else {
    for (int i = *rc::gen::inRange(1, 8); i > 0; --i) {
      bytes[*rc::gen::inRange<size_t>(0, bytes.size())] =
          static_cast<char>(*rc::gen::arbitrary<uint8_t>());
    }
  }
  testing::WriteFile(dir / "model.pt", bytes);
  auto r = ReadTorchScriptArchive(dir / "model.pt");
  if (r.ok()) {
    RC_ASSERT(r->storages.size() <= 3u);
  } else {
    RC_ASSERT(r.status().code() == StatusCode::kCorruption);
  }
}

}  // namespace
}  // namespace modelgrid::estimate
