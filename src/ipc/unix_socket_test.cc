// Listening at a path, connecting with retry, accepting with a timeout.
#include "modelgrid/ipc/unix_socket.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>
#include <thread>

#include "ipc/ipc_test_util.h"
#include "modelgrid/ipc/channel.h"

namespace modelgrid::ipc {
namespace {

using std::chrono::milliseconds;
using testing::kGenerous;
using testing::ScratchDir;

TEST(UnixSocketTest, ListenConnectAcceptExchange) {
  ScratchDir dir;
  ASSERT_FALSE(dir.path().empty());
  const std::string path = dir.File("worker-0.sock");
  auto listener = ListenUnix(path);
  ASSERT_TRUE(listener.ok()) << listener.status().ToString();

  struct stat st;
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  auto client = ConnectUnix(path);
  ASSERT_TRUE(client.ok()) << client.status().ToString();
  auto server = AcceptUnix(listener->get(), kGenerous);
  ASSERT_TRUE(server.ok()) << server.status().ToString();

  Channel worker(std::move(*client));
  Channel frontend(std::move(*server));
  Frame ping;
  ping.type = 1;
  ping.request_id = 7;
  ping.payload = "{}";
  ASSERT_TRUE(frontend.Send(ping).ok());
  auto got = worker.Receive(kGenerous);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(*got, ping);
}

TEST(UnixSocketTest, StaleSocketFileIsReplaced) {
  ScratchDir dir;
  const std::string path = dir.File("stale.sock");
  {
    auto first = ListenUnix(path);
    ASSERT_TRUE(first.ok());
  }  // closed; the file stays behind as after a crash
  struct stat st;
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  auto second = ListenUnix(path);
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_TRUE(ConnectUnix(path).ok());
}

TEST(UnixSocketTest, LiveListenerIsNotStolen) {
  ScratchDir dir;
  const std::string path = dir.File("live.sock");
  auto first = ListenUnix(path);
  ASSERT_TRUE(first.ok());
  auto second = ListenUnix(path);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), StatusCode::kAlreadyExists);
  // The first listener still owns the path. (The probe connection of the
  // second attempt may be pending; drain it first.)
  ConnectRetry once;
  once.max_attempts = 1;
  ASSERT_TRUE(ConnectUnix(path, once).ok());
  EXPECT_TRUE(AcceptUnix(first->get(), kGenerous).ok());
}

TEST(UnixSocketTest, NonSocketFileIsLeftAlone) {
  ScratchDir dir;
  const std::string path = dir.File("notes.txt");
  std::ofstream(path) << "keep me";
  auto listener = ListenUnix(path);
  ASSERT_FALSE(listener.ok());
  EXPECT_EQ(listener.status().code(), StatusCode::kAlreadyExists);
  std::string content;
  std::getline(std::ifstream(path), content);
  EXPECT_EQ(content, "keep me");
}

TEST(UnixSocketTest, OverlongPathIsInvalidArgument) {
  const std::string path = "/tmp/" + std::string(200, 'x');
  EXPECT_EQ(ListenUnix(path).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ConnectUnix(path).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ListenUnix("").status().code(), StatusCode::kInvalidArgument);
}

TEST(UnixSocketTest, ConnectRetriesUntilTheListenerAppears) {
  ScratchDir dir;
  const std::string path = dir.File("late.sock");
  ConnectRetry retry;
  retry.max_attempts = 500;
  retry.initial_delay = milliseconds(1);
  retry.max_delay = milliseconds(5);  // bounded: at most about 2.5 s of sleeping
  Result<UniqueFd> client = Status::Internal("not run");
  std::thread connector([&] { client = ConnectUnix(path, retry); });
  std::this_thread::sleep_for(milliseconds(30));  // the first attempts fail with ENOENT
  auto listener = ListenUnix(path);
  ASSERT_TRUE(listener.ok());
  auto server = AcceptUnix(listener->get(), kGenerous);
  connector.join();
  ASSERT_TRUE(client.ok()) << client.status().ToString();
  EXPECT_TRUE(server.ok()) << server.status().ToString();
}

TEST(UnixSocketTest, ConnectGivesUpAfterItsAttempts) {
  ScratchDir dir;
  ConnectRetry retry;
  retry.max_attempts = 3;
  retry.initial_delay = milliseconds(1);
  retry.max_delay = milliseconds(1);
  auto client = ConnectUnix(dir.File("nobody.sock"), retry);
  ASSERT_FALSE(client.ok());
  EXPECT_EQ(client.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(client.status().message().find("3 attempts"), std::string::npos)
      << client.status().ToString();
}

TEST(UnixSocketTest, AcceptTimesOut) {
  ScratchDir dir;
  auto listener = ListenUnix(dir.File("quiet.sock"));
  ASSERT_TRUE(listener.ok());
  auto server = AcceptUnix(listener->get(), milliseconds(10));
  ASSERT_FALSE(server.ok());
  EXPECT_EQ(server.status().code(), StatusCode::kUnavailable);
}

}  // namespace
}  // namespace modelgrid::ipc
