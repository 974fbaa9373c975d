#include "estimate/safetensors.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <set>

#include "estimate/test_fixtures.h"

namespace modelgrid::estimate {
namespace {

using testing::BuildSafetensors;
using ::testing::HasSubstr;
using testing::SafetensorsBytes;
using testing::TempDir;
using testing::TensorSpecForFile;
using testing::WriteFile;

Status ReadError(const TempDir& dir, const std::string& bytes) {
  WriteFile(dir / "model.safetensors", bytes);
  auto r = ReadSafetensorsHeader(dir / "model.safetensors");
  return r.ok() ? Status::Ok() : r.status();
}

TEST(SafetensorsTest, DtypeBitsCoverFormatsMd) {
  for (const auto& [name, bits] : testing::TestDtypeBits()) {
    ASSERT_TRUE(SafetensorsDtypeBits(name).has_value()) << name;
    EXPECT_EQ(*SafetensorsDtypeBits(name), bits) << name;
  }
  EXPECT_FALSE(SafetensorsDtypeBits("F12").has_value());
  EXPECT_FALSE(SafetensorsDtypeBits("f32").has_value());
}

TEST(SafetensorsTest, PackedBytesRoundsUpSubByteTypes) {
  EXPECT_EQ(PackedBytes(6, 4), 3u);  // 24 bits
  EXPECT_EQ(PackedBytes(7, 4), 4u);  // 28 bits → 4 bytes
  EXPECT_EQ(PackedBytes(3, 6), 3u);  // 18 bits → 3 bytes
  EXPECT_EQ(PackedBytes(4, 6), 3u);  // 24 bits
  EXPECT_EQ(PackedBytes(10, 32), 40u);
  EXPECT_EQ(PackedBytes(0, 16), 0u);
  EXPECT_EQ(PackedBytes(uint64_t{1} << 60, 64), uint64_t{1} << 63);
  EXPECT_EQ(PackedBytes(uint64_t{1} << 61, 64), std::nullopt);
  EXPECT_EQ(PackedBytes((uint64_t{1} << 61) - 1, 32), (uint64_t{1} << 63) - 4);
}

TEST(SafetensorsTest, ReadsEveryEntry) {
  TempDir dir;
  std::vector<TensorSpecForFile> t = {{"wte.weight", "F32", {10, 4}}, {"scale", "BF16", {}},
                                      {"empty", "F16", {0, 3}},       {"packed", "F4", {7}},
                                      {"six", "F6_E2M3", {3}},        {"flag", "BOOL", {5}}};
  // Data laid out in a different order than the names sort.
  WriteFile(dir / "model.safetensors", BuildSafetensors(t, {3, 0, 5, 1, 2, 4}, {{"format", "pt"}}));
  auto r = ReadSafetensorsHeader(dir / "model.safetensors");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const SafetensorsFile& f = r.value();
  ASSERT_EQ(f.tensors.size(), 6u);
  EXPECT_EQ(f.metadata.at("format"), "pt");
  const SafetensorsTensor* w = f.Find("wte.weight");
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->dtype, "F32");
  EXPECT_EQ(w->shape, (std::vector<uint64_t>{10, 4}));
  EXPECT_EQ(w->numel, 40u);
  EXPECT_EQ(w->bytes, 160u);
  EXPECT_EQ(w->begin, 4u);  // after "packed" (7 × 4 bits = 4 bytes)
  EXPECT_EQ(f.Find("scale")->numel, 1u);
  EXPECT_EQ(f.Find("scale")->bytes, 2u);
  EXPECT_EQ(f.Find("empty")->bytes, 0u);
  EXPECT_EQ(f.Find("six")->bytes, 3u);
  // 160 + 2 + 0 + 4 + 3 + 5
  EXPECT_EQ(f.tensor_bytes, 174u);
  EXPECT_EQ(f.parameter_elements, 40u + 1 + 0 + 7 + 3 + 5);
  EXPECT_EQ(f.file_bytes, 8 + f.header_bytes + 174);
  EXPECT_TRUE(std::is_sorted(f.tensors.begin(), f.tensors.end(),
                             [](const auto& a, const auto& b) { return a.begin < b.begin; }));
}

TEST(SafetensorsTest, EmptyHeaderObjectIsValid) {
  TempDir dir;
  EXPECT_TRUE(ReadError(dir, SafetensorsBytes("{}      ", 0)).ok());
}

TEST(SafetensorsTest, MissingFileIsNotFound) {
  TempDir dir;
  auto r = ReadSafetensorsHeader(dir / "nope.safetensors");
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_THAT(r.status().message(), HasSubstr("nope.safetensors"));
}

TEST(SafetensorsTest, EmptyAndTinyFiles) {
  TempDir dir;
  Status s = ReadError(dir, "");
  EXPECT_EQ(s.code(), StatusCode::kCorruption);
  EXPECT_THAT(s.message(), HasSubstr("model.safetensors: empty file"));
  s = ReadError(dir, std::string("\x05\x00\x00", 3));
  EXPECT_EQ(s.code(), StatusCode::kCorruption);
  EXPECT_THAT(s.message(), HasSubstr("truncated"));
}

TEST(SafetensorsTest, RejectsHugeHeaderLength) {
  TempDir dir;
  std::string bytes(8, '\0');
  const uint64_t n = 123456789012ull;
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  Status s = ReadError(dir, bytes + "{}");
  EXPECT_EQ(s.code(), StatusCode::kCorruption);
  EXPECT_THAT(s.message(),
              HasSubstr("model.safetensors: header length 123456789012 exceeds 100000000"));
}

TEST(SafetensorsTest, HeaderLongerThanFile) {
  TempDir dir;
  std::string bytes = SafetensorsBytes("{}", 0);
  bytes[0] = 100;  // claims 100 header bytes, file has 2
  Status s = ReadError(dir, bytes);
  EXPECT_EQ(s.code(), StatusCode::kCorruption);
  EXPECT_THAT(s.message(), HasSubstr("truncated: header length 100"));
}

TEST(SafetensorsTest, HeaderMustStartWithBrace) {
  TempDir dir;
  Status s = ReadError(dir, SafetensorsBytes(" {}", 0));
  EXPECT_EQ(s.code(), StatusCode::kCorruption);
  EXPECT_THAT(s.message(), HasSubstr("does not start with '{'"));
}

TEST(SafetensorsTest, BadJson) {
  TempDir dir;
  Status s = ReadError(dir, SafetensorsBytes(R"({"a": {"dtype": "F32",)", 0));
  EXPECT_EQ(s.code(), StatusCode::kCorruption);
  EXPECT_THAT(s.message(), HasSubstr("not valid JSON"));
  s = ReadError(dir, SafetensorsBytes(R"({"a": 5})", 0));
  EXPECT_EQ(s.code(), StatusCode::kCorruption);
  EXPECT_THAT(s.message(), HasSubstr("tensor 'a' is not a JSON object"));
}

TEST(SafetensorsTest, UnknownDtype) {
  TempDir dir;
  Status s = ReadError(
      dir, SafetensorsBytes(R"({"w": {"dtype": "F12", "shape": [2], "data_offsets": [0, 3]}})", 3));
  EXPECT_EQ(s.code(), StatusCode::kCorruption);
  EXPECT_THAT(s.message(), HasSubstr("tensor 'w' has unknown dtype 'F12'"));
}

TEST(SafetensorsTest, BytesMustMatchShape) {
  TempDir dir;
  Status s = ReadError(
      dir,
      SafetensorsBytes(R"({"w": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 20]}})", 20));
  EXPECT_EQ(s.code(), StatusCode::kCorruption);
  EXPECT_THAT(s.message(), HasSubstr("tensor 'w' holds 20 bytes but 6 elements of F32 need 24"));
}

TEST(SafetensorsTest, BadShapesAndOffsets) {
  TempDir dir;
  for (
      const char* header : {
          R"({"w": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}})",
          R"({"w": {"dtype": "F32", "shape": [1.5], "data_offsets": [0, 4]}})",
          R"({"w": {"dtype": "F32", "shape": 4, "data_offsets": [0, 4]}})",
          R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0]}})",
          R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": [8, 4]}})",
          R"({"w": {"dtype": 32, "shape": [1], "data_offsets": [0, 4]}})",
          R"({"w": {"dtype": "F32", "shape": [4294967296, 4294967296], "data_offsets": [0, 4]}})",
          R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, "__metadata__": {"a": 1}})",
      }) {
    Status s = ReadError(dir, SafetensorsBytes(header, 4));
    EXPECT_EQ(s.code(), StatusCode::kCorruption) << header;
    EXPECT_THAT(s.message(), HasSubstr("model.safetensors: ")) << header;
  }
}

