// Trace settings, sampling and records (tracer.h).
#include "service/tracer.h"

#include <algorithm>
#include <cctype>
#include <nlohmann/json.hpp>

namespace modelgrid::service {

namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

int64_t Nanos(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

// A version as Triton writes it: a number when it is one.
json VersionJson(const std::string& version) {
  const bool digits =
      !version.empty() && version.size() < 19 &&
      std::all_of(version.begin(), version.end(), [](unsigned char c) { return std::isdigit(c); });
  if (digits) return std::stoll(version);
  return version;
}

Status Validate(const TraceSettings& s) {
  if (s.level != TraceLevel::kOff && s.file.empty()) {
    return Status::InvalidArgument("trace_file: must name a file while trace_level is " +
                                   std::string(TraceLevelName(s.level)));
  }
  return Status::Ok();
}

}  // namespace

std::string TraceRecordLine(const TraceTicket& t, Clock::time_point request_end) {
  json stamps = json::array();
  auto add = [&](const char* name, std::optional<Clock::time_point> at) {
    if (at) stamps.push_back({{"name", name}, {"ns", Nanos(*at)}});
  };
  add("REQUEST_START", t.request_start);
  add("QUEUE_START", t.times->queue_start);
  add("COMPUTE_START", t.times->compute_start);
  add("COMPUTE_END", t.times->compute_end);
  add("REQUEST_END", request_end);
  json record = {{"id", t.id}, {"model_name", t.model}, {"model_version", VersionJson(t.version)}};
  if (!t.request_id.empty()) record["request_id"] = t.request_id;
  record["timestamps"] = std::move(stamps);
  return record.dump(-1, ' ', false, json::error_handler_t::replace);
}

Tracer::Tracer(TraceSettings global, TraceFormat format)
    : format_(format), global_(std::move(global)) {}

Tracer::~Tracer() { Flush(); }

TraceSettings Tracer::Settings(const std::string& model) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = model.empty() ? models_.end() : models_.find(model);
  return it == models_.end() ? global_ : it->second.own.Over(global_);
}

Result<TraceFile*> Tracer::FileLocked(const std::string& path) {
  auto it = files_.find(path);
  if (it != files_.end()) return it->second.get();
  MG_ASSIGN_OR_RETURN(auto file, TraceFile::Open(path, format_));
  TraceFile* raw = file.get();
  files_.emplace(path, std::move(file));
  return raw;
}

Result<TraceSettings> Tracer::Update(const std::string& model, const TraceUpdate& update) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [path, file] : files_) file->Flush();
  if (model.empty()) {
    if (!update.cleared.empty()) {
      return Status::InvalidArgument(update.cleared.front() +
                                     ": a global setting cannot be cleared (null or an empty "
                                     "value clears a model's own setting)");
    }
    const TraceSettings next = update.set.Over(global_);
    MG_RETURN_IF_ERROR(Validate(next));
    if (!next.file.empty()) MG_RETURN_IF_ERROR(FileLocked(next.file).status());
    if (update.set.rate) global_seen_ = 0;
    global_ = next;
    return global_;
  }
  auto found = models_.find(model);
  ModelTrace next = found == models_.end() ? ModelTrace{} : found->second;
  for (const std::string& name : update.cleared) {
    if (name == "trace_file") next.own.file.reset();
    if (name == "trace_level") next.own.level.reset();
    if (name == "trace_rate") next.own.rate.reset();
    if (name == "trace_count") next.own.count.reset();
    if (name == "log_frequency") next.own.log_frequency.reset();
  }
  const TraceOverrides& set = update.set;
  if (set.file) next.own.file = set.file;
  if (set.level) next.own.level = set.level;
  if (set.rate) {
    next.own.rate = set.rate;
    next.seen = 0;
  }
  if (set.count) next.own.count = set.count;
  if (set.log_frequency) next.own.log_frequency = set.log_frequency;
  const TraceSettings effective = next.own.Over(global_);
  MG_RETURN_IF_ERROR(Validate(effective));
  if (!effective.file.empty()) MG_RETURN_IF_ERROR(FileLocked(effective.file).status());
  if (next.own.empty()) {
    models_.erase(model);
  } else {
    models_[model] = std::move(next);
  }
  return effective;
}

std::optional<TraceTicket> Tracer::Sample(const std::string& model, const std::string& version,
                                          const std::string& request_id,
                                          Clock::time_point request_start) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = models_.find(model);
  ModelTrace* own = it == models_.end() ? nullptr : &it->second;
  const TraceSettings s = own != nullptr ? own->own.Over(global_) : global_;
  if (s.level == TraceLevel::kOff || s.file.empty()) return std::nullopt;
  int64_t& left = own != nullptr && own->own.count ? *own->own.count : global_.count;
  if (left == 0) return std::nullopt;
  uint64_t& seen = own != nullptr && own->own.rate ? own->seen : global_seen_;
  if (++seen % s.rate != 0) return std::nullopt;
  if (left > 0) --left;
  TraceTicket t;
  t.id = next_id_++;
  t.model = model;
  t.version = version;
  t.request_id = request_id;
  t.file = s.file;
  t.log_frequency = s.log_frequency;
  t.last = left == 0;
  t.request_start = request_start;
  return t;
}

void Tracer::Finish(const TraceTicket& ticket, Clock::time_point request_end) {
  std::string line = TraceRecordLine(ticket, request_end);
  std::lock_guard<std::mutex> lock(mu_);
  auto file = FileLocked(ticket.file);
  if (!file.ok()) return;  // opened when it was set; gone since: the record is dropped
  (*file)->Append(std::move(line), ticket.log_frequency, ticket.last);
}

void Tracer::Flush() {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [path, file] : files_) file->Flush();
}

}  // namespace modelgrid::service
