// `ctformer serve`: an HTTP server with OpenAI's completions API. Every connection's requests go to
// one GeneratorThread, so that requests from all clients share continuous batches.
#pragma once

#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "arguments.hpp"
#include "completions_api.hpp"
#include "ctformer/ctformer.hpp"
#include "hub/hub.hpp"

// After Eigen (through ctformer.hpp): httplib.h brings <resolv.h>, whose `_res` macro breaks
// Eigen's headers.
#if CTFORMER_CLI_SERVE
#include <httplib.h>
#endif

namespace ctformer::cli {

inline constexpr const char* kServeUsage =
    "usage: ctformer serve --model DIR|NAME [--host H] [--port P] [--batch-size N]\n"
    "                      [--max-waiting N] [--dtype fp32|fp16|bf16] [--device cpu|cuda]\n"
    "                      [--served-model-name NAME] [--http-threads N] [--api-key KEY]\n"
    "\n"
    "Serves OpenAI's completions API (docs/serving.md): POST /v1/completions (streamed with\n"
    "\"stream\": true), GET /v1/models, GET /health, GET /metrics (Prometheus). Requests from all\n"
    "clients are decoded together in continuous batches. Stops on SIGINT or SIGTERM after the\n"
    "requests in flight finish (a second signal stops at once).\n"
    "  --host H             address to listen on (default 127.0.0.1; 0.0.0.0 for every one)\n"
    "  --port P             port (default 8000; 0 picks a free one, printed at start)\n"
    "  --batch-size N       sequences decoded together (default 64)\n"
    "  --max-waiting N      requests that may wait for a place in the batch; more get 503\n"
    "                       (default 1024)\n"
    "  --dtype D            weights in fp32 (default), fp16 or bf16 (see docs/precision.md)\n"
    "  --device D           cpu (default), or cuda (a CUDA build of ctformer and a GPU)\n"
    "  --served-model-name NAME   the name clients give as \"model\" (default: --model's value)\n"
    "  --http-threads N     connections served at once (default: 2 x batch size, at least 16)\n"
    "  --api-key KEY        require \"Authorization: Bearer KEY\" on /v1/ routes (default: the\n"
    "                       environment's CTFORMER_API_KEY; none when unset)";

#if CTFORMER_CLI_SERVE

namespace serve_detail {

using Clock = std::chrono::steady_clock;

inline double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

inline void send_error(httplib::Response& res, int status, const std::string& message,
                       const std::string& type, const std::string& param = {}) {
  res.status = status;
  res.set_content(wire(api_error_json(message, type, param)), "application/json");
}

// Compares in a time that does not depend on where the strings differ, so that response times do
// not reveal a key's prefix.
inline bool same_secret(const std::string& a, const std::string& b) {
  unsigned char differ = a.size() != b.size();
  for (std::size_t i = 0; i < std::min(a.size(), b.size()); ++i) differ |= a[i] ^ b[i];
  return differ == 0;
}

// One completion in flight: its choices' streams and what the response has said so far.
struct Completion {
  std::string id;
  std::int64_t created = 0;
  CompletionRequest request;
  std::vector<std::unique_ptr<RequestStream>> streams;
  std::shared_ptr<StreamGroup> group = std::make_shared<StreamGroup>();  // of the streams
  Clock::time_point arrived;
  std::optional<Clock::time_point> first_token;

  nlohmann::json envelope() const {
    return {{"id", id}, {"object", "text_completion"}, {"created", created}};
  }

  // Turns choice i's events into pieces of the response: `on_piece(text, finished, logprobs)`
  // gets each piece of text as it comes, the stop string taken off, with the `logprobs` object of
  // its tokens (null when not asked for). The echoed prompt is the first piece; with logprobs it
  // waits for the prompt's, which come with the first event.
  class ChoiceReader {
   public:
    ChoiceReader(const Completion& c, std::size_t i, const Gpt2Tokenizer& tokenizer)
        : c_(c), i_(i), text_(c.request.echo_texts[i]), echo_pending_(!text_.empty()) {
      if (c.request.logprobs) logprobs_.emplace(tokenizer);
    }

    template <class OnPiece>
    void start(OnPiece&& on_piece) {
      if (echo_pending_ && !logprobs_) {
        on_piece(text_, std::optional<FinishReason>(), nlohmann::json(nullptr));
        echo_pending_ = false;
      }
    }