TEST(SafetensorsTest, Gap) {
  TempDir dir;
  Status s = ReadError(
      dir, SafetensorsBytes(R"({"a": {"dtype": "U8", "shape": [4], "data_offsets": [0, 4]},
       "b": {"dtype": "U8", "shape": [4], "data_offsets": [6, 10]}})",
                            10));
  EXPECT_EQ(s.code(), StatusCode::kCorruption);
  EXPECT_THAT(s.message(), HasSubstr("gap: bytes [4, 6) before tensor 'b'"));
}

TEST(SafetensorsTest, GapAtStart) {
  TempDir dir;
  Status s = ReadError(
      dir, SafetensorsBytes(R"({"a": {"dtype": "U8", "shape": [4], "data_offsets": [2, 6]}})", 6));
  EXPECT_THAT(s.message(), HasSubstr("gap: bytes [0, 2)"));
}

TEST(SafetensorsTest, Overlap) {
  TempDir dir;
  Status s = ReadError(
      dir, SafetensorsBytes(R"({"a": {"dtype": "U8", "shape": [4], "data_offsets": [0, 4]},
       "b": {"dtype": "U8", "shape": [4], "data_offsets": [2, 6]}})",
                            6));
  EXPECT_EQ(s.code(), StatusCode::kCorruption);
  EXPECT_THAT(s.message(), HasSubstr("overlap: tensor 'b' begins at 2"));
}

