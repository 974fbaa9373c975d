// The watchdog's restart delays (restart_backoff.h) with made-up times: no
// process is started and no clock is read.
#include "grid/restart_backoff.h"

#include <gtest/gtest.h>

namespace modelgrid::grid_internal {
namespace {

using Millis = std::chrono::milliseconds;
using std::chrono::seconds;

const RestartBackoff::TimePoint kT0{};

TEST(RestartBackoffTest, CrashesDoubleTheWaitUpToTheMaximum) {
  RestartBackoff b(Millis{100}, Millis{5'000}, seconds{60});
  b.Started(kT0);
  // Each crash a second after its start: 100, 200, 400, ... capped at 5 s.
  const int64_t expected[] = {100, 200, 400, 800, 1600, 3200, 5000, 5000};
  auto now = kT0;
  for (int64_t want : expected) {
    now += seconds{1};
    EXPECT_EQ(b.OnExit(now).count(), want);
    now += Millis{want};
    b.Started(now);
  }
}

TEST(RestartBackoffTest, AStableWorkerStartsOverFromTheInitialWait) {
  RestartBackoff b(Millis{100}, Millis{5'000}, seconds{60});
  b.Started(kT0);
  EXPECT_EQ(b.OnExit(kT0 + seconds{1}).count(), 100);
  b.Started(kT0 + seconds{2});
  EXPECT_EQ(b.OnExit(kT0 + seconds{3}).count(), 200);
  b.Started(kT0 + seconds{4});
  // Up for exactly the stable time: back to the initial wait.
  EXPECT_EQ(b.OnExit(kT0 + seconds{64}).count(), 100);
  b.Started(kT0 + seconds{65});
  EXPECT_EQ(b.OnExit(kT0 + seconds{66}).count(), 200);
}

TEST(RestartBackoffTest, FailedStartsKeepDoublingWithoutAReset) {
  RestartBackoff b(Millis{100}, Millis{1'000}, seconds{60});
  b.Started(kT0);
  EXPECT_EQ(b.OnExit(kT0 + seconds{120}).count(), 100);  // stable: initial
  // The restart itself fails three times, however long that takes.
  EXPECT_EQ(b.OnStartFailed().count(), 200);
  EXPECT_EQ(b.OnStartFailed().count(), 400);
  EXPECT_EQ(b.OnStartFailed().count(), 800);
  EXPECT_EQ(b.OnStartFailed().count(), 1000);
  b.Started(kT0 + seconds{300});
  EXPECT_EQ(b.OnExit(kT0 + seconds{301}).count(), 1000);  // still at the maximum
}

TEST(RestartBackoffTest, AnExitWithoutARecordedStartUsesTheInitialWait) {
  RestartBackoff b(Millis{250}, Millis{4'000}, seconds{60});
  EXPECT_EQ(b.next().count(), 250);
  EXPECT_EQ(b.OnExit(kT0).count(), 250);
  EXPECT_EQ(b.next().count(), 500);
}

TEST(RestartBackoffTest, AMaximumBelowTheInitialWaitIsTheInitialWait) {
  RestartBackoff b(Millis{300}, Millis{100}, seconds{60});
  EXPECT_EQ(b.OnStartFailed().count(), 300);
  EXPECT_EQ(b.OnStartFailed().count(), 300);
}

}  // namespace
}  // namespace modelgrid::grid_internal