    template <class OnPiece>
    void feed(const TokenEvent& e, OnPiece&& on_piece) {
      if (echo_pending_) {
        const std::vector<std::int32_t>& prompt = c_.request.choices[i_].prompt;
        logprobs_->add(prompt[0], nullptr);
        for (std::size_t t = 1; t < prompt.size() && t <= e.prompt_logprobs.size(); ++t)
          logprobs_->add(prompt[t], &e.prompt_logprobs[t - 1]);
        on_piece(text_, std::optional<FinishReason>(), take());
        echo_pending_ = false;
      }
      if (e.token && e.logprobs) logprobs_->add(*e.token, &*e.logprobs);
      std::string piece = e.text;
      if (e.finished == FinishReason::stop_string) {
        const std::size_t tail = stop_string_tail(text_ + piece, c_.request.stop_strings);
        piece.resize(piece.size() - std::min(tail, piece.size()));
      }
      text_ += piece;
      if (!piece.empty() || e.finished || e.logprobs) on_piece(piece, e.finished, take());
    }

    // After the last event: the result, with its text as the API reports it.
    Result finish(RequestStream& stream) {
      Result r = stream.result();
      r.text = std::move(text_);
      return r;
    }

   private:
    nlohmann::json take() { return logprobs_ ? logprobs_->take() : nlohmann::json(nullptr); }
    const Completion& c_;
    std::size_t i_;
    std::string text_;
    std::optional<LogprobsWriter> logprobs_;
    bool echo_pending_;
  };

  // Reads choice i's events to the end, waiting for each.
  template <class OnPiece>
  Result drain(std::size_t i, const Gpt2Tokenizer& tokenizer, OnPiece&& on_piece) {
    ChoiceReader reader(*this, i, tokenizer);
    reader.start(on_piece);
    while (const auto e = streams[i]->next()) {
      if (e->token && !first_token) first_token = Clock::now();
      reader.feed(*e, on_piece);
    }
    return reader.finish(*streams[i]);
  }

  // Reads every choice's events side by side, as they come (one event of each choice in turn, so
  // that no choice waits for another to end): `on_piece(i, text, finished, logprobs)`. Stops
  // early, cancelling every choice, when on_piece returns false (the client went away), and then
  // returns false. `results` gets the finished choices' results, in choice order.
  template <class OnPiece>
  bool read_all(const Gpt2Tokenizer& tokenizer, OnPiece&& on_piece, std::vector<Result>& results) {
    const std::size_t n = streams.size();
    std::vector<ChoiceReader> readers;
    std::vector<std::optional<Result>> finished(n);
    std::vector<bool> done(n, false);
    bool connected = true;
    auto piece_of = [&](std::size_t i) {
      return [&, i](const std::string& text, std::optional<FinishReason> finished,
                    nlohmann::json logprobs) {
        if (connected && !on_piece(i, text, finished, std::move(logprobs))) {
          connected = false;
          for (auto& s : streams) s->cancel();
        }
      };
    };
    for (std::size_t i = 0; i < n; ++i) {
      readers.emplace_back(*this, i, tokenizer);
      readers[i].start(piece_of(i));
    }
    for (std::size_t left = n; left > 0 && connected;) {
      const std::uint64_t seen = group->version();
      bool any = false;
      for (std::size_t i = 0; i < n && connected; ++i) {
        if (done[i]) continue;
        const auto e = streams[i]->poll();
        if (!e) continue;
        any = true;
        if (e->token && !first_token) first_token = Clock::now();
        readers[i].feed(*e, piece_of(i));
        if (e->finished) {
          finished[i] = readers[i].finish(*streams[i]);
          done[i] = true;
          --left;
        }
      }
      if (!any) group->wait_past(seen);
    }
    for (auto& r : finished)
      if (r) results.push_back(std::move(*r));
    return connected;
  }

  nlohmann::json usage(const std::vector<Result>& results) const {
    std::size_t prompt_tokens = 0, completion_tokens = 0;
    for (std::size_t i = 0; i < results.size(); ++i) {
      if (i % request.n == 0) prompt_tokens += results[i].prompt.size();
      completion_tokens += results[i].tokens.size();
    }
    return {{"prompt_tokens", prompt_tokens},
            {"completion_tokens", completion_tokens},
            {"total_tokens", prompt_tokens + completion_tokens}};
  }

