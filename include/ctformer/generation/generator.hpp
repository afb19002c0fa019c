// The generator: many requests in, tokens and text out, with continuous batching over a paged KV
// cache. Each step() admits waiting requests as cache space allows, runs one forward pass that
// mixes the prefill of new requests with one decode token of every running one, samples each
// request's next token with its own parameters, and reports what each request produced.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <numeric>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "ctformer/core/error.hpp"
#include "ctformer/generation/generation_params.hpp"
#include "ctformer/generation/token_biases.hpp"
#include "ctformer/models/gpt2.hpp"
#include "ctformer/ops/log_probs.hpp"
#include "ctformer/ops/sampling.hpp"
#include "ctformer/tokenizer/gpt2_tokenizer.hpp"
#include "ctformer/tokenizer/streaming_decoder.hpp"

namespace ctformer {

using RequestId = std::uint64_t;

enum class FinishReason {
  eos,          // the model produced end-of-text (kept in tokens, not in text)
  stop_string,  // the text reached one of the stop strings (the text ends with it)
  length,       // max_new_tokens, max_length or the model's context
  cancelled,
};

constexpr std::string_view to_string(FinishReason r) {
  switch (r) {
    case FinishReason::eos:
      return "eos";
    case FinishReason::stop_string:
      return "stop_string";
    case FinishReason::length:
      return "length";
    case FinishReason::cancelled:
      return "cancelled";
  }
  return "?";
}

// What a step produced for one request: a token with its text (never a partial UTF-8 character;
// held back while it could be the start of a stop string), and the reason when it finished.
struct TokenEvent {
  RequestId request = 0;
  std::optional<std::int32_t> token;  // empty for a request cancelled before it produced one
  std::string text;
  std::optional<FinishReason> finished;
  std::optional<TokenLogprobs> logprobs;       // the token's, when the request asks
  std::vector<TokenLogprobs> prompt_logprobs;  // in the request's first event, when it asks
};

struct Request {
  std::vector<std::int32_t> prompt;  // token ids; if empty, `text` is encoded with the tokenizer
  std::string text;
  GenerationParams params;
  std::function<void(const TokenEvent&)> on_event;  // streaming; called from step()
};

struct Result {
  RequestId id = 0;
  std::vector<std::int32_t> prompt;
  std::vector<std::int32_t> tokens;  // generated ids
  std::string text;                  // generated text (empty without a tokenizer)
  FinishReason finish_reason = FinishReason::length;
  std::vector<TokenLogprobs> logprobs;         // one per generated token, when asked
  std::vector<TokenLogprobs> prompt_logprobs;  // one per prompt token after the first, when asked
  std::uint64_t seed = 0;                      // replays a sampled request exactly
  double ttft_ms = 0;                          // submit to first token
  std::vector<double> token_times_ms;          // submit to each token
};

struct GeneratorOptions {
  std::int64_t kv_cache_bytes = std::int64_t(1) << 30;  // KV cache budget, allocated once
  std::int64_t kv_block_size = 16;                      // tokens per cache block
  std::int64_t max_batch = 64;                          // sequences in one step
  std::int64_t max_step_tokens = 4096;       // tokens in one step; a longer prompt runs alone
  std::optional<std::int32_t> eos_token_id;  // the model's config when absent
};

template <class Model>
class Generator {
  using Clock = std::chrono::steady_clock;

 public:
  // `tokenizer` (optional) gives requests text in and out; it must outlive the generator.
  Generator(Model& model, GeneratorOptions options = {}, const Gpt2Tokenizer* tokenizer = nullptr)
      : model_(model),
        options_(options),
        tokenizer_(tokenizer),
        eos_(options.eos_token_id.value_or(model.config().eos_token_id)),
        cache_(make_cache(model, options)) {}

