// `ctformer serve` end to end: the tool runs as a server on a free loopback port, and clients send
// it OpenAI completions requests. What it answers is checked against the library's Generator on the
// same model (a small random model).
#define BOOST_TEST_MODULE cli_serve
#include <boost/test/unit_test.hpp>

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "ctformer/ctformer.hpp"
#include "support/random_gpt2.hpp"
#include "support/run_cli.hpp"
#include "support/test_support.hpp"

// After Eigen: httplib.h brings <resolv.h>, whose `_res` macro breaks Eigen's headers.
#include <httplib.h>

using namespace ctformer;
using nlohmann::json;

namespace {

using test::SmallVocabModel;

// `ctformer serve` on a free port, stopped with SIGTERM by stop() or at the end.
class Server {
 public:
  explicit Server(const std::string& options = "",
                  const std::string& model = SmallVocabModel::tiny().arg()) {
    int out[2];
    BOOST_REQUIRE(::pipe(out) == 0);
    const std::string cli = test::cli_path();
    const std::string command =
        "exec '" + cli + "' serve " + model + " --port 0 --served-model-name tiny " + options;
    pid_ = ::fork();
    BOOST_REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      ::dup2(out[1], STDOUT_FILENO);
      ::close(out[0]);
      ::close(out[1]);
      ::execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    ::close(out[1]);
    // The first line says where it listens: "... on http://127.0.0.1:PORT (...".
    std::string line;
    pollfd p{out[0], POLLIN, 0};
    while (line.find('\n') == std::string::npos && ::poll(&p, 1, 120'000) == 1) {
      char buf[256];
      const ssize_t n = ::read(out[0], buf, sizeof buf);
      if (n <= 0) break;
      line.append(buf, std::size_t(n));
    }
    ::close(out[0]);
    const auto at = line.find("http://127.0.0.1:");
    if (at == std::string::npos) {
      ::kill(pid_, SIGKILL);  // not left running: it would hold CTest's output pipe open
      wait();
      BOOST_FAIL("the server did not start: '" << line << "'");
    }
    port_ = std::stoi(line.substr(at + 17));
  }
  ~Server() {
    if (pid_ > 0) stop();
  }

  // SIGTERM; the exit status (0: it stopped cleanly).
  int stop() {
    terminate();
    return wait();
  }
  void terminate() const { ::kill(pid_, SIGTERM); }
  // The exit status once it exits; -1 if it is killed, as it is after 60 s.
  int wait() {
    int status = 0;
    for (int waited_ms = 0; ::waitpid(pid_, &status, WNOHANG) == 0; waited_ms += 10) {
      if (waited_ms == 60'000) ::kill(pid_, SIGKILL);
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

  int port() const { return port_; }

  httplib::Client client() const {
    httplib::Client c("127.0.0.1", port_);
    c.set_read_timeout(120);
    return c;
  }

  httplib::Result post(const json& body) const {
    return client().Post("/v1/completions", body.dump(), "application/json");
  }

  // The metric's value from GET /metrics.
  double metric(const std::string& name) const {
    const auto r = client().Get("/metrics");
    BOOST_REQUIRE(r);
    const auto at = r->body.find("\n" + name + " ");
    BOOST_REQUIRE(at != std::string::npos);
    return std::stod(r->body.substr(at + name.size() + 2));
  }

 private:
  pid_t pid_ = -1;
  int port_ = 0;
};

// What the library generates for `params` from `prompt` on the same model.
Result library(const std::string& prompt, GenerationParams params) {
  static auto model = GPT2<cpu, float>::from_directory(SmallVocabModel::tiny().dir.path);
  static const auto tokenizer = Gpt2Tokenizer::from_directory(SmallVocabModel::tiny().dir.path);
  Generator alone(model, {}, &tokenizer);
  Request r;
  r.text = prompt;
  r.params = params;
  alone.submit(r);
  return alone.run().at(0);
}

// OpenAI's parameters for greedy decoding of `max_tokens` tokens, in the library's terms.
GenerationParams greedy(std::int64_t max_tokens) {
  GenerationParams p;
  p.max_new_tokens = max_tokens;
  p.max_length = std::int64_t(1) << 40;
  return p;
}

const char* finish_reason(const Result& r) {
  return r.finish_reason == FinishReason::length ? "length" : "stop";
}

// The data lines of a server-sent event stream, [DONE] included.
std::vector<std::string> events(const std::string& body) {
  std::vector<std::string> out;
  for (std::size_t at = 0; (at = body.find("data: ", at)) != std::string::npos;) {
    const auto end = body.find("\n\n", at);
    out.push_back(body.substr(at + 6, end - at - 6));
    at = end;
  }
  return out;
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_greedy_completion_is_what_the_library_generates) {
  Server server;
  const auto r = server.post(
      {{"model", "tiny"}, {"prompt", "My example 0"}, {"max_tokens", 7}, {"temperature", 0}});
  BOOST_REQUIRE(r);
  BOOST_REQUIRE_EQUAL(r->status, 200);
  const json j = json::parse(r->body);
  const Result want = library("My example 0", greedy(7));
  BOOST_TEST(j["object"] == "text_completion");
  BOOST_TEST(j["model"] == "tiny");
  BOOST_TEST(j["choices"].size() == 1u);
  BOOST_TEST(j["choices"][0]["text"].get<std::string>() == want.text);
  BOOST_TEST(j["choices"][0]["finish_reason"] == finish_reason(want));
  BOOST_TEST(j["usage"]["prompt_tokens"] == want.prompt.size());
  BOOST_TEST(j["usage"]["completion_tokens"] == want.tokens.size());
  BOOST_TEST(j["usage"]["total_tokens"] == want.prompt.size() + want.tokens.size());
  BOOST_TEST(server.stop() == 0);
}

BOOST_AUTO_TEST_CASE(logit_bias_penalties_min_p_and_min_tokens_reach_the_generator) {
  Server server;
  GenerationParams p = greedy(12);
  const Result plain = library("My example 0", p);
  p.logit_bias = {{plain.tokens[0], -100.0f}, {7, 2.5f}};
  p.presence_penalty = 1.5f;
  p.frequency_penalty = -0.5f;
  p.no_repeat_ngram_size = 2;
  p.min_new_tokens = 12;  // end-of-text banned throughout
  const Result want = library("My example 0", p);
  BOOST_TEST_REQUIRE(want.text != plain.text);  // the parameters change the output
  const auto r = server.post({{"prompt", "My example 0"},
                              {"max_tokens", 12},
                              {"temperature", 0},
                              {"logit_bias", {{std::to_string(plain.tokens[0]), -100}, {"7", 2.5}}},
                              {"presence_penalty", 1.5},
                              {"frequency_penalty", -0.5},
                              {"no_repeat_ngram_size", 2},
                              {"min_tokens", 12},
                              {"min_p", 0.1}});  // no effect on greedy decoding
  BOOST_REQUIRE(r);
  BOOST_REQUIRE_EQUAL(r->status, 200);
  BOOST_TEST(json::parse(r->body)["choices"][0]["text"].get<std::string>() == want.text);
}

BOOST_AUTO_TEST_CASE(max_tokens_defaults_to_16_and_null_runs_to_the_end_of_the_context) {
  Server server;
  const auto sixteen = server.post({{"prompt", "a b c"}, {"ignore_eos", true}});
  BOOST_REQUIRE(sixteen);
  BOOST_TEST(json::parse(sixteen->body)["usage"]["completion_tokens"] == 16);
  const auto all =
      server.post({{"prompt", "a b c"}, {"max_tokens", nullptr}, {"ignore_eos", true}});
  BOOST_REQUIRE(all);
  const json u = json::parse(all->body)["usage"];
  BOOST_TEST(u["total_tokens"] == 64);  // the model's context
  BOOST_TEST(json::parse(all->body)["choices"][0]["finish_reason"] == "length");
}

BOOST_AUTO_TEST_CASE(streamed_chunks_add_up_to_the_whole_completion) {
  Server server;
  const json body = {{"prompt", {"Hello, world", "My example 1"}},
                     {"max_tokens", 9},
                     {"temperature", 0},
                     {"echo", true},
                     {"stream", true},
                     {"stream_options", {{"include_usage", true}}}};
  const auto r = server.post(body);
  BOOST_REQUIRE(r);
  BOOST_REQUIRE_EQUAL(r->status, 200);
  BOOST_TEST(r->get_header_value("Content-Type") == "text/event-stream");
  const auto lines = events(r->body);
  BOOST_REQUIRE(lines.size() >= 3u);
  BOOST_TEST(lines.back() == "[DONE]");
  std::string text[2];
  std::string finish[2];
  for (std::size_t i = 0; i + 2 < lines.size(); ++i) {
    const json chunk = json::parse(lines[i]);
    BOOST_REQUIRE(chunk["choices"].size() == 1u);
    const json& c = chunk["choices"][0];
    const std::size_t index = c["index"];
    BOOST_REQUIRE(index < 2u);
    BOOST_TEST(finish[index].empty());  // nothing after a choice's last chunk
    text[index] += c["text"].get<std::string>();
    if (!c["finish_reason"].is_null()) finish[index] = c["finish_reason"];
  }
  const json usage = json::parse(lines[lines.size() - 2]);
  BOOST_TEST(usage["choices"].empty());
  std::size_t prompt_tokens = 0, completion_tokens = 0;
  for (std::size_t i = 0; i < 2; ++i) {
    const std::string prompt = body["prompt"][i];
    const Result want = library(prompt, greedy(9));
    BOOST_TEST(text[i] == prompt + want.text);  // echo: the prompt first
    BOOST_TEST(finish[i] == finish_reason(want));
    prompt_tokens += want.prompt.size();
    completion_tokens += want.tokens.size();
  }
  BOOST_TEST(usage["usage"]["prompt_tokens"] == prompt_tokens);
  BOOST_TEST(usage["usage"]["completion_tokens"] == completion_tokens);
}

BOOST_AUTO_TEST_CASE(concurrent_clients_each_get_what_they_would_alone) {
  Server server("--batch-size 4");
  const auto tokenizer = Gpt2Tokenizer::from_directory(SmallVocabModel::tiny().dir.path);
  constexpr int kClients = 10;
  std::vector<json> answers(kClients);
  std::vector<std::thread> clients;
  for (int i = 0; i < kClients; ++i)
    clients.emplace_back([&, i] {
      const std::string prompt = "My example " + std::to_string(i);
      json body = {{"max_tokens", 6 + i % 5}, {"temperature", 0}};
      if (i % 2)
        body["prompt"] = tokenizer.encode(prompt);  // token ids
      else
        body["prompt"] = prompt;
      const auto r = server.post(body);
      if (r && r->status == 200) answers[i] = json::parse(r->body);
    });
  for (auto& c : clients) c.join();
  for (int i = 0; i < kClients; ++i) {
    BOOST_TEST_CONTEXT("client " << i) {
      BOOST_REQUIRE(answers[i].is_object());
      const Result want = library("My example " + std::to_string(i), greedy(6 + i % 5));
      BOOST_TEST(answers[i]["choices"][0]["text"].get<std::string>() == want.text);
      BOOST_TEST(answers[i]["usage"]["completion_tokens"] == want.tokens.size());
    }
  }
  BOOST_TEST(server.metric("ctformer_requests_finished_total") == kClients);
  BOOST_TEST(server.metric("ctformer_requests_running") == 0);
}

BOOST_AUTO_TEST_CASE(n_samples_with_a_seed_are_the_librarys_samples_at_seed_and_seed_plus_1) {
  Server server;
  const auto r = server.post({{"prompt", "Once upon a time"},
                              {"max_tokens", 8},
                              {"n", 2},
                              {"seed", 1234},
                              {"top_p", 0.9}});
  BOOST_REQUIRE(r);
  BOOST_REQUIRE_EQUAL(r->status, 200);
  const json j = json::parse(r->body);
  BOOST_REQUIRE(j["choices"].size() == 2u);
  for (std::size_t i = 0; i < 2; ++i) {
    // OpenAI's defaults: temperature 1, no top-k.
    GenerationParams p = greedy(8);
    p.do_sample = true;
    p.top_k = 0;
    p.top_p = 0.9f;
    p.seed = 1234 + i;
    BOOST_TEST(j["choices"][i]["index"] == i);
    BOOST_TEST(j["choices"][i]["text"].get<std::string>() == library("Once upon a time", p).text);
  }
  // The prompt counted once for its n choices.
  BOOST_TEST(j["usage"]["prompt_tokens"] == library("Once upon a time", greedy(1)).prompt.size());
}

BOOST_AUTO_TEST_CASE(streamed_choices_come_side_by_side) {
  Server server;
  const auto r = server.post({{"prompt", "Once upon a time"},
                              {"max_tokens", 24},
                              {"n", 3},
                              {"seed", 77},
                              {"ignore_eos", true},
                              {"stream", true}});
  BOOST_REQUIRE(r);
  BOOST_REQUIRE_EQUAL(r->status, 200);
  const auto lines = events(r->body);
  std::string text[3];
  std::size_t first_chunk[3] = {0, 0, 0}, last_chunk[3] = {0, 0, 0};
  bool seen[3] = {false, false, false};
  for (std::size_t k = 0; k + 1 < lines.size(); ++k) {
    const json chunk = json::parse(lines[k]);
    const json& c = chunk["choices"][0];
    const std::size_t i = c["index"];
    BOOST_REQUIRE(i < 3u);
    text[i] += c["text"].get<std::string>();
    if (!seen[i]) first_chunk[i] = k, seen[i] = true;
    last_chunk[i] = k;
  }
  for (std::size_t i = 0; i < 3; ++i) {
    GenerationParams p = greedy(24);
    p.do_sample = true;
    p.top_k = 0;
    p.stop_at_eos = false;
    p.seed = 77 + i;
    BOOST_TEST(text[i] == library("Once upon a time", p).text);
    // Generated together and sent as they come: each choice starts before the first ends.
    BOOST_TEST(first_chunk[i] < last_chunk[0], "choice " << i);
  }
}

BOOST_AUTO_TEST_CASE(a_stop_string_ends_the_text_and_is_left_out) {
  Server server;
  const Result whole = library("My example 2", greedy(16));
  // A stop string from the middle of the greedy text: one token's text.
  const auto tokenizer = Gpt2Tokenizer::from_directory(SmallVocabModel::tiny().dir.path);
  std::string stop;
  for (std::size_t t = whole.tokens.size() / 2; t < whole.tokens.size() && stop.empty(); ++t) {
    const std::string piece = tokenizer.decode(std::vector{whole.tokens[t]});
    if (!piece.empty() && to_valid_utf8(piece) == piece) stop = piece;
  }
  BOOST_REQUIRE(!stop.empty());
  const auto r = server.post(
      {{"prompt", "My example 2"}, {"max_tokens", 16}, {"temperature", 0}, {"stop", {stop}}});
  BOOST_REQUIRE(r);
  BOOST_REQUIRE_EQUAL(r->status, 200);
  const json j = json::parse(r->body);
  BOOST_TEST_MESSAGE("stop " << json(stop).dump() << " in " << json(whole.text).dump());
  BOOST_TEST(j["choices"][0]["text"].get<std::string>() ==
             whole.text.substr(0, whole.text.find(stop)));
  BOOST_TEST(j["choices"][0]["finish_reason"] == "stop");

  // Streamed, the same text.
  const auto s = server.post({{"prompt", "My example 2"},
                              {"max_tokens", 16},
                              {"temperature", 0},
                              {"stop", stop},
                              {"stream", true}});
  BOOST_REQUIRE(s);
  std::string streamed;
  for (const std::string& e : events(s->body))
    if (e != "[DONE]") streamed += json::parse(e)["choices"][0]["text"].get<std::string>();
  BOOST_TEST(streamed == j["choices"][0]["text"].get<std::string>());
}

BOOST_AUTO_TEST_CASE(logprobs_are_the_librarys_and_echo_scores_the_prompt) {
  Server server;
  const auto tokenizer = Gpt2Tokenizer::from_directory(SmallVocabModel::tiny().dir.path);
  GenerationParams p = greedy(6);
  p.logprobs = 2;
  p.prompt_logprobs = 2;
  const std::string prompt = "Once upon a time";
  const Result want = library(prompt, p);
  // A token's name: its text, or OpenAI's "bytes:\xNN..." where that is not whole characters.
  auto name_of = [&](std::int32_t id) {
    const std::string bytes = tokenizer.decode(std::vector{id});
    if (is_valid_utf8(bytes)) return bytes;
    std::string name = "bytes:";
    char hex[8];
    for (const unsigned char b : bytes) {
      std::snprintf(hex, sizeof hex, "\\x%02x", b);
      name += hex;
    }
    return name;
  };
  // One place of a logprobs object against the library's.
  auto check_place = [&](const json& lp, std::size_t k, const TokenLogprobs& w) {
    BOOST_TEST(lp["tokens"][k] == name_of(w.token));
    BOOST_TEST(lp["token_logprobs"][k].get<float>() == w.logprob);
    const json& top = lp["top_logprobs"][k];
    BOOST_TEST(top.size() <= w.top.size() + 1);  // the most likely, and the chosen token
    BOOST_TEST(top[name_of(w.token)].get<float>() == w.logprob);
    for (const LikelyToken& t : w.top) BOOST_TEST(top[name_of(t.token)].get<float>() == t.logprob);
  };

  // echo: the prompt's tokens first, the first without a log-probability; then the generated.
  const auto r = server.post(
      {{"prompt", prompt}, {"max_tokens", 6}, {"temperature", 0}, {"logprobs", 2}, {"echo", true}});
  BOOST_REQUIRE(r);
  BOOST_REQUIRE_EQUAL(r->status, 200);
  const json choice = json::parse(r->body)["choices"][0];
  BOOST_TEST(choice["text"].get<std::string>() == prompt + want.text);
  const json& lp = choice["logprobs"];
  const std::size_t P = want.prompt.size();
  BOOST_REQUIRE(lp["tokens"].size() == P + want.tokens.size());
  BOOST_TEST(lp["token_logprobs"][0].is_null());
  BOOST_TEST(lp["top_logprobs"][0].is_null());
  for (std::size_t t = 1; t < P; ++t) check_place(lp, t, want.prompt_logprobs[t - 1]);
  for (std::size_t t = 0; t < want.tokens.size(); ++t) check_place(lp, P + t, want.logprobs[t]);
  // text_offset: where each token starts in the text, in characters.
  std::string joined;
  std::size_t characters = 0;
  for (std::size_t k = 0; k < lp["tokens"].size(); ++k) {
    BOOST_TEST(lp["text_offset"][k] == characters);
    const std::string bytes =
        tokenizer.decode(std::vector{k < P ? want.prompt[k] : want.tokens[k - P]});
    joined += bytes;
    for (const unsigned char b : bytes) characters += (b & 0xC0) != 0x80;
  }
  // The text on the wire has U+FFFD for bytes that are not UTF-8, as the generator's text has.
  if (want.finish_reason != FinishReason::eos)
    BOOST_TEST(to_valid_utf8(joined) == choice["text"].get<std::string>());

  // Scoring as lm-evaluation-harness asks: ids, max_tokens 0, echo, logprobs.
  const auto scored = server.post({{"prompt", want.prompt},
                                   {"max_tokens", 0},
                                   {"temperature", 0},
                                   {"logprobs", 0},
                                   {"echo", true}});
  BOOST_REQUIRE(scored);
  BOOST_REQUIRE_EQUAL(scored->status, 200);
  const json s = json::parse(scored->body);
  BOOST_TEST(s["choices"][0]["text"].get<std::string>() == prompt);
  BOOST_TEST(s["usage"]["completion_tokens"] == 0);
  const json& slp = s["choices"][0]["logprobs"];
  BOOST_REQUIRE(slp["token_logprobs"].size() == P);
  for (std::size_t t = 1; t < P; ++t) {
    BOOST_TEST(slp["token_logprobs"][t].get<float>() == want.prompt_logprobs[t - 1].logprob);
    BOOST_TEST(slp["top_logprobs"][t].size() == 1u);  // the token itself
  }

  // Streamed: each chunk's logprobs are its tokens'; together the whole completion's.
  const auto streamed = server.post({{"prompt", prompt},
                                     {"max_tokens", 6},
                                     {"temperature", 0},
                                     {"logprobs", 2},
                                     {"echo", true},
                                     {"stream", true}});
  BOOST_REQUIRE(streamed);
  json tokens = json::array(), values = json::array();
  std::string text;
  for (const std::string& e : events(streamed->body)) {
    if (e == "[DONE]") continue;
    const json c = json::parse(e)["choices"][0];
    text += c["text"].get<std::string>();
    for (const json& t : c["logprobs"]["tokens"]) tokens.push_back(t);
    for (const json& v : c["logprobs"]["token_logprobs"]) values.push_back(v);
  }
  BOOST_TEST(text == choice["text"].get<std::string>());
  BOOST_TEST(tokens == lp["tokens"]);
  BOOST_TEST(values == lp["token_logprobs"]);
}

BOOST_AUTO_TEST_CASE(bad_requests_get_an_error_that_names_the_problem) {
  Server server;
  struct Case {
    std::string body;
    int status;
    std::string says;
  };
  const std::vector<Case> cases = {
      {"{\"prompt\": ", 400, "not valid JSON"},
      {"[1, 2]", 400, "not a JSON object"},
      {R"({"max_tokens": 3})", 400, "'prompt' is required"},
      {R"({"prompt": {"a": 1}})", 400, "'prompt' must be"},
      {R"({"prompt": [1070]})", 400, "not an id of the vocabulary (0 to 1069)"},
      {R"({"prompt": [-1]})", 400, "not an id of the vocabulary"},
      {R"({"prompt": "hi", "model": "gpt-4"})", 404, "this server serves 'tiny'"},
      {R"({"prompt": "hi", "logprobs": 21})", 400, "'logprobs' must be an integer from 0 to 20"},
      {R"({"prompt": "hi", "logprobs": true})", 400, "'logprobs' must be an integer"},
      {R"({"prompt": "hi", "n": 0})", 400, "'n' must be an integer from 1 to 128"},
      {R"({"prompt": "hi", "max_tokens": -5})", 400, "'max_tokens' must be an integer from 0"},
      {R"({"prompt": "hi", "temperature": "hot"})", 400, "'temperature' must be a finite number"},
      {R"({"prompt": "hi", "temperature": 1e39})", 400, "'temperature' must be a finite number"},
      {R"({"prompt": "hi", "top_p": 0})", 400, "top_p"},
      {R"({"prompt": "hi", "stop": ""})", 400, "'stop' holds an empty string"},
      {R"({"prompt": "hi", "presence_penalty": 2.5})", 400,
       "'presence_penalty' must be a number from -2 to 2, got 2.5"},
      {R"({"prompt": "hi", "frequency_penalty": "x"})", 400, "'frequency_penalty' must be"},
      {R"({"prompt": "hi", "logit_bias": [1]})", 400, "'logit_bias' must be an object"},
      {R"({"prompt": "hi", "logit_bias": {"1070": 1}})", 400,
       "'logit_bias' key \"1070\" is not a token id of the vocabulary (0 to 1069)"},
      {R"({"prompt": "hi", "logit_bias": {"12x": 1}})", 400, "key \"12x\" is not a token id"},
      {R"({"prompt": "hi", "logit_bias": {"12": -101}})", 400,
       "'logit_bias[\"12\"]' must be a number from -100 to 100, got -101"},
      {R"({"prompt": "hi", "min_p": 2})", 400, "min_p 2"},
      {R"({"prompt": "hi", "min_tokens": -1})", 400, "'min_tokens' must be an integer from 0"},
      {R"({"prompt": "hi", "no_repeat_ngram_size": 1.5})", 400, "'no_repeat_ngram_size' must be"},
      {R"({"prompt": "hi", "stream_options": {"include_usage": true}})", 400,
       "only allowed with \"stream\": true"},
      {R"({"prompt": [[1, 2], "x", 3]})", 400, "'prompt' must be"},
  };
  for (const Case& c : cases) {
    BOOST_TEST_CONTEXT(c.body) {
      const auto r = server.client().Post("/v1/completions", c.body, "application/json");
      BOOST_REQUIRE(r);
      BOOST_TEST(r->status == c.status);
      const json j = json::parse(r->body);
      BOOST_TEST_MESSAGE(j["error"]["message"].get<std::string>());
      BOOST_TEST(j["error"]["message"].get<std::string>().find(c.says) != std::string::npos);
    }
  }
  // A prompt longer than the model's context (64 positions).
  const auto r = server.post({{"prompt", std::vector<int>(65, 11)}});
  BOOST_REQUIRE(r);
  BOOST_TEST(r->status == 400);
  BOOST_TEST(r->body.find("n_positions 64") != std::string::npos);
  // Routes.
  const auto chat = server.client().Post("/v1/chat/completions", "{}", "application/json");
  BOOST_REQUIRE(chat);
  BOOST_TEST(chat->status == 404);
  BOOST_TEST(chat->body.find("no chat template") != std::string::npos);
  const auto none = server.client().Get("/v2/anything");
  BOOST_REQUIRE(none);
  BOOST_TEST(none->status == 404);
  BOOST_TEST(none->body.find("POST /v1/completions") != std::string::npos);
  // And it still serves.
  BOOST_TEST(server.post({{"prompt", "hi"}, {"max_tokens", 2}})->status == 200);
  BOOST_TEST(server.metric("ctformer_requests_finished_total") == 1);
}

BOOST_AUTO_TEST_CASE(models_health_and_metrics) {
  Server server;
  const auto models = server.client().Get("/v1/models");
  BOOST_REQUIRE(models);
  const json m = json::parse(models->body);
  BOOST_TEST(m["data"][0]["id"] == "tiny");
  BOOST_TEST(m["data"][0]["max_model_len"] == 64);
  const auto health = server.client().Get("/health");
  BOOST_REQUIRE(health);
  BOOST_TEST(health->status == 200);
  BOOST_TEST(server.metric("ctformer_kv_cache_blocks_free") ==
             server.metric("ctformer_kv_cache_blocks"));
  BOOST_TEST(server.post({{"prompt", "a b c"}, {"max_tokens", 5}, {"ignore_eos", true}})->status ==
             200);
  BOOST_TEST(server.metric("ctformer_prompt_tokens_total") == 3);
  BOOST_TEST(server.metric("ctformer_generated_tokens_total") == 5);
}

// Reads a streamed completion until `go_on` says stop; the client then closes the connection.
httplib::Result stream_until(const Server& server, const json& body,
                             const std::function<bool(const std::string&)>& go_on) {
  httplib::Request req;
  req.method = "POST";
  req.path = "/v1/completions";
  req.body = body.dump();
  req.set_header("Content-Type", "application/json");
  std::string received;
  req.content_receiver = [&](const char* data, std::size_t n, std::uint64_t, std::uint64_t) {
    received.append(data, n);
    return go_on(received);
  };
  return server.client().send(req);
}

BOOST_AUTO_TEST_CASE(a_client_that_goes_away_has_its_request_cancelled) {
  // GPT-2's whole context and wider: a request that runs to its end takes over a thousand steps,
  // so the disconnect catches it running.
  const SmallVocabModel model(1024, 64);
  Server server("", model.arg());
  const json endless = {
      {"prompt", "x"}, {"max_tokens", nullptr}, {"ignore_eos", true}, {"stream", true}};
  stream_until(server, endless,
               [](const std::string& got) { return got.find("\n\n") == got.npos; });
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (server.metric("ctformer_requests_cancelled_total") < 1 &&
         std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  BOOST_TEST(server.metric("ctformer_requests_cancelled_total") == 1);
  BOOST_TEST(server.metric("ctformer_requests_running") == 0);
  BOOST_TEST(server.metric("ctformer_kv_cache_blocks_free") ==
             server.metric("ctformer_kv_cache_blocks"));
}

BOOST_AUTO_TEST_CASE(past_max_waiting_a_request_gets_503_and_sigterm_lets_the_rest_finish) {
  const SmallVocabModel model(1024, 64);  // A must not reach the end of its context meanwhile
  Server server("--batch-size 1 --max-waiting 1", model.arg());
  // A holds the batch's one place until released; B waits behind it; C finds the queue full.
  std::mutex m;
  std::condition_variable cv;
  bool a_running = false, release_a = false;
  std::thread a([&] {
    stream_until(server,
                 {{"prompt", "x"}, {"max_tokens", nullptr}, {"ignore_eos", true}, {"stream", true}},
                 [&](const std::string&) {
                   std::unique_lock lock(m);
                   a_running = true;
                   cv.notify_all();
                   cv.wait(lock, [&] { return release_a; });
                   return false;
                 });
  });
  {
    std::unique_lock lock(m);
    cv.wait(lock, [&] { return a_running; });
  }
  std::optional<httplib::Result> b;
  std::thread b_thread([&] { b.emplace(server.post({{"prompt", "y"}, {"max_tokens", 3}})); });
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (server.metric("ctformer_requests_waiting") < 1 &&
         std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  const auto c = server.post({{"prompt", "z"}, {"max_tokens", 3}});
  BOOST_REQUIRE(c);
  BOOST_TEST(c->status == 503);
  BOOST_TEST(c->get_header_value("Retry-After") == "1");
  BOOST_TEST(c->body.find("max_waiting 1") != std::string::npos);
  server.terminate();  // A and B are in flight: they finish first
  {
    std::lock_guard lock(m);
    release_a = true;
    cv.notify_all();
  }
  a.join();
  b_thread.join();
  BOOST_REQUIRE(b && *b);
  BOOST_TEST((*b)->status == 200);
  BOOST_TEST(json::parse((*b)->body)["usage"]["completion_tokens"] == 3);
  BOOST_TEST(server.wait() == 0);
}

BOOST_AUTO_TEST_CASE(with_an_api_key_the_v1_routes_need_it) {
  Server server("--api-key sesame");
  const std::string body = json({{"prompt", "hi"}, {"max_tokens", 2}}).dump();
  const auto none = server.client().Post("/v1/completions", body, "application/json");
  BOOST_REQUIRE(none);
  BOOST_TEST(none->status == 401);
  BOOST_TEST(none->body.find("needs an API key") != std::string::npos);
  const auto wrong = server.client().Post("/v1/completions", {{"Authorization", "Bearer sesamE"}},
                                          body, "application/json");
  BOOST_REQUIRE(wrong);
  BOOST_TEST(wrong->status == 401);
  BOOST_TEST(wrong->body.find("not this server's") != std::string::npos);
  const auto right = server.client().Post("/v1/completions", {{"Authorization", "Bearer sesame"}},
                                          body, "application/json");
  BOOST_REQUIRE(right);
  BOOST_TEST(right->status == 200);
  BOOST_TEST(server.client().Get("/v1/models")->status == 401);
  BOOST_TEST(server.client().Get("/health")->status == 200);  // for probes, as /metrics
  BOOST_TEST(server.client().Get("/metrics")->status == 200);
}

BOOST_AUTO_TEST_CASE(a_second_server_on_a_taken_port_is_refused) {
  Server first;
  const std::string cli = test::cli_path();
  // Under `timeout`: a second server that started would otherwise never return.
  FILE* pipe = ::popen(("timeout 60 '" + cli + "' serve " + SmallVocabModel::tiny().arg() +
                        " --port " + std::to_string(first.port()) + " 2>&1")
                           .c_str(),
                       "r");
  BOOST_REQUIRE(pipe);
  std::string out;
  char buf[4096];
  for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, pipe)) > 0;) out.append(buf, n);
  const int status = ::pclose(pipe);
  BOOST_TEST_MESSAGE(out);
  BOOST_TEST(WEXITSTATUS(status) == 1);
  BOOST_TEST(out.find("cannot listen on 127.0.0.1:" + std::to_string(first.port())) !=
             std::string::npos);
  BOOST_TEST(first.post({{"prompt", "hi"}, {"max_tokens", 1}})->status == 200);
}
