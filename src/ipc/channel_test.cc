// Channel over socketpairs in one process: framing, partial writes, limits,
// end of stream, timeouts, descriptor passing, concurrent senders.
#include "modelgrid/ipc/channel.h"

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>
#include <sys/socket.h>

#include <cstring>
#include <thread>
#include <vector>

#include "ipc/ipc_test_util.h"
#include "modelgrid/ipc/shared_memory.h"

namespace modelgrid::ipc {
namespace {

using std::chrono::milliseconds;
using testing::kGenerous;
using testing::MakeChannelPair;

bool Contains(const Status& s, const std::string& text) {
  return s.message().find(text) != std::string::npos;
}

Frame MakeFrame(uint16_t type, uint64_t request_id, std::string payload, uint16_t flags = 0) {
  Frame f;
  f.type = type;
  f.flags = flags;
  f.request_id = request_id;
  f.payload = std::move(payload);
  return f;
}

TEST(ChannelTest, FramesRoundTripInOrder) {
  auto [a, b] = MakeChannelPair();
  const std::vector<Frame> frames = {
      MakeFrame(10, 1, R"({"model":"resnet"})"),
      MakeFrame(2, 0, ""),
      MakeFrame(65535, ~0ULL, std::string("bin\0ary\xff", 8), /*flags=*/0x0100),
  };
  for (const Frame& f : frames) ASSERT_TRUE(a->Send(f).ok());
  for (const Frame& f : frames) {
    auto got = b->Receive(kGenerous);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    EXPECT_EQ(*got, f);
  }
  // And the other direction on the same pair.
  ASSERT_TRUE(b->Send(frames[0]).ok());
  auto back = a->Receive(kGenerous);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, frames[0]);
}

RC_GTEST_PROP(ChannelProperty, RandomFramesRoundTrip, ()) {
  auto [a, b] = MakeChannelPair();
  const auto count = *rc::gen::inRange(1, 8);
  std::vector<Frame> sent;
  for (int i = 0; i < count; ++i) {
    Frame f;
    f.type = *rc::gen::arbitrary<uint16_t>();
    f.flags = *rc::gen::arbitrary<uint16_t>() & ~kFrameFlagFds;
    f.request_id = *rc::gen::arbitrary<uint64_t>();
    f.payload = *rc::gen::resize(2048, rc::gen::arbitrary<std::string>());
    RC_ASSERT(a->Send(f).ok());
    sent.push_back(std::move(f));
  }
  for (const Frame& f : sent) {
    auto got = b->Receive(kGenerous);
    RC_ASSERT(got.ok());
    RC_ASSERT(*got == f);
  }
}

TEST(ChannelTest, LargestPayloadCrossesInManyPartialWrites) {
  auto [a, b] = MakeChannelPair();
  int sndbuf = 0;
  socklen_t len = sizeof(sndbuf);
  ASSERT_EQ(::getsockopt(a->fd(), SOL_SOCKET, SO_SNDBUF, &sndbuf, &len), 0);
  // The payload is far bigger than the socket buffer, so Send must resume
  // after partial writes while the receiver drains.
  ASSERT_LT(static_cast<uint64_t>(sndbuf) * 4, kMaxPayloadBytes);

  std::string payload(kMaxPayloadBytes, '\0');
  for (size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<char>((i * 31 + 7) % 251);
  const Frame frame = MakeFrame(21, 99, payload);
  Status send_status;
  std::thread sender([&] { send_status = a->Send(frame, {}, kGenerous); });
  auto got = b->Receive(kGenerous);
  sender.join();
  ASSERT_TRUE(send_status.ok()) << send_status.ToString();
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->payload.size(), payload.size());
  EXPECT_TRUE(got->payload == payload);
  EXPECT_EQ(got->request_id, 99u);
}

TEST(ChannelTest, OversizeSendIsRejectedBeforeWritingAnything) {
  auto [a, b] = MakeChannelPair();
  const Status s = a->Send(MakeFrame(1, 1, std::string(kMaxPayloadBytes + 1, 'x')));
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  // Nothing reached the peer, and the channel still works.
  auto nothing = b->Receive(milliseconds(0));
  ASSERT_FALSE(nothing.ok());
  EXPECT_TRUE(Contains(nothing.status(), "timed out")) << nothing.status().ToString();
  ASSERT_TRUE(a->Send(MakeFrame(1, 2, "ok")).ok());
  auto got = b->Receive(kGenerous);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->request_id, 2u);
}