  // What submit() checks before it queues: the parameters, the prompt's length and ids (encoding
  // `text` when there are no ids). Reads only the model's config and the tokenizer, so other
  // threads may call it while this generator steps (GeneratorThread checks each request on its
  // caller's thread). Throws InputError naming the bad value.
  void prepare(Request& request) const {
    request.params.validate();
    if (request.prompt.empty()) {
      if (!tokenizer_)
        throw InputError("request has no prompt ids, and no tokenizer to encode text");
      request.prompt = tokenizer_->encode(request.text);
    }
    const Gpt2Config& c = model_.config();
    if (request.prompt.empty())
      throw InputError("request's prompt is empty; GPT-2 needs at least one token to condition on");
    if (std::int64_t(request.prompt.size()) > c.n_positions)
      throw InputError("prompt of " + std::to_string(request.prompt.size()) +
                       " tokens is longer than the model's context (n_positions " +
                       std::to_string(c.n_positions) + "); shorten it");
    for (const std::int32_t t : request.prompt)
      if (t < 0 || t >= c.vocab_size)
        throw InputError("prompt token id " + std::to_string(t) +
                         " is outside the vocabulary (vocab_size " + std::to_string(c.vocab_size) +
                         ")");
    if (!request.params.stop_strings.empty() && !tokenizer_)
      throw InputError("stop strings need a tokenizer to decode the generated text");
    for (const auto& [token, bias] : request.params.logit_bias)
      if (token >= c.vocab_size)
        throw InputError("generation parameter logit_bias names token " + std::to_string(token) +
                         ", outside the vocabulary (vocab_size " + std::to_string(c.vocab_size) +
                         ")");
    for (const auto& [name, count] : {std::pair{"logprobs", request.params.logprobs},
                                      std::pair{"prompt_logprobs", request.params.prompt_logprobs}})
      if (count && *count > c.vocab_size)
        throw InputError(std::string("generation parameter ") + name + " " +
                         std::to_string(*count) + " is more tokens than the vocabulary has (" +
                         std::to_string(c.vocab_size) + ")");
  }

  // Queues a request; throws InputError (and queues nothing) if it cannot be served.
  RequestId submit(Request request) {
    prepare(request);
    const Gpt2Config& c = model_.config();
    Live s;
    s.id = next_id_++;
    s.budget = request.params.token_budget(std::int64_t(request.prompt.size()), c.n_positions);
    s.seed = request.params.seed.value_or(random_seed());
    s.tokens = request.prompt;
    s.prompt_length = s.tokens.size();
    s.request = std::move(request);
    s.submitted = Clock::now();
    if (tokenizer_) s.decoder.emplace(*tokenizer_);
    waiting_.push_back(std::move(s));
    return waiting_.back().id;
  }

  // The request stops at the next step; its blocks return to the pool then.
  void cancel(RequestId id) {
    for (auto* queue : {&waiting_, &running_})
      for (Live& s : *queue)
        if (s.id == id) s.cancel_requested = true;
  }

  bool idle() const { return waiting_.empty() && running_.empty(); }
  std::size_t waiting() const { return waiting_.size(); }
  std::size_t running() const { return running_.size(); }
  std::int64_t free_kv_blocks() const { return cache_.free_blocks(); }
  std::int64_t kv_blocks() const { return cache_.num_blocks(); }
  std::uint64_t preemptions() const { return preemptions_; }

  // One scheduling iteration and at most one forward pass. Returns what it produced.
  std::vector<TokenEvent> step() {
    std::vector<TokenEvent> events;
    finish_cancelled(events);
    make_room_for_decode();
    admit(events);
    if (!running_.empty()) forward_and_sample(events);
    sweep_finished();
    return events;
  }

  // Runs until every request has finished; returns the results of all requests finished since the
  // last call, in submission order.
  std::vector<Result> run() {
    while (!idle()) step();
    return take_results();
  }

  std::vector<Result> take_results() {
    std::vector<Result> out;
    for (auto& [id, r] : finished_) out.push_back(std::move(r));
    finished_.clear();
    return out;
  }

