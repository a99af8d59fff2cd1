// A scripted llm::Backend for the methods' tests (reason, codegen): canned completions, in order,
// and a record of what each call asked.
#pragma once
#include <deque>
#include <map>
#include <string>
#include <vector>

#include "llm/llm.h"

namespace wand::test {

struct Call {
  std::string prompt;                  // complete()
  std::vector<llm::Message> messages;  // chat()
  llm::GenerateOptions opt;
  // The prompt, or the chat turns as "role: content" lines: what a test searches.
  std::string text() const {
    if (!prompt.empty()) return prompt;
    std::string s;
    for (auto& m : messages) s += m.role + ": " + m.content + "\n";
    return s;
  }
};

class ScriptedBackend : public llm::Backend {
 public:
  // Each call takes the next batch; a batch shorter than n repeats its last completion.
  std::deque<std::vector<llm::Completion>> script;
  std::vector<Call> calls;
  std::map<std::size_t, Error> errors;  // call index (0-based) -> the error it returns instead

  Result<std::vector<llm::Completion>> complete(const std::string& prompt, const llm::GenerateOptions& opt) override {
    calls.push_back({prompt, {}, opt});
    return next(opt.n);
  }
  Result<std::vector<llm::Completion>> chat(const std::vector<llm::Message>& messages,
                                            const llm::GenerateOptions& opt) override {
    calls.push_back({"", messages, opt});
    return next(opt.n);
  }
  std::string id() const override { return "scripted"; }
  std::string prompt_format() override { return format; }
  bool can_constrain() const override { return constrains; }
  int context_length() const override { return context; }
  std::string format;       // what it says it is (llm::Backend::prompt_format)
  bool constrains = false;  // whether it takes a grammar
  int context = 0;          // the context it says it holds (llm::Backend::context_length); 0: unknown

  // The next batch: these texts, with these mean token log-probabilities (optional).
  void add(std::vector<std::string> texts, std::vector<double> mean_logprobs = {}) {
    std::vector<llm::Completion> batch;
    for (std::size_t i = 0; i < texts.size(); ++i) {
      llm::Completion c;
      c.text = texts[i];
      c.finish_reason = "stop";
      if (i < mean_logprobs.size()) c.logprobs = {{"a", float(mean_logprobs[i])}, {"b", float(mean_logprobs[i])}};
      batch.push_back(c);
    }
    script.push_back(batch);
  }

 private:
  Result<std::vector<llm::Completion>> next(int n) {
    if (auto e = errors.find(calls.size() - 1); e != errors.end()) return e->second;
    if (script.empty()) return Error{"the script has no more completions"};
    auto batch = script.front();
    script.pop_front();
    while (static_cast<int>(batch.size()) < n) batch.push_back(batch.back());
    batch.resize(n);
    return batch;
  }
};

}  // namespace wand::test
