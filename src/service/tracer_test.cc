// Trace settings and the Tracer without a grid: what an update accepts and
// refuses (naming the setting), sampling by trace_rate and trace_count,
// a model's own settings over the global ones and their clearing, the
// record line, log_frequency's writes.
#include "service/tracer.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace modelgrid::service {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

TraceUpdate Parse(const json& body) {
  auto u = ParseTraceUpdate(body);
  EXPECT_TRUE(u.ok()) << u.status().ToString();
  return u.ok() ? *u : TraceUpdate{};
}

std::string ParseError(const json& body) {
  auto u = ParseTraceUpdate(body);
  return u.ok() ? "accepted" : u.status().message();
}

// Lines of `path` (none when it does not exist).
std::vector<std::string> Lines(const fs::path& path) {
  std::vector<std::string> out;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

class TracerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("mg_tracer_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Sets `tracer` to trace every request into `file`, writing every
  // `log_frequency` records.
  static bool TraceEveryRequest(Tracer& tracer, const fs::path& file,
                                const std::string& log_frequency) {
    return tracer
        .Update("", Parse({{"trace_file", file.string()},
                           {"trace_level", {"TIMESTAMPS"}},
                           {"trace_rate", "1"},
                           {"log_frequency", log_frequency}}))
        .ok();
  }

  // Samples `n` requests of `model`, finishing the traced ones; returns how
  // many were traced.
  int Run(Tracer* tracer, const std::string& model, int n) {
    int traced = 0;
    for (int i = 0; i < n; ++i) {
      auto t = tracer->Sample(model, "1", "", Clock::now());
      if (!t) continue;
      ++traced;
      tracer->Finish(*t, Clock::now());
    }
    return traced;
  }

  fs::path dir_;
};

TEST(TraceSettingsTest, ReadsStringsIntegersAndArrays) {
  TraceUpdate u = Parse({{"trace_file", "/tmp/x"},
                         {"trace_level", {"TIMESTAMPS"}},
                         {"trace_rate", "5"},
                         {"trace_count", -1},
                         {"log_frequency", {"7"}}});
  EXPECT_EQ(u.set.file, "/tmp/x");
  EXPECT_EQ(u.set.level, TraceLevel::kTimestamps);
  EXPECT_EQ(u.set.rate, 5u);
  EXPECT_EQ(u.set.count, -1);
  EXPECT_EQ(u.set.log_frequency, 7u);
  EXPECT_TRUE(u.cleared.empty());
  TraceUpdate cleared = Parse({{"trace_rate", nullptr}, {"trace_level", json::array()}});
  EXPECT_TRUE(cleared.set.empty());
  EXPECT_EQ(cleared.cleared.size(), 2u);
  EXPECT_EQ(Parse({{"trace_level", "off"}}).set.level, TraceLevel::kOff);
}

TEST(TraceSettingsTest, RefusesNamingTheSetting) {
  EXPECT_NE(ParseError({{"trace_rate", "0"}}).find("trace_rate"), std::string::npos);
  EXPECT_NE(ParseError({{"trace_rate", "1x"}}).find("trace_rate"), std::string::npos);
  EXPECT_NE(ParseError({{"trace_count", "-2"}}).find("trace_count"), std::string::npos);
  EXPECT_NE(ParseError({{"log_frequency", "-1"}}).find("log_frequency"), std::string::npos);
  EXPECT_NE(ParseError({{"trace_rate", true}}).find("trace_rate: expected"), std::string::npos);
  EXPECT_NE(ParseError({{"trace_rate", {"1", "2"}}}).find("one value"), std::string::npos);
  EXPECT_NE(ParseError({{"trace_level", {"TENSORS"}}}).find("TENSORS is not offered"),
            std::string::npos);
  EXPECT_NE(ParseError({{"trace_level", {"LOUD"}}}).find("'LOUD'"), std::string::npos);
  EXPECT_NE(ParseError({{"trace_level", {"OFF", "TIMESTAMPS"}}}).find("trace_level"),
            std::string::npos);
  const std::string unknown = ParseError({{"trace_bogus", "1"}, {"rate", "2"}});
  EXPECT_NE(unknown.find("'trace_bogus'"), std::string::npos) << unknown;
  EXPECT_NE(unknown.find("'rate'"), std::string::npos) << unknown;
  EXPECT_NE(ParseError(json::array()).find("JSON object"), std::string::npos);
}

TEST(TraceSettingsTest, AnswersEveryValueAsStrings) {
  TraceSettings s;
  s.file = "/tmp/t";
  s.level = TraceLevel::kTimestamps;
  s.rate = 3;
  s.count = 10;
  s.log_frequency = 2;
  EXPECT_EQ(TraceSettingsJson(s), json({{"trace_file", "/tmp/t"},
                                        {"trace_level", {"TIMESTAMPS"}},
                                        {"trace_rate", "3"},
                                        {"trace_count", "10"},
                                        {"log_frequency", "2"}}));
}

TEST_F(TracerTest, SamplesEveryRateThRequestWhileCountLasts) {
  Tracer tracer;
  EXPECT_EQ(Run(&tracer, "m", 10), 0) << "OFF by default";
  const fs::path file = dir_ / "t.jsonl";
  ASSERT_TRUE(tracer
                  .Update("", Parse({{"trace_file", file.string()},
                                     {"trace_level", {"TIMESTAMPS"}},
                                     {"trace_rate", "3"}}))
                  .ok());
  EXPECT_EQ(Run(&tracer, "m", 9), 3);
  EXPECT_EQ(Lines(file).size(), 3u);
  auto s = tracer.Update("", Parse({{"trace_count", "2"}, {"trace_rate", "1"}}));
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(Run(&tracer, "m", 5), 2);
  EXPECT_EQ(tracer.Settings("").count, 0) << "trace_count is what is left";
  EXPECT_EQ(Lines(file).size(), 5u);
}

TEST_F(TracerTest, ModelSettingsOverrideThenClearFallsBackToGlobal) {
  Tracer tracer;
  const fs::path global = dir_ / "g.jsonl", own = dir_ / "m.jsonl";
  ASSERT_TRUE(
      tracer.Update("", Parse({{"trace_file", global.string()}, {"trace_rate", "1"}})).ok());
  auto m =
      tracer.Update("m", Parse({{"trace_level", {"TIMESTAMPS"}}, {"trace_file", own.string()}}));
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->level, TraceLevel::kTimestamps);
  EXPECT_EQ(m->rate, 1u) << "the global rate where the model sets none";
  EXPECT_EQ(tracer.Settings("").level, TraceLevel::kOff);
  EXPECT_EQ(Run(&tracer, "m", 2), 2);
  EXPECT_EQ(Run(&tracer, "other", 2), 0);
  EXPECT_EQ(Lines(own).size(), 2u);
  auto cleared =
      tracer.Update("m", Parse({{"trace_level", nullptr}, {"trace_file", json::array()}}));
  ASSERT_TRUE(cleared.ok());
  EXPECT_EQ(cleared->level, TraceLevel::kOff);
  EXPECT_EQ(cleared->file, global.string());
  EXPECT_EQ(Run(&tracer, "m", 2), 0);
  // A model's own trace_count is its own; the global one is untouched.
  ASSERT_TRUE(tracer.Update("", Parse({{"trace_level", "TIMESTAMPS"}})).ok());
  ASSERT_TRUE(tracer.Update("m", Parse({{"trace_count", "1"}})).ok());
  EXPECT_EQ(Run(&tracer, "m", 3), 1);
  EXPECT_EQ(Run(&tracer, "other", 3), 3);
  EXPECT_EQ(tracer.Settings("m").count, 0);
  EXPECT_EQ(tracer.Settings("").count, -1);
  EXPECT_EQ(Lines(global).size(), 4u);
}

