// Soak test of the generator: many requests of random lengths and sampling parameters, some
// cancelled (before admission, while running, after finishing, twice, or by an unknown id), some
// invalid, served with continuous batching on a tiny model on the CPU, with a KV cache small enough
// that preemption happens. It checks that
//   - every request finishes exactly once, by the reason its parameters and cancellations allow
//     (none lost, none duplicated), with as many tokens as its events reported;
//   - an invalid request is refused and takes no id;
//   - every KV block returns to the pool;
//   - resident memory after the run is within a tolerance (5%) of that after the first 1,000
//     requests.
// and exits non-zero, naming each violation, otherwise. Figures: docs/reliability.md.
//
//   soak_bench [--model DIR] [--requests N] [--seed S] [--in-flight N] [--max-batch N]
//              [--kv-tokens N] [--block-size N] [--rss-tolerance F] [--threads N]
//
// --threads: Eigen's threads (default 1). A tiny model gains nothing from more, and on a machine
// that other work shares, OpenMP's waiting threads make each step many times slower.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <Eigen/Core>
#include <ctformer/ctformer.hpp>

namespace {

using namespace ctformer;

struct Options {
  std::string model = CTFORMER_SOURCE_DIR "/tests/data/models/gpt2-h16";
  std::int64_t requests = 10000;
  std::uint64_t seed = 1;
  std::int64_t in_flight = 96;  // requests submitted and not yet finished, at most
  std::int64_t max_batch = 32;
  std::int64_t kv_tokens = 1024;  // KV cache capacity: 8 full contexts of gpt2-h16, < max_batch
  std::int64_t block_size = 16;
  std::int64_t rss_checkpoint = 1000;  // requests finished when the reference RSS is taken
  double rss_tolerance = 0.05;
  std::int64_t threads = 1;
};

[[noreturn]] void usage(const char* argv0, const std::string& error) {
  std::fprintf(
      stderr,
      "%s%susage: %s [--model DIR] [--requests N] [--seed S] [--in-flight N] "
      "[--max-batch N] [--kv-tokens N] [--block-size N] [--rss-tolerance F] [--threads N]\n",
      error.c_str(), error.empty() ? "" : "\n", argv0);
  std::exit(2);
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "--help") usage(argv[0], "");
    if (i + 1 >= argc) usage(argv[0], "soak_bench: " + flag + " needs a value");
    const char* value = argv[++i];
    char* end = nullptr;
    auto integer = [&] {
      const long long v = std::strtoll(value, &end, 10);
      if (*end || v <= 0) usage(argv[0], "soak_bench: " + flag + " needs a positive integer");
      return static_cast<std::int64_t>(v);
    };
    if (flag == "--model")
      o.model = value;
    else if (flag == "--requests")
      o.requests = integer();
    else if (flag == "--seed")
      o.seed = static_cast<std::uint64_t>(integer());
    else if (flag == "--in-flight")
      o.in_flight = integer();
    else if (flag == "--max-batch")
      o.max_batch = integer();
    else if (flag == "--kv-tokens")
      o.kv_tokens = integer();
    else if (flag == "--block-size")
      o.block_size = integer();
    else if (flag == "--rss-checkpoint")
      o.rss_checkpoint = integer();
    else if (flag == "--threads")
      o.threads = integer();
    else if (flag == "--rss-tolerance") {
      o.rss_tolerance = std::strtod(value, &end);
      if (*end || !(o.rss_tolerance >= 0)) usage(argv[0], "soak_bench: bad --rss-tolerance");
    } else {
      usage(argv[0], "soak_bench: unknown option " + flag);
    }
  }
  return o;
}

// Resident set size in bytes (/proc/self/statm: size resident shared ...; in pages).
std::int64_t resident_bytes() {
  std::ifstream statm("/proc/self/statm");
  std::int64_t size = 0, resident = 0;
  statm >> size >> resident;
  return resident * static_cast<std::int64_t>(::sysconf(_SC_PAGESIZE));
}

double mib(std::int64_t bytes) {
  return static_cast<double>(bytes) / (1024.0 * 1024.0);
}