  // The iterator form of streaming: `for (const TokenEvent& e : generator.events())` steps the
  // generator as needed and ends when it is idle.
  class EventRange {
   public:
    struct Sentinel {};
    class Iterator {
     public:
      using value_type = TokenEvent;
      using difference_type = std::ptrdiff_t;
      explicit Iterator(Generator* g) : g_(g) { fill(); }
      const TokenEvent& operator*() const { return buffer_.front(); }
      Iterator& operator++() {
        buffer_.pop_front();
        fill();
        return *this;
      }
      void operator++(int) { ++*this; }
      bool operator==(Sentinel) const { return buffer_.empty(); }

     private:
      void fill() {
        while (buffer_.empty() && !g_->idle())
          for (TokenEvent& e : g_->step()) buffer_.push_back(std::move(e));
      }
      Generator* g_;
      std::deque<TokenEvent> buffer_;
    };
    explicit EventRange(Generator* g) : g_(g) {}
    Iterator begin() { return Iterator(g_); }
    Sentinel end() { return {}; }

   private:
    Generator* g_;
  };
  EventRange events() { return EventRange(this); }

 private:
  using Cache = typename Model::Cache;

  struct Live {
    RequestId id = 0;
    Request request;
    std::vector<std::int32_t> tokens;  // prompt, then generated
    std::size_t prompt_length = 0;
    std::int64_t budget = 0;  // tokens it may generate
    std::uint64_t seed = 0;
    std::optional<std::int32_t> sequence;  // its KV cache sequence while running
    std::size_t cached = 0;                // tokens already in the cache
    std::optional<Utf8StreamDecoder> decoder;
    std::string text;          // generated text so far
    std::size_t streamed = 0;  // bytes of `text` already reported
    Clock::time_point submitted;
    std::vector<double> token_times_ms;
    std::vector<TokenLogprobs> logprobs, prompt_logprobs;
    bool cancel_requested = false;
    std::optional<FinishReason> finished;

    std::size_t generated() const { return tokens.size() - prompt_length; }
    // Its next step runs the prompt for the first time and must score it.
    bool scores_prompt() const {
      return request.params.prompt_logprobs && prompt_length > 1 && prompt_logprobs.empty() &&
             generated() == 0;
    }
  };

  static Cache make_cache(const Model& model, const GeneratorOptions& o) {
    const Gpt2Config& c = model.config();
    if (o.kv_block_size <= 0 || o.max_batch <= 0 || o.max_step_tokens <= 0)
      throw InputError("generator: kv_block_size, max_batch and max_step_tokens must be positive");
    const std::int64_t bytes_per_token =
        2 * c.n_layer * c.n_embd * std::int64_t(sizeof(typename Model::A));
    // The budget, but no more than max_batch sequences of the full context can use.
    const std::int64_t tokens =
        std::min(o.kv_cache_bytes / bytes_per_token, o.max_batch * c.n_positions);
    const std::int64_t blocks = tokens / o.kv_block_size;
    const std::int64_t needed = (c.n_positions + o.kv_block_size - 1) / o.kv_block_size;
    if (blocks < needed)
      throw InputError("generator: a KV cache of " + std::to_string(o.kv_cache_bytes) +
                       " bytes holds " + std::to_string(tokens) + " tokens (" +
                       std::to_string(bytes_per_token) +
                       " bytes each), less than one sequence of " + std::to_string(c.n_positions) +
                       " tokens; give it at least " +
                       std::to_string(needed * o.kv_block_size * bytes_per_token) + " bytes");
    return model.make_cache(blocks * o.kv_block_size, o.kv_block_size);
  }

  static std::uint64_t random_seed() {
    static std::random_device device;
    return (std::uint64_t(device()) << 32) | device();
  }

  double ms_since(Clock::time_point t) const {
    return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
  }

