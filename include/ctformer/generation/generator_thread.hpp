// A Generator on a thread of its own, for callers on many threads (a server's connections).
// submit() checks a request on the caller's thread and queues it; the generator's thread takes what
// is queued between steps, so a new request joins the running batch at the next step (continuous
// batching across callers), and hands each request's events to its RequestStream.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "ctformer/core/error.hpp"
#include "ctformer/generation/generator.hpp"

namespace ctformer {

// submit() found `max_waiting` requests already waiting for a place in the batch: retry later (a
// server answers 503).
class OverloadedError : public Error {
 public:
  using Error::Error;
};

// The generator's thread stopped after a step failed (a CUDA error, memory): every request after
// it is refused with the step's error.
class GeneratorStoppedError : public Error {
 public:
  using Error::Error;
};

// Lets one thread wait for whichever of several streams has news: a server streaming the n choices
// of one request side by side. Give it to submit() for each of them; version() changes whenever one
// of them gets an event, its result or an error.
class StreamGroup {
 public:
  std::uint64_t version() const {
    std::lock_guard lock(mutex_);
    return version_;
  }

  // Waits until version() is no longer `seen`: read version(), poll() every stream, and wait
  // only if none had anything, so that no news is missed between the two.
  void wait_past(std::uint64_t seen) const {
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [&] { return version_ != seen; });
  }

  void bump() {
    std::lock_guard lock(mutex_);
    ++version_;
    changed_.notify_all();
  }

 private:
  mutable std::mutex mutex_;
  mutable std::condition_variable changed_;
  std::uint64_t version_ = 0;
};

namespace detail {

// What a RequestStream and the generator's thread share for one request.
struct StreamState {
  std::mutex mutex;
  std::condition_variable changed;
  std::deque<TokenEvent> events;
  std::optional<Result> result;
  std::exception_ptr error;
  std::atomic<bool> cancel{false};
  std::shared_ptr<StreamGroup> group;  // told of each change too, when there is one

  // Call with `mutex` held, after changing what it guards.
  void notify() {
    changed.notify_all();
    if (group) group->bump();
  }
};

// The queue between callers and the generator's thread, and how callers wake it.
struct Mailbox {
  std::mutex mutex;
  std::condition_variable wake;
  std::deque<std::pair<Request, std::shared_ptr<StreamState>>> queued;
  bool cancels = false;  // some stream asked to cancel since the thread last looked
  bool stopping = false;
  std::string failure;  // the step's error once the thread stopped after one
};

}  // namespace detail

// One request's events, in order, as the generator produces them. Destroying the stream before the
// request finished cancels it. A stream may outlive its GeneratorThread (it then ends cancelled).
class RequestStream {
 public:
  RequestStream(std::shared_ptr<detail::StreamState> state,
                std::shared_ptr<detail::Mailbox> mailbox)
      : state_(std::move(state)), mailbox_(std::move(mailbox)) {}
  RequestStream(const RequestStream&) = delete;
  RequestStream& operator=(const RequestStream&) = delete;
  ~RequestStream() {
    if (!finished()) cancel();
  }

  // The next event, waiting for it; empty after the last one (the event with `finished` set).
  // Throws GeneratorStoppedError if a step failed before the request finished.
  std::optional<TokenEvent> next() {
    std::unique_lock lock(state_->mutex);
    state_->changed.wait(
        lock, [&] { return !state_->events.empty() || state_->result || state_->error; });
    return take_event();
  }

  // The next event if one is already here, without waiting; empty otherwise (after the last event,
  // the one with `finished` set, always). Throws GeneratorStoppedError as next() does.
  std::optional<TokenEvent> poll() {
    std::lock_guard lock(state_->mutex);
    return take_event();
  }

  // Waits for the request to finish; its whole result (the events need not have been read).
  Result result() {
    std::unique_lock lock(state_->mutex);
    state_->changed.wait(lock, [&] { return state_->result || state_->error; });
    if (state_->error) std::rethrow_exception(state_->error);
    return *state_->result;
  }

  bool finished() const {
    std::lock_guard lock(state_->mutex);
    return state_->result || state_->error;
  }