// What the soak knows about one request. Preallocated for all of them before the first RSS
// reading, so that the bench's own bookkeeping does not grow while memory is measured.
struct Track {
  RequestId id = 0;
  std::int32_t prompt_length = 0;
  std::int32_t budget = 0;  // tokens it may generate
  std::int32_t event_tokens = 0;
  std::int32_t callback_events = 0;
  std::int32_t step_events = 0;
  std::uint8_t finished_events = 0;
  FinishReason event_reason = FinishReason::length;
  bool stop_at_eos = true;
  bool cancel_asked = false;  // cancel() called before its finished event was seen
  bool has_callback = false;
  bool result_seen = false;
  std::vector<std::int32_t> banned;  // never generated, unless every token is banned
  bool all_banned = false;
  std::int64_t min_new_tokens = 0;  // no end-of-text before
};

class Soak {
 public:
  explicit Soak(const Options& o)
      : o_(o),
        rng_(o.seed),
        model_(GPT2<cpu, float>::from_directory(o.model)),
        generator_(model_, generator_options()),
        tracks_(static_cast<std::size_t>(o.requests)) {
    in_flight_.reserve(static_cast<std::size_t>(o.in_flight) + 1);
  }

  int run() {
    const auto start = std::chrono::steady_clock::now();
    const Gpt2Config& c = model_.config();
    std::printf("soak: model %s (vocab %lld, context %lld, %lld layers, n_embd %lld)\n",
                o_.model.c_str(), static_cast<long long>(c.vocab_size),
                static_cast<long long>(c.n_positions), static_cast<long long>(c.n_layer),
                static_cast<long long>(c.n_embd));
    std::printf(
        "soak: %lld requests, seed %llu, up to %lld in flight, max_batch %lld, KV cache "
        "%lld blocks of %lld tokens, %d thread(s)\n",
        static_cast<long long>(o_.requests), static_cast<unsigned long long>(o_.seed),
        static_cast<long long>(o_.in_flight), static_cast<long long>(o_.max_batch),
        static_cast<long long>(generator_.kv_blocks()), static_cast<long long>(o_.block_size),
        Eigen::nbThreads());
    std::fflush(stdout);
    const std::int64_t rss_start = resident_bytes();
    while (finished_ < o_.requests) {
      top_up();
      cancel_some();
      for (const TokenEvent& e : generator_.step()) on_event(e);
      ++steps_;
      check_pool();
      if (steps_ % 7 == 0 || generator_.idle()) take_results();
      if (generator_.idle() && submitted_ == o_.requests) take_results();
      if (rss_checkpoint_ == 0 && finished_ >= std::min(o_.rss_checkpoint, o_.requests))
        rss_checkpoint_ = resident_bytes();
      if (steps_ > 1000 * o_.requests) {
        fail("the generator made no progress in " + std::to_string(steps_) + " steps");
        break;
      }
    }
    take_results();
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const std::int64_t rss_end = resident_bytes();

    // Final checks: nothing left anywhere, every block back, every request finished once.
    if (!generator_.idle())
      fail("the generator is not idle at the end (" + std::to_string(generator_.waiting()) +
           " waiting, " + std::to_string(generator_.running()) + " running)");
    if (generator_.free_kv_blocks() != generator_.kv_blocks())
      fail(std::to_string(generator_.kv_blocks() - generator_.free_kv_blocks()) + " of " +
           std::to_string(generator_.kv_blocks()) + " KV blocks did not return to the pool");
    std::int64_t results = 0;
    for (const Track& t : tracks_) {
      results += t.result_seen;
      if (!t.result_seen) fail("request " + std::to_string(t.id) + " has no result (lost)");
      if (t.finished_events != 1)
        fail("request " + std::to_string(t.id) + " finished " + std::to_string(t.finished_events) +
             " times");
    }
    const double growth =
        static_cast<double>(rss_end - rss_checkpoint_) / static_cast<double>(rss_checkpoint_);
    if (growth > o_.rss_tolerance)
      fail("resident memory grew " + std::to_string(100 * growth) + "% after the first " +
           std::to_string(o_.rss_checkpoint) + " requests (tolerance " +
           std::to_string(100 * o_.rss_tolerance) + "%)");

    std::printf(
        "soak: %lld requests finished in %.1f s: %lld length, %lld eos, %lld cancelled "
        "(%lld cancels asked before finishing; %lld after, %lld twice, %lld of unknown "
        "ids: no effect)\n",
        static_cast<long long>(results), seconds, static_cast<long long>(by_length_),
        static_cast<long long>(by_eos_), static_cast<long long>(by_cancel_),
        static_cast<long long>(cancels_before_), static_cast<long long>(cancels_after_),
        static_cast<long long>(cancels_twice_), static_cast<long long>(cancels_unknown_));
    std::printf(
        "soak: %lld tokens generated (%.0f tokens/s), %lld steps, %lld preemptions, %lld "
        "invalid requests refused, %lld requests streamed by callback\n",
        static_cast<long long>(tokens_), static_cast<double>(tokens_) / seconds,
        static_cast<long long>(steps_), static_cast<long long>(generator_.preemptions()),
        static_cast<long long>(invalid_refused_), static_cast<long long>(callbacks_));
    std::printf("soak: KV blocks free at the end %lld of %lld; fewest free during the run %lld\n",
                static_cast<long long>(generator_.free_kv_blocks()),
                static_cast<long long>(generator_.kv_blocks()),
                static_cast<long long>(min_free_blocks_));
    std::printf(
        "soak: resident memory: %.1f MiB at the start, %.1f MiB after %lld requests, %.1f "
        "MiB at the end (%+.2f%%, tolerance %.0f%%)\n",
        mib(rss_start), mib(rss_checkpoint_), static_cast<long long>(o_.rss_checkpoint),
        mib(rss_end), 100 * growth, 100 * o_.rss_tolerance);
    if (failures_ > 0) {
      std::printf("soak: FAILED: %lld violations (the first ones are listed above)\n",
                  static_cast<long long>(failures_));
      return 1;
    }
    std::printf("soak: PASSED: none lost, none duplicated, every KV block returned%s\n",
                o_.rss_tolerance < 1 ? ", memory flat" : " (memory growth not checked)");
    return 0;
  }

