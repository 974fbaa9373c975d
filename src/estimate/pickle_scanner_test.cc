#include "estimate/pickle_scanner.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include "estimate/test_fixtures.h"

namespace modelgrid::estimate {
namespace {

using ::testing::HasSubstr;
using testing::PickleWriter;

// A module pickle as torch.jit.save writes it: an object of class
// __torch__.M whose state dict holds three tensors; "w" and "w_view" share
// storage "0".
std::string ModulePickle() {
  std::map<std::string, int> memo;
  PickleWriter p;
  p.Proto(2).Global("__torch__", "M").Put(100).EmptyTuple().NewObj().EmptyDict().Mark();
  p.Unicode("w").Tensor("FloatStorage", "0", 12, {3, 4}, &memo);
  p.Unicode("w_view").Tensor("FloatStorage", "0", 12, {12}, &memo);
  p.Unicode("h").Tensor("HalfStorage", "1", 70000, {70000}, &memo);
  p.SetItems().Build().Stop();
  return p.bytes();
}

TEST(PickleScannerTest, FindsTorchScriptStorages) {
  auto r = ScanPickleStorages(ModulePickle());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->size(), 2u);
  EXPECT_EQ((*r)[0].storage_type, "torch.FloatStorage");
  EXPECT_EQ((*r)[0].key, "0");
  EXPECT_EQ((*r)[0].location, "cpu");
  EXPECT_EQ((*r)[0].numel, 12u);
  EXPECT_EQ((*r)[1].storage_type, "torch.HalfStorage");
  EXPECT_EQ((*r)[1].key, "1");
  EXPECT_EQ((*r)[1].numel, 70000u);
}

TEST(PickleScannerTest, Protocol4OpcodesAndLargeNumel) {
  // FRAME, SHORT_BINUNICODE, MEMOIZE, STACK_GLOBAL, LONG1 numel > 2^32.
  PickleWriter p;
  p.Proto(4).Op('\x95').Raw(std::string(8, '\0'));
  p.Mark().ShortUnicode("storage").Op('\x94');
  p.ShortUnicode("torch").ShortUnicode("BFloat16Storage").Op('\x93').Op('\x94');
  p.ShortUnicode("7").ShortUnicode("cuda:0").Int(int64_t{5} << 32).Tuple().BinPersId();
  p.Op('0').Stop();
  auto r = ScanPickleStorages(p.bytes());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->size(), 1u);
  EXPECT_EQ((*r)[0].storage_type, "torch.BFloat16Storage");
  EXPECT_EQ((*r)[0].key, "7");
  EXPECT_EQ((*r)[0].location, "cuda:0");
  EXPECT_EQ((*r)[0].numel, uint64_t{5} << 32);
}

TEST(PickleScannerTest, IgnoresOtherPersistentIds) {
  PickleWriter p;
  p.Proto(2).Mark().Unicode("module").Unicode("x").Tuple().BinPersId();
  p.Mark()
      .Unicode("storage")
      .Unicode("not a global")
      .Unicode("0")
      .Unicode("cpu")
      .Int(3)
      .Tuple()
      .BinPersId();
  p.Stop();
  auto r = ScanPickleStorages(p.bytes());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->empty());
}

TEST(PickleScannerTest, ConflictingStorageKey) {
  std::map<std::string, int> memo;
  PickleWriter p;
  p.Proto(2).Mark();
  p.Tensor("FloatStorage", "0", 12, {12}, &memo);
  p.Tensor("FloatStorage", "0", 13, {13}, &memo);
  p.Tuple().Stop();
  auto r = ScanPickleStorages(p.bytes());
  EXPECT_EQ(r.status().code(), StatusCode::kCorruption);
  EXPECT_THAT(r.status().message(), HasSubstr("storage '0' is named twice"));
}

TEST(PickleScannerTest, Errors) {
  struct Case {
    std::string bytes;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"", "pickle byte 0: no STOP opcode"},
      {"\x80\x02", "pickle byte 2: no STOP opcode"},
      {std::string("\x80\x02\xff.", 4), "pickle byte 2: unknown opcode 0xff"},
      {std::string("X\x10\x00\x00\x00"
                   "abc.",
                   9),
       "pickle byte 0: truncated string"},
      {"R.", "stack underflow"},
      {"h\x05.", "memo key 5 was never stored"},
      {"t.", "no MARK on the stack"},
      {"cos\n", "truncated GLOBAL"},
      {"(q\x01.", "memo store with an empty stack"},
  };
  for (const Case& c : cases) {
    auto r = ScanPickleStorages(c.bytes);
    ASSERT_FALSE(r.ok()) << c.message;
    EXPECT_EQ(r.status().code(), StatusCode::kCorruption);
    EXPECT_THAT(r.status().message(), HasSubstr(c.message));
  }
}

RC_GTEST_PROP(PickleScannerProperty, RandomBytesNeverCrash, (const std::vector<uint8_t>& noise)) {
  std::string bytes(noise.begin(), noise.end());
  (void)ScanPickleStorages(bytes);
  (void)ScanPickleStorages("\x80\x02" + bytes);
}

// Bytes drawn mostly from opcode characters, so that runs go deeper than the
// first unknown opcode.
RC_GTEST_PROP(PickleScannerProperty, RandomOpcodeSoupNeverCrashes, ()) {
  const std::string alphabet(
      "()tuQRbhqjrX\x8c\x93\x94\x95\x8a\x85\x86\x87KMJcN}]ealsd0122\n\x00\x05.", 40);
  const auto soup = *rc::gen::container<std::vector<char>>(rc::gen::elementOf(alphabet));
  (void)ScanPickleStorages("\x80\x02" + std::string(soup.begin(), soup.end()) + ".");
}

RC_GTEST_PROP(PickleScannerProperty, DamagedPicklesFailOrFindAKnownStorage, ()) {
  std::string bytes = ModulePickle();
  if (*rc::gen::arbitrary<bool>()) {
    bytes.resize(*rc::gen::inRange<size_t>(0, bytes.size()));
  } else {
    const size_t at = *rc::gen::inRange<size_t>(0, bytes.size());
    bytes[at] = static_cast<char>(*rc::gen::arbitrary<uint8_t>());
  }
  auto r = ScanPickleStorages(bytes);
  if (r.ok()) {
    RC_ASSERT(r->size() <= 3u);
  } else {
    RC_ASSERT(r.status().code() == StatusCode::kCorruption);
  }
}

}  // namespace
}  // namespace modelgrid::estimate
