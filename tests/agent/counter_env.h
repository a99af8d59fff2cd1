// A small fake Environment for the agent loop's tests (the real worlds live in src/agent): a
// counter that inc() raises by one up to a limit, get() reads, and reset() sets to zero; the
// task is to make it reach a target. inc() past the limit is a blocked action (a tool error).
#pragma once
#include <fmt/core.h>

#include <memory>

#include "agent/env.h"

namespace wand::test {

class CounterEnv : public agent::Environment {
 public:
  explicit CounterEnv(int target = 3, int limit = 5) : target_(target), limit_(limit) {
    task_ = {.env = "counter", .id = "counter/test/0", .split = "test",
             .instruction = fmt::format("Make the counter reach {} and answer its value.", target), .min_steps = 1};
  }
  const agent::Task& task() const override { return task_; }
  std::string describe() const override { return fmt::format("The counter starts at 0 and cannot pass {}.", limit_); }
  tools::Registry tools() override {
    tools::Registry reg;
    auto* self = this;
    (void)reg.add({.name = "inc", .description = "Raises the counter by one.",
                   .handler = [self](const Json&, const tools::CallContext&) -> Result<Json> {
                     if (self->value_ >= self->limit_) return Error{fmt::format("the counter is at its limit ({})", self->limit_)};
                     return Json(++self->value_);
                   }, .inline_call = true});
    (void)reg.add({.name = "get", .description = "The counter's value.",
                   .handler = [self](const Json&, const tools::CallContext&) -> Result<Json> { return Json(self->value_); },
                   .inline_call = true});
    (void)reg.add({.name = "reset", .description = "Sets the counter to 0.",
                   .handler = [self](const Json&, const tools::CallContext&) -> Result<Json> {
                     self->value_ = 0;
                     return Json(nullptr);
                   }, .inline_call = true});
    return reg;
  }
  std::string observe() const override { return fmt::format("Counter(value={})", value_); }
  agent::GoalCheck check(const Json& answer) const override {
    if (value_ != target_) return {false, fmt::format("the counter is {}, not {}", value_, target_)};
    if (answer != Json(target_)) return {false, "the answer is not the counter's value"};
    return {true, ""};
  }
  std::vector<std::string> expert_steps() const override {
    std::string code;
    for (int i = 0; i < target_; ++i) code += "inc()\n";
    return {code + "final_answer(get())"};
  }
  std::vector<Json> expert_calls() const override {
    std::vector<Json> calls(target_, Json{{"name", "inc"}, {"arguments", Json::object()}});
    calls.push_back({{"name", "final_answer"}, {"arguments", {{"answer", target_}}}});
    return calls;
  }
  int value() const { return value_; }

 private:
  agent::Task task_;
  int target_, limit_;
  int value_ = 0;
};

}  // namespace wand::test