  void log(int status, const std::vector<Result>& results) const {
    const nlohmann::json u = usage(results);
    const auto now = Clock::now();
    std::fprintf(stderr,
                 "POST /v1/completions %d: %zu choice(s), %zu prompt + %zu generated tokens, "
                 "first token %.1f ms, total %.1f ms%s\n",
                 status, results.size(), u["prompt_tokens"].get<std::size_t>(),
                 u["completion_tokens"].get<std::size_t>(),
                 first_token ? ms_between(arrived, *first_token) : 0.0, ms_between(arrived, now),
                 request.stream ? " (streamed)" : "");
  }
};

// The server a SIGINT or SIGTERM stops; none while the model loads (a signal then exits at once).
inline std::atomic<httplib::Server*> server_to_stop{nullptr};

// Blocks SIGINT and SIGTERM in this thread, and so in every thread it starts from now on (OpenMP's,
// the generator's, the server's), and takes them on a thread of their own: the first stops the
// server, which lets the requests in flight finish; a second, or one before the server runs,
// exits at once.
inline void take_stop_signals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::thread([signals] {
    int signal = 0;
    sigwait(&signals, &signal);
    httplib::Server* server = server_to_stop.load();
    if (!server) std::_Exit(128 + signal);
    std::fprintf(stderr,
                 "ctformer serve: %s: finishing the requests in flight, then stopping (again to "
                 "stop at once)\n",
                 strsignal(signal));
    server->stop();
    sigwait(&signals, &signal);
    std::_Exit(128 + signal);
  }).detach();
}

}  // namespace serve_detail

