// Frontend and worker as real processes (fork): a worker that dies never
// hangs the frontend, and the arena's memfd handed over SCM_RIGHTS gives
// both processes the same bytes.
//
// Children use only raw syscalls or the ipc library, report through their exit
// code, and arm alarm() so that a bug can never leave one running.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>

#include "ipc/ipc_test_util.h"
#include "modelgrid/ipc/channel.h"
#include "modelgrid/ipc/messages.h"
#include "modelgrid/ipc/shared_memory.h"
#include "modelgrid/ipc/tensor_arena.h"

namespace modelgrid::ipc {
namespace {

using std::chrono::milliseconds;
using testing::kGenerous;
using testing::WaitChild;

constexpr unsigned kChildAlarmSeconds = 20;

bool Contains(const Status& s, const std::string& text) {
  return s.message().find(text) != std::string::npos;
}

uint8_t InputByte(size_t i) { return static_cast<uint8_t>((i * 7 + 3) % 256); }
uint8_t OutputByte(size_t i) { return static_cast<uint8_t>(255 - InputByte(i)); }

TEST(ProcessTest, WorkerKilledMidFrameGivesAnErrorNotAHang) {
  auto [mine, theirs] = testing::RawPair();
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::alarm(kChildAlarmSeconds);
    mine.reset();
    // Half a frame: the header promises 4096 bytes, 100 arrive, then a crash.
    const auto header = testing::HeaderBytes(21, 9, 4096);
    char part[100] = {};
    const bool ok = testing::WriteAll(theirs.get(), header.data(), header.size()) &&
                    testing::WriteAll(theirs.get(), part, sizeof(part));
    if (!ok) ::_exit(3);
    ::kill(::getpid(), SIGKILL);
    ::_exit(4);
  }
  theirs.reset();  // only the child holds its end now
  Channel frontend(std::move(mine));
  auto got = frontend.Receive(kGenerous);
  const int status = WaitChild(pid);
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "child status " << status;
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), StatusCode::kUnavailable);
  EXPECT_TRUE(Contains(got.status(), "peer closed the connection mid-frame after 120 of 4116"))
      << got.status().ToString();
}

TEST(ProcessTest, HungWorkerTimesOutThenItsDeathIsSeen) {
  auto [mine, theirs] = testing::RawPair();
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::alarm(kChildAlarmSeconds);
    mine.reset();
    Channel worker(std::move(theirs));
    if (!worker.Send(ToFrame(PongMessage{kProtocolVersion, ::getpid()}, 1)).ok()) ::_exit(3);
    const auto header = testing::HeaderBytes(21, 2, 64);
    if (!testing::WriteAll(worker.fd(), header.data(), header.size())) ::_exit(4);
    ::pause();  // hangs mid-frame until killed
    ::_exit(5);
  }
  theirs.reset();
  Channel frontend(std::move(mine));
  auto pong = frontend.Receive(kGenerous);
  ASSERT_TRUE(pong.ok()) << pong.status().ToString();
  auto decoded = FromFrame<PongMessage>(*pong);
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  EXPECT_EQ(decoded->pid, pid);

  auto stalled = frontend.Receive(milliseconds(20));
  ASSERT_FALSE(stalled.ok());
  EXPECT_TRUE(Contains(stalled.status(), "timed out")) << stalled.status().ToString();

  ASSERT_EQ(::kill(pid, SIGKILL), 0);  // what the watchdog would do
  auto dead = frontend.Receive(kGenerous);
  const int status = WaitChild(pid);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  ASSERT_FALSE(dead.ok());
  EXPECT_EQ(dead.status().code(), StatusCode::kUnavailable);
  EXPECT_TRUE(Contains(dead.status(), "mid-frame after 20 of 84")) << dead.status().ToString();
}

TEST(ProcessTest, SendToExitedWorkerIsUnavailable) {
  auto [mine, theirs] = testing::RawPair();
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) ::_exit(0);
  theirs.reset();
  const int status = WaitChild(pid);
  ASSERT_TRUE(WIFEXITED(status));
  Channel frontend(std::move(mine));
  const Status s = frontend.Send(ToFrame(PingMessage{}, 1));
  EXPECT_EQ(s.code(), StatusCode::kUnavailable) << s.ToString();
}

