// Triton's generate extension over the InferenceService (a model's
// `generate` task through GenerateAsync):
//   POST /v2/models/{m}[/versions/{v}]/generate         one JSON answer;
//   POST /v2/models/{m}[/versions/{v}]/generate_stream  server-sent events,
//        one `data: {...}` per piece of the generation (per call of
//        GenerateAsync), the same object shape.
// The body: `text_input` (or `input_ids`), `id`, `parameters` and other
// fields as service/text_generation.h reads them. The answer:
// {"model_name", "model_version", "id" (when given), "text_output",
// "generated_ids", "finish_reason", "prompt_tokens"}: for one prompt a
// string, an array of ids, a string and an integer; for several, arrays of
// those. In a stream each event holds what its piece added (finish_reason
// "" until the row ends). Errors found before the generation produced
// anything are KServe's {"error": "..."} with its HTTP status; later ones
// (a stream already answered 200) are an event `data: {"error": "..."}`.
#include <algorithm>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>

#include "server/routes.h"
#include "service/text_generation.h"

namespace modelgrid::server {

namespace {

using nlohmann::json;

// The answer object for `rows` (see the top of this file).
json Answer(const std::string& model, const std::string& version, const std::string& id,
            const std::vector<GeneratedRow>& rows) {
  json out = {{"model_name", model}, {"model_version", version}};
  if (!id.empty()) out["id"] = id;
  auto column = [&rows](auto field) {
    if (rows.size() == 1) return json(field(rows[0]));
    json all = json::array();
    for (const GeneratedRow& row : rows) all.push_back(field(row));
    return all;
  };
  out["text_output"] = column([](const GeneratedRow& r) { return r.text; });
  out["generated_ids"] = column([](const GeneratedRow& r) { return r.ids; });
  out["finish_reason"] = column([](const GeneratedRow& r) { return r.finish_reason; });
  out["prompt_tokens"] = column([](const GeneratedRow& r) { return r.prompt_tokens; });
  return out;
}

std::string Event(const json& data) {
  return "data: " + data.dump(-1, ' ', false, json::error_handler_t::replace) + "\n\n";
}

// A request read and checked: the generation and the version served.
struct Prepared {
  service::TextGeneration generation;
  std::string version;
};

Result<Prepared> Prepare(InferenceService* service, const HttpRequest& req) {
  MG_ASSIGN_OR_RETURN(json body, ParseJsonObjectBody(req.body));
  MG_ASSIGN_OR_RETURN(ModelStatus status,
                      service::FindGeneratingModel(*service, req.Capture(0), req.Capture(1)));
  MG_ASSIGN_OR_RETURN(service::TextGeneration generation,
                      service::TextGenerationFromJson(req.Capture(0), req.Capture(1), body));
  return Prepared{std::move(generation), status.version};
}

HttpReply Generate(InferenceService* service, const HttpRequest& req) {
  auto prepared = Prepare(service, req);
  if (!prepared.ok()) return ErrorReply(prepared.status());
  const std::string id = prepared->generation.request.id;
  auto r = service->Generate(std::move(prepared->generation.request));
  if (!r.ok()) return ErrorReply(r.status());
  return JsonReply(200, Answer(req.Capture(0), prepared->version, id, r->rows));
}

// Between a generation (its pieces come on grid threads) and the stream
// thread that writes them, so that a slow client never holds a grid thread.
// Memory is bounded by the generation's own length.
struct Feed {
  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::string> events;  // not written yet
  bool ended = false;              // the generation called done
  Status error = Status::Ok();     // how it ended
  bool gone = false;               // nobody will write: stop generating

  // Marks the feed abandoned when the last holder of the stream function
  // lets it go: after it ran, or when the server dropped it unrun (HEAD,
  // too many streams, stopping).
  class Guard {
   public:
    explicit Guard(std::shared_ptr<Feed> feed) : feed_(std::move(feed)) {}
    Guard(const Guard&) = delete;
    Guard& operator=(const Guard&) = delete;
    ~Guard() {
      std::lock_guard<std::mutex> lock(feed_->mu);
      feed_->gone = true;
    }

   private:
    std::shared_ptr<Feed> feed_;
  };
};

// Writes the feed's events until the generation ends or the client goes.
void Drain(Feed& feed, const BodyWriter& write) {
  for (;;) {
    std::deque<std::string> batch;
    bool ended = false;
    Status error = Status::Ok();
    {
      std::unique_lock<std::mutex> lock(feed.mu);
      feed.cv.wait(lock, [&] { return !feed.events.empty() || feed.ended; });
      batch.swap(feed.events);
      ended = feed.ended;
      error = feed.error;
    }
    for (const std::string& e : batch) {
      if (!write(e)) {
        std::lock_guard<std::mutex> lock(feed.mu);
        feed.gone = true;
        return;
      }
    }
    if (ended) {
      if (!error.ok()) write(Event(json{{"error", error.message()}}));
      return;
    }
  }
}

HttpReply GenerateStream(InferenceService* service, const HttpRequest& req) {
  auto prepared = Prepare(service, req);
  if (!prepared.ok()) return ErrorReply(prepared.status());
  auto feed = std::make_shared<Feed>();
  GenerationPieces pieces =
      [feed, model = req.Capture(0), version = prepared->version,
       id = prepared->generation.request.id](const std::vector<GeneratedRow>& added) {
        const bool news = std::any_of(added.begin(), added.end(), [](const GeneratedRow& r) {
          return !r.text.empty() || !r.ids.empty() || !r.finish_reason.empty();
        });
        std::lock_guard<std::mutex> lock(feed->mu);
        if (feed->gone) return false;
        if (news) feed->events.push_back(Event(Answer(model, version, id, added)));
        feed->cv.notify_all();
        return true;
      };
  service->GenerateAsync(std::move(prepared->generation.request), std::move(pieces),
                         [feed](Result<GenerateResponse> r) {
                           std::lock_guard<std::mutex> lock(feed->mu);
                           feed->ended = true;
                           if (!r.ok()) feed->error = r.status();
                           feed->cv.notify_all();
                         });
  // The status line is chosen here: an error before the first piece (a bad
  // parameter the backend refuses, a prompt too long) is an error answer.
  {
    std::unique_lock<std::mutex> lock(feed->mu);
    feed->cv.wait(lock, [&] { return !feed->events.empty() || feed->ended; });
    if (feed->events.empty() && !feed->error.ok()) return ErrorReply(feed->error);
  }
  HttpReply reply;
  reply.content_type = "text/event-stream; charset=utf-8";
  reply.headers.push_back({"Cache-Control", "no-cache"});
  reply.stream = [feed, guard = std::make_shared<Feed::Guard>(feed)](const BodyWriter& write) {
    (void)guard;  // held for its destructor
    Drain(*feed, write);
  };
  return reply;
}

}  // namespace

std::vector<Route> GenerateRoutes(InferenceService* service) {
  return {{"POST", std::string(kModelPath) + "/generate",
           [service](const HttpRequest& r) { return Generate(service, r); }},
          {"POST", std::string(kModelPath) + "/generate_stream",
           [service](const HttpRequest& r) { return GenerateStream(service, r); }}};
}

}  // namespace modelgrid::server