TEST(SafetensorsTest, TruncatedData) {
  TempDir dir;
  std::string bytes = BuildSafetensors({{"h.0.w", "F32", {4}}, {"wte.weight", "F32", {8}}});
  const uint64_t full = bytes.size();
  bytes.resize(full - 5);
  Status s = ReadError(dir, bytes);
  EXPECT_EQ(s.code(), StatusCode::kCorruption);
  EXPECT_THAT(s.message(),
              HasSubstr("truncated: tensor 'wte.weight' ends at byte " + std::to_string(full) +
                        " but the file has " + std::to_string(full - 5)));
}

TEST(SafetensorsTest, TrailingData) {
  TempDir dir;
  Status s = ReadError(dir, BuildSafetensors({{"w", "F32", {4}}}) + "xyz");
  EXPECT_EQ(s.code(), StatusCode::kCorruption);
  EXPECT_THAT(s.message(), HasSubstr("trailing data"));
}

// --- sharded ---

struct ShardFixture {
  TempDir dir;
  ShardFixture() {
    WriteFile(dir / "model-00001-of-00002.safetensors",
              BuildSafetensors({{"a", "F32", {10}}, {"b", "F16", {4}}}));
    WriteFile(dir / "model-00002-of-00002.safetensors", BuildSafetensors({{"c", "BF16", {3, 3}}}));
  }
  void Index(const std::string& text) { WriteFile(dir / "model.safetensors.index.json", text); }
  Result<ShardedSafetensors> Read() {
    return ReadShardedSafetensors(dir / "model.safetensors.index.json");
  }
};

constexpr const char* kMap = R"("weight_map": {"a": "model-00001-of-00002.safetensors",
    "b": "model-00001-of-00002.safetensors", "c": "model-00002-of-00002.safetensors"})";

