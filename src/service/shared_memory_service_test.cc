// The service with inputs in registered system shared memory (Triton's
// extension; InferenceService resolves the parameters, the grid reads the
// bytes in place in-process and in a worker): errors named, unregistering,
// a shrunk object.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "modelgrid/grid.h"
#include "modelgrid/service/inference_service.h"
#include "testing/posix_shm.h"
#include "testing/test_grid.h"
#include "testing/digits.h"
#include "testing/zoo.h"

namespace modelgrid {
namespace {

using namespace std::chrono_literals;
using testing::PosixSharedMemory;

InferTensor Rows(const std::string& name, int64_t rows, std::string data) {
  InferTensor t;
  t.name = name;
  t.datatype = DataType::kFP32;
  t.shape = {rows, 64};
  t.data = std::move(data);
  return t;
}

InferTensor InShm(const std::string& name, int64_t rows, const std::string& region, uint64_t offset,
                  uint64_t bytes) {
  InferTensor t = Rows(name, rows, "");
  t.parameters = {{"shared_memory_region", region},
                  {"shared_memory_offset", offset},
                  {"shared_memory_byte_size", bytes}};
  return t;
}


class GridSharedMemoryTest : public ::testing::TestWithParam<Isolation> {};

TEST_P(GridSharedMemoryTest, InputsAreReadWhereTheClientWroteThem) {
  REQUIRE_ZOO();
  std::unique_ptr<Grid> grid = testing::DigitsGrid(GetParam(), zoo);
  ASSERT_TRUE(grid);
  InferenceService service(grid.get(), {});
  auto st = grid->Model("digits");
  ASSERT_TRUE(st.ok() && st->state == ModelState::kReady) << st->reason;
  const std::string input = st->inputs.empty() ? "input" : st->inputs[0].name;

  // The object holds 4 rows at byte 512 of a region that starts at byte 256.
  const std::string key = "/modelgrid_shm_test_" + std::to_string(::getpid()) + "_" +
                          std::string(IsolationName(GetParam()));
  auto shm = PosixSharedMemory::Create(key, 4096);
  ASSERT_TRUE(shm.ok()) << shm.status().ToString();
  const std::string first = testing::DigitsRows(zoo, 0, 4), second = testing::DigitsRows(zoo, 4, 4);
  std::memcpy((*shm)->data() + 512, first.data(), first.size());
  ASSERT_TRUE(service.RegisterSharedMemory("rows", key, 256, 3000, "").ok());
  EXPECT_EQ(grid->SharedMemoryRegions(),
            (std::vector<ipc::SharedMemoryRegion>{{"rows", key, 256, 3000}}));

  auto expected = [&](const std::string& bytes) {
    InferCall call;
    call.inputs = {Rows(input, 4, bytes)};
    auto out = grid->Infer("digits", std::move(call));
    EXPECT_TRUE(out.ok()) << out.status().ToString();
    return out.ok() ? *out : std::vector<InferTensor>{};
  };
  auto from_shm = [&](uint64_t offset, uint64_t bytes) -> Result<std::vector<InferTensor>> {
    InferRequest request;
    request.inputs = {InShm(input, 4, "rows", offset, bytes)};
    MG_ASSIGN_OR_RETURN(InferResponse response, service.Infer("digits", "", std::move(request)));
    return response.outputs;
  };
  auto got = from_shm(256, first.size());
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(*got, expected(first));
  // The client writes new rows in place: the next call reads them.
  std::memcpy((*shm)->data() + 512, second.data(), second.size());
  got = from_shm(256, second.size());
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(*got, expected(second));
  EXPECT_NE(expected(first), expected(second));

  // Errors name the model, the input and the problem.
  got = from_shm(2000, first.size());  // 2000 + 1024 > 3000
  EXPECT_EQ(got.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(got.status().message().find("runs past its 3000 bytes"), std::string::npos)
      << got.status().ToString();
  got = from_shm(256, 1000);  // not 4 x 64 FP32
  EXPECT_EQ(got.status().code(), StatusCode::kInvalidArgument) << got.status().ToString();
  InferRequest both;
  both.inputs = {InShm(input, 4, "rows", 256, first.size())};
  both.inputs[0].data = first;
  auto both_got = service.Infer("digits", "", std::move(both));
  EXPECT_NE(both_got.status().message().find("has both data and shared_memory_region"),
            std::string::npos)
      << both_got.status().ToString();
  EXPECT_EQ(service.RegisterSharedMemory("rows", key, 0, 16, "").code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(service.RegisterSharedMemory("other", "/modelgrid_no_such_key", 0, 16, "").code(),
            StatusCode::kNotFound);
  EXPECT_EQ(service.RegisterSharedMemory("big", key, 0, 8192, "").code(), StatusCode::kInvalidArgument);

  // Unregistered: a call naming it fails; registered again, it serves again.
  ASSERT_TRUE(service.UnregisterSharedMemory("rows", "").ok());
  EXPECT_TRUE(grid->SharedMemoryRegions().empty());
  got = from_shm(256, first.size());
  EXPECT_EQ(got.status().code(), StatusCode::kNotFound) << got.status().ToString();
  EXPECT_EQ(service.UnregisterSharedMemory("rows", "").code(), StatusCode::kNotFound);
  ASSERT_TRUE(service.RegisterSharedMemory("rows", key, 256, 3000, "").ok());
  got = from_shm(256, second.size());
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(*got, expected(second));
  EXPECT_TRUE(service.UnregisterSharedMemory("", "").ok());
  EXPECT_TRUE(grid->SharedMemoryRegions().empty());
}

// A client that shrinks a registered object (ftruncate) fails only its own
// request, with an error naming the region; no process dies of SIGBUS (in
// isolation none that process is the server), and the region serves again
// once the object has its size back.
TEST_P(GridSharedMemoryTest, AShrunkObjectFailsOnlyThatRequestAndKillsNoProcess) {
  REQUIRE_ZOO();
  std::unique_ptr<Grid> grid = testing::DigitsGrid(GetParam(), zoo);
  ASSERT_TRUE(grid);
  InferenceService service(grid.get(), {});
  auto st = grid->Model("digits");
  ASSERT_TRUE(st.ok() && st->state == ModelState::kReady) << st->reason;
  const std::string input = st->inputs.empty() ? "input" : st->inputs[0].name;
  const int64_t pid = st->worker_pid;

  const std::string key = "/modelgrid_shm_shrink_" + std::to_string(::getpid()) + "_" +
                          std::string(IsolationName(GetParam()));
  auto shm = PosixSharedMemory::Create(key, 4096);
  ASSERT_TRUE(shm.ok()) << shm.status().ToString();
  const std::string rows = testing::DigitsRows(zoo, 0, 4);
  std::memcpy((*shm)->data(), rows.data(), rows.size());
  ASSERT_TRUE(service.RegisterSharedMemory("rows", key, 0, 4096, "").ok());
  auto from_shm = [&]() -> Result<std::vector<InferTensor>> {
    InferRequest request;
    request.inputs = {InShm(input, 4, "rows", 0, rows.size())};
    MG_ASSIGN_OR_RETURN(InferResponse response, service.Infer("digits", "", std::move(request)));
    return response.outputs;
  };
  auto want = from_shm();
  ASSERT_TRUE(want.ok()) << want.status().ToString();

  const int fd = ::shm_open(key.c_str(), O_RDWR, 0);
  ASSERT_GE(fd, 0);
  for (off_t size : {off_t{0}, off_t{512}}) {  // nothing left; less than the tensor
    ASSERT_EQ(::ftruncate(fd, size), 0);
    auto got = from_shm();
    ASSERT_EQ(got.status().code(), StatusCode::kInvalidArgument) << got.status().ToString();
    EXPECT_NE(got.status().message().find("shrank to " + std::to_string(size) + " bytes"),
              std::string::npos)
        << got.status().ToString();
    EXPECT_NE(got.status().message().find("'rows'"), std::string::npos) << got.status().message();
  }
  // Nothing died: the same worker (or this process) serves plain requests.
  InferCall plain;
  plain.inputs = {Rows(input, 4, rows)};
  auto direct = grid->Infer("digits", std::move(plain));
  ASSERT_TRUE(direct.ok()) << direct.status().ToString();
  EXPECT_EQ(*direct, *want);
  EXPECT_EQ(grid->Model("digits")->worker_pid, pid);
  EXPECT_EQ(grid->Model("digits")->restarts, 0);
  // Its size back (zero-filled past 512: rewrite the rows), it serves again.
  ASSERT_EQ(::ftruncate(fd, 4096), 0);
  ::close(fd);
  std::memcpy((*shm)->data(), rows.data(), rows.size());
  auto again = from_shm();
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(*again, *want);
}

INSTANTIATE_TEST_SUITE_P(Isolations, GridSharedMemoryTest,
                         ::testing::Values(Isolation::kNone, Isolation::kModel),
                         [](const auto& info) { return std::string(IsolationName(info.param)); });

}  // namespace
}  // namespace modelgrid