 private:
  GeneratorOptions generator_options() const {
    GeneratorOptions g;
    g.kv_block_size = o_.block_size;
    g.max_batch = o_.max_batch;
    const Gpt2Config& c = model_.config();
    g.kv_cache_bytes = o_.kv_tokens * 2 * c.n_layer * c.n_embd * std::int64_t(sizeof(float));
    return g;
  }

  void fail(const std::string& what) {
    if (++failures_ <= 20) std::printf("soak: VIOLATION: %s\n", what.c_str());
  }

  std::int64_t uniform(std::int64_t lo, std::int64_t hi) {  // [lo, hi]
    return std::uniform_int_distribution<std::int64_t>(lo, hi)(rng_);
  }
  double real(double lo, double hi) { return std::uniform_real_distribution<double>(lo, hi)(rng_); }
  bool chance(double p) { return real(0, 1) < p; }

  Track& track(RequestId id) {
    if (id < first_id_ || id - first_id_ >= static_cast<RequestId>(submitted_)) {
      fail("an event or result for request " + std::to_string(id) + ", which was never submitted");
      static Track dummy;
      return dummy;
    }
    return tracks_[static_cast<std::size_t>(id - first_id_)];
  }

  Request random_request(Track& t) {
    const Gpt2Config& c = model_.config();
    Request r;
    // Mostly short prompts; some up to the whole context (those have nothing left to generate).
    const std::int64_t length = chance(0.9) ? uniform(1, 48) : uniform(49, c.n_positions);
    r.prompt.resize(static_cast<std::size_t>(length));
    for (auto& id : r.prompt) id = static_cast<std::int32_t>(uniform(0, c.vocab_size - 1));
    GenerationParams& p = r.params;
    p.do_sample = chance(0.6);
    p.temperature = chance(0.1) ? 0.0f : static_cast<float>(real(0.1, 1.8));
    p.top_k = chance(0.3) ? 0 : static_cast<std::int32_t>(uniform(1, 100));
    p.top_p = chance(0.3) ? 1.0f : static_cast<float>(real(0.05, 1.0));
    p.repetition_penalty = chance(0.5) ? 1.0f : static_cast<float>(real(0.5, 2.0));
    if (chance(0.2)) p.min_p = static_cast<float>(real(0.0, 0.5));
    if (chance(0.2)) p.presence_penalty = static_cast<float>(real(-2.0, 2.0));
    if (chance(0.2)) p.frequency_penalty = static_cast<float>(real(-2.0, 2.0));
    if (chance(0.2)) p.no_repeat_ngram_size = static_cast<std::int32_t>(uniform(1, 4));
    if (chance(0.1)) p.min_new_tokens = uniform(0, 64);
    // A few biased tokens, some banned; now and then every token banned.
    const bool ban_all = chance(0.02);
    for (std::int64_t i = 0, n = ban_all       ? c.vocab_size
                                 : chance(0.2) ? uniform(1, 8)
                                               : 0;
         i < n; ++i)
      p.logit_bias[static_cast<std::int32_t>(ban_all ? i : uniform(0, c.vocab_size - 1))] =
          ban_all || chance(0.3) ? -INFINITY : static_cast<float>(real(-100.0, 100.0));
    t.banned.clear();
    for (const auto& [token, bias] : p.logit_bias)
      if (bias == -INFINITY) t.banned.push_back(token);
    t.all_banned = ban_all;
    if (chance(0.8)) p.seed = static_cast<std::uint64_t>(uniform(0, 1 << 30));
    p.stop_at_eos = chance(0.5);
    if (chance(0.7)) p.max_new_tokens = uniform(0, 64);
    p.max_length = chance(0.5) ? std::int64_t(1) << 20 : uniform(1, c.n_positions + 16);
    t.prompt_length = static_cast<std::int32_t>(length);
    t.budget = static_cast<std::int32_t>(p.token_budget(length, c.n_positions));
    t.stop_at_eos = p.stop_at_eos;
    t.min_new_tokens = p.stop_at_eos ? p.min_new_tokens : 0;
    if (chance(0.1)) {
      t.has_callback = true;
      ++callbacks_;
      Track* tp = &t;
      r.on_event = [tp](const TokenEvent&) { ++tp->callback_events; };
    }
    return r;
  }