  // The request stops at the generator's next step, with FinishReason::cancelled.
  void cancel() {
    state_->cancel = true;
    std::lock_guard lock(mailbox_->mutex);
    mailbox_->cancels = true;
    mailbox_->wake.notify_one();
  }

 private:
  // The first event not yet read, or the step's error; with state_->mutex held.
  std::optional<TokenEvent> take_event() {
    if (!state_->events.empty()) {
      TokenEvent e = std::move(state_->events.front());
      state_->events.pop_front();
      return e;
    }
    if (state_->error) std::rethrow_exception(state_->error);
    return std::nullopt;
  }

  std::shared_ptr<detail::StreamState> state_;
  std::shared_ptr<detail::Mailbox> mailbox_;
};

// Counters the generator's thread keeps up to date after every step (for /metrics and logs).
struct GeneratorThreadStats {
  std::int64_t running = 0;
  std::int64_t waiting = 0;  // queued by callers or waiting in the generator for a place
  std::int64_t kv_blocks_free = 0;
  std::int64_t kv_blocks = 0;
  std::uint64_t steps = 0;
  std::uint64_t requests_finished = 0;
  std::uint64_t requests_cancelled = 0;
  std::uint64_t prompt_tokens = 0;
  std::uint64_t generated_tokens = 0;
  std::uint64_t preemptions = 0;
};

template <class Model>
class GeneratorThread {
 public:
  // The model and tokenizer must outlive this object. At most `max_waiting` requests wait for a
  // place in the batch; submit() refuses more with OverloadedError.
  GeneratorThread(Model& model, GeneratorOptions options, const Gpt2Tokenizer* tokenizer,
                  std::int64_t max_waiting = 1024)
      : generator_(model, options, tokenizer),
        max_waiting_(max_waiting),
        mailbox_(std::make_shared<detail::Mailbox>()) {
    if (max_waiting <= 0) throw InputError("GeneratorThread: max_waiting must be positive");
    publish_stats();
    thread_ = std::thread([this] { loop(); });
  }
  GeneratorThread(const GeneratorThread&) = delete;
  GeneratorThread& operator=(const GeneratorThread&) = delete;

  // Cancels what is still queued or running, lets the generator finish those as cancelled, joins.
  ~GeneratorThread() {
    {
      std::lock_guard lock(mailbox_->mutex);
      mailbox_->stopping = true;
      mailbox_->wake.notify_one();
    }
    thread_.join();
  }

  // Checks the request on this thread (InputError names what is wrong; OverloadedError when too
  // many wait; GeneratorStoppedError after a failed step) and queues it. `group`, if given, is
  // told of each of its events too.
  std::unique_ptr<RequestStream> submit(Request request,
                                        std::shared_ptr<StreamGroup> group = nullptr) {
    generator_.prepare(request);
    auto state = std::make_shared<detail::StreamState>();
    state->group = std::move(group);
    std::lock_guard lock(mailbox_->mutex);
    if (!mailbox_->failure.empty())
      throw GeneratorStoppedError("the generator stopped after a failed step: " +
                                  mailbox_->failure);
    if (mailbox_->stopping) throw GeneratorStoppedError("the generator is shutting down");
    const std::int64_t waiting = std::int64_t(mailbox_->queued.size()) + generator_waiting_.load();
    if (waiting >= max_waiting_)
      throw OverloadedError("the batch is full and " + std::to_string(waiting) +
                            " requests wait for a place, the limit (max_waiting " +
                            std::to_string(max_waiting_) + "); retry later");
    mailbox_->queued.emplace_back(std::move(request), state);
    mailbox_->wake.notify_one();
    return std::make_unique<RequestStream>(std::move(state), mailbox_);
  }

  GeneratorThreadStats stats() const {
    std::lock_guard lock(stats_mutex_);
    GeneratorThreadStats s = stats_;
    std::lock_guard mailbox_lock(mailbox_->mutex);
    s.waiting = generator_waiting_ + std::int64_t(mailbox_->queued.size());
    return s;
  }

  // The step's error if the generator's thread stopped after one; empty while it runs.
  std::string failure() const {
    std::lock_guard lock(mailbox_->mutex);
    return mailbox_->failure;
  }