TEST(ShardedSafetensorsTest, Consistent) {
  ShardFixture f;
  f.Index(std::string(R"({"metadata": {"total_size": 66}, )") + kMap + "}");
  auto r = f.Read();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->shards.size(), 2u);
  EXPECT_EQ(r->tensor_bytes, 40u + 8 + 18);
  EXPECT_EQ(r->parameter_elements, 10u + 4 + 9);
  EXPECT_EQ(r->declared_total_size, 66u);
  EXPECT_TRUE(r->notes.empty());
}

TEST(ShardedSafetensorsTest, TotalSizeMismatchIsANote) {
  ShardFixture f;
  f.Index(std::string(R"({"metadata": {"total_size": 9999}, )") + kMap + "}");
  auto r = f.Read();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->notes.size(), 1u);
  EXPECT_THAT(r->notes[0], HasSubstr("total_size is 9999 but the shard headers add up to 66"));
}

TEST(ShardedSafetensorsTest, TensorInTheWrongShard) {
  ShardFixture f;
  f.Index(R"({"weight_map": {"a": "model-00002-of-00002.safetensors",
      "c": "model-00002-of-00002.safetensors"}})");
  auto r = f.Read();
  EXPECT_EQ(r.status().code(), StatusCode::kCorruption);
  EXPECT_THAT(r.status().message(),
              HasSubstr("tensor 'a' is mapped to 'model-00002-of-00002.safetensors' but that shard "
                        "has no such tensor"));
}

TEST(ShardedSafetensorsTest, UnmappedTensorIsANote) {
  ShardFixture f;
  f.Index(R"({"weight_map": {"a": "model-00001-of-00002.safetensors",
      "c": "model-00002-of-00002.safetensors"}})");
  auto r = f.Read();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->notes.size(), 1u);
  EXPECT_THAT(r->notes[0], HasSubstr("tensor 'b' that the index does not map"));
}

TEST(ShardedSafetensorsTest, MissingShard) {
  ShardFixture f;
  f.Index(R"({"weight_map": {"a": "model-00001-of-00003.safetensors"}})");
  auto r = f.Read();
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_THAT(r.status().message(), HasSubstr("shard 'model-00001-of-00003.safetensors'"));
}

TEST(ShardedSafetensorsTest, BadIndex) {
  ShardFixture f;
  f.Index("{\"weight_map\": ");
  EXPECT_EQ(f.Read().status().code(), StatusCode::kCorruption);
  f.Index(R"({"metadata": {}})");
  EXPECT_THAT(f.Read().status().message(), HasSubstr("no 'weight_map' object"));
  f.Index(R"({"weight_map": {"a": 3}})");
  EXPECT_THAT(f.Read().status().message(), HasSubstr("weight_map entry 'a' is not a string"));
  f.Index(R"({"weight_map": {"a": "../x.safetensors"}})");
  EXPECT_EQ(f.Read().status().code(), StatusCode::kCorruption);
  EXPECT_EQ(ReadShardedSafetensors(f.dir / "missing.json").status().code(), StatusCode::kNotFound);
}

TEST(ShardedSafetensorsTest, CorruptShardNamesTheShard) {
  ShardFixture f;
  WriteFile(f.dir / "model-00002-of-00002.safetensors", "garbage!");
  f.Index(std::string("{") + kMap + "}");
  auto r = f.Read();
  EXPECT_EQ(r.status().code(), StatusCode::kCorruption);
  EXPECT_THAT(r.status().message(), HasSubstr("model-00002-of-00002.safetensors"));
}

// --- properties ---

