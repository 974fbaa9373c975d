// HuggingFaceBackend's generate task (modelgrid/backend/hf_backend.h): the
// parameters, stop strings, text out, streaming, and sessions that keep a
// generation's KV cache between calls so that a caller can interleave
// requests at token boundaries.

#include <algorithm>

#include "backend/hf_internal.h"

namespace modelgrid::hf_internal {

namespace {

using Clock = std::chrono::steady_clock;

// Reads an optional field of `params` with `read`, naming it on a type error.
template <typename T, typename Read>
Status Field(const nlohmann::json& params, const char* key, const std::string& prefix, T* out,
             const char* expected, Read read) {
  if (!params.contains(key) || params[key].is_null()) return Status::Ok();
  const nlohmann::json& v = params[key];
  if (!read(v, out)) {
    return Status::InvalidArgument(prefix + "parameter '" + key + "' must be " + expected +
                                   ", got " + v.dump());
  }
  return Status::Ok();
}

Result<hf::GenerationParams> ReadParams(const nlohmann::json& p, const std::string& prefix,
                                        std::vector<std::string>* stops) {
  hf::GenerationParams g;
  auto integer = [](const nlohmann::json& v, int64_t* o) {
    if (!v.is_number_integer()) return false;
    *o = v.get<int64_t>();
    return true;
  };
  auto boolean = [](const nlohmann::json& v, bool* o) {
    if (!v.is_boolean()) return false;
    *o = v.get<bool>();
    return true;
  };
  auto number = [](const nlohmann::json& v, double* o) {
    if (!v.is_number()) return false;
    *o = v.get<double>();
    return true;
  };
  MG_RETURN_IF_ERROR(Field(p, "max_new_tokens", prefix, &g.max_new_tokens, "an integer", integer));
  if (g.max_new_tokens < 1 || g.max_new_tokens > hf::kMaxNewTokensLimit) {
    return Status::InvalidArgument(prefix + "parameter 'max_new_tokens' must be in [1, " +
                                   std::to_string(hf::kMaxNewTokensLimit) + "], got " +
                                   std::to_string(g.max_new_tokens));
  }
  MG_RETURN_IF_ERROR(Field(p, "do_sample", prefix, &g.do_sample, "true or false", boolean));
  MG_RETURN_IF_ERROR(Field(p, "ignore_eos", prefix, &g.ignore_eos, "true or false", boolean));
  MG_RETURN_IF_ERROR(Field(p, "temperature", prefix, &g.temperature, "a number > 0", number));
  int64_t top_k = 0;
  MG_RETURN_IF_ERROR(Field(p, "top_k", prefix, &top_k, "an integer >= 1", integer));
  if (p.contains("top_k") && !p["top_k"].is_null()) g.top_k = top_k;
  double top_p = 1.0;
  MG_RETURN_IF_ERROR(Field(p, "top_p", prefix, &top_p, "a number in (0, 1]", number));
  if (p.contains("top_p") && !p["top_p"].is_null()) g.top_p = top_p;
  int64_t seed = 0;
  MG_RETURN_IF_ERROR(Field(p, "seed", prefix, &seed, "an integer >= 0", integer));
  if (seed < 0) return Status::InvalidArgument(prefix + "parameter 'seed' must be >= 0");
  g.seed = static_cast<uint64_t>(seed);
  if (p.contains("stop") && !p["stop"].is_null()) {
    const nlohmann::json& s = p["stop"];
    auto bad = [&] {
      return Status::InvalidArgument(prefix +
                                     "parameter 'stop' must be a string or an array of non-empty "
                                     "strings, got " + s.dump());
    };
    if (s.is_string()) {
      stops->push_back(s.get<std::string>());
    } else if (s.is_array()) {
      for (const auto& e : s) {
        if (!e.is_string()) return bad();
        stops->push_back(e.get<std::string>());
      }
    } else {
      return bad();
    }
    if (std::any_of(stops->begin(), stops->end(), [](const auto& x) { return x.empty(); })) {
      return bad();
    }
  }
  return g;
}

// The bytes at the end of `text` that could begin a stop string (the
// longest suffix that is a proper prefix of one): held back from a
// streamed piece until the next tokens show whether the stop follows.
size_t HeldBack(std::string_view text, const std::vector<std::string>& stops) {
  size_t held = 0;
  for (const std::string& s : stops) {
    for (size_t n = std::min(s.size() - 1, text.size()); n > held; --n) {
      if (text.substr(text.size() - n) == std::string_view(s).substr(0, n)) {
        held = n;
        break;
      }
    }
  }
  return held;
}

// Cuts `text` at the first stop string; true when one was found.
bool CutAtStop(std::string* text, const std::vector<std::string>& stops) {
  size_t cut = std::string::npos;
  for (const std::string& s : stops) cut = std::min(cut, text->find(s));
  if (cut == std::string::npos) return false;
  text->resize(cut);
  return true;
}

std::string ReasonName(hf::FinishReason r) {
  switch (r) {
    case hf::FinishReason::kLength:
      return "length";
    case hf::FinishReason::kEos:
      return "eos";
    case hf::FinishReason::kStopped:
      return "stop";
    case hf::FinishReason::kNone:
      break;
  }
  return "";
}


}  // namespace

void Impl::DropSessions() {
  std::lock_guard<std::mutex> lock(sessions_mu);
  sessions.clear();
}

Result<std::vector<InferTensor>> Impl::Generate(std::span<const InferTensorView> inputs,
                                                const nlohmann::json& params,
                                                const StreamCallback& stream) {
  const std::string prefix = Prefix("generate");
  std::string session_id;
  if (params.contains("session")) {
    if (!params["session"].is_string() || params["session"].get<std::string>().empty()) {
      return Status::InvalidArgument(prefix + "parameter 'session' must be a non-empty string");
    }
    session_id = params["session"].get<std::string>();
  }
  const bool resume = params.value("continue", false);
  int64_t chunk = 0;
  if (params.contains("chunk_tokens")) {
    if (!params["chunk_tokens"].is_number_integer() || params["chunk_tokens"].get<int64_t>() < 1) {
      return Status::InvalidArgument(prefix + "parameter 'chunk_tokens' must be an integer >= 1");
    }
    chunk = params["chunk_tokens"].get<int64_t>();
  }
  if ((resume || chunk > 0) && session_id.empty()) {
    return Status::InvalidArgument(prefix + "parameters 'continue' and 'chunk_tokens' need 'session'");
  }

  std::shared_ptr<Session> s;
  {
    std::lock_guard<std::mutex> lock(sessions_mu);
    const auto now = Clock::now();
    for (auto it = sessions.begin(); it != sessions.end();) {
      const bool idle = !it->second->busy && now - it->second->last_used > kSessionIdle;
      it = idle ? sessions.erase(it) : std::next(it);
    }
    if (resume) {
      auto it = sessions.find(session_id);
      if (it == sessions.end()) {
        return Status::InvalidArgument(prefix + "unknown session '" + session_id +
                                       "' (finished, or unused for 60 s)");
      }
      if (it->second->busy) {
        return Status::InvalidArgument(prefix + "session '" + session_id + "' is in use");
      }
      s = it->second;
      s->busy = true;
    } else if (!session_id.empty() && sessions.count(session_id) > 0) {
      return Status::InvalidArgument(prefix + "session '" + session_id + "' exists already");
    } else if (!session_id.empty() && sessions.size() >= kMaxSessions) {
      return Status::ResourceExhausted(prefix + "too many open generation sessions (" +
                                       std::to_string(kMaxSessions) + ")");
    }
  }
  struct Release {
    Impl* impl;
    std::shared_ptr<Session> s;
    std::string id;
    ~Release() {
      if (!s) return;
      std::lock_guard<std::mutex> lock(impl->sessions_mu);
      s->busy = false;
      s->last_used = Clock::now();
      if (s->generation->done() || id.empty()) impl->sessions.erase(id);
    }
  };

  if (!s) {
    s = std::make_shared<Session>();
    MG_ASSIGN_OR_RETURN(hf::GenerationParams g, ReadParams(params, prefix, &s->stops));
    MG_ASSIGN_OR_RETURN(Batch batch, ReadInputs("generate", inputs, params));
    for (const auto& row : batch.rows) s->prompt_tokens.push_back(static_cast<int64_t>(row.size()));
    s->text.assign(batch.rows.size(), "");
    s->emitted.assign(batch.rows.size(), 0);
    if (tokenizer) {
      for (size_t r = 0; r < batch.rows.size(); ++r) {
        s->decoders.push_back(std::make_unique<tokenizer::IncrementalDecoder>(*tokenizer, true));
      }
    }
    MG_ASSIGN_OR_RETURN(s->generation, hf::Generation::Start(model, std::move(batch.rows), g));
    s->busy = true;
    if (!session_id.empty()) {
      std::lock_guard<std::mutex> lock(sessions_mu);
      sessions[session_id] = s;
    }
  }
  Release release{this, session_id.empty() ? nullptr : s, session_id};

  hf::Generation& gen = *s->generation;
  if (resume && params.value("cancel", false)) {
    for (size_t r = 0; r < gen.rows(); ++r) gen.Finish(r);
  }
  const size_t rows = gen.rows();
  std::vector<std::string> delta(rows);
  std::vector<std::vector<int64_t>> new_ids(rows);
  int64_t steps = 0;
  while (!gen.done() && (chunk == 0 || steps < chunk)) {
    MG_ASSIGN_OR_RETURN(std::vector<int64_t> tokens, gen.Step());
    ++steps;
    std::vector<std::string> piece(rows);
    for (size_t r = 0; r < rows; ++r) {
      if (tokens[r] == hf::kNoToken) continue;
      new_ids[r].push_back(tokens[r]);
      if (s->decoders.empty()) continue;
      const auto& all = gen.generated()[r];
      Result<std::string> text =
          gen.finished(r) ? s->decoders[r]->Flush(all) : s->decoders[r]->Step(all);
      if (!text.ok()) return text.status().WithPrefix(prefix);
      std::string& so_far = s->text[r];
      so_far += *text;
      if (!s->stops.empty() && CutAtStop(&so_far, s->stops)) gen.Finish(r);
      // What may be given out: all of it once the row is finished, else
      // what cannot be the start of a stop string.
      const size_t ready =
          gen.finished(r) ? so_far.size() : so_far.size() - HeldBack(so_far, s->stops);
      if (ready > s->emitted[r]) {
        piece[r] = so_far.substr(s->emitted[r], ready - s->emitted[r]);
        s->emitted[r] = ready;
      }
      delta[r] += piece[r];
    }
    if (stream) {
      std::vector<int64_t> step_ids(tokens.begin(), tokens.end());
      std::vector<InferTensor> out;
      out.push_back(Bytes("text_output", piece));
      out.push_back(Int64("generated_ids", {static_cast<int64_t>(rows), 1}, step_ids));
      if (!stream(out)) {
        for (size_t r = 0; r < rows; ++r) gen.Finish(r);
      }
    }
  }
  size_t width = 0;
  for (const auto& ids : new_ids) width = std::max(width, ids.size());
  std::vector<int64_t> padded(rows * width, -1);
  for (size_t r = 0; r < rows; ++r) {
    std::copy(new_ids[r].begin(), new_ids[r].end(), padded.begin() + r * width);
  }
  std::vector<std::string> reasons(rows);
  for (size_t r = 0; r < rows; ++r) reasons[r] = ReasonName(gen.finish_reason(r));
  std::vector<InferTensor> outs;
  if (tokenizer) outs.push_back(Bytes("text_output", delta));
  outs.push_back(Int64("generated_ids", {static_cast<int64_t>(rows), static_cast<int64_t>(width)},
                       padded));
  outs.push_back(Bytes("finish_reason", reasons));
  outs.push_back(Int64("prompt_tokens", {static_cast<int64_t>(rows)}, s->prompt_tokens));
  return outs;
}

}  // namespace modelgrid::hf_internal