TEST(ChannelTest, OversizeLengthIsCorruptionAndSticks) {
  auto [raw, theirs] = testing::RawPair();
  Channel b(std::move(theirs));
  const auto header = testing::HeaderBytes(1, 1, kMaxPayloadBytes + 1);
  ASSERT_TRUE(testing::WriteAll(raw.get(), header.data(), header.size()));
  auto got = b.Receive(kGenerous);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), StatusCode::kCorruption);
  EXPECT_TRUE(Contains(got.status(), "exceeds")) << got.status().ToString();
  // The stream has no frame boundary any more: later receives fail the same way.
  EXPECT_EQ(b.Receive(milliseconds(0)).status().code(), StatusCode::kCorruption);
}

TEST(ChannelTest, ReceiverLimitFromOptions) {
  ChannelOptions small;
  small.max_payload_bytes = 100;
  auto [raw, theirs] = testing::RawPair();
  Channel sender(std::move(raw));
  Channel receiver(std::move(theirs), small);
  ASSERT_TRUE(sender.Send(MakeFrame(1, 1, std::string(100, 'a'))).ok());
  ASSERT_TRUE(receiver.Receive(kGenerous).ok());
  ASSERT_TRUE(sender.Send(MakeFrame(1, 2, std::string(101, 'a'))).ok());
  EXPECT_EQ(receiver.Receive(kGenerous).status().code(), StatusCode::kCorruption);
  EXPECT_EQ(receiver.Send(MakeFrame(1, 3, std::string(101, 'a'))).code(),
            StatusCode::kInvalidArgument);
}

TEST(ChannelTest, BadMagicIsCorruption) {
  auto [raw, theirs] = testing::RawPair();
  Channel b(std::move(theirs));
  const char garbage[kFrameHeaderBytes] = "GET / HTTP/1.1\r\n\r\n";
  ASSERT_TRUE(testing::WriteAll(raw.get(), garbage, sizeof(garbage)));
  auto got = b.Receive(kGenerous);
  EXPECT_EQ(got.status().code(), StatusCode::kCorruption);
  EXPECT_TRUE(Contains(got.status(), "magic"));
}

TEST(ChannelTest, PeerCloseIsUnavailableWithoutWaitingForTheTimeout) {
  auto [a, b] = MakeChannelPair();
  a.reset();
  auto got = b->Receive(kGenerous);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), StatusCode::kUnavailable);
  // "peer closed", not "timed out": end of stream ended the wait.
  EXPECT_TRUE(Contains(got.status(), "peer closed")) << got.status().ToString();
  EXPECT_FALSE(Contains(got.status(), "mid-frame"));
}

TEST(ChannelTest, PeerCloseMidFrameSaysHowFarItGot) {
  auto [raw, theirs] = testing::RawPair();
  Channel b(std::move(theirs));
  const auto header = testing::HeaderBytes(20, 5, 1000);
  ASSERT_TRUE(testing::WriteAll(raw.get(), header.data(), header.size()));
  ASSERT_TRUE(testing::WriteAll(raw.get(), "0123456789", 10));
  raw.reset();
  auto got = b.Receive(kGenerous);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), StatusCode::kUnavailable);
  EXPECT_TRUE(Contains(got.status(), "mid-frame after 30 of 1020 bytes"))
      << got.status().ToString();
}