  // An invalid request must be refused with InputError and must not take an id.
  void submit_invalid() {
    const Gpt2Config& c = model_.config();
    Request r;
    r.prompt = {1, 2, 3};
    switch (uniform(0, 4)) {
      case 0:
        r.prompt.clear();
        break;  // no prompt
      case 1:
        r.prompt[1] = static_cast<std::int32_t>(c.vocab_size);
        break;  // id too big
      case 2:
        r.prompt.assign(static_cast<std::size_t>(c.n_positions) + 1, 0);
        break;  // too long
      case 3:
        r.params.top_p = 0.0f;
        break;
      default:
        r.params.stop_strings = {"x"};
        break;  // stop strings need a tokenizer
    }
    try {
      generator_.submit(std::move(r));
      fail("an invalid request was accepted");
    } catch (const InputError&) {
      ++invalid_refused_;
    }
  }

  void top_up() {
    while (submitted_ < o_.requests &&
           static_cast<std::int64_t>(in_flight_.size()) < o_.in_flight) {
      if (chance(0.01)) submit_invalid();
      Track& t = tracks_[static_cast<std::size_t>(submitted_)];
      Request r = random_request(t);
      const RequestId id = generator_.submit(std::move(r));
      if (submitted_ == 0) first_id_ = id;
      if (id != first_id_ + static_cast<RequestId>(submitted_))
        fail("request ids are not consecutive: got " + std::to_string(id));
      t.id = id;
      ++submitted_;
      in_flight_.push_back(id);
      if (chance(0.03)) cancel(t);  // before it is ever admitted
    }
  }

  void cancel(Track& t) {
    if (t.finished_events > 0) {
      ++cancels_after_;
    } else if (t.cancel_asked) {
      ++cancels_twice_;
    } else {
      ++cancels_before_;
      t.cancel_asked = true;
    }
    generator_.cancel(t.id);
  }

  void cancel_some() {
    if (!in_flight_.empty() && chance(0.15)) {
      Track& t = track(in_flight_[static_cast<std::size_t>(
          uniform(0, static_cast<std::int64_t>(in_flight_.size()) - 1))]);
      cancel(t);
      if (chance(0.1)) cancel(t);  // twice before the next step
    }
    if (submitted_ > 0 && chance(0.02))  // any request, finished or not
      cancel(track(first_id_ + static_cast<RequestId>(uniform(0, submitted_ - 1))));
    if (chance(0.01)) {
      ++cancels_unknown_;
      generator_.cancel(first_id_ + static_cast<RequestId>(o_.requests) + 1000);
    }
  }

  void on_event(const TokenEvent& e) {
    Track& t = track(e.request);
    ++t.step_events;
    if (t.finished_events > 0)
      fail("request " + std::to_string(t.id) + " had an event after it finished");
    if (e.token) {
      ++t.event_tokens;
      ++tokens_;
    }
    if (e.finished) {
      ++t.finished_events;
      t.event_reason = *e.finished;
      in_flight_.erase(std::find(in_flight_.begin(), in_flight_.end(), t.id));
    }
  }

