// modelgrid-worker spoken to directly over its socket: malformed and
// unexpected messages get error replies (or are logged), never a crash, and
// the worker keeps answering.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <array>
#include <cstring>

#include "modelgrid/backend/backend.h"
#include "modelgrid/ipc/channel.h"
#include "modelgrid/ipc/messages.h"
#include "modelgrid/ipc/tensor_arena.h"
#include "modelgrid/ipc/unix_socket.h"
#include "worker/spawn.h"
#include "worker/worker_test_util.h"

namespace modelgrid {
namespace {

using namespace modelgrid::testing;  // NOLINT(google-build-using-namespace)
using ipc::Frame;
using ipc::MessageType;

// A worker process and the frontend's end of its socket.
struct RawWorker {
  pid_t pid = 0;
  std::unique_ptr<ipc::Channel> channel;

  ~RawWorker() {
    if (pid > 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
  }

  Frame Ask(const Frame& frame) {
    EXPECT_TRUE(channel->Send(frame).ok());
    auto reply = channel->Receive(kGenerous);
    EXPECT_TRUE(reply.ok()) << reply.status().ToString();
    return reply.ok() ? *reply : Frame{};
  }
};

std::unique_ptr<RawWorker> StartRaw() {
  auto pair = ipc::SocketPair();
  if (!pair.ok()) return nullptr;
  auto [mine, theirs] = std::move(pair).value();
  auto pid = worker_internal::SpawnChild(MODELGRID_WORKER_PATH, {"--fd", "3", "--name", "raw"},
                                         theirs.get(), 3);
  if (!pid.ok()) return nullptr;
  auto w = std::make_unique<RawWorker>();
  w->pid = *pid;
  w->channel = std::make_unique<ipc::Channel>(std::move(mine));
  return w;
}

Frame RawFrame(MessageType type, uint64_t request_id, std::string payload) {
  return Frame{static_cast<uint16_t>(type), 0, request_id, std::move(payload)};
}

TEST(WorkerProtocolTest, BadMessagesGetErrorsAndTheWorkerServesOn) {
  auto w = StartRaw();
  ASSERT_TRUE(w);

  // An infer that is not a protobuf Infer (worker.proto): a result error
  // under the same request id.
  Frame reply = w->Ask(RawFrame(MessageType::kInfer, 7, "{not json"));
  ASSERT_EQ(reply.type, static_cast<uint16_t>(MessageType::kResult));
  EXPECT_EQ(reply.request_id, 7u);
  auto result = ipc::FromFrame<ipc::ResultMessage>(reply);
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  ASSERT_TRUE(result->error.has_value());
  EXPECT_EQ(result->error->code, StatusCode::kCorruption);
  EXPECT_NE(result->error->message.find("'infer' message"), std::string::npos);

  // An infer whose input's size disagrees with its shape (ToFrame does not
  // check; the worker does).
  ipc::InferMessage infer;
  infer.request_id = 8;
  infer.model = "m";
  infer.task = "t";
  infer.inputs = {ipc::TensorRef{"x", DataType::kFP32, {2, 3}, 0, 20}};
  reply = w->Ask(ipc::ToFrame(infer));
  result = ipc::FromFrame<ipc::ResultMessage>(reply);
  ASSERT_TRUE(result.ok() && result->error);
  EXPECT_EQ(result->error->code, StatusCode::kCorruption);
  EXPECT_NE(result->error->message.find("field 'size': 20 bytes, but the shape holds 6 FP32"),
            std::string::npos)
      << result->error->message;

  // A well-formed infer before any arena or model: NOT_FOUND for the model.
  infer.request_id = 9;
  infer.inputs.clear();
  reply = w->Ask(ipc::ToFrame(infer));
  result = ipc::FromFrame<ipc::ResultMessage>(reply);
  ASSERT_TRUE(result.ok() && result->error);
  EXPECT_EQ(result->error->code, StatusCode::kNotFound);

  // A load without its required fields (a pb::Load holding only model "m",
  // field 1): load_failed under the request id.
  reply = w->Ask(RawFrame(MessageType::kLoad, 10, std::string("\x0a\x01m", 3)));
  ASSERT_EQ(reply.type, static_cast<uint16_t>(MessageType::kLoadFailed));
  EXPECT_EQ(reply.request_id, 10u);
  auto failed = ipc::FromFrame<ipc::LoadFailedMessage>(reply);
  ASSERT_TRUE(failed.ok());
  EXPECT_EQ(failed->error.code, StatusCode::kCorruption);
  EXPECT_NE(failed->error.message.find("'load' message: field 'path': missing"), std::string::npos)
      << failed->error.message;

  // A swap_out without a model, a swap_in with an unknown field, swaps of a
  // model the worker does not hold: answered with their reply type, the
  // error set, under the request id.
  // (a pb::SwapOut holding only swap_dir "/tmp", field 2)
  reply = w->Ask(RawFrame(MessageType::kSwapOut, 20, std::string("\x12\x04/tmp", 6)));
  ASSERT_EQ(reply.type, static_cast<uint16_t>(MessageType::kSwappedOut));
  EXPECT_EQ(reply.request_id, 20u);
  auto swapped_out = ipc::FromFrame<ipc::SwappedOutMessage>(reply);
  ASSERT_TRUE(swapped_out.ok() && swapped_out->error) << swapped_out.status().ToString();
  EXPECT_EQ(swapped_out->error->code, StatusCode::kCorruption);
  EXPECT_NE(swapped_out->error->message.find("'swap_out' message: field 'model': missing"),
            std::string::npos)
      << swapped_out->error->message;
  // (a pb::SwapIn with model "m" and a field 2 it does not have)
  reply = w->Ask(RawFrame(MessageType::kSwapIn, 21, std::string("\x0a\x01m\x10\x01", 5)));
  ASSERT_EQ(reply.type, static_cast<uint16_t>(MessageType::kSwappedIn));
  auto swapped_in = ipc::FromFrame<ipc::SwappedInMessage>(reply);
  ASSERT_TRUE(swapped_in.ok() && swapped_in->error);
  EXPECT_EQ(swapped_in->error->code, StatusCode::kCorruption);
  reply = w->Ask(ipc::ToFrame(ipc::SwapOutMessage{"ghost", "/tmp"}, 22));
  swapped_out = ipc::FromFrame<ipc::SwappedOutMessage>(reply);
  ASSERT_TRUE(swapped_out.ok() && swapped_out->error);
  EXPECT_EQ(swapped_out->error->code, StatusCode::kNotFound);
  EXPECT_EQ(swapped_out->model, "ghost");
  reply = w->Ask(ipc::ToFrame(ipc::SwapInMessage{"ghost"}, 23));
  swapped_in = ipc::FromFrame<ipc::SwappedInMessage>(reply);
  ASSERT_TRUE(swapped_in.ok() && swapped_in->error);
  EXPECT_EQ(swapped_in->error->code, StatusCode::kNotFound);
  EXPECT_EQ(reply.request_id, 23u);

  // A type the worker does not take (one of its own replies), and an
  // unknown type number: result errors naming them.
  reply = w->Ask(RawFrame(MessageType::kPong, 11, ""));
  result = ipc::FromFrame<ipc::ResultMessage>(reply);
  ASSERT_TRUE(result.ok() && result->error);
  EXPECT_NE(result->error->message.find("unexpected message 'pong'"), std::string::npos);
  reply = w->Ask(Frame{999, 0, 12, "{}"});
  result = ipc::FromFrame<ipc::ResultMessage>(reply);
  ASSERT_TRUE(result.ok() && result->error);
  EXPECT_NE(result->error->message.find("unknown type 999"), std::string::npos);

  // No request id, nothing to answer: logged. An output_region nobody
  // waits for, a malformed attach_arena, a shutdown with junk: ignored.
  ASSERT_TRUE(w->channel->Send(Frame{999, 0, 0, "{}"}).ok());
  ASSERT_TRUE(w->channel->Send(ipc::ToFrame(ipc::OutputRegionMessage{55, 64, 64})).ok());
  ASSERT_TRUE(w->channel->Send(RawFrame(MessageType::kAttachArena, 0, "\x0a")).ok());
  ASSERT_TRUE(w->channel->Send(RawFrame(MessageType::kShutdown, 0, "\x78\x01")).ok());

  // Still alive and answering.
  reply = w->Ask(ipc::ToFrame(ipc::PingMessage{}, 13));
  ASSERT_EQ(reply.type, static_cast<uint16_t>(MessageType::kPong));
  EXPECT_EQ(reply.request_id, 13u);
  auto pong = ipc::FromFrame<ipc::PongMessage>(reply);
  ASSERT_TRUE(pong.ok());
  EXPECT_EQ(pong->pid, w->pid);

  // A proper shutdown: the socket closes and the process exits with 0.
  ASSERT_TRUE(w->channel->Send(ipc::ToFrame(ipc::ShutdownMessage{})).ok());
  EXPECT_EQ(w->channel->Receive(kGenerous).status().code(), StatusCode::kUnavailable);
  int status = 0;
  ASSERT_EQ(::waitpid(w->pid, &status, 0), w->pid);
  w->pid = 0;
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
}

// messages.h, "Lanes": a load that brings a socket makes the model's thread
// answer `infer` frames sent on it, on it, with nothing on the control
// socket; once the lane is closed the control socket still serves.
TEST(WorkerProtocolTest, InferOnTheLaneIsAnsweredOnTheLane) {
  REQUIRE_ZOO();
  auto w = StartRaw();
  ASSERT_TRUE(w);
  auto arena = ipc::TensorArena::Create("lane-test", uint64_t{1} << 20);
  ASSERT_TRUE(arena.ok()) << arena.status().ToString();
  ASSERT_TRUE(w->channel
                  ->Send(ipc::ToFrame(ipc::AttachArenaMessage{"lane-test", (*arena)->capacity()}),
                         std::array<int, 1>{(*arena)->fd()})
                  .ok());
  auto pair = ipc::SocketPair();
  ASSERT_TRUE(pair.ok());
  auto [mine, theirs] = std::move(pair).value();
  ASSERT_TRUE(
      w->channel->Send(ipc::ToFrame(LoadOf(zoo, "digits"), 1), std::array<int, 1>{theirs.get()})
          .ok());
  theirs.reset();
  auto loaded = w->channel->Receive(kGenerous);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  ASSERT_EQ(loaded->type, static_cast<uint16_t>(MessageType::kLoaded));
  ipc::Channel lane(std::move(mine));

  // Two rows of the test set; the expected logits come from the model run here.
  const InferTensor input = DigitsRows(zoo, 0, 2);
  TorchScriptBackend local;
  ASSERT_TRUE(local.Load(OpenEntry(zoo, "digits")).ok());
  auto want = local.Run("infer", {input});
  ASSERT_TRUE(want.ok());
  auto in = (*arena)->Allocate(input.data.size(), "input");
  auto out = (*arena)->Allocate(4096, "output");
  ASSERT_TRUE(in.ok() && out.ok());
  std::memcpy((*arena)->Bytes(*in)->data(), input.data.data(), input.data.size());
  auto infer = [&](uint64_t id) {
    ipc::InferMessage m;
    m.request_id = id;
    m.model = "digits";
    m.task = "infer";
    m.inputs = {ipc::TensorRef{"input", input.datatype, input.shape, in->offset, in->size}};
    m.output = *out;
    return ipc::ToFrame(m);
  };
  auto check = [&](const Frame& reply, uint64_t id) {
    ASSERT_EQ(reply.type, static_cast<uint16_t>(MessageType::kResult));
    auto result = ipc::FromFrame<ipc::ResultMessage>(reply);
    ASSERT_TRUE(result.ok()) << result.status().ToString();
    EXPECT_EQ(result->request_id, id);
    ASSERT_FALSE(result->error) << result->error->message;
    ASSERT_EQ(result->outputs.size(), 1u);
    auto bytes = (*arena)->Bytes(result->outputs[0].region());
    ASSERT_TRUE(bytes.ok());
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(bytes->data()), bytes->size()),
              want->at(0).data);
  };

