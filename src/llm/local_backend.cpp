// The embedded engine behind the Backend interface.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <mutex>
#include <numeric>
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

// The token `t` at a position whose next-token logits are `logits`: log p(t) under the model's
// distribution (before temperature and filtering, as servers report it) and the `top_n` most
// likely tokens there, most likely first (ties: the lower id).
TokenLogprob score(std::span<const float> logits, Token t, int top_n, const Tokenizer& tok) {
  float mx = *std::max_element(logits.begin(), logits.end());
  double sum = 0;
  for (float l : logits) sum += std::exp(static_cast<double>(l - mx));
  const float lse = mx + static_cast<float>(std::log(sum));
  TokenLogprob out{tok.piece(t), logits[t] - lse, {}};
  if (top_n > 0) {
    std::vector<Token> ids(logits.size());
    std::iota(ids.begin(), ids.end(), 0);
    auto n = std::min<std::size_t>(top_n, ids.size());
    std::partial_sort(ids.begin(), ids.begin() + n, ids.end(),
                      [&](Token a, Token b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); });
    for (std::size_t k = 0; k < n; ++k) out.top.push_back({tok.piece(ids[k]), logits[ids[k]] - lse});
  }
  return out;
}

// Cuts the token list so the tokens joined equal `text` (generation may have stopped inside a
// token: a stop sequence is not returned, nor what the caller stopped streaming before).
void cut_to_text(std::vector<TokenLogprob>& tokens, std::string_view text) {
  std::size_t used = 0, k = 0;
  for (; k < tokens.size() && used < text.size(); ++k) {
    auto& t = tokens[k].token;
    if (used + t.size() > text.size()) t.resize(text.size() - used);
    used += t.size();
  }
  while (k < tokens.size() && tokens[k].token.empty()) ++k;  // empty pieces (control tokens) at the cut stay
  tokens.resize(k);
}

class LocalBackend final : public Backend {
 public:
  LocalBackend(std::string id, std::shared_ptr<const Model> model, const BackendOptions& opt)
      : id_(std::move(id)), model_(model), ctx_(model, opt.context, opt.threads) {}

  std::string id() const override { return id_; }
  std::string prompt_format() override { return model_->prompt_format(); }
  bool can_constrain() const override { return true; }

  Result<std::vector<Completion>> complete(const std::string& prompt, const GenerateOptions& opt) override {
    const Tokenizer& tok = model_->tokenizer();
    // Control tokens spelled in the text ("<|im_start|>") are those tokens; the BOS added here
    // is not part of the text.
    bool bos = tok.add_bos_default();
    return run(tok.encode(prompt, bos, /*parse_special=*/true), opt, bos);
  }

  Result<std::vector<Completion>> complete_tokens(const std::vector<int32_t>& prompt, const GenerateOptions& opt) override {
    for (std::size_t i = 0; i < prompt.size(); ++i)
      if (prompt[i] < 0 || prompt[i] >= model_->config().vocab)
        return Error{fmt::format("prompt token {} is id {}, outside the vocabulary (0-{})", i, prompt[i],
                                 model_->config().vocab - 1),
                     std::string(kInvalidRequest)};
    return run(prompt, opt, false);
  }

  Result<std::vector<Completion>> chat(const std::vector<Message>& messages, const GenerateOptions& opt) override {
    auto prompt = render_chat(messages);
    if (!prompt) return prompt.error();
    return complete(*prompt, opt);
  }

