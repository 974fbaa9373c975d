// Test helpers shared by http_server_test.cc and http_hardening_test.cc: an
// HttpServer run in this process on 127.0.0.1 with an access log, and a
// test fixture holding one Grid without models (isolation none) for a whole
// suite. Header-only, for tests.
#pragma once

#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "modelgrid/grid.h"
#include "modelgrid/server/http_server.h"

namespace modelgrid::server_test {

// An HttpServer in process on 127.0.0.1 (a free port) over `grid`, its
// access log kept; Stop() (or the destructor) stops it and joins Run, and
// fails the test when Run returned an error.
class InProcessServer {
 public:
  InProcessServer(Grid* grid, HttpServerOptions o) {
    o.host = "127.0.0.1";
    o.port = 0;
    o.access_log = [this](const AccessRecord& r) {
      std::lock_guard lock(mu_);
      log_.push_back(r);
    };
    server_ = std::make_unique<HttpServer>(grid, std::move(o));
    auto port = server_->Bind();
    EXPECT_TRUE(port.ok()) << port.status().ToString();
    port_ = port.ok() ? *port : 0;
    thread_ = std::thread([this] { run_status_ = server_->Run(); });
  }
  ~InProcessServer() { Stop(); }
  InProcessServer(const InProcessServer&) = delete;
  InProcessServer& operator=(const InProcessServer&) = delete;

  // Stops the server; returns how long Stop + Run's return took (zero when
  // it was stopped already).
  std::chrono::steady_clock::duration Stop() {
    const auto start = std::chrono::steady_clock::now();
    if (!thread_.joinable()) return {};
    server_->Stop();
    thread_.join();
    EXPECT_TRUE(run_status_.ok()) << run_status_.ToString();
    return std::chrono::steady_clock::now() - start;
  }
  int port() const { return port_; }
  // Every access log record so far.
  std::vector<AccessRecord> log() {
    std::lock_guard lock(mu_);
    return log_;
  }
  // The access log records of `path` so far.
  std::vector<AccessRecord> Records(const std::string& path) {
    std::vector<AccessRecord> found;
    for (const AccessRecord& r : log()) {
      if (r.path == path) found.push_back(r);
    }
    return found;
  }

 private:
  std::unique_ptr<HttpServer> server_;
  std::thread thread_;
  Status run_status_;
  int port_ = 0;
  std::mutex mu_;
  std::vector<AccessRecord> log_;
};

// A suite over one Grid without models (cpu=1GiB, isolation none), created
// before the suite's first test and shut down after its last; SIGPIPE is
// ignored, so a write to a socket the server closed does not end the test.
class EmptyGridTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ::signal(SIGPIPE, SIG_IGN);
    GridOptions o;
    o.isolation = Isolation::kNone;
    o.devices = {"cpu=1GiB"};
    o.worker_executable = MODELGRID_BINARY_DIR "/bin/modelgrid-worker";
    auto grid = Grid::Create(o);
    ASSERT_TRUE(grid.ok()) << grid.status().ToString();
    grid_ = std::move(grid).value().release();
  }
  static void TearDownTestSuite() {
    if (grid_) grid_->Shutdown();
    delete grid_;
    grid_ = nullptr;
  }
  void SetUp() override { ASSERT_NE(grid_, nullptr); }

  static inline Grid* grid_ = nullptr;
};

}  // namespace modelgrid::server_test