rc::Gen<std::vector<TensorSpecForFile>> GenTensors() {
  std::vector<std::string> dtypes;
  for (const auto& [name, bits] : testing::TestDtypeBits()) dtypes.push_back(name);
  auto one = rc::gen::build<TensorSpecForFile>(
      rc::gen::set(&TensorSpecForFile::dtype, rc::gen::elementOf(dtypes)),
      rc::gen::set(&TensorSpecForFile::shape,
                   rc::gen::mapcat(rc::gen::inRange<size_t>(0, 4), [](size_t rank) {
                     return rc::gen::container<std::vector<uint64_t>>(
                         rank, rc::gen::inRange<uint64_t>(0, 7));
                   })));
  return rc::gen::mapcat(rc::gen::inRange<size_t>(0, 7), [one](size_t n) {
    return rc::gen::map(rc::gen::container<std::vector<TensorSpecForFile>>(n, one),
                        [](std::vector<TensorSpecForFile> v) {
                          for (size_t i = 0; i < v.size(); ++i)
                            v[i].name = "layer." + std::to_string(i) + ".w";
                          return v;
                        });
  });
}

RC_GTEST_PROP(SafetensorsProperty, ValidFilesParseBackExactly, ()) {
  const auto tensors = *GenTensors();
  std::vector<size_t> order(tensors.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  const auto perm =
      *rc::gen::container<std::vector<int>>(tensors.size(), rc::gen::arbitrary<int>());
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return perm[a] < perm[b]; });
  TempDir dir;
  WriteFile(dir / "m.safetensors", BuildSafetensors(tensors, order));
  auto r = ReadSafetensorsHeader(dir / "m.safetensors");
  RC_ASSERT(r.ok());
  RC_ASSERT(r->tensors.size() == tensors.size());
  uint64_t total = 0;
  uint64_t pos = 0;
  for (size_t i : order) {  // the file's data order is `order`
    const TensorSpecForFile& want = tensors[i];
    const SafetensorsTensor* got = r->Find(want.name);
    RC_ASSERT(got != nullptr);
    RC_ASSERT(got->dtype == want.dtype);
    RC_ASSERT(got->shape == want.shape);
    const uint64_t bytes = testing::ExpectedBytes(want.dtype, want.shape);
    RC_ASSERT(got->bytes == bytes);
    RC_ASSERT(got->begin == pos);
    pos += bytes;
    total += bytes;
  }
  RC_ASSERT(r->tensor_bytes == total);
}

// A parse that succeeds must describe a consistent file.
void AssertConsistent(const SafetensorsFile& f) {
  uint64_t pos = 0;
  for (const SafetensorsTensor& t : f.tensors) {
    RC_ASSERT(t.begin == pos);
    auto bits = testing::TestDtypeBits().find(t.dtype);
    RC_ASSERT(bits != testing::TestDtypeBits().end());
    uint64_t numel = 1;
    for (uint64_t d : t.shape) numel *= d;
    RC_ASSERT(t.numel == numel);
    RC_ASSERT(t.bytes == (numel * bits->second + 7) / 8);
    pos = t.end;
  }
  RC_ASSERT(8 + f.header_bytes + pos == f.file_bytes);
}

RC_GTEST_PROP(SafetensorsProperty, DamagedFilesFailCleanlyOrStayConsistent, ()) {
  const auto tensors = *GenTensors();
  std::string bytes = BuildSafetensors(tensors);
  const bool truncate = *rc::gen::arbitrary<bool>();
  if (truncate) {
    bytes.resize(*rc::gen::inRange<size_t>(0, bytes.size()));
  } else {
    const int flips = *rc::gen::inRange(1, 6);
    for (int i = 0; i < flips; ++i) {
      const size_t at = *rc::gen::inRange<size_t>(0, bytes.size());
      bytes[at] = static_cast<char>(*rc::gen::arbitrary<uint8_t>());
    }
  }
  TempDir dir;
  WriteFile(dir / "m.safetensors", bytes);
  auto r = ReadSafetensorsHeader(dir / "m.safetensors");
  if (r.ok()) {
    AssertConsistent(r.value());
  } else {
    RC_ASSERT(r.status().code() == StatusCode::kCorruption);
    RC_ASSERT(r.status().message().find("m.safetensors: ") != std::string::npos);
  }
}

}  // namespace
}  // namespace modelgrid::estimate