TEST(ChannelTest, TimeoutMidFrameKeepsTheBytesAlreadyRead) {
  auto [raw, theirs] = testing::RawPair();
  Channel b(std::move(theirs));
  const auto header = testing::HeaderBytes(7, 42, 10);
  ASSERT_TRUE(testing::WriteAll(raw.get(), header.data(), header.size()));
  ASSERT_TRUE(testing::WriteAll(raw.get(), "01234", 5));
  auto early = b.Receive(milliseconds(20));
  ASSERT_FALSE(early.ok());
  EXPECT_EQ(early.status().code(), StatusCode::kUnavailable);
  EXPECT_TRUE(Contains(early.status(), "timed out")) << early.status().ToString();

  ASSERT_TRUE(testing::WriteAll(raw.get(), "56789", 5));
  auto got = b.Receive(kGenerous);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(*got, MakeFrame(7, 42, "0123456789"));
}

TEST(ChannelTest, SendToClosedPeerIsUnavailableNotSigpipe) {
  auto [a, b] = MakeChannelPair();
  b.reset();
  // Without MSG_NOSIGNAL this would kill the test process with SIGPIPE.
  const Status s = a->Send(MakeFrame(1, 1, "hello"));
  EXPECT_EQ(s.code(), StatusCode::kUnavailable) << s.ToString();
}

TEST(ChannelTest, ShutdownWakesABlockedReceiver) {
  auto [a, b] = MakeChannelPair();
  Status status;
  std::thread receiver([&, &b = b] { status = b->Receive(kGenerous).status(); });
  std::this_thread::sleep_for(milliseconds(20));  // let it block in poll
  b->Shutdown();
  receiver.join();
  EXPECT_EQ(status.code(), StatusCode::kUnavailable);
  EXPECT_TRUE(Contains(status, "shut down")) << status.ToString();
  // The peer sees end of stream too.
  EXPECT_TRUE(Contains(a->Receive(kGenerous).status(), "peer closed"));
}

TEST(ChannelTest, ASecondReceiverWaitsOnlyItsOwnTimeout) {
  auto [a, b] = MakeChannelPair();
  Result<Frame> first = Status::Internal("not run");
  std::thread receiver([&, &b = b] { first = b->Receive(kGenerous); });
  std::this_thread::sleep_for(milliseconds(20));  // let it take the receive side
  auto second = b->Receive(milliseconds(20));
  ASSERT_FALSE(second.ok());
  EXPECT_TRUE(Contains(second.status(), "timed out")) << second.status().ToString();
  // The first receiver is still waiting and gets the next frame.
  ASSERT_TRUE(a->Send(MakeFrame(1, 8, "x")).ok());
  receiver.join();
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(first->request_id, 8u);
}

TEST(ChannelTest, ConcurrentSendersNeverInterleaveFrames) {
  auto [a, b] = MakeChannelPair();
  constexpr int kThreads = 4;
  constexpr int kFramesEach = 40;
  constexpr size_t kPayload = 64 * 1024;  // several partial writes per frame
  std::vector<std::thread> senders;
  for (int t = 0; t < kThreads; ++t) {
    senders.emplace_back([&, t, &a = a] {
      for (int i = 0; i < kFramesEach; ++i) {
        const Frame f =
            MakeFrame(1, t * 1000 + i, std::string(kPayload, static_cast<char>('A' + t)));
        if (!a->Send(f, {}, kGenerous).ok()) return;
      }
    });
  }
  int next[kThreads] = {};
  bool clean = true;
  for (int n = 0; n < kThreads * kFramesEach && clean; ++n) {
    auto got = b->Receive(kGenerous);
    if (!got.ok()) {
      ADD_FAILURE() << got.status().ToString();
      break;
    }
    const int t = static_cast<int>(got->request_id / 1000);
    const int i = static_cast<int>(got->request_id % 1000);
    clean = t >= 0 && t < kThreads && i == next[t] && got->payload.size() == kPayload &&
            got->payload.find_first_not_of(static_cast<char>('A' + t)) == std::string::npos;
    if (clean) ++next[t];
  }
  b.reset();  // unblocks any sender still writing
  for (auto& s : senders) s.join();
  EXPECT_TRUE(clean);
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(next[t], kFramesEach);
}

