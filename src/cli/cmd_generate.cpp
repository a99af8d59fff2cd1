#include <cstdio>

#include <fmt/core.h>

#include "cli/commands.h"
#include "cli/options.h"
#include "common/json.h"
#include "common/output.h"
#include "llm/grammar.h"
#include "llm/llm.h"

namespace wand::cli {

Command add_generate(CLI::App& app) {
  auto* cmd = app.add_subcommand("generate", "Generate text from a prompt with a model (streams to stdout)");
  struct Args {
    std::string model = default_model_spec(), prompt, system, constrain;
    llm::GenerateOptions gen;
    bool chat = false, json = false;
    llm::BackendOptions engine;  // --threads, --kv-cache
    std::vector<std::string> stop;
  };
  auto a = std::make_shared<Args>();
  a->gen.max_tokens = 128;
  cmd->add_option("prompt", a->prompt, "The prompt text")->required();
  cmd->add_option("-m,--model", a->model, "local:PATH.gguf (the embedded engine) or openai:URL/MODEL")
      ->capture_default_str();
  cmd->add_option("-n,--max-tokens", a->gen.max_tokens, "Tokens to generate at most")
      ->capture_default_str()
      ->check(number({.lo = 1, .hi = 1 << 20, .integer = true}));
  cmd->add_option("--temperature", a->gen.temperature, "0 = greedy")
      ->capture_default_str()
      ->check(number(kTemperature));
  cmd->add_option("--top-k", a->gen.top_k, "Keep the k most likely tokens (0 = off)")
      ->check(number({.lo = 0, .hi = 1 << 20, .integer = true}));
  cmd->add_option("--top-p", a->gen.top_p, "Nucleus sampling mass")->check(number({.lo = 0, .hi = 1, .lo_open = true}));
  cmd->add_option("--min-p", a->gen.min_p, "Drop tokens below this fraction of the best one's probability")
      ->check(number(kProbability));
  cmd->add_option("--repeat-penalty", a->gen.repeat_penalty, "Penalty for recently seen tokens (1 = off)")
      ->check(number({.lo = 0, .hi = 100, .lo_open = true}));
  auto* seed = cmd->add_option("--seed", a->gen.seed,
                               "Sampling seed (default: a random one, printed so the run can be repeated); sample i "
                               "of --samples draws from a seed derived from it and i")
                   ->check(number(kSeed));
  cmd->add_option("--samples", a->gen.n, "Independent samples")->check(number({.lo = 1, .hi = 1000, .integer = true}));
  // One value per occurrence: a vector option would also take the prompt after it (`--stop X "Question"`).
  cmd->add_option("--stop", a->stop, "Stop sequence (repeatable)")->allow_extra_args(false);
  add_threads_option(cmd, a->engine.threads);
  add_kv_cache_option(cmd, a->engine.kv_cache);
  cmd->add_flag("--chat", a->chat, "Treat the prompt as a user message in the model's chat format");
  cmd->add_option("--system", a->system, "System message (with --chat)")->needs("--chat");
  cmd->add_option("--constrain", a->constrain,
                  "Decode inside a GBNF grammar: python-block, pot, or a .gbnf file (embedded engine only)");
  cmd->add_flag("--json", a->json, "Print one JSON object with the texts, token counts and timing");
  return [a, seed] {
    if (!seed->count()) a->gen.seed = llm::random_seed();
    if (!a->constrain.empty()) {  // the grammar is checked before the model loads
      auto g = llm::Grammar::load(a->constrain);
      if (!g) {
        fmt::print(stderr, "wand generate: --constrain: {}\n", g.error().message);
        return kExitBadInput;
      }
      a->gen.grammar = *g;
    }
    auto backend = llm::open_backend(a->model, a->engine);
    if (!backend) {
      fmt::print(stderr, "wand generate: {}\n", backend.error().message);
      return kExitBadInput;
    }
    if (a->gen.grammar && !(*backend)->can_constrain()) {
      fmt::print(stderr, "wand generate: --constrain needs the embedded engine (--model local:PATH.gguf), got '{}'\n",
                 a->model);
      return kExitBadInput;
    }
    a->gen.stop = a->stop;
    // Several samples decode together, their pieces interleaved: stream only a single one.
    if (!a->json && a->gen.n == 1)
      a->gen.on_text = [](int index, std::string_view text) {
        return write_stdout(text).ok();  // a failed write (a closed pipe) stops generating; main() reports it
      };
    std::vector<llm::Message> messages;
    if (!a->system.empty()) messages.push_back({"system", a->system});
    messages.push_back({"user", a->prompt});
    auto out = a->chat ? (*backend)->chat(messages, a->gen) : (*backend)->complete(a->prompt, a->gen);
    if (!out) {
      fmt::print(stderr, "wand generate: {}\n", out.error().message);
      return model_error_exit_code(out.error());
    }
    if (a->json) {
      Json j = {{"model", (*backend)->id()}, {"seed", a->gen.seed}, {"choices", Json::array()}};
      for (auto& c : *out) {
        double tps = c.generate_ms > 0 ? c.completion_tokens * 1000.0 / c.generate_ms : 0;
        j["choices"].push_back({{"text", c.text},
                                {"finish_reason", c.finish_reason},
                                {"prompt_tokens", c.prompt_tokens},
                                {"completion_tokens", c.completion_tokens},
                                {"prompt_ms", c.prompt_ms},
                                {"generate_ms", c.generate_ms},
                                {"tokens_per_s", tps}});
      }
      fmt::print("{}\n", dump_text(j, 2));
    } else {
      if (a->gen.n > 1)
        for (std::size_t i = 0; i < out->size(); ++i)
          fmt::print("{}{}\n", i ? "\n" : "", (*out)[i].text);
      else
        fmt::print("\n");
      if (a->gen.temperature > 0) fmt::print(stderr, "[seed {}]\n", a->gen.seed);
      for (auto& c : *out)
        fmt::print(stderr, "[{}: {} prompt + {} generated tokens, {:.1f} tok/s, finish: {}]\n", (*backend)->id(),
                   c.prompt_tokens, c.completion_tokens,
                   c.generate_ms > 0 ? c.completion_tokens * 1000.0 / c.generate_ms : 0.0, c.finish_reason);
    }
    return kExitOk;
  };
}

}  // namespace wand::cli