template <class Model>
int serve(Model& model, const Gpt2Tokenizer& tokenizer, const GeneratorOptions& options,
          std::int64_t max_waiting, const std::string& served_model, const std::string& host,
          int port, int http_threads, const std::string& api_key, const std::string& description) {
  using namespace serve_detail;
  using nlohmann::json;
  GeneratorThread<Model> generator(model, options, &tokenizer, max_waiting);
  std::atomic<std::uint64_t> next_id{0};
  const std::int64_t started = std::time(nullptr);

  httplib::Server server;
  server.new_task_queue = [http_threads] { return new httplib::ThreadPool(http_threads); };
  server.set_payload_max_length(16 << 20);
  server.set_keep_alive_max_count(1000);
  // SO_REUSEADDR only: cpp-httplib's default adds SO_REUSEPORT, with which a second server on the
  // same port starts too and the kernel splits the connections between the two.
  server.set_socket_options([](socket_t sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });
  if (!api_key.empty())
    server.set_pre_routing_handler([&](const httplib::Request& req, httplib::Response& res) {
      if (!req.path.starts_with("/v1/") ||
          same_secret(req.get_header_value("Authorization"), "Bearer " + api_key))
        return httplib::Server::HandlerResponse::Unhandled;
      send_error(
          res, 401,
          req.has_header("Authorization")
              ? "the API key in the Authorization header is not this server's"
              : "this server needs an API key: send the header \"Authorization: Bearer KEY\"",
          "authentication_error");
      return httplib::Server::HandlerResponse::Handled;
    });

  server.Post("/v1/completions", [&](const httplib::Request& req, httplib::Response& res) {
    auto c = std::make_shared<Completion>();
    c->arrived = Clock::now();
    c->id = "cmpl-" + std::to_string(started) + "-" + std::to_string(next_id++);
    c->created = std::time(nullptr);
    try {
      json body;
      try {
        body = json::parse(req.body);
      } catch (const json::parse_error& e) {
        throw ApiError(400, std::string("the request body is not valid JSON: ") + e.what());
      }
      c->request = parse_completion_request(body, served_model, tokenizer);
      for (std::size_t i = 0; i < c->request.choices.size(); ++i) {
        try {
          c->streams.push_back(generator.submit(c->request.choices[i], c->group));
        } catch (const InputError& e) {
          throw ApiError(400,
                         c->request.choices.size() > 1
                             ? "choice " + std::to_string(i) + ": " + e.what()
                             : std::string(e.what()),
                         "prompt");
        }
      }
    } catch (const ApiError& e) {
      send_error(res, e.status, e.what(), e.type, e.param);
      return;
    } catch (const OverloadedError& e) {
      res.set_header("Retry-After", "1");
      send_error(res, 503, e.what(), "overloaded_error");
      return;
    } catch (const GeneratorStoppedError& e) {
      send_error(res, 500, e.what(), "server_error");
      return;
    }

    if (!c->request.stream) {
      json choices = json::array();
      std::vector<Result> results;
      for (std::size_t i = 0; i < c->streams.size(); ++i) {
        json logprobs = nullptr;  // the pieces' logprobs objects, joined
        results.push_back(
            c->drain(i, tokenizer, [&](const std::string&, std::optional<FinishReason>, json lp) {
              if (logprobs.is_null())
                logprobs = std::move(lp);
              else if (!lp.is_null())
                for (auto& [key, values] : lp.items())
                  for (json& v : values) logprobs[key].push_back(std::move(v));
            }));
        choices.push_back({{"text", results.back().text},
                           {"index", i},
                           {"logprobs", std::move(logprobs)},
                           {"finish_reason", json_finish_reason(results.back().finish_reason)}});
      }
      json out = c->envelope();
      out["model"] = served_model;
      out["choices"] = std::move(choices);
      out["usage"] = c->usage(results);
      res.set_content(wire(out), "application/json");
      c->log(200, results);
      return;
    }

    // Server-sent events: a chunk per piece of text, the choices' chunks as they come, then
    // [DONE].
    res.set_header("Cache-Control", "no-cache");
    res.set_chunked_content_provider(
        "text/event-stream", [c, &served_model, &tokenizer](std::size_t, httplib::DataSink& sink) {
          json chunk = c->envelope();
          chunk["model"] = served_model;
          const auto send = [&](const json& j) {
            const std::string event = "data: " + wire(j) + "\n\n";
            return sink.write(event.data(), event.size());
          };
          std::vector<Result> results;
          bool connected = true;
          try {
            // A client that went away (a failed write): its requests are cancelled.
            connected = c->read_all(
                tokenizer,
                [&](std::size_t i, const std::string& text, std::optional<FinishReason> finished,
                    json logprobs) {
                  chunk["choices"] =
                      json::array({{{"text", text},
                                    {"index", i},
                                    {"logprobs", std::move(logprobs)},
                                    {"finish_reason", finished ? json(json_finish_reason(*finished))
                                                               : json(nullptr)}}});
                  if (c->request.include_usage) chunk["usage"] = nullptr;
                  return send(chunk);
                },
                results);
          } catch (const std::exception& e) {
            // A failed step: the 200 status line went out before the first event, so the error
            // is an event too (OpenAI's error object), and the stream ends.
            send(api_error_json(e.what(), "server_error"));
            std::fprintf(stderr, "POST /v1/completions 500 (streamed): %s\n", e.what());
            return false;
          }
          if (!connected) {
            c->log(499, results);  // nginx's "client closed request"
            return false;
          }
          if (c->request.include_usage) {
            chunk["choices"] = json::array();
            chunk["usage"] = c->usage(results);
            send(chunk);
          }
          const std::string done = "data: [DONE]\n\n";
          sink.write(done.data(), done.size());
          sink.done();
          c->log(200, results);
          return true;
        });
  });

  server.Post("/v1/chat/completions", [](const httplib::Request&, httplib::Response& res) {
    send_error(res, 404,
               "GPT-2 has no chat template, so this server has no chat API; send the "
               "conversation as text to POST /v1/completions",
               "not_found_error");
  });
  server.Get("/v1/models", [&](const httplib::Request&, httplib::Response& res) {
    const json out = {{"object", "list"},
                      {"data",
                       {{{"id", served_model},
                         {"object", "model"},
                         {"created", started},
                         {"owned_by", "ctformer"},
                         {"max_model_len", model.config().n_positions}}}}};
    res.set_content(wire(out), "application/json");
  });
  server.Get("/health", [&](const httplib::Request&, httplib::Response& res) {
    const std::string failure = generator.failure();
    if (failure.empty()) {
      res.set_content(wire({{"status", "ok"}}), "application/json");
    } else {
      res.status = 503;
      res.set_content(wire({{"status", "failed"}, {"error", failure}}), "application/json");
    }
  });
  server.Get("/metrics", [&](const httplib::Request&, httplib::Response& res) {
    const GeneratorThreadStats s = generator.stats();
    std::string out;
    const auto metric = [&](const char* name, const char* type, const char* help, auto value) {
      out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n" +
             name + " " + std::to_string(value) + "\n";
    };
    metric("ctformer_requests_running", "gauge", "Requests in the batch.", s.running);
    metric("ctformer_requests_waiting", "gauge", "Requests waiting for a place in the batch.",
           s.waiting);
    metric("ctformer_requests_finished_total", "counter", "Requests finished.",
           s.requests_finished);
    metric("ctformer_requests_cancelled_total", "counter",
           "Requests cancelled (their client went away).", s.requests_cancelled);
    metric("ctformer_prompt_tokens_total", "counter", "Prompt tokens of finished requests.",
           s.prompt_tokens);
    metric("ctformer_generated_tokens_total", "counter", "Tokens generated by finished requests.",
           s.generated_tokens);
    metric("ctformer_steps_total", "counter", "Generator steps (forward passes).", s.steps);
    metric("ctformer_preemptions_total", "counter",
           "Sequences preempted for KV cache space (recomputed later).", s.preemptions);
    metric("ctformer_kv_cache_blocks", "gauge", "KV cache blocks in all.", s.kv_blocks);
    metric("ctformer_kv_cache_blocks_free", "gauge", "KV cache blocks free.", s.kv_blocks_free);
    res.set_content(out, "text/plain; version=0.0.4");
  });
  server.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (res.status == 404 && res.body.empty())
      send_error(res, 404,
                 "no route " + req.method + " " + req.path +
                     "; this server has POST /v1/completions, GET /v1/models, GET /health and "
                     "GET /metrics",
                 "not_found_error");
  });
  server.set_exception_handler(
      [](const httplib::Request&, httplib::Response& res, std::exception_ptr error) {
        std::string what = "unknown error";
        try {
          std::rethrow_exception(error);
        } catch (const std::exception& e) {
          what = e.what();
        } catch (...) {
        }
        send_error(res, 500, what, "server_error");
      });

  const int bound = port == 0                         ? server.bind_to_any_port(host)
                    : server.bind_to_port(host, port) ? port
                                                      : -1;
  if (bound < 0)
    throw Error("cannot listen on " + host + ":" + std::to_string(port) +
                ": the address is not this machine's, or another process holds the port; pick "
                "another with --port (0 takes a free one)");

  std::printf("ctformer serve: %s as '%s' on http://%s:%d (POST /v1/completions%s)\n",
              description.c_str(), served_model.c_str(), host.c_str(), bound,
              api_key.empty() ? "" : "; API key required");
  std::fflush(stdout);
  server_to_stop = &server;
  const bool listened = server.listen_after_bind();
  server_to_stop = nullptr;
  if (!listened)
    throw Error("the server stopped listening on " + host + ":" + std::to_string(bound));
  std::fprintf(stderr, "ctformer serve: stopped\n");
  return 0;
}