TEST_F(TracerTest, RefusesWholeUpdatesThatCannotHold) {
  Tracer tracer;
  EXPECT_EQ(tracer.Update("", Parse({{"trace_level", "TIMESTAMPS"}}))
                .status()
                .message()
                .find("trace_file"),
            0u);
  EXPECT_NE(tracer.Update("", Parse({{"trace_rate", nullptr}}))
                .status()
                .message()
                .find("cannot be cleared"),
            std::string::npos);
  auto missing =
      tracer.Update("", Parse({{"trace_file", (dir_ / "no" / "t").string()}, {"trace_rate", "9"}}));
  EXPECT_NE(missing.status().message().find("trace_file: cannot open"), std::string::npos);
  EXPECT_EQ(tracer.Settings("").rate, 1000u) << "nothing changed";
}

TEST_F(TracerTest, RecordsCarryOrderedTimestampsAndLogFrequencyBatchesWrites) {
  Tracer tracer;
  const fs::path file = dir_ / "t.jsonl";
  ASSERT_TRUE(TraceEveryRequest(tracer, file, "3"));
  for (int i = 0; i < 2; ++i) {
    auto t = tracer.Sample("m", "2", "req-" + std::to_string(i), Clock::now());
    ASSERT_TRUE(t.has_value());
    t->times->queue_start = Clock::now();
    t->times->compute_start = Clock::now();
    t->times->compute_end = Clock::now();
    tracer.Finish(*t, Clock::now());
  }
  EXPECT_EQ(Lines(file).size(), 0u) << "kept until 3 are waiting";
  EXPECT_EQ(Run(&tracer, "m", 1), 1);
  const auto lines = Lines(file);
  ASSERT_EQ(lines.size(), 3u);
  const json first = json::parse(lines[0]);
  EXPECT_EQ(first["model_name"], "m");
  EXPECT_EQ(first["model_version"], 2);
  EXPECT_EQ(first["request_id"], "req-0");
  const json& stamps = first["timestamps"];
  ASSERT_EQ(stamps.size(), 5u) << first;
  const char* names[] = {"REQUEST_START", "QUEUE_START", "COMPUTE_START", "COMPUTE_END",
                         "REQUEST_END"};
  for (size_t i = 0; i < 5; ++i) {
    EXPECT_EQ(stamps[i]["name"], names[i]);
    if (i > 0) {
      EXPECT_LE(stamps[i - 1]["ns"].get<int64_t>(), stamps[i]["ns"].get<int64_t>());
    }
  }
  // Not run: only the stamps it got.
  EXPECT_EQ(json::parse(lines[2])["timestamps"].size(), 2u);
  EXPECT_LT(json::parse(lines[0])["id"].get<uint64_t>(),
            json::parse(lines[1])["id"].get<uint64_t>());
  EXPECT_EQ(Run(&tracer, "m", 1), 1);
  EXPECT_EQ(Lines(file).size(), 3u);
  ASSERT_TRUE(tracer.Update("", Parse({{"trace_level", "OFF"}})).ok());
  EXPECT_EQ(Lines(file).size(), 4u) << "a settings change writes what was kept";
}