  // Reports an event to the request's callback and to step()'s caller. `scored`: the prompt was
  // scored in this step.
  void emit(Live& s, std::optional<std::int32_t> token, std::vector<TokenEvent>& events,
            bool scored = false) {
    std::optional<TokenLogprobs> logprobs;
    if (token && s.request.params.logprobs) logprobs = s.logprobs.back();
    events.push_back({s.id, token, flush_text(s), s.finished, std::move(logprobs),
                      scored ? s.prompt_logprobs : std::vector<TokenLogprobs>{}});
    if (s.request.on_event) s.request.on_event(events.back());
  }

  // Ends a request that produced no token this step, returning its blocks to the pool.
  void finish(Live& s, FinishReason reason, std::vector<TokenEvent>& events) {
    s.finished = reason;
    if (s.sequence) {
      cache_.release(*s.sequence);
      s.sequence.reset();
    }
    if (s.decoder) s.text += s.decoder->finish();
    emit(s, std::nullopt, events);
  }

  void finish_cancelled(std::vector<TokenEvent>& events) {
    for (auto* queue : {&running_, &waiting_})
      for (Live& s : *queue)
        if (s.cancel_requested && !s.finished) finish(s, FinishReason::cancelled, events);
    sweep_finished();
  }

  // Each running sequence needs a slot for one more token; when the pool cannot give every one a
  // block, the most recently admitted are preempted (their cache is dropped and they queue again at
  // the front, keeping what they generated, to be recomputed when room frees up).
  void make_room_for_decode() {
    auto needed = [&] {
      std::int64_t n = 0;
      for (const Live& s : running_) n += cache_.blocks_needed(*s.sequence, 1);
      return n;
    };
    while (running_.size() > 1 && needed() > cache_.free_blocks()) {
      Live s = std::move(running_.back());
      running_.pop_back();
      cache_.release(*s.sequence);
      s.sequence.reset();
      s.cached = 0;
      waiting_.push_front(std::move(s));
      ++preemptions_;
    }
  }

  void admit(std::vector<TokenEvent>& events) {
    std::int64_t step_tokens = std::int64_t(running_.size());
    std::int64_t available = cache_.free_blocks();  // less what this step already claims
    for (const Live& s : running_) available -= cache_.blocks_needed(*s.sequence, 1);
    while (!waiting_.empty() && std::int64_t(running_.size()) < options_.max_batch) {
      Live& s = waiting_.front();
      // Nothing to generate (the prompt fills it), and no prompt to score.
      if (s.budget <= std::int64_t(s.generated()) && !s.scores_prompt()) {
        finish(s, FinishReason::length, events);
        finished_[s.id] = to_result(s);
        waiting_.pop_front();
        continue;
      }
      const auto length = std::int64_t(s.tokens.size());
      if (step_tokens > 0 && step_tokens + length > options_.max_step_tokens) break;
      if (cache_.blocks_for(length) > available) break;
      s.sequence = cache_.add_sequence();
      s.cached = 0;
      step_tokens += length;
      available -= cache_.blocks_for(length);
      running_.push_back(std::move(s));
      waiting_.pop_front();
    }
  }

