// The embedded engine behind the Backend interface.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <mutex>
#include <optional>

#include <fmt/core.h>

#include "llm/backends.h"
#include "llm/grammar.h"
#include "llm/model.h"
#include "llm/sampler.h"

namespace wand::llm {

namespace {

using Clock = std::chrono::steady_clock;
double ms_since(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }

// log p(t) under the model's distribution (before temperature and filtering), as servers report it.
float log_softmax_at(std::span<const float> logits, Token t) {
  float mx = *std::max_element(logits.begin(), logits.end());
  double sum = 0;
  for (float l : logits) sum += std::exp(static_cast<double>(l - mx));
  return static_cast<float>(logits[t] - mx - std::log(sum));
}

class LocalBackend final : public Backend {
 public:
  LocalBackend(std::string id, std::shared_ptr<const Model> model, const BackendOptions& opt)
      : id_(std::move(id)), model_(model), ctx_(model, opt.context, opt.threads) {}

  std::string id() const override { return id_; }

  Result<std::vector<Completion>> complete(const std::string& prompt, const GenerateOptions& opt) override {
    const Tokenizer& tok = model_->tokenizer();
    return run(tok.encode(prompt, tok.add_bos_default(), /*parse_special=*/true), opt);
  }

  Result<std::vector<Completion>> chat(const std::vector<Message>& messages, const GenerateOptions& opt) override {
    return complete(render_chat(messages), opt);
  }

 private:
  // ChatML when the vocabulary has its markers, else plain "Role: text" turns.
  std::string render_chat(const std::vector<Message>& messages) const {
    bool chatml = model_->tokenizer().find("<|im_start|>") >= 0;
    std::string s;
    for (auto& m : messages)
      s += chatml ? fmt::format("<|im_start|>{}\n{}<|im_end|>\n", m.role, m.content)
                  : fmt::format("{}{}: {}\n", char(std::toupper(m.role[0])), m.role.substr(1), m.content);
    s += chatml ? "<|im_start|>assistant\n" : "Assistant:";
    return s;
  }

  Result<std::vector<Completion>> run(const std::vector<Token>& prompt, const GenerateOptions& opt) {
    std::lock_guard lock(mu_);  // one context: requests on this backend take turns
    if (prompt.empty()) return Error{"the prompt is empty"};
    if (static_cast<int>(prompt.size()) >= ctx_.capacity())
      return Error{fmt::format("the prompt has {} tokens; the context holds {}", prompt.size(), ctx_.capacity())};
    const Tokenizer& tok = model_->tokenizer();
    std::vector<Completion> out;
    std::optional<GrammarConstraint> grammar;
    if (opt.grammar) grammar.emplace(opt.grammar, tok);
    for (int i = 0; i < std::max(1, opt.n); ++i) {
      Completion c;
      c.prompt_tokens = static_cast<int>(prompt.size());
      auto t0 = Clock::now();
      // Reuse the cached prefix shared with the previous request (the same prompt for n > 1).
      std::size_t keep = 0;
      while (keep < cached_.size() && keep + 1 < prompt.size() && cached_[keep] == prompt[keep]) ++keep;
      ctx_.rewind(static_cast<int>(keep));
      cached_.assign(prompt.begin(), prompt.end());
      auto logits = ctx_.eval(std::span<const Token>(prompt).subspan(keep));
      if (!logits) return logits.error();
      c.prompt_ms = ms_since(t0);
      auto t1 = Clock::now();
      Sampler sampler({opt.temperature, opt.top_k, opt.top_p, opt.min_p, opt.repeat_penalty, 64, opt.seed + i});
      StopMatcher stop(opt.stop);
      std::vector<Token> history = prompt;
      if (grammar) grammar->restart();
      c.finish_reason = "length";
      auto emit = [&](const std::string& text) {
        if (text.empty()) return true;
        c.text += text;
        return !opt.on_text || opt.on_text(i, text);
      };
      while (c.completion_tokens < opt.max_tokens) {
        Token t;
        if (grammar) {
          auto g = grammar->sample(sampler, *logits, history, opt.temperature <= 0.f);
          if (!g) return g.error();
          t = *g;
        } else {
          t = sampler.sample(*logits, history);
        }
        if (tok.is_eog(t)) {
          c.finish_reason = "stop";
          break;
        }
        ++c.completion_tokens;
        history.push_back(t);
        if (opt.logprobs) c.logprobs.push_back({tok.piece(t), log_softmax_at(*logits, t)});
        if (!emit(stop.feed(tok.piece(t))) || stop.stopped()) {
          c.finish_reason = "stop";
          break;
        }
        if (ctx_.position() >= ctx_.capacity()) break;
        cached_.push_back(t);
        logits = ctx_.eval(std::span<const Token>(&t, 1));
        if (!logits) return logits.error();
      }
      emit(stop.flush());
      c.generate_ms = ms_since(t1);
      out.push_back(std::move(c));
    }
    return out;
  }

  std::string id_;
  std::shared_ptr<const Model> model_;
  Context ctx_;
  std::vector<Token> cached_;  // tokens whose keys/values the context holds
  std::mutex mu_;
};

}  // namespace

Result<std::unique_ptr<Backend>> open_local_backend(const std::string& path, const BackendOptions& opt) {
  auto model = Model::load(path);
  if (!model) return model.error();
  return std::unique_ptr<Backend>(new LocalBackend("local:" + path, *model, opt));
}

}  // namespace wand::llm