// The whole content of `path` as JSON (discarded when it is not JSON or
// does not exist).
json ReadJson(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return json::parse(text.str(), nullptr, false);
}

TEST_F(TracerTest, TritonFormatWritesEveryLogFrequencyRecordsToTheNextFile) {
  Tracer tracer(TraceSettings{}, TraceFormat::kTriton);
  const fs::path file = dir_ / "trace.json";
  ASSERT_TRUE(TraceEveryRequest(tracer, file, "2"));
  EXPECT_EQ(Run(&tracer, "m", 5), 5);
  // Triton's trace file layout: trace.json.0 and .1 hold two records each
  // as one JSON array; the fifth waits.
  for (int index : {0, 1}) {
    const json records = ReadJson(file.string() + "." + std::to_string(index));
    ASSERT_TRUE(records.is_array()) << index;
    ASSERT_EQ(records.size(), 2u) << records;
    for (const json& r : records) {
      EXPECT_EQ(r["model_name"], "m");
      EXPECT_EQ(r["model_version"], 1);
      EXPECT_TRUE(r["timestamps"].is_array());
      EXPECT_EQ(r["timestamps"][0]["name"], "REQUEST_START");
    }
    EXPECT_EQ(records[0]["id"].get<uint64_t>() + 1, records[1]["id"].get<uint64_t>());
  }
  EXPECT_FALSE(fs::exists(file.string() + ".2"));
  ASSERT_TRUE(tracer.Update("", Parse({{"trace_level", "OFF"}})).ok());
  const json last = ReadJson(file.string() + ".2");
  ASSERT_TRUE(last.is_array());
  EXPECT_EQ(last.size(), 1u) << "a settings change writes what was kept";
  EXPECT_EQ(fs::file_size(file), 0u) << "records go to the numbered files only";
}

TEST_F(TracerTest, TritonFormatWithoutLogFrequencyRewritesTheFileWithEveryRecord) {
  const fs::path file = dir_ / "trace.json";
  {
    std::ofstream old(file);
    old << "an older run's content";
  }
  {
    Tracer tracer(TraceSettings{}, TraceFormat::kTriton);
    ASSERT_TRUE(TraceEveryRequest(tracer, file, "0"));
    EXPECT_EQ(Run(&tracer, "m", 3), 3);
    EXPECT_FALSE(ReadJson(file).is_array()) << "kept until the records are flushed";
    ASSERT_TRUE(tracer.Update("", Parse({{"trace_rate", "1"}})).ok());
    json records = ReadJson(file);
    ASSERT_TRUE(records.is_array());
    EXPECT_EQ(records.size(), 3u);
    EXPECT_EQ(Run(&tracer, "m", 2), 2);
  }  // the server stops: everything is written
  const json records = ReadJson(file);
  ASSERT_TRUE(records.is_array());
  ASSERT_EQ(records.size(), 5u) << "all records, not only the last flush's";
  EXPECT_EQ(records[4]["id"].get<uint64_t>(), records[0]["id"].get<uint64_t>() + 4);
  EXPECT_FALSE(fs::exists(file.string() + ".0"));
}

}  // namespace
}  // namespace modelgrid::service