TEST(ChannelTest, DescriptorsTravelWithTheirFrame) {
  auto [a, b] = MakeChannelPair();
  auto memory = SharedMemory::Create("channel-test", 4096);
  ASSERT_TRUE(memory.ok()) << memory.status().ToString();
  std::memcpy(memory->data(), "written by the sender", 22);

  ASSERT_TRUE(a->Send(MakeFrame(1, 1, "before")).ok());
  const int fds[] = {memory->fd()};
  ASSERT_TRUE(a->Send(MakeFrame(3, 2, R"({"capacity_bytes":4096})"), fds).ok());
  ASSERT_TRUE(a->Send(MakeFrame(1, 3, "after")).ok());

  auto before = b->ReceiveWithFds(kGenerous);
  ASSERT_TRUE(before.ok());
  EXPECT_TRUE(before->fds.empty());
  auto with_fd = b->ReceiveWithFds(kGenerous);
  ASSERT_TRUE(with_fd.ok()) << with_fd.status().ToString();
  EXPECT_EQ(with_fd->frame.request_id, 2u);
  EXPECT_NE(with_fd->frame.flags & kFrameFlagFds, 0);
  ASSERT_EQ(with_fd->fds.size(), 1u);
  EXPECT_NE(with_fd->fds[0].get(), memory->fd());  // a new descriptor, same memory
  auto after = b->ReceiveWithFds(kGenerous);
  ASSERT_TRUE(after.ok());
  EXPECT_TRUE(after->fds.empty());
  EXPECT_EQ(after->frame.payload, "after");

  auto mapped = SharedMemory::MapFromFd(std::move(with_fd->fds[0]), 4096);
  ASSERT_TRUE(mapped.ok()) << mapped.status().ToString();
  EXPECT_STREQ(reinterpret_cast<const char*>(mapped->data()), "written by the sender");
  // Both mappings are the same pages: writes show through without a copy.
  std::memcpy(mapped->data() + 100, "reply", 6);
  EXPECT_STREQ(reinterpret_cast<const char*>(memory->data() + 100), "reply");
}

TEST(ChannelTest, ReceiveClosesDescriptorsNobodyAskedFor) {
  auto [a, b] = MakeChannelPair();
  auto memory = SharedMemory::Create("unwanted", 4096);
  ASSERT_TRUE(memory.ok());
  const int open_before = testing::CountOpenFds();
  const int fds[] = {memory->fd(), memory->fd()};
  ASSERT_TRUE(a->Send(MakeFrame(3, 1, "{}"), fds).ok());
  auto got = b->Receive(kGenerous);
  ASSERT_TRUE(got.ok());
  EXPECT_NE(got->flags & kFrameFlagFds, 0);
  EXPECT_EQ(testing::CountOpenFds(), open_before);
}

TEST(ChannelTest, DescriptorLimitsAreArgumentsErrors) {
  auto [a, b] = MakeChannelPair();
  const int too_many[kMaxFdsPerFrame + 1] = {0, 0, 0, 0, 0};
  EXPECT_EQ(a->Send(MakeFrame(1, 1, ""), too_many).code(), StatusCode::kInvalidArgument);
  const int invalid[] = {-1};
  EXPECT_EQ(a->Send(MakeFrame(1, 1, ""), invalid).code(), StatusCode::kInvalidArgument);
}

TEST(ChannelTest, FlaggedFrameWithoutDescriptorsIsCorruption) {
  auto [raw, theirs] = testing::RawPair();
  Channel b(std::move(theirs));
  const auto header = testing::HeaderBytes(3, 1, 0, kFrameFlagFds);
  ASSERT_TRUE(testing::WriteAll(raw.get(), header.data(), header.size()));
  EXPECT_EQ(b.ReceiveWithFds(kGenerous).status().code(), StatusCode::kCorruption);
}

TEST(ChannelTest, ChannelWithoutSocketFailsInsteadOfWaiting) {
  Channel none{UniqueFd()};
  EXPECT_EQ(none.Send(MakeFrame(1, 1, "")).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(none.Receive(kNoTimeout).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace modelgrid::ipc