  void forward_and_sample(std::vector<TokenEvent>& events) {
    // Sequences whose prompt is scored (every token's logits) go last, so that the rows before
    // theirs hold one sequence each, as one call of Sample needs.
    order_.clear();
    for (const bool scoring : {false, true})
      for (std::size_t i = 0; i < running_.size(); ++i)
        if (running_[i].scores_prompt() == scoring) order_.push_back(i);
    steps_.clear();
    rows_.clear();
    if (biases_.size() < order_.size()) biases_.resize(order_.size());
    std::size_t sampled_together = 0;
    for (const std::size_t i : order_) {
      Live& s = running_[i];
      const bool scoring = s.scores_prompt();
      steps_.push_back({*s.sequence, std::span<const std::int32_t>(s.tokens).subspan(s.cached),
                        scoring ? LogitsFor::every_token : LogitsFor::last_token});
      sampled_together += !scoring;
      const GenerationParams& p = s.request.params;
      std::vector<ops::TokenBias>& biases = biases_[rows_.size()];
      token_biases(p, s.tokens, s.prompt_length, eos_, biases);
      rows_.push_back({p.greedy() ? 0.0f : p.temperature, p.top_k, p.top_p, p.repetition_penalty,
                       s.seed, std::uint64_t(s.generated()), s.tokens, p.min_p, biases});
    }
    using Backend = typename Model::backend;
    using A = typename Model::A;
    const auto logits = model_.forward(steps_, cache_);
    next_.resize(steps_.size());
    last_rows_.resize(steps_.size());
    const std::span<const ops::SamplingRow> rows(rows_);
    const std::span<std::int32_t> next(next_);
    std::iota(last_rows_.begin(), last_rows_.begin() + std::ptrdiff_t(sampled_together), 0);
    if (sampled_together > 0)
      ops::Sample<Backend>::run(logits.first_rows(std::int64_t(sampled_together)),
                                rows.first(sampled_together), next.first(sampled_together));
    for (std::size_t j = sampled_together, row = sampled_together; j < steps_.size(); ++j) {
      row += steps_[j].tokens.size();
      last_rows_[j] = std::int64_t(row) - 1;
      ops::Sample<Backend>::run(MatrixView<const A>{logits.row(last_rows_[j]), 1, logits.cols},
                                rows.subspan(j, 1), next.subspan(j, 1));
    }
    score(logits);

    for (std::size_t j = 0; j < steps_.size(); ++j) {
      Live& s = running_[order_[j]];
      const bool scored = steps_[j].logits == LogitsFor::every_token;
      s.cached = s.tokens.size();
      if (std::int64_t(s.generated()) >= s.budget) {  // it only scored its prompt
        s.finished = FinishReason::length;
        cache_.release(*s.sequence);
        s.sequence.reset();
        emit(s, std::nullopt, events, scored);
        continue;
      }
      const std::int32_t token = next_[j];
      s.tokens.push_back(token);
      s.token_times_ms.push_back(ms_since(s.submitted));
      std::optional<FinishReason> reason;
      if (s.request.params.stop_at_eos && token == eos_) {
        reason = FinishReason::eos;
      } else {
        if (s.decoder) s.text += s.decoder->push(token);
        if (cut_at_stop_string(s)) reason = FinishReason::stop_string;
      }
      if (!reason && std::int64_t(s.generated()) >= s.budget) reason = FinishReason::length;
      if (reason) {
        if (s.decoder && *reason != FinishReason::stop_string) s.text += s.decoder->finish();
        s.finished = reason;
        cache_.release(*s.sequence);
        s.sequence.reset();
      }
      emit(s, token, events, scored);
    }
  }

  // The log-probabilities this step's requests ask for: each sampled token's, and each scored
  // prompt token's after the first. Called before the tokens are appended.
  template <class Logits>
  void score(const Logits& logits) {
    queries_.clear();
    for (std::size_t j = 0, first_row = 0; j < steps_.size(); ++j) {
      const Live& s = running_[order_[j]];
      const GenerationParams& p = s.request.params;
      if (steps_[j].logits == LogitsFor::every_token)
        for (std::size_t t = 1; t < s.prompt_length; ++t)  // row t-1 predicts token t
          queries_.push_back({std::int64_t(first_row + t - 1), s.tokens[t], *p.prompt_logprobs});
      if (p.logprobs && std::int64_t(s.generated()) < s.budget)
        queries_.push_back({last_rows_[j], next_[j], *p.logprobs});
      first_row = std::size_t(last_rows_[j]) + 1;
    }
    if (queries_.empty()) return;
    scores_.resize(queries_.size());
    ops::Logprobs<typename Model::backend>::run(logits, queries_, scores_);
    std::size_t k = 0;
    for (std::size_t j = 0; j < steps_.size(); ++j) {
      Live& s = running_[order_[j]];
      if (steps_[j].logits == LogitsFor::every_token)
        for (std::size_t t = 1; t < s.prompt_length; ++t)
          s.prompt_logprobs.push_back(std::move(scores_[k++]));
      if (s.request.params.logprobs && std::int64_t(s.generated()) < s.budget)
        s.logprobs.push_back(std::move(scores_[k++]));
    }
  }

