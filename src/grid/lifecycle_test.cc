// The model lifecycle state machine (lifecycle.h), checked against the table
// as documented there, written out again here by hand.
#include "grid/lifecycle.h"

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <map>
#include <set>
#include <utility>
#include <vector>

namespace modelgrid {
namespace {

using S = ModelState;
using E = LifecycleEvent;

const std::vector<S> kAllStates = {S::kAdded,      S::kLoading,  S::kReady,       S::kRestarting,
                                   S::kUnplaced,   S::kFailed,   S::kUnloaded,    S::kStandby,
                                   S::kSwappingOut, S::kSwapped, S::kSwappingIn};

const std::vector<E> kAllEvents = {
    E::kPlace,     E::kLoaded,        E::kLoadFailed, E::kEstimateFailed, E::kNoFit,
    E::kPark,      E::kDemand,        E::kWorkerDied, E::kRestarted,      E::kRestartFailed,
    E::kSwapOut,   E::kSwappedOut,    E::kSwapOutFailed, E::kSwapIn,      E::kSwappedIn,
    E::kSwapInFailed, E::kEvict,      E::kUnload,     E::kShutdown};

// The documented table (lifecycle.h), as (state, event) -> state.
std::map<std::pair<S, E>, S> DocumentedTable() {
  struct Row {
    E event;
    std::vector<S> from;
    S to;
  };
  const std::vector<Row> rows = {
      {E::kPlace, {S::kAdded, S::kUnplaced, S::kFailed, S::kUnloaded, S::kStandby}, S::kLoading},
      {E::kLoaded, {S::kLoading}, S::kReady},
      {E::kLoadFailed, {S::kLoading}, S::kFailed},
      {E::kEstimateFailed, {S::kAdded, S::kUnplaced, S::kFailed, S::kUnloaded, S::kStandby}, S::kFailed},
      {E::kNoFit, {S::kAdded, S::kUnplaced, S::kFailed, S::kUnloaded, S::kStandby}, S::kUnplaced},
      {E::kPark, {S::kAdded, S::kUnplaced, S::kFailed, S::kUnloaded}, S::kStandby},
      {E::kDemand, {S::kStandby}, S::kLoading},
      {E::kWorkerDied,
       {S::kLoading, S::kReady, S::kRestarting, S::kSwappingOut, S::kSwapped, S::kSwappingIn},
       S::kRestarting},
      {E::kRestarted, {S::kRestarting}, S::kReady},
      {E::kRestartFailed, {S::kRestarting}, S::kFailed},
      {E::kSwapOut, {S::kReady}, S::kSwappingOut},
      {E::kSwappedOut, {S::kSwappingOut}, S::kSwapped},
      {E::kSwapOutFailed, {S::kSwappingOut}, S::kReady},
      {E::kSwapIn, {S::kSwapped}, S::kSwappingIn},
      {E::kSwappedIn, {S::kSwappingIn}, S::kReady},
      {E::kSwapInFailed, {S::kSwappingIn}, S::kLoading},
      {E::kEvict, {S::kReady, S::kSwapped, S::kRestarting}, S::kStandby},
      {E::kUnload, {S::kLoading, S::kReady, S::kRestarting, S::kSwapped, S::kStandby}, S::kUnloaded},
      {E::kShutdown, kAllStates, S::kUnloaded},
  };
  std::map<std::pair<S, E>, S> table;
  for (const Row& r : rows) {
    for (S from : r.from) table[{from, r.event}] = r.to;
  }
  return table;
}

// A path of events from kAdded to `target` (each step legal by the table).
std::vector<E> PathTo(S target) {
  switch (target) {
    case S::kAdded: return {};
    case S::kLoading: return {E::kPlace};
    case S::kReady: return {E::kPlace, E::kLoaded};
    case S::kRestarting: return {E::kPlace, E::kLoaded, E::kWorkerDied};
    case S::kUnplaced: return {E::kNoFit};
    case S::kFailed: return {E::kPlace, E::kLoadFailed};
    case S::kUnloaded: return {E::kPlace, E::kLoaded, E::kUnload};
    case S::kStandby: return {E::kPark};
    case S::kSwappingOut: return {E::kPlace, E::kLoaded, E::kSwapOut};
    case S::kSwapped: return {E::kPlace, E::kLoaded, E::kSwapOut, E::kSwappedOut};
    case S::kSwappingIn: return {E::kPlace, E::kLoaded, E::kSwapOut, E::kSwappedOut, E::kSwapIn};
  }
  return {};
}

// A lifecycle of model "m" driven to `target`, with reason "why" given at
// every step.
ModelLifecycle At(S target) {
  ModelLifecycle life("m");
  for (E e : PathTo(target)) {
    Status st = life.Apply(e, "why");
    EXPECT_TRUE(st.ok()) << st.ToString();
  }
  EXPECT_EQ(life.state(), target) << ModelStateName(target);
  return life;
}

TEST(LifecycleTest, EnumListsAreComplete) {
  EXPECT_EQ(static_cast<int>(kAllStates.size()), kModelStateCount);
  EXPECT_EQ(static_cast<int>(kAllEvents.size()), kLifecycleEventCount);
}

TEST(LifecycleTest, StartsAddedWithoutReason) {
  ModelLifecycle life("resnet");
  EXPECT_EQ(life.model(), "resnet");
  EXPECT_EQ(life.state(), S::kAdded);
  EXPECT_EQ(life.reason(), "");
  EXPECT_FALSE(life.last_event().has_value());
}

TEST(LifecycleTest, EveryLegalTransitionReachesTheDocumentedState) {
  const auto table = DocumentedTable();
  for (const auto& [key, to] : table) {
    const auto [from, event] = key;
    ModelLifecycle life = At(from);
    Status st = life.Apply(event);
    ASSERT_TRUE(st.ok()) << ModelStateName(from) << " + " << LifecycleEventName(event) << ": "
                         << st.ToString();
    EXPECT_EQ(life.state(), to) << ModelStateName(from) << " + " << LifecycleEventName(event)
                                << " gave " << ModelStateName(life.state());
    ASSERT_TRUE(life.last_event().has_value());
    EXPECT_EQ(*life.last_event(), event);
    Result<ModelState> next = NextState(from, event);
    ASSERT_TRUE(next.ok()) << next.status().ToString();
    EXPECT_EQ(*next, to);
  }
}

TEST(LifecycleTest, EveryPairOutsideTheTableIsRejectedAndChangesNothing) {
  const auto table = DocumentedTable();
  int rejected = 0;
  for (S from : kAllStates) {
    for (E event : kAllEvents) {
      if (table.count({from, event}) != 0) continue;
      ++rejected;
      ModelLifecycle life = At(from);
      const std::string reason_before = life.reason();
      const auto last_before = life.last_event();
      Status st = life.Apply(event, "should not be kept");
      ASSERT_FALSE(st.ok()) << ModelStateName(from) << " + " << LifecycleEventName(event);
      EXPECT_EQ(st.code(), StatusCode::kInternal);
      const std::string& msg = st.message();
      EXPECT_NE(msg.find("model 'm'"), std::string::npos) << msg;
      EXPECT_NE(msg.find(std::string("'") + ModelStateName(from) + "'"), std::string::npos) << msg;
      EXPECT_NE(msg.find(std::string("'") + LifecycleEventName(event) + "'"), std::string::npos)
          << msg;
      EXPECT_EQ(life.state(), from);
      EXPECT_EQ(life.reason(), reason_before);
      EXPECT_EQ(life.last_event(), last_before);
      EXPECT_FALSE(NextState(from, event).ok());
    }
  }
  // 11 states x 19 events, less the table's 55 transitions.
  EXPECT_EQ(rejected, 11 * 19 - 55);
  EXPECT_EQ(table.size(), 55u);
}

TEST(LifecycleTest, PublishedTableMatchesTheDocumentedOne) {
  std::map<std::pair<S, E>, S> published;
  for (const LifecycleTransition& row : LifecycleTable()) {
    for (S from : kAllStates) {
      if (row.from_mask & (uint32_t{1} << static_cast<int>(from))) published[{from, row.event}] = row.to;
    }
  }
  EXPECT_EQ(published, DocumentedTable());
}

TEST(LifecycleTest, ReasonIsKeptWhereTheStateExplainsItselfAndClearedElsewhere) {
  ModelLifecycle life("bert");
  ASSERT_TRUE(life.Apply(E::kPlace, "ignored while loading").ok());
  EXPECT_EQ(life.reason(), "");
  ASSERT_TRUE(life.Apply(E::kLoadFailed, "out of memory on cuda:0").ok());
  EXPECT_EQ(life.state(), S::kFailed);
  EXPECT_EQ(life.reason(), "out of memory on cuda:0");
  ASSERT_TRUE(life.Apply(E::kNoFit, "needs 9.00 GiB, largest free 1.00 GiB").ok());
  EXPECT_EQ(life.reason(), "needs 9.00 GiB, largest free 1.00 GiB");
  ASSERT_TRUE(life.Apply(E::kPark, "waits for room").ok());
  EXPECT_EQ(life.state(), S::kStandby);
  EXPECT_EQ(life.reason(), "waits for room");
  // A rejected event leaves the reason alone.
  EXPECT_FALSE(life.Apply(E::kLoaded, "nope").ok());
  EXPECT_EQ(life.reason(), "waits for room");
  ASSERT_TRUE(life.Apply(E::kDemand, "first request").ok());
  EXPECT_EQ(life.reason(), "");
  ASSERT_TRUE(life.Apply(E::kLoaded, "done").ok());
  EXPECT_EQ(life.state(), S::kReady);
  EXPECT_EQ(life.reason(), "");
  ASSERT_TRUE(life.Apply(E::kWorkerDied, "worker pid 12 exited with signal 9").ok());
  EXPECT_EQ(life.reason(), "worker pid 12 exited with signal 9");
  ASSERT_TRUE(life.Apply(E::kWorkerDied, "worker pid 13 exited with code 1").ok());
  EXPECT_EQ(life.state(), S::kRestarting);
  EXPECT_EQ(life.reason(), "worker pid 13 exited with code 1");
  ASSERT_TRUE(life.Apply(E::kRestarted).ok());
  EXPECT_EQ(life.reason(), "");
  ASSERT_TRUE(life.Apply(E::kSwapOut, "collision with gpt2").ok());
  EXPECT_EQ(life.reason(), "");
  ASSERT_TRUE(life.Apply(E::kSwappedOut, "collision with gpt2").ok());
  EXPECT_EQ(life.state(), S::kSwapped);
  EXPECT_EQ(life.reason(), "collision with gpt2");
  ASSERT_TRUE(life.Apply(E::kEvict, "host tier full").ok());
  EXPECT_EQ(life.reason(), "host tier full");
  ASSERT_TRUE(life.Apply(E::kShutdown, "server stopping").ok());
  EXPECT_EQ(life.state(), S::kUnloaded);
  EXPECT_EQ(life.reason(), "");
}

TEST(LifecycleTest, KeepsReasonExactlyForTheExplainingStates) {
  const std::set<S> keeps = {S::kFailed, S::kUnplaced, S::kRestarting, S::kStandby, S::kSwapped};
  for (S s : kAllStates) EXPECT_EQ(KeepsReason(s), keeps.count(s) == 1) << ModelStateName(s);
}

TEST(LifecycleTest, StateNamesAreTheDocumentedDistinctOnes) {
  const std::map<S, std::string> expected = {
      {S::kAdded, "added"},         {S::kLoading, "loading"},   {S::kReady, "ready"},
      {S::kRestarting, "restarting"}, {S::kUnplaced, "unplaced"}, {S::kFailed, "failed"},
      {S::kUnloaded, "unloaded"},   {S::kStandby, "standby"},   {S::kSwappingOut, "swapping_out"},
      {S::kSwapped, "swapped"},     {S::kSwappingIn, "swapping_in"}};
  std::set<std::string> seen;
  for (S s : kAllStates) {
    EXPECT_EQ(ModelStateName(s), expected.at(s));
    seen.insert(ModelStateName(s));
  }
  EXPECT_EQ(seen.size(), kAllStates.size());
  EXPECT_STREQ(ModelStateName(static_cast<S>(kModelStateCount)), "unknown");
}

TEST(LifecycleTest, EventNamesAreDistinctSnakeCase) {
  std::set<std::string> seen;
  for (E e : kAllEvents) {
    const std::string name = LifecycleEventName(e);
    EXPECT_NE(name, "unknown");
    for (char c : name) EXPECT_TRUE((c >= 'a' && c <= 'z') || c == '_') << name;
    seen.insert(name);
  }
  EXPECT_EQ(seen.size(), kAllEvents.size());
  EXPECT_STREQ(LifecycleEventName(E::kSwapInFailed), "swap_in_failed");
  EXPECT_STREQ(LifecycleEventName(static_cast<E>(kLifecycleEventCount)), "unknown");
}

TEST(LifecycleTest, ResidencyAndReadiness) {
  const std::set<S> resident = {S::kLoading, S::kReady, S::kRestarting, S::kSwappingOut,
                                S::kSwappingIn};
  const std::set<S> holds_readiness_back = {S::kAdded, S::kLoading, S::kRestarting};
  for (S s : kAllStates) {
    EXPECT_EQ(IsResident(s), resident.count(s) == 1) << ModelStateName(s);
    EXPECT_EQ(CountsTowardsReadiness(s), holds_readiness_back.count(s) == 0) << ModelStateName(s);
  }
}

TEST(LifecycleTest, ValuesOutsideTheEnumsAreRejected) {
  const auto bogus_state = static_cast<S>(kModelStateCount);
  const auto bogus_event = static_cast<E>(kLifecycleEventCount);
  EXPECT_FALSE(NextState(bogus_state, E::kShutdown).ok());
  EXPECT_FALSE(NextState(S::kAdded, bogus_event).ok());
  EXPECT_FALSE(IsResident(bogus_state));
  EXPECT_FALSE(CountsTowardsReadiness(bogus_state));
}

// Any sequence of events: each one either moves the model as the documented
// table says, or is rejected and leaves it where it was.
RC_GTEST_PROP(LifecycleProperty, RandomEventsFollowTheTable, ()) {
  const auto table = DocumentedTable();
  const auto events = *rc::gen::container<std::vector<E>>(rc::gen::elementOf(kAllEvents));
  ModelLifecycle life("m");
  for (E e : events) {
    const S before = life.state();
    const auto it = table.find({before, e});
    Status st = life.Apply(e, "r");
    if (it == table.end()) {
      RC_ASSERT(!st.ok());
      RC_ASSERT(life.state() == before);
    } else {
      RC_ASSERT(st.ok());
      RC_ASSERT(life.state() == it->second);
      RC_ASSERT(life.reason() == (KeepsReason(it->second) ? "r" : ""));
    }
  }
}

}  // namespace
}  // namespace modelgrid
