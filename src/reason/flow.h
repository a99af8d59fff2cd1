// Method flow's model in the loop (internal to src/reason): the llm tool a flow program is
// granted. It is the built-in `llm` tool (tools/builtins.h) over the solve's own backend, seen
// through a recorder that caps each call's tokens and keeps every call for the sample's record.
#pragma once
#include <functional>
#include <memory>
#include <mutex>

#include "common/json.h"
#include "llm/llm.h"
#include "tools/tools.h"

namespace wand::reason {

// The backend as one flow program sees it. Calls to `model` are serialized on `serial`, which
// every program of a batch shares (their threads and the other samples' programs may call at
// once; a local engine or a script serves one at a time).
class RecordedModel : public llm::Backend {
 public:
  RecordedModel(llm::Backend& model, std::mutex& serial, int max_tokens_per_call)
      : model_(model), serial_(serial), max_tokens_(max_tokens_per_call) {}
  Result<std::vector<llm::Completion>> complete(const std::string& prompt, const llm::GenerateOptions& opt) override;
  Result<std::vector<llm::Completion>> chat(const std::vector<llm::Message>& messages,
                                            const llm::GenerateOptions& opt) override;
  std::string id() const override { return model_.id(); }
  // The calls so far: [{"prompt", "completion", "prompt_tokens", "completion_tokens", "ms"}, or
  // {"prompt", "error"}], in the order they were served.
  Json calls() const;

 private:
  Result<std::vector<llm::Completion>> record(const std::string& prompt, const llm::GenerateOptions& opt,
                                              const std::function<Result<std::vector<llm::Completion>>(
                                                  const llm::GenerateOptions&)>& call);
  llm::Backend& model_;
  std::mutex& serial_;
  int max_tokens_;
  mutable std::mutex mu_;
  Json calls_ = Json::array();
};

// The tools one flow program is granted: `llm` over `model`, at most `calls` calls per run, each
// of at most `tokens` generated tokens (the built-in tool's budget: over it the program gets
// ToolError). `model` must outlive the run.
Result<tools::Registry> flow_tools(RecordedModel& model, int calls, int tokens);

}  // namespace wand::reason