  // If the text now contains a stop string, cuts it right after the first one and returns true.
  bool cut_at_stop_string(Live& s) {
    const auto& stops = s.request.params.stop_strings;
    if (stops.empty()) return false;
    std::size_t cut = std::string::npos;
    for (const std::string& stop : stops) {
      // Only the new text, and the stop string's length before it, can hold a new match.
      const std::size_t from = s.streamed > stop.size() ? s.streamed - stop.size() : 0;
      const std::size_t at = s.text.find(stop, from);
      if (at != std::string::npos) cut = std::min(cut, at + stop.size());
    }
    if (cut == std::string::npos) return false;
    s.text.resize(cut);
    return true;
  }

  // The text not reported yet, except a tail that could still grow into a stop string.
  std::string flush_text(Live& s) {
    std::size_t end = s.text.size();
    if (!s.finished)
      for (const std::string& stop : s.request.params.stop_strings)
        for (std::size_t n = std::min(stop.size() - 1, s.text.size()); n > 0; --n)
          if (s.text.compare(s.text.size() - n, n, stop, 0, n) == 0) {
            end = std::min(end, s.text.size() - n);
            break;
          }
    if (end <= s.streamed) return {};
    std::string delta = s.text.substr(s.streamed, end - s.streamed);
    s.streamed = end;
    return delta;
  }

  Result to_result(Live& s) {
    Result r;
    r.id = s.id;
    r.prompt.assign(s.tokens.begin(), s.tokens.begin() + std::ptrdiff_t(s.prompt_length));
    r.tokens.assign(s.tokens.begin() + std::ptrdiff_t(s.prompt_length), s.tokens.end());
    r.text = std::move(s.text);
    r.finish_reason = *s.finished;
    r.logprobs = std::move(s.logprobs);
    r.prompt_logprobs = std::move(s.prompt_logprobs);
    r.seed = s.seed;
    r.token_times_ms = std::move(s.token_times_ms);
    r.ttft_ms = r.token_times_ms.empty() ? 0.0 : r.token_times_ms.front();
    return r;
  }

  void sweep_finished() {
    for (auto* queue : {&running_, &waiting_})
      for (auto it = queue->begin(); it != queue->end();) {
        if (it->finished) {
          finished_[it->id] = to_result(*it);
          it = queue->erase(it);
        } else {
          ++it;
        }
      }
  }

  Model& model_;
  GeneratorOptions options_;
  const Gpt2Tokenizer* tokenizer_;
  std::int32_t eos_;
  Cache cache_;
  RequestId next_id_ = 1;
  std::deque<Live> waiting_;
  std::deque<Live> running_;  // in admission order
  std::map<RequestId, Result> finished_;
  std::uint64_t preemptions_ = 0;
  // Reused every step; all but order_ are in step order, running_[order_[j]] is step j's.
  std::vector<std::size_t> order_;
  std::vector<SequenceStep> steps_;
  std::vector<ops::SamplingRow> rows_;
  std::vector<std::vector<ops::TokenBias>> biases_;  // rows_[j].biases
  std::vector<std::int32_t> next_;
  std::vector<std::int64_t> last_rows_;  // each step's row of logits to sample
  std::vector<ops::LogprobQuery> queries_;
  std::vector<TokenLogprobs> scores_;
};

}  // namespace ctformer