  void take_results() {
    for (const Result& r : generator_.take_results()) {
      Track& t = track(r.id);
      const std::string name = "request " + std::to_string(r.id);
      if (t.result_seen) fail(name + " has two results (duplicated)");
      t.result_seen = true;
      ++finished_;
      if (t.finished_events != 1) fail(name + " has a result but no finished event");
      if (r.finish_reason != t.event_reason)
        fail(name + ": result and event disagree on why it finished");
      if (static_cast<std::int32_t>(r.tokens.size()) != t.event_tokens)
        fail(name + ": " + std::to_string(r.tokens.size()) + " tokens in the result, " +
             std::to_string(t.event_tokens) + " in events");
      if (static_cast<std::int32_t>(r.prompt.size()) != t.prompt_length)
        fail(name + ": the result's prompt has another length");
      if (static_cast<std::int32_t>(r.tokens.size()) > t.budget)
        fail(name + " generated more tokens than max_new_tokens/max_length allow");
      for (std::size_t i = 0; i < r.tokens.size(); ++i) {
        const std::int32_t token = r.tokens[i];
        if (t.all_banned ? token != 0
                         : std::find(t.banned.begin(), t.banned.end(), token) != t.banned.end())
          fail(name + " generated token " + std::to_string(token) + ", which it banned");
        if (std::int64_t(i) < t.min_new_tokens && token == model_.config().eos_token_id &&
            !t.all_banned)
          fail(name + " generated end-of-text at " + std::to_string(i) +
               ", before min_new_tokens " + std::to_string(t.min_new_tokens));
      }
      std::vector<std::int32_t>().swap(t.banned);  // the soak's own memory stays flat
      if (t.has_callback && t.callback_events != t.step_events)
        fail(name + ": its callback saw " + std::to_string(t.callback_events) + " events, step() " +
             std::to_string(t.step_events));
      switch (r.finish_reason) {
        case FinishReason::cancelled:
          ++by_cancel_;
          if (!t.cancel_asked) fail(name + " was cancelled without being asked");
          break;
        case FinishReason::length:
          ++by_length_;
          if (t.cancel_asked) fail(name + " was asked to cancel but ran to its length");
          if (static_cast<std::int32_t>(r.tokens.size()) != t.budget)
            fail(name + " finished by length with " + std::to_string(r.tokens.size()) +
                 " tokens, budget " + std::to_string(t.budget));
          break;
        case FinishReason::eos:
          ++by_eos_;
          if (t.cancel_asked) fail(name + " was asked to cancel but finished at eos");
          if (!t.stop_at_eos || r.tokens.empty() || r.tokens.back() != model_.config().eos_token_id)
            fail(name + " finished by eos wrongly");
          break;
        case FinishReason::stop_string:
          fail(name + " finished by a stop string it did not have");
          break;
      }
    }
  }

  void check_pool() {
    const std::int64_t free = generator_.free_kv_blocks();
    min_free_blocks_ = std::min(min_free_blocks_, free);
    if (free < 0 || free > generator_.kv_blocks())
      fail("free KV blocks " + std::to_string(free) + " outside [0, " +
           std::to_string(generator_.kv_blocks()) + "]");
    if (generator_.waiting() + generator_.running() > in_flight_.size())
      fail("the generator holds more requests than are unfinished");
    if (generator_.idle() && free != generator_.kv_blocks())
      fail("the generator is idle but " + std::to_string(generator_.kv_blocks() - free) +
           " KV blocks are not free");
  }

  Options o_;
  std::mt19937_64 rng_;
  GPT2<cpu, float> model_;
  Generator<GPT2<cpu, float>> generator_;
  std::vector<Track> tracks_;
  std::vector<RequestId> in_flight_;  // submitted, no finished event yet
  RequestId first_id_ = 0;
  std::int64_t submitted_ = 0, finished_ = 0, steps_ = 0, tokens_ = 0, failures_ = 0;
  std::int64_t by_length_ = 0, by_eos_ = 0, by_cancel_ = 0;
  std::int64_t cancels_before_ = 0, cancels_after_ = 0, cancels_twice_ = 0, cancels_unknown_ = 0;
  std::int64_t invalid_refused_ = 0, callbacks_ = 0;
  std::int64_t min_free_blocks_ = INT64_MAX;
  std::int64_t rss_checkpoint_ = 0;
};

}  // namespace

int main(int argc, char** argv) {
  const Options options = parse(argc, argv);
  Eigen::setNbThreads(static_cast<int>(options.threads));
  try {
    Soak soak(options);
    return soak.run();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "soak: error: %s\n", e.what());
    return 1;
  }
}
