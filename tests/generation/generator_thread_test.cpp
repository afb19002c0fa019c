// GeneratorThread: requests from many threads, each as if it ran alone; cancellation by the stream;
// the waiting limit; shutdown with requests in flight.
#define BOOST_TEST_MODULE generator_thread
#include <boost/test/unit_test.hpp>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "ctformer/ctformer.hpp"
#include "support/mixed_requests.hpp"
#include "support/reference.hpp"

using namespace ctformer;

namespace {

GPT2<cpu, float> load(const std::string& name) {
  return GPT2<cpu, float>::from_directory(test::data_dir() / "models" / name);
}

GeneratorOptions batch_of(std::int64_t max_batch) {
  GeneratorOptions o;
  o.max_batch = max_batch;
  o.kv_cache_bytes = 8 << 20;
  return o;
}

// A request that runs until its context is full, unless cancelled.
Request endless(const GPT2<cpu, float>& model) {
  Request r;
  r.prompt = {1, 2, 3};
  r.params = test::greedy(model.config().n_positions);
  r.params.stop_at_eos = false;
  return r;
}

// Polls until `done` holds, for at most 30 s.
template <class Predicate>
bool eventually(Predicate done) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return true;
}

// The model whose forward pass throws from its `fail_at`-th call on, as a CUDA error would; that
// call waits for `armed`, so that the test has queued what it wants caught by the failure.
struct FailingModel : GPT2<cpu, float> {
  FailingModel(GPT2<cpu, float> model, int fail_at)
      : GPT2<cpu, float>(std::move(model)), fail_at(fail_at) {}
  template <class... Args>
  auto forward(Args&&... args) {
    if (++calls >= fail_at) {
      while (!armed) std::this_thread::sleep_for(std::chrono::milliseconds(1));
      throw std::runtime_error("injected failure of step " + std::to_string(calls));
    }
    return GPT2<cpu, float>::forward(std::forward<Args>(args)...);
  }
  int fail_at;
  int calls = 0;  // the generator's thread alone counts
  std::atomic<bool> armed{false};
};

}  // namespace

BOOST_AUTO_TEST_CASE(requests_from_many_threads_each_equal_running_it_alone) {
  auto model = load("gpt2-h32");
  const auto requests =
      test::mixed_requests(model.config().vocab_size, 16, [](int i) { return 4 + i % 7; });
  std::vector<std::vector<std::int32_t>> expected;
  for (const Request& r : requests) {
    Generator alone(model, batch_of(1));
    alone.submit(r);
    expected.push_back(alone.run().at(0).tokens);
  }

  GeneratorThread threaded(model, batch_of(5), nullptr);
  std::vector<Result> results(requests.size());
  std::vector<std::vector<std::int32_t>> streamed(requests.size());
  std::vector<int> last_events_finished(requests.size());
  std::vector<std::thread> callers;
  for (std::size_t t = 0; t < 4; ++t)
    callers.emplace_back([&, t] {
      for (std::size_t i = t; i < requests.size(); i += 4) {
        const auto stream = threaded.submit(requests[i]);
        while (const auto e = stream->next()) {
          if (e->token) streamed[i].push_back(*e->token);
          last_events_finished[i] = e->finished.has_value();
        }
        results[i] = stream->result();
      }
    });
  for (auto& c : callers) c.join();

  for (std::size_t i = 0; i < requests.size(); ++i) {
    BOOST_TEST_CONTEXT("request " << i) {
      BOOST_TEST(results[i].tokens == expected[i], boost::test_tools::per_element());
      BOOST_TEST(streamed[i] == expected[i], boost::test_tools::per_element());
      BOOST_TEST(last_events_finished[i] == 1);
    }
  }
  const GeneratorThreadStats s = threaded.stats();
  BOOST_TEST(s.requests_finished == requests.size());
  BOOST_TEST(s.requests_cancelled == 0u);
  BOOST_TEST(s.running == 0);
  BOOST_TEST(s.waiting == 0);
  BOOST_TEST(s.kv_blocks_free == s.kv_blocks);
  std::uint64_t generated = 0;
  for (const auto& e : expected) generated += e.size();
  BOOST_TEST(s.generated_tokens == generated);
}

BOOST_AUTO_TEST_CASE(one_thread_reads_a_group_of_streams_side_by_side) {
  auto model = load("gpt2-h32");
  auto requests = test::mixed_requests(model.config().vocab_size, 6, [](int i) { return 10 + i; });
  for (Request& r : requests) r.params.stop_at_eos = false;  // each its 10 + i tokens
  GeneratorThread threaded(model, batch_of(6), nullptr);
  const auto group = std::make_shared<StreamGroup>();
  std::vector<std::unique_ptr<RequestStream>> streams;
  for (const Request& r : requests) streams.push_back(threaded.submit(r, group));
  // Polled in turn, waiting on the group only when none had an event: every event arrives, in
  // order, and each stream's tokens are its result's.
  std::vector<std::vector<std::int32_t>> streamed(streams.size());
  std::vector<bool> ended(streams.size(), false);
  std::size_t left = streams.size(), waits = 0;
  std::vector<std::size_t> first_event_round(streams.size(), 0), last_round(streams.size(), 0);
  for (std::size_t round = 0; left > 0; ++round) {
    const std::uint64_t seen = group->version();
    bool any = false;
    for (std::size_t i = 0; i < streams.size(); ++i) {
      if (ended[i]) continue;
      const auto e = streams[i]->poll();
      if (!e) continue;
      any = true;
      if (streamed[i].empty() && e->token) first_event_round[i] = round;
      if (e->token) streamed[i].push_back(*e->token);
      last_round[i] = round;
      if (e->finished) ended[i] = true, --left;
    }
    if (!any) {
      group->wait_past(seen);
      ++waits;
    }
  }
  for (std::size_t i = 0; i < streams.size(); ++i) {
    BOOST_TEST(!streams[i]->poll().has_value());  // nothing after the last event
    BOOST_TEST(streamed[i] == streams[i]->result().tokens, boost::test_tools::per_element());
    // All six run in one batch and are read one event each in turn, so each had its first token
    // read before the first request's last (no stream waits for another to end).
    BOOST_TEST(first_event_round[i] < last_round[0]);
  }
  BOOST_TEST_MESSAGE(waits << " waits on the group");
}