 private:
  using Queued = std::pair<Request, std::shared_ptr<detail::StreamState>>;

  void loop() {
    std::map<RequestId, std::shared_ptr<detail::StreamState>> live;
    for (;;) {
      std::deque<Queued> taken;
      bool stopping = false;
      {
        std::unique_lock lock(mailbox_->mutex);
        mailbox_->wake.wait(lock, [&] {
          return mailbox_->stopping || !mailbox_->queued.empty() || mailbox_->cancels ||
                 !generator_.idle();
        });
        taken.swap(mailbox_->queued);
        generator_waiting_ += std::int64_t(taken.size());  // until the step's stats replace it
        mailbox_->cancels = false;
        stopping = mailbox_->stopping;
      }
      try {
        for (auto& [request, state] : taken) {
          const RequestId id = generator_.submit(std::move(request));
          live.emplace(id, std::move(state));
        }
        for (auto& [id, state] : live)
          if (stopping || state->cancel) generator_.cancel(id);
        std::vector<TokenEvent> events = generator_.step();
        std::vector<Result> results = generator_.take_results();
        // The counters first, so that a caller handed its result sees them include it.
        {
          std::lock_guard lock(stats_mutex_);
          for (const Result& r : results) {
            ++stats_.requests_finished;
            stats_.requests_cancelled += r.finish_reason == FinishReason::cancelled;
            stats_.prompt_tokens += r.prompt.size();
            stats_.generated_tokens += r.tokens.size();
          }
          ++stats_.steps;
        }
        publish_stats();
        for (TokenEvent& e : events) {
          const auto it = live.find(e.request);
          if (it == live.end()) continue;
          std::lock_guard lock(it->second->mutex);
          it->second->events.push_back(std::move(e));
          it->second->notify();
        }
        for (Result& r : results) {
          const auto it = live.find(r.id);
          if (it == live.end()) continue;
          // Kept here until unlocked: a dropped stream's state is freed with its last owner.
          const std::shared_ptr<detail::StreamState> state = std::move(it->second);
          live.erase(it);
          std::lock_guard lock(state->mutex);
          state->result = std::move(r);
          state->notify();
        }
      } catch (const std::exception& e) {
        fail(e.what(), taken, live);
        return;
      }
      if (stopping && generator_.idle()) return;
    }
  }

  // A step threw: the generator's state is no longer trusted, so every request it held, and every
  // request queued after, ends with the error.
  void fail(const std::string& what, std::deque<Queued>& taken,
            std::map<RequestId, std::shared_ptr<detail::StreamState>>& live) {
    std::vector<std::shared_ptr<detail::StreamState>> states;
    for (auto& [id, state] : live) states.push_back(state);
    for (auto& [request, state] : taken)
      if (state) states.push_back(state);
    {
      std::lock_guard lock(mailbox_->mutex);
      mailbox_->failure = what;
      for (auto& [request, state] : mailbox_->queued) states.push_back(state);
      mailbox_->queued.clear();
    }
    const auto error = std::make_exception_ptr(
        GeneratorStoppedError("the generator stopped after a failed step: " + what));
    for (const auto& state : states) {
      std::lock_guard lock(state->mutex);
      state->error = error;
      state->notify();
    }
  }

  void publish_stats() {
    std::lock_guard lock(stats_mutex_);
    stats_.running = std::int64_t(generator_.running());
    stats_.kv_blocks_free = generator_.free_kv_blocks();
    stats_.kv_blocks = generator_.kv_blocks();
    stats_.preemptions = generator_.preemptions();
    generator_waiting_ = std::int64_t(generator_.waiting());  // stats() adds what callers queued
  }

  Generator<Model> generator_;  // used by the thread alone, but for prepare() (const, reads only)
  std::int64_t max_waiting_;
  std::shared_ptr<detail::Mailbox> mailbox_;
  std::atomic<std::int64_t> generator_waiting_{0};
  mutable std::mutex stats_mutex_;
  GeneratorThreadStats stats_;
  std::thread thread_;
};

}  // namespace ctformer