// The child's half of the arena test; returns its exit code (0 = all good).
int ArenaWorker(UniqueFd socket) {
  Channel worker(std::move(socket));
  auto attach = worker.ReceiveWithFds(kGenerous);
  if (!attach.ok() || attach->fds.size() != 1) return 10;
  auto arena_info = FromFrame<AttachArenaMessage>(attach->frame);
  if (!arena_info.ok()) return 11;
  auto memory = SharedMemory::MapFromFd(std::move(attach->fds[0]), arena_info->capacity_bytes);
  if (!memory.ok()) return 12;

  auto frame = worker.Receive(kGenerous);
  if (!frame.ok()) return 13;
  auto infer = FromFrame<InferMessage>(*frame);
  if (!infer.ok() || infer->inputs.size() != 1) return 14;
  auto input = memory->Bytes(infer->inputs[0].region());
  auto output = memory->Bytes(infer->output);
  if (!input.ok() || !output.ok()) return 15;
  for (size_t i = 0; i < input->size(); ++i) {
    if (static_cast<uint8_t>((*input)[i]) != InputByte(i)) return 16;
  }
  for (size_t i = 0; i < output->size(); ++i) (*output)[i] = std::byte{OutputByte(i)};

  ResultMessage result;
  result.request_id = infer->request_id;
  result.model = infer->model;
  result.outputs.push_back(TensorRef{"y",
                                     DataType::kUInt8,
                                     {static_cast<int64_t>(infer->output.size)},
                                     infer->output.offset,
                                     infer->output.size});
  if (!worker.Send(ToFrame(result)).ok()) return 17;
  return 0;
}

TEST(ProcessTest, WorkerSeesArenaBytesThroughThePassedMemfd) {
  auto arena = TensorArena::Create("process-test", 1 << 20);
  ASSERT_TRUE(arena.ok()) << arena.status().ToString();
  auto in_region = (*arena)->Allocate(5000, "request 1 input 'x'");
  auto out_region = (*arena)->Allocate(3000, "request 1 outputs");
  ASSERT_TRUE(in_region.ok() && out_region.ok());
  auto in_bytes = (*arena)->Bytes(*in_region);
  ASSERT_TRUE(in_bytes.ok());
  for (size_t i = 0; i < in_bytes->size(); ++i) (*in_bytes)[i] = std::byte{InputByte(i)};

  auto [mine, theirs] = testing::RawPair();
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::alarm(kChildAlarmSeconds);
    mine.reset();
    ::_exit(ArenaWorker(std::move(theirs)));
  }
  theirs.reset();
  Channel frontend(std::move(mine));

  const AttachArenaMessage attach{(*arena)->name(), (*arena)->capacity()};
  const int fds[] = {(*arena)->fd()};
  ASSERT_TRUE(frontend.Send(ToFrame(attach), fds).ok());
  InferMessage infer;
  infer.request_id = 1;
  infer.model = "echo";
  infer.task = "forward";
  infer.inputs.push_back(TensorRef{"x", DataType::kUInt8, {5000}, in_region->offset, 5000});
  infer.output = *out_region;
  ASSERT_TRUE(frontend.Send(ToFrame(infer)).ok());

  auto reply = frontend.Receive(kGenerous);
  const int status = WaitChild(pid);
  ASSERT_TRUE(WIFEXITED(status)) << "child status " << status;
  ASSERT_EQ(WEXITSTATUS(status), 0) << "child failed at step " << WEXITSTATUS(status);
  ASSERT_TRUE(reply.ok()) << reply.status().ToString();
  auto result = FromFrame<ResultMessage>(*reply);
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  ASSERT_FALSE(result->error.has_value());
  ASSERT_TRUE(CheckTensorsWithin(result->outputs, *out_region).ok());
  ASSERT_EQ(result->outputs.size(), 1u);

  // The worker's writes are in this process's mapping: no copy was made.
  auto out_bytes = (*arena)->Bytes(result->outputs[0].region());
  ASSERT_TRUE(out_bytes.ok());
  size_t mismatches = 0;
  for (size_t i = 0; i < out_bytes->size(); ++i) {
    mismatches += static_cast<uint8_t>((*out_bytes)[i]) != OutputByte(i);
  }
  EXPECT_EQ(mismatches, 0u);

  EXPECT_TRUE((*arena)->Free(*in_region).ok());
  EXPECT_TRUE((*arena)->Free(*out_region).ok());
  EXPECT_EQ((*arena)->bytes_in_use(), 0u);
}

}  // namespace
}  // namespace modelgrid::ipc