BOOST_AUTO_TEST_CASE(dropping_a_stream_cancels_its_request_and_frees_its_blocks) {
  auto model = load("gpt2-h16");
  GeneratorThread threaded(model, batch_of(4), nullptr);
  {
    const auto stream = threaded.submit(endless(model));
    BOOST_REQUIRE(stream->next().has_value());  // running
  }
  BOOST_TEST(eventually([&] {
    const auto s = threaded.stats();
    return s.requests_cancelled == 1 && s.running == 0 && s.kv_blocks_free == s.kv_blocks;
  }));
  // The generator goes on serving.
  Request r = endless(model);
  r.params.max_new_tokens = 5;
  BOOST_TEST(threaded.submit(r)->result().tokens.size() == 5u);
}

BOOST_AUTO_TEST_CASE(a_cancelled_stream_ends_with_a_cancelled_event_and_result) {
  auto model = load("gpt2-h16");
  GeneratorThread threaded(model, batch_of(4), nullptr);
  const auto stream = threaded.submit(endless(model));
  BOOST_REQUIRE(stream->next().has_value());
  stream->cancel();
  std::optional<FinishReason> last;
  while (const auto e = stream->next()) last = e->finished;
  BOOST_TEST((last == FinishReason::cancelled));
  const Result r = stream->result();
  BOOST_TEST((r.finish_reason == FinishReason::cancelled));
  BOOST_TEST(r.tokens.size() < std::size_t(model.config().n_positions));
}

BOOST_AUTO_TEST_CASE(past_max_waiting_submit_is_refused_until_a_place_frees) {
  auto model = load("gpt2-h16");
  GeneratorThread threaded(model, batch_of(1), nullptr, /*max_waiting=*/1);
  const auto running = threaded.submit(endless(model));
  BOOST_REQUIRE(running->next().has_value());  // holds the batch's one place
  Request short_one = endless(model);
  short_one.params.max_new_tokens = 3;
  const auto waiting = threaded.submit(short_one);
  try {
    threaded.submit(short_one);
    BOOST_FAIL("a second waiting request was accepted");
  } catch (const OverloadedError& e) {
    BOOST_TEST_MESSAGE(e.what());
    BOOST_TEST(std::string(e.what()).find("max_waiting 1") != std::string::npos);
  }
  running->cancel();
  BOOST_TEST(waiting->result().tokens.size() == 3u);
  BOOST_TEST(threaded.submit(short_one)->result().tokens.size() == 3u);
}

BOOST_AUTO_TEST_CASE(a_bad_request_is_refused_on_the_callers_thread) {
  auto model = load("gpt2-h16");
  GeneratorThread threaded(model, batch_of(2), nullptr);
  Request too_long;
  too_long.prompt.assign(std::size_t(model.config().n_positions) + 1, 1);
  BOOST_CHECK_THROW(threaded.submit(too_long), InputError);
  Request text_only;  // no tokenizer to encode it
  text_only.text = "hello";
  BOOST_CHECK_THROW(threaded.submit(text_only), InputError);
  BOOST_TEST(threaded.stats().waiting == 0);
  BOOST_TEST(threaded.stats().requests_finished == 0u);
}

BOOST_AUTO_TEST_CASE(shutting_down_ends_every_request_in_flight_as_cancelled) {
  auto model = load("gpt2-h16");
  std::vector<std::unique_ptr<RequestStream>> streams;
  {
    GeneratorThread threaded(model, batch_of(2), nullptr);
    for (int i = 0; i < 5; ++i) streams.push_back(threaded.submit(endless(model)));
    BOOST_REQUIRE(streams[0]->next().has_value());
  }
  for (auto& stream : streams) {
    while (stream->next()) {
    }
    BOOST_TEST((stream->result().finish_reason == FinishReason::cancelled));
  }
}

BOOST_AUTO_TEST_CASE(a_failed_step_ends_every_request_with_its_error_and_refuses_later_ones) {
  FailingModel model(load("gpt2-h16"), 3);
  GeneratorThread threaded(model, batch_of(2), nullptr);
  std::vector<std::unique_ptr<RequestStream>> streams;
  Request r;
  r.prompt = {1, 2, 3};
  r.params = test::greedy(100);
  r.params.stop_at_eos = false;
  for (int i = 0; i < 3; ++i) streams.push_back(threaded.submit(r));  // 2 run, 1 waits
  model.armed = true;
  for (auto& stream : streams) {
    try {
      while (stream->next()) {
      }
      BOOST_FAIL("a stream ended without the step's error");
    } catch (const GeneratorStoppedError& e) {
      BOOST_TEST(std::string(e.what()).find("injected failure of step 3") != std::string::npos);
    }
    BOOST_CHECK_THROW(stream->result(), GeneratorStoppedError);
  }
  BOOST_TEST(threaded.failure().find("injected failure") != std::string::npos);
  BOOST_CHECK_THROW(threaded.submit(r), GeneratorStoppedError);
}
