// Method flow: the recorded model behind a flow program's llm tool.
#include "reason/flow.h"

#include <algorithm>
#include <chrono>

#include "tools/builtins.h"

namespace wand::reason {

Result<std::vector<llm::Completion>> RecordedModel::record(
    const std::string& prompt, const llm::GenerateOptions& opt,
    const std::function<Result<std::vector<llm::Completion>>(const llm::GenerateOptions&)>& call) {
  llm::GenerateOptions capped = opt;
  capped.max_tokens = std::min(opt.max_tokens, max_tokens_);
  auto t0 = std::chrono::steady_clock::now();
  auto r = [&] {
    std::lock_guard serial(serial_);
    return call(capped);
  }();
  double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  std::lock_guard lock(mu_);
  if (!r) {
    calls_.push_back({{"prompt", prompt}, {"error", r.error().message}, {"ms", ms}});
  } else if (!r->empty()) {
    const auto& c = r->front();
    calls_.push_back({{"prompt", prompt},
                      {"completion", c.text},
                      {"prompt_tokens", c.prompt_tokens},
                      {"completion_tokens", c.completion_tokens},
                      {"ms", ms}});
  }
  return r;
}

Result<std::vector<llm::Completion>> RecordedModel::complete(const std::string& prompt, const llm::GenerateOptions& opt) {
  return record(prompt, opt, [&](const llm::GenerateOptions& o) { return model_.complete(prompt, o); });
}

Result<std::vector<llm::Completion>> RecordedModel::chat(const std::vector<llm::Message>& messages,
                                                         const llm::GenerateOptions& opt) {
  // The llm tool sends one user turn: its text is the prompt the program wrote.
  std::string prompt = messages.empty() ? "" : messages.back().content;
  return record(prompt, opt, [&](const llm::GenerateOptions& o) { return model_.chat(messages, o); });
}

Json RecordedModel::calls() const {
  std::lock_guard lock(mu_);
  return calls_;
}

Result<tools::Registry> flow_tools(RecordedModel& model, int calls, int tokens) {
  tools::BuiltinOptions opt;
  opt.llm = &model;
  opt.llm_max_calls = calls;
  opt.llm_max_tokens = calls * tokens;  // the run's total; RecordedModel caps each call at `tokens`
  return tools::builtin_tools({"llm"}, opt);
}

}  // namespace wand::reason
