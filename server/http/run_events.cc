#include "server/http/run_events.h"

#include <optional>
#include <utility>

#include "domain/run.h"
#include "server/http/problem.h"
#include "server/json_codec.h"

namespace lab::server {
namespace {

using Json = nlohmann::json;

std::string Sse(const std::string& event, const Json& data,
                std::optional<std::int64_t> id = std::nullopt) {
  std::string out;
  if (id) out += "id: " + std::to_string(*id) + "\n";
  out += "event: " + event + "\ndata: " + JsonBody(data) + "\n\n";
  return out;
}

class RunEventStream : public EventStream {
 public:
  // `open` counts this stream from its admission (Api::RunEvents) until it is destroyed.
  RunEventStream(RunStore& store, std::string id, std::int64_t after_seq,
                 std::shared_ptr<std::atomic<int>> open)
      : store_(store), id_(std::move(id)), last_seq_(after_seq), open_(std::move(open)) {}
  ~RunEventStream() override { open_->fetch_sub(1); }
  RunEventStream(const RunEventStream&) = delete;
  RunEventStream& operator=(const RunEventStream&) = delete;

  std::string Poll(bool& finished) override {
    std::string out;
    // Read the run first: steps written before a terminal state are then all in the batch below.
    auto run = store_.Get(id_);
    if (!run.ok() || !run->has_value()) {
      finished = true;
      return Sse("error", {{"detail", "the run is no longer readable"}});
    }
    const RunRecord& r = **run;
    for (;;) {
      auto steps = store_.Steps(id_, last_seq_, 500);
      if (!steps.ok() || steps->empty()) break;
      for (const auto& s : *steps) {
        out += Sse("step", {{"seq", s.seq}, {"at", s.at}, {"message", s.message}}, s.seq);
        last_seq_ = s.seq;
      }
      if (steps->size() < 500) break;
    }
    if (r.progress != last_progress_ || r.progress_step != last_step_) {
      last_progress_ = r.progress;
      last_step_ = r.progress_step;
      out += Sse("progress", {{"percent", r.progress}, {"step", r.progress_step}});
    }
    std::string state(domain::ToString(r.state));
    if (state != last_state_) {
      last_state_ = state;
      out +=
          Sse("state",
              {{"state", state},
               {"verdict", r.verdict ? Json(std::string(domain::ToString(*r.verdict))) : Json()}});
    }
    if (domain::IsTerminal(r.state)) {
      auto all = store_.Steps(id_, 0, 100000);
      out += Sse("end", RunToJson(r, all.ok() ? &*all : nullptr));
      finished = true;
    } else if (out.empty() && ++idle_polls_ % 75 == 0) {
      out = ": keep-alive\n\n";  // keeps proxies and our own idle timeout from closing the stream
    }
    return out;
  }

 private:
  RunStore& store_;
  std::string id_;
  std::int64_t last_seq_;
  double last_progress_ = -1;
  std::string last_step_ = "\x01";
  std::string last_state_;
  int idle_polls_ = 0;
  std::shared_ptr<std::atomic<int>> open_;
};

}  // namespace

std::shared_ptr<EventStream> MakeRunEventStream(RunStore& store, std::string id,
                                                std::int64_t after_seq,
                                                std::shared_ptr<std::atomic<int>> open) {
  return std::make_shared<RunEventStream>(store, std::move(id), after_seq, std::move(open));
}

}  // namespace lab::server