 private:
  // A model trained by wand records its prompt format: it answers one question, so the chat is
  // that question in the format. Otherwise ChatML when the vocabulary has its markers, else
  // plain "Role: text" turns.
  Result<std::string> render_chat(const std::vector<Message>& messages) const {
    if (const auto& format = model_->prompt_format(); !format.empty()) {
      if (messages.size() != 1 || messages[0].role != "user")
        return Error{fmt::format("messages: this model is not a chat model; it answers one question in its prompt "
                                 "format (wand.prompt_format = {}), so it takes exactly one user message, got {}",
                                 format, describe_roles(messages)),
                     std::string(kInvalidRequest)};
      // A blank question would still be answered (with a training template's program).
      if (messages[0].content.find_first_not_of(" \t\r\n") == std::string::npos)
        return Error{"messages[0].content is empty: the model answers a question", std::string(kInvalidRequest)};
      auto prompt = format_question(format, messages[0].content);
      if (!prompt) return Error{prompt.error().message, std::string(kInvalidRequest)};
      return prompt;
    }
    bool chatml = model_->tokenizer().find("<|im_start|>") >= 0;
    std::string s;
    for (auto& m : messages)
      s += chatml ? fmt::format("<|im_start|>{}\n{}<|im_end|>\n", m.role, m.content)
                  : fmt::format("{}{}: {}\n", char(std::toupper(m.role[0])), m.role.substr(1), m.content);
    s += chatml ? "<|im_start|>assistant\n" : "Assistant:";
    return s;
  }

  static std::string describe_roles(const std::vector<Message>& messages) {
    std::string s;
    for (auto& m : messages) s += (s.empty() ? "" : ", ") + m.role;
    return fmt::format("{} ({})", messages.size(), s);
  }

  // `bos_added`: prompt[0] is the BOS this backend put there, not a token of the caller's text.
  Result<std::vector<Completion>> run(const std::vector<Token>& prompt, const GenerateOptions& opt, bool bos_added) {
    std::lock_guard lock(mu_);  // one context: requests on this backend take turns
    if (prompt.empty()) return Error{"the prompt is empty", std::string(kInvalidRequest)};
    if (static_cast<int>(prompt.size()) > ctx_.capacity())
      return Error{fmt::format("the prompt has {} tokens; the model's context holds {}", prompt.size(), ctx_.capacity()),
                   std::string(kContextLengthExceeded)};
    const Tokenizer& tok = model_->tokenizer();
    const int top_n = opt.logprobs ? opt.top_logprobs : 0;
    std::vector<TokenLogprob> scored_prompt;
    std::vector<Completion> out;
    std::optional<GrammarConstraint> grammar;
    if (opt.grammar) grammar.emplace(opt.grammar, tok);
    for (int i = 0; i < std::max(1, opt.n); ++i) {
      Completion c;
      c.prompt_tokens = static_cast<int>(prompt.size());
      auto t0 = Clock::now();
      // Reuse the cached prefix shared with the previous request (the same prompt for n > 1);
      // scoring the prompt needs the logits of every position, so its first pass runs it all.
      bool score_prompt = opt.echo && i == 0;
      std::size_t keep = 0;
      while (!score_prompt && keep < cached_.size() && keep + 1 < prompt.size() && cached_[keep] == prompt[keep]) ++keep;
      ctx_.rewind(static_cast<int>(keep));
      cached_.assign(prompt.begin(), prompt.end());
      auto logits = ctx_.eval(std::span<const Token>(prompt).subspan(keep), score_prompt);
      if (!logits) return logits.error();
      if (score_prompt) {
        const std::size_t vocab = model_->config().vocab;
        for (std::size_t k = 0; k < prompt.size(); ++k) {
          TokenLogprob t = k == 0 ? TokenLogprob{tok.piece(prompt[0]), std::nullopt, {}}
                                  : score(logits->subspan((k - 1) * vocab, vocab), prompt[k], top_n, tok);
          // Control tokens the caller spelled in the text are part of it; an added BOS is not.
          if (k > 0 || !bos_added) t.token = tok.piece(prompt[k], /*special=*/true);
          scored_prompt.push_back(std::move(t));
        }
        *logits = logits->subspan((prompt.size() - 1) * vocab, vocab);
      }
      c.prompt_logprobs = scored_prompt;
      c.prompt_ms = ms_since(t0);
      auto t1 = Clock::now();
      Sampler sampler(
          {opt.temperature, opt.top_k, opt.top_p, opt.min_p, opt.repeat_penalty, 64, sample_seed(opt.seed, i)});
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
        if (opt.logprobs) c.logprobs.push_back(score(*logits, t, top_n, tok));
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
      if (opt.logprobs) cut_to_text(c.logprobs, c.text);
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
