// The embedded engine behind the Backend interface.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <mutex>
#include <numeric>
#include <optional>

#include <fmt/core.h>

#include "common/text.h"
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
  LocalBackend(std::string id, std::shared_ptr<const Model> model, const BackendOptions& opt, CacheType cache)
      : id_(std::move(id)), model_(model), ctx_(model, opt.context, opt.threads, cache) {}

  std::string id() const override { return id_; }
  std::string prompt_format() override { return model_->prompt_format(); }
  bool can_constrain() const override { return true; }
  int context_length() const override { return static_cast<int>(ctx_.capacity()); }

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
      if (is_blank(messages[0].content))
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

  // One sample being decoded: sequence `i` of the context.
  struct Sample {
    Completion c;
    Sampler sampler;
    StopMatcher stop;
    std::vector<Token> history;
    std::optional<GrammarConstraint> grammar;
    std::vector<float> logits;  // its next token's
    bool done = false;
  };

  // `bos_added`: prompt[0] is the BOS this backend put there, not a token of the caller's text.
  // The prompt is prefilled once (reusing the cached prefix shared with the previous request),
  // its cache copied into one sequence per sample, and the samples decoded in batches (up to
  // batch_size()): each step is one forward pass over every unfinished sample's next token, and
  // a sample that finishes leaves the batch. The engine's results do not depend on the batch,
  // so sample i is what a request for sample i alone, seeded sample_seed(seed, i), gives.
  Result<std::vector<Completion>> run(const std::vector<Token>& prompt, const GenerateOptions& opt, bool bos_added) {
    std::lock_guard lock(mu_);  // one context: requests on this backend take turns
    if (prompt.empty()) return Error{"the prompt is empty", std::string(kInvalidRequest)};
    if (static_cast<int>(prompt.size()) > ctx_.capacity())
      return Error{fmt::format("the prompt has {} tokens; the model's context holds {}", prompt.size(), ctx_.capacity()),
                   std::string(kContextLengthExceeded)};
    const Tokenizer& tok = model_->tokenizer();
    const int top_n = opt.logprobs ? opt.top_logprobs : 0;
    const int n = std::max(1, opt.n);

    auto t0 = Clock::now();
    // Scoring the prompt needs the logits of every position, so then its pass runs it all.
    std::size_t keep = 0;
    while (!opt.echo && keep < cached_.size() && keep + 1 < prompt.size() && cached_[keep] == prompt[keep]) ++keep;
    ctx_.set_sequences(1);
    ctx_.rewind(static_cast<int>(keep));
    cached_.assign(prompt.begin(), prompt.end());
    auto logits = ctx_.eval(std::span<const Token>(prompt).subspan(keep), opt.echo);
    if (!logits) return logits.error();
    std::vector<TokenLogprob> scored_prompt;
    if (opt.echo) {
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
    const double prompt_ms = ms_since(t0);
    const std::vector<float> prompt_logits(logits->begin(), logits->end());
    const int P = static_cast<int>(prompt.size());

    std::vector<Sample> samples;
    samples.reserve(n);
    for (int i = 0; i < n; ++i) {
      const SamplingParams sp{opt.temperature, opt.top_k, opt.top_p, opt.min_p, opt.repeat_penalty, 64,
                              sample_seed(opt.seed, i)};
      Sample& s = samples.emplace_back(Sample{{}, Sampler(sp), StopMatcher(opt.stop), prompt, std::nullopt, {}});
      s.c.prompt_tokens = P;
      s.c.prompt_logprobs = scored_prompt;
      s.c.prompt_ms = prompt_ms;
      s.c.finish_reason = "length";
      if (opt.grammar) s.grammar.emplace(i == 0 ? GrammarConstraint(opt.grammar, tok) : *samples[0].grammar);
    }
    // Batches of samples, each sample in a sequence that starts as a copy of the prompt's cache
    // (sequence 0, rewound to the prompt between batches).
    const int batch = batch_size(n);
    std::vector<int> seqs;
    std::vector<Token> next;
    for (int g0 = 0; g0 < n; g0 += batch) {
      const int g1 = std::min(n, g0 + batch);
      ctx_.rewind(P);
      cached_.resize(P);
      ctx_.set_sequences(g1 - g0);
      for (int q = 1; q < g1 - g0; ++q) ctx_.copy_sequence(0, q);
      for (int i = g0; i < g1; ++i) samples[i].logits = prompt_logits;
      auto t1 = Clock::now();
      while (true) {
        if (cancelled(opt)) return Error{"the request was ended by its caller", std::string(kCancelled)};
        seqs.clear(), next.clear();
        for (int i = g0; i < g1; ++i) {
          auto r = step(samples[i], i, i - g0, opt, top_n);
          if (!r) return r.error();
          if (*r) {
            seqs.push_back(i - g0);
            next.push_back(samples[i].history.back());
          } else if (!samples[i].done) {
            samples[i].done = true;
            samples[i].c.generate_ms = ms_since(t1);
          }
        }
        if (seqs.empty()) break;
        auto out = ctx_.decode(seqs, next);
        if (!out) return out.error();
        const std::size_t vocab = model_->config().vocab;
        for (std::size_t k = 0; k < seqs.size(); ++k) {
          auto row = out->subspan(k * vocab, vocab);
          samples[g0 + seqs[k]].logits.assign(row.begin(), row.end());
        }
        // Sequence 0 is the cache the next request's prefix reuse reads.
        if (seqs.front() == 0) cached_.push_back(next.front());
      }
    }
    std::vector<Completion> completions;
    for (auto& s : samples) completions.push_back(std::move(s.c));
    return completions;
  }

  // How many samples decode together: up to 16 (more gain nothing on the shipped model: the
  // matrix tiles are full at 4 tokens), and no more key/value caches than 1 GiB holds (a 125M
  // model with a 2,048-token context needs 150 MB per sequence).
  int batch_size(int n) const {
    const auto& c = model_->config();
    const double per_sequence = 2.0 * sizeof(float) * c.layers * ctx_.capacity() * c.kv_heads * c.head_dim;
    return std::clamp(static_cast<int>(double(1 << 30) / per_sequence), 1, std::min(n, 16));
  }

  // Picks sample i (in sequence `seq`)'s next token from its logits and emits its text. True when the token goes
  // into the next decoding step; false when the sample is finished (end token, stop sequence,
  // max_tokens, the caller's on_text, a full context), its text then flushed.
  Result<bool> step(Sample& s, int i, int seq, const GenerateOptions& opt, int top_n) {
    if (s.done) return false;
    const Tokenizer& tok = model_->tokenizer();
    Completion& c = s.c;
    auto emit = [&](const std::string& text) {
      if (text.empty()) return true;
      c.text += text;
      return !opt.on_text || opt.on_text(i, text);
    };
    auto finish = [&](const char* reason) {
      if (reason) c.finish_reason = reason;
      emit(s.stop.flush());
      if (opt.logprobs) cut_to_text(c.logprobs, c.text);
      return false;
    };
    if (c.completion_tokens >= opt.max_tokens) return finish(nullptr);
    Token t;
    if (s.grammar) {
      auto g = s.grammar->sample(s.sampler, s.logits, s.history, opt.temperature <= 0.f);
      if (!g) return g.error();
      t = *g;
    } else {
      t = s.sampler.sample(s.logits, s.history);
    }
    if (tok.is_eog(t)) return finish("stop");
    ++c.completion_tokens;
    s.history.push_back(t);
    if (opt.logprobs) c.logprobs.push_back(score(s.logits, t, top_n, tok));
    if (!emit(s.stop.feed(tok.piece(t))) || s.stop.stopped()) return finish("stop");
    if (ctx_.position(seq) >= ctx_.capacity()) return finish(nullptr);
    return true;
  }

  std::string id_;
  std::shared_ptr<const Model> model_;
  Context ctx_;
  std::vector<Token> cached_;  // tokens whose keys/values the context holds
  std::mutex mu_;
};

}  // namespace

Result<std::unique_ptr<Backend>> open_local_backend(const std::string& path, const BackendOptions& opt) {
  auto cache = parse_cache_type(opt.kv_cache);  // before the model loads: a bad value fails fast
  if (!cache) return cache.error();
  auto model = Model::load(path);
  if (!model) return model.error();
  if (*cache == CacheType::q8 && (*model)->config().head_dim % 4 != 0)
    return Error{fmt::format("a Q8 KV cache needs heads of a multiple of 4 dimensions; {}'s have {}", path,
                             (*model)->config().head_dim)};
  return std::unique_ptr<Backend>(new LocalBackend("local:" + path, *model, opt, *cache));
}

}  // namespace wand::llm