#endif  // CTFORMER_CLI_SERVE

inline int serve_main(int argc, char** argv) {
  Arguments args(argc, argv, kServeUsage);
  if (args.printed_help()) return 0;
  const auto model_dir = args.value("--model");
  const std::string host = args.value("--host").value_or("127.0.0.1");
  const int port = args.number<int>("--port").value_or(8000);
  GeneratorOptions options;
  options.max_batch = args.number<std::int64_t>("--batch-size").value_or(64);
  const std::int64_t max_waiting = args.number<std::int64_t>("--max-waiting").value_or(1024);
  const std::string dtype_name = args.value("--dtype").value_or("fp32");
  const std::string device_name = args.value("--device").value_or("cpu");
  const auto served_name = args.value("--served-model-name");
  const char* key_variable = std::getenv("CTFORMER_API_KEY");
  const std::string api_key = args.value("--api-key").value_or(key_variable ? key_variable : "");
  const int http_threads =
      args.number<int>("--http-threads")
          .value_or(std::max<int>(16, int(std::min<std::int64_t>(2 * options.max_batch, 1024))));
  args.finish();
  if (!model_dir) args.fail("--model DIR|NAME is required");
  if (port < 0 || port > 65535) args.fail("--port must be from 0 to 65535");
  if (options.max_batch <= 0) args.fail("--batch-size must be positive");
  if (max_waiting <= 0) args.fail("--max-waiting must be positive");
  if (http_threads <= 0) args.fail("--http-threads must be positive");
  const DType dtype = parse_weight_dtype(dtype_name);
  const Device device = parse_device(device_name);
#if CTFORMER_CLI_SERVE
  serve_detail::take_stop_signals();  // before any thread starts
  const std::filesystem::path model_path = resolve_model(*model_dir);
  check_model_directory(model_path, NeedTokenizer::yes);
  const Gpt2Tokenizer tokenizer = Gpt2Tokenizer::from_directory(model_path);
  return with_gpt2(device, dtype, model_path, [&](auto& model) {
    return serve(model, tokenizer, options, max_waiting, served_name.value_or(*model_dir), host,
                 port, http_threads, api_key, device_name + " " + dtype_name);
  });
#else
  (void)dtype;
  (void)device;
  throw Error(
      "this ctformer was built without cpp-httplib, which `serve` needs; install it (Debian: "
      "apt-get install libcpp-httplib-dev, or scripts/install-deps.sh) and build again");
#endif
}

}  // namespace ctformer::cli
