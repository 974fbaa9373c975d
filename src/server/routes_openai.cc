// OpenAI-compatible endpoints over the InferenceService, as the KServe
// Hugging Face runtime, vLLM and text-embeddings-inference offer them:
//   GET  /v1/models             the models, OpenAI's list shape;
//   POST /v1/embeddings         a model's embed task on text or token ids;
//   POST /v1/completions        a model's generate task; "stream": true answers
//                               with server-sent events, one per call of
//                               InferenceService::GenerateAsync, then [DONE];
//   POST /v1/chat/completions   501: chat templates (Jinja, in
//                               tokenizer_config.json) are not rendered, and a
//                               wrong rendering would answer silently wrong.
// Errors are OpenAI's shape: {"error": {"message", "type", "param", "code"}}
// with the HTTP status KServe's mapping gives.
#include <chrono>
#include <set>

#include "modelgrid/kserve/errors.h"
#include "server/routes.h"

namespace modelgrid::server {

namespace {

using nlohmann::json;

// OpenAI's error object: type invalid_request_error for 4xx, else server_error.
HttpReply OpenAiError(int http, const std::string& message, const std::string& param = "") {
  json error = {{"message", message},
                {"type", http == 404   ? "not_found_error"
                         : http == 501 ? "not_implemented"
                         : http < 500  ? "invalid_request_error"
                                       : "server_error"},
                {"param", param.empty() ? json(nullptr) : json(param)},
                {"code", nullptr}};
  return JsonReply(http, json{{"error", error}});
}

HttpReply OpenAiError(const Status& s, const std::string& param = "") {
  HttpReply r = OpenAiError(HttpStatusFromCode(s.code()), s.message(), param);
  if (HttpReply kserve = ErrorReply(s); !kserve.headers.empty()) r.headers = kserve.headers;
  return r;
}

int64_t Now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The request's `input` / `prompt`: a string, an array of strings, an array
// of token ids, or an array of arrays of token ids, as one model input.
Result<InferTensor> PromptInput(const json& v, const char* field) {
  const std::string bad = std::string("'") + field +
                          "' must be a string, an array of strings, an array of token ids or "
                          "an array of arrays of token ids";
  auto text = [](const std::vector<std::string>& rows) {
    InferTensor t{"text", DataType::kBytes, {static_cast<int64_t>(rows.size())}, {}};
    for (const auto& r : rows) AppendBytesElement(&t.data, r);
    return t;
  };
  auto ids = [&](const std::vector<std::vector<int64_t>>& rows) -> Result<InferTensor> {
    const size_t width = rows.front().size();
    for (const auto& r : rows) {
      if (r.size() != width || width == 0) {
        return Status::InvalidArgument(std::string("'") + field +
                                       "': token id rows must be non-empty and of one length");
      }
    }
    InferTensor t{"input_ids", DataType::kInt64,
                  {static_cast<int64_t>(rows.size()), static_cast<int64_t>(width)}, {}};
    for (const auto& r : rows) {
      t.data.append(reinterpret_cast<const char*>(r.data()), r.size() * sizeof(int64_t));
    }
    return t;
  };
  if (v.is_string()) return text({v.get<std::string>()});
  if (!v.is_array() || v.empty()) return Status::InvalidArgument(bad);
  if (v.front().is_string()) {
    std::vector<std::string> rows;
    for (const auto& e : v) {
      if (!e.is_string()) return Status::InvalidArgument(bad);
      rows.push_back(e.get<std::string>());
    }
    return text(rows);
  }
  std::vector<std::vector<int64_t>> rows;
  if (v.front().is_number_integer()) {
    rows.emplace_back();
    for (const auto& e : v) {
      if (!e.is_number_integer()) return Status::InvalidArgument(bad);
      rows.back().push_back(e.get<int64_t>());
    }
    return ids(rows);
  }
  for (const auto& row : v) {
    if (!row.is_array()) return Status::InvalidArgument(bad);
    rows.emplace_back();
    for (const auto& e : row) {
      if (!e.is_number_integer()) return Status::InvalidArgument(bad);
      rows.back().push_back(e.get<int64_t>());
    }
  }
  return ids(rows);
}

Result<std::string> ModelField(const json& body) {
  if (!body.contains("model") || !body["model"].is_string() ||
      body["model"].get<std::string>().empty()) {
    return Status::InvalidArgument("'model' must be a non-empty string");
  }
  return body["model"].get<std::string>();
}

HttpReply Models(InferenceService* service) {
  json data = json::array();
  for (const RepositoryEntry& e : service->RepositoryIndex(false)) {
    data.push_back({{"id", e.name}, {"object", "model"}, {"created", 0}, {"owned_by", "modelgrid"},
                    {"ready", e.state == "READY"}});
  }
  return JsonReply(200, json{{"object", "list"}, {"data", data}});
}

HttpReply Embeddings(InferenceService* service, const HttpRequest& req) {
  auto body = ParseJsonObjectBody(req.body);
  if (!body.ok()) return OpenAiError(body.status());
  auto model = ModelField(*body);
  if (!model.ok()) return OpenAiError(model.status(), "model");
  if (!body->contains("input")) return OpenAiError(400, "'input' is required", "input");
  auto input = PromptInput((*body)["input"], "input");
  if (!input.ok()) return OpenAiError(input.status(), "input");
  const std::string format = body->value("encoding_format", std::string("float"));
  if (format != "float") {
    return OpenAiError(400, "encoding_format '" + format + "' is not supported (float only)",
                       "encoding_format");
  }
  InferRequest request;
  request.inputs.push_back(std::move(*input));
  request.parameters = {{"task", "embed"}};
  auto answer = service->Infer(*model, "", std::move(request));
  if (!answer.ok()) return OpenAiError(answer.status());
  const InferTensor* emb = nullptr;
  const InferTensor* counts = nullptr;
  for (const InferTensor& t : answer->outputs) {
    if (t.name == "embedding") emb = &t;
    if (t.name == "prompt_tokens") counts = &t;
  }
  if (!emb || emb->datatype != DataType::kFP32 || emb->shape.size() != 2) {
    return OpenAiError(500, "model '" + *model + "' did not return embedding FP32 [B,D]");
  }
  const int64_t rows = emb->shape[0], dim = emb->shape[1];
  const auto* p = reinterpret_cast<const float*>(emb->data.data());
  json data = json::array();
  for (int64_t r = 0; r < rows; ++r) {
    data.push_back({{"object", "embedding"},
                    {"index", r},
                    {"embedding", std::vector<float>(p + r * dim, p + (r + 1) * dim)}});
  }
  int64_t tokens = 0;
  if (counts && counts->datatype == DataType::kInt64) {
    const auto* c = reinterpret_cast<const int64_t*>(counts->data.data());
    for (size_t i = 0; i < counts->data.size() / sizeof(int64_t); ++i) tokens += c[i];
  }
  return JsonReply(200, json{{"object", "list"},
                             {"data", data},
                             {"model", *model},
                             {"usage", {{"prompt_tokens", tokens}, {"total_tokens", tokens}}}});
}

// OpenAI's finish_reason for ours: eos and stop strings are "stop".
json FinishReason(const std::string& ours) {
  if (ours.empty()) return nullptr;
  return ours == "length" ? "length" : "stop";
}

// The generate parameters of a completions body. Errors name the field.
Result<json> CompletionParams(const json& body) {
  static const std::set<std::string> kKnown = {
      "model", "prompt", "max_tokens", "temperature", "top_p", "top_k", "seed", "stop", "stream",
      "n", "user", "echo", "logprobs", "presence_penalty", "frequency_penalty", "ignore_eos",
      "stream_options", "best_of", "suffix", "logit_bias"};
  for (auto it = body.begin(); it != body.end(); ++it) {
    if (!kKnown.contains(it.key())) {
      return Status::InvalidArgument("unknown field '" + it.key() + "'");
    }
  }
  json p = json::object();
  p["max_new_tokens"] = body.value("max_tokens", json(16));
  // OpenAI's default temperature is 1 (sampling); 0 means greedy.
  const json t = body.value("temperature", json(1.0));
  if (!t.is_number() || t.get<double>() < 0) {
    return Status::InvalidArgument("'temperature' must be a number >= 0");
  }
  if (t.get<double>() == 0) {
    p["do_sample"] = false;
  } else {
    p["do_sample"] = true;
    p["temperature"] = t;
  }
  for (const char* k : {"top_p", "top_k", "seed", "stop", "ignore_eos"}) {
    if (body.contains(k) && !body[k].is_null()) p[k] = body[k];
  }
  if (body.value("n", json(1)) != json(1) || body.value("best_of", json(1)) != json(1)) {
    return Status::InvalidArgument("'n' and 'best_of' other than 1 are not supported");
  }
  if (body.value("echo", false)) return Status::InvalidArgument("'echo' is not supported");
  if (body.contains("logprobs") && !body["logprobs"].is_null()) {
    return Status::InvalidArgument("'logprobs' is not supported");
  }
  for (const char* k : {"presence_penalty", "frequency_penalty"}) {
    if (body.contains(k) && body[k] != json(0) && body[k] != json(0.0) && !body[k].is_null()) {
      return Status::InvalidArgument(std::string("'") + k + "' is not supported");
    }
  }
  if (body.contains("logit_bias") || body.contains("suffix")) {
    return Status::InvalidArgument("'logit_bias' and 'suffix' are not supported");
  }
  return p;
}

json Choice(size_t index, const std::string& text, const json& finish) {
  return {{"text", text}, {"index", index}, {"logprobs", nullptr}, {"finish_reason", finish}};
}

HttpReply Completions(InferenceService* service, const HttpRequest& req) {
  auto body = ParseJsonObjectBody(req.body);
  if (!body.ok()) return OpenAiError(body.status());
  auto model = ModelField(*body);
  if (!model.ok()) return OpenAiError(model.status(), "model");
  if (!body->contains("prompt")) return OpenAiError(400, "'prompt' is required", "prompt");
  auto prompt = PromptInput((*body)["prompt"], "prompt");
  if (!prompt.ok()) return OpenAiError(prompt.status(), "prompt");
  auto params = CompletionParams(*body);
  if (!params.ok()) return OpenAiError(params.status());
  GenerateRequest g;
  g.model = *model;
  g.inputs.push_back(std::move(*prompt));
  g.params = std::move(*params);
  const std::string id = "cmpl-" + std::to_string(Now()) + "-" +
                         std::to_string(reinterpret_cast<uintptr_t>(&g) & 0xffffff);
  const int64_t created = Now();

  // Errors a stream could only tell inside its body are answered here.
  if (auto found = service->FindModel(*model, ""); !found.ok()) {
    return OpenAiError(found.status(), "model");
  } else if (!found->tasks.empty() && std::find(found->tasks.begin(), found->tasks.end(),
                                                "generate") == found->tasks.end()) {
    return OpenAiError(400, "model '" + *model + "' does not generate text", "model");
  }
  if (!body->value("stream", false)) {
    auto r = service->Generate(std::move(g));
    if (!r.ok()) return OpenAiError(r.status());
    json choices = json::array();
    int64_t prompt_tokens = 0, completion_tokens = 0;
    for (size_t i = 0; i < r->rows.size(); ++i) {
      const GeneratedRow& row = r->rows[i];
      choices.push_back(Choice(i, row.text, FinishReason(row.finish_reason)));
      prompt_tokens += row.prompt_tokens;
      completion_tokens += static_cast<int64_t>(row.ids.size());
    }
    return JsonReply(200, json{{"id", id},
                               {"object", "text_completion"},
                               {"created", created},
                               {"model", *model},
                               {"choices", choices},
                               {"usage",
                                {{"prompt_tokens", prompt_tokens},
                                 {"completion_tokens", completion_tokens},
                                 {"total_tokens", prompt_tokens + completion_tokens}}}});
  }

  HttpReply reply;
  reply.content_type = "text/event-stream";
  reply.headers.push_back({"Cache-Control", "no-cache"});
  reply.stream = [service, g = std::move(g), id, created, model = *model](
                     const BodyWriter& write) mutable {
    auto event = [&](const json& chunk) {
      return write("data: " + chunk.dump(-1, ' ', false, json::error_handler_t::replace) + "\n\n");
    };
    auto frame = [&](json choices) {
      return json{{"id", id},
                  {"object", "text_completion"},
                  {"created", created},
                  {"model", model},
                  {"choices", std::move(choices)}};
    };
    auto r = service->Generate(std::move(g), [&](const std::vector<GeneratedRow>& added) {
      json choices = json::array();
      for (size_t i = 0; i < added.size(); ++i) {
        if (added[i].text.empty() && added[i].finish_reason.empty()) continue;
        choices.push_back(Choice(i, added[i].text, FinishReason(added[i].finish_reason)));
      }
      return choices.empty() || event(frame(std::move(choices)));
    });
    if (!r.ok()) {
      json error = {{"message", r.status().message()},
                    {"type", HttpStatusFromCode(r.status().code()) < 500 ? "invalid_request_error"
                                                                         : "server_error"},
                    {"param", nullptr},
                    {"code", HttpStatusFromCode(r.status().code())}};
      event(json{{"error", error}});
    }
    write("data: [DONE]\n\n");
  };
  return reply;
}

}  // namespace

std::vector<Route> OpenAiRoutes(InferenceService* service) {
  return {
      {"GET", "/v1/models", [service](const HttpRequest&) { return Models(service); }},
      {"POST", "/v1/embeddings",
       [service](const HttpRequest& req) { return Embeddings(service, req); }},
      {"POST", "/v1/completions",
       [service](const HttpRequest& req) { return Completions(service, req); }},
      {"POST", "/v1/chat/completions",
       [](const HttpRequest&) {
         return OpenAiError(501,
                            "chat completions are not served: ModelGrid does not render chat "
                            "templates (the Jinja chat_template of tokenizer_config.json), and a "
                            "wrongly rendered prompt would answer silently wrong; use "
                            "/v1/completions with the prompt already formatted");
       }},
  };
}

}  // namespace modelgrid::server