  ASSERT_TRUE(lane.Send(infer(21)).ok());
  auto reply = lane.Receive(kGenerous);
  ASSERT_TRUE(reply.ok()) << reply.status().ToString();
  check(*reply, 21);
  EXPECT_FALSE(w->channel->Readable()) << "a lane request was answered on the control socket";

  // Something that is not an infer, on the lane: an error under its id.
  ASSERT_TRUE(lane.Send(ipc::ToFrame(ipc::PingMessage{}, 22)).ok());
  reply = lane.Receive(kGenerous);
  ASSERT_TRUE(reply.ok());
  auto refused = ipc::FromFrame<ipc::ResultMessage>(*reply);
  ASSERT_TRUE(refused.ok() && refused->error);
  EXPECT_EQ(refused->request_id, 22u);
  EXPECT_NE(refused->error->message.find("on the lane"), std::string::npos);

  // The frontend closes its end: the control socket still serves the model.
  lane.Shutdown();
  check(w->Ask(infer(23)), 23);
}

TEST(WorkerProtocolTest, ACorruptStreamEndsTheWorkerWithCodeOne) {
  auto w = StartRaw();
  ASSERT_TRUE(w);
  // Bytes that are not a frame header: framing is lost for good.
  const int fd = w->channel->fd();
  const char junk[32] = "this is not a modelgrid frame!!";
  ASSERT_EQ(::send(fd, junk, sizeof(junk), MSG_NOSIGNAL), static_cast<ssize_t>(sizeof(junk)));
  int status = 0;
  ASSERT_EQ(::waitpid(w->pid, &status, 0), w->pid);
  w->pid = 0;
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 1) << status;
}

TEST(WorkerProtocolTest, BadCommandLinesAreRefused) {
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"--name", "x"},
        std::vector<std::string>{"--fd", "99", "--name", "x"},
        std::vector<std::string>{"--fd", "3"}}) {
    auto pid = worker_internal::SpawnChild(MODELGRID_WORKER_PATH, args, 2, 3);
    ASSERT_TRUE(pid.ok()) << pid.status().ToString();
    int status = 0;
    ASSERT_EQ(::waitpid(*pid, &status, 0), *pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 2) << args[0] << " status " << status;
  }
}

}  // namespace
}  // namespace modelgrid
