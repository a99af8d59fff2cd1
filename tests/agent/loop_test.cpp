// The CodeAct loop (src/agent/agent.h) with scripted models and the real sandbox: the final
// answer, each budget, errors as observations, stuck detection, re-planning, condensation of a
// long run, the compact completion format, environments, and trajectories in the store.
#include <fmt/core.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <sstream>
#include <thread>

#include "agent/agent.h"
#include "agent/expert.h"
#include "agent/record.h"
#include "agent/skills.h"
#include "agent/worlds.h"
#include "counter_env.h"
#include "scripted_backend.h"
#include "support.h"

namespace wand::test {
namespace {

namespace fs = std::filesystem;

std::string act(const std::string& code, const std::string& thought = "Next step.") {
  return thought + "\n```python\n" + code + "\n```";
}

agent::AgentTask task(const std::string& instruction) { return {.instruction = instruction}; }

agent::AgentResult run(ScriptedBackend& m, const agent::AgentTask& t, agent::AgentConfig c = {},
                       const agent::RunHooks& hooks = {}) {
  auto r = agent::run_agent(m, shared_sandbox(), t, c, hooks);
  EXPECT_TRUE(r) << (r ? "" : r.error().message);
  return r ? std::move(*r) : agent::AgentResult{};
}

TEST(AgentLoop, FinalAnswerEndsTheRunWithItsValue) {
  ScriptedBackend m;
  m.add({act("primes = [n for n in range(2, 100) if all(n % d for d in range(2, n))]\nfinal_answer(len(primes))",
             "Count them.")});
  auto r = run(m, task("How many primes are below 100?"));
  EXPECT_EQ(r.end_reason, agent::kEndFinalAnswer);
  ASSERT_TRUE(r.final_answer);
  EXPECT_EQ(*r.final_answer, Json(25));
  ASSERT_EQ(r.steps.size(), 1u);
  EXPECT_EQ(r.steps[0].thought, "Count them.");
  EXPECT_NE(r.steps[0].observation.find("Final answer: 25"), std::string::npos);
  EXPECT_TRUE(r.success());
  // The system prompt tells the model about final_answer and the task.
  EXPECT_NE(m.calls[0].text().find("def final_answer(answer)"), std::string::npos);
  EXPECT_NE(m.calls[0].text().find("How many primes are below 100?"), std::string::npos);
}

TEST(AgentLoop, ObservationsCarryOutputValueAndErrorsWithTheirLine) {
  ScriptedBackend m;
  m.add({act("x = 6\nprint('six')\nx * 7")});
  m.add({act("y = x + 1\nz = undefined_name + 1")});
  m.add({act("final_answer(y)")});
  auto r = run(m, task("Play with numbers."));
  ASSERT_EQ(r.steps.size(), 3u);
  EXPECT_EQ(r.steps[0].observation, "six\n42");
  ASSERT_TRUE(r.steps[0].value);
  EXPECT_EQ(*r.steps[0].value, Json("42"));
  EXPECT_NE(r.steps[1].error.find("NameError raised at line 2: `z = undefined_name + 1`"), std::string::npos)
      << r.steps[1].error;
  EXPECT_NE(r.steps[1].observation.find("Error: NameError"), std::string::npos);
  // The error went back to the model as the next prompt's observation; the session kept y.
  EXPECT_NE(m.calls[2].text().find("NameError raised at line 2"), std::string::npos);
  ASSERT_TRUE(r.final_answer);
  EXPECT_EQ(*r.final_answer, Json(7));
}

// Bytes that are not UTF-8, in the model's code, the task or a program's output, are replaced
// (U+FFFD), never an exception that ends wand.
TEST(AgentLoop, BytesThatAreNotUtf8DoNotEndTheRun) {
  ScriptedBackend m;
  m.add({act("import sys\nsys.stdout.buffer.write(b'bad \\xff\\xfe bytes\\n')\nnote = 'caf\xe9'")});
  m.add({act("final_answer(len(note))")});
  auto r = run(m, task("Write bytes \xff."));
  ASSERT_EQ(r.steps.size(), 2u);
  EXPECT_NE(r.steps[0].observation.find("bad "), std::string::npos) << r.steps[0].observation;
  ASSERT_TRUE(r.final_answer);
  EXPECT_EQ(*r.final_answer, Json(4)) << "the byte became one replacement character";
}

// A lone surrogate ("\ud800" in Python, what os.fsdecode makes of an undecodable byte) is not
// valid Unicode, so the bridge refuses it; the session writes it as its escape in the step's error
// and in the final answer instead of failing the step with an error of its own.
TEST(AgentLoop, ALoneSurrogateIsWrittenAsItsEscape) {
  ScriptedBackend m;
  m.add({act("raise ValueError('bad \\ud800 name')")});
  m.add({act("final_answer('x\\udcff')")});
  auto r = run(m, task("Answer."));
  ASSERT_EQ(r.steps.size(), 2u);
  EXPECT_NE(r.steps[0].observation.find("ValueError raised at line 1"), std::string::npos) << r.steps[0].observation;
  EXPECT_NE(r.steps[0].observation.find(": bad \\ud800 name."), std::string::npos) << r.steps[0].observation;
  EXPECT_EQ(r.end_reason, agent::kEndFinalAnswer) << r.end_detail;
  ASSERT_TRUE(r.final_answer);
  EXPECT_EQ(*r.final_answer, Json("x\\udcff"));
}

TEST(AgentLoop, FinalAnswerCaughtByTheProgramStillEnds) {
  ScriptedBackend m;
  m.add({act("try:\n    final_answer('done')\nexcept:\n    pass\nprint('after')")});
  auto r = run(m, task("Say done."));
  EXPECT_EQ(r.end_reason, agent::kEndFinalAnswer);
  EXPECT_EQ(*r.final_answer, Json("done"));
}

TEST(AgentLoop, StepBudgetEndsTheRun) {
  ScriptedBackend m;
  for (int i = 0; i < 5; ++i) m.add({act(fmt::format("print({})", i))});
  auto r = run(m, task("Count."), {.max_steps = 3});
  EXPECT_EQ(r.end_reason, agent::kEndMaxSteps);
  EXPECT_EQ(r.actions, 3);
  EXPECT_FALSE(r.final_answer);
  EXPECT_FALSE(r.success());
  EXPECT_NE(r.end_detail.find("--max-steps 3"), std::string::npos);
}

TEST(AgentLoop, TokenBudgetEndsTheRun) {
  ScriptedBackend m;
  for (int i = 0; i < 5; ++i) {
    llm::Completion c;
    c.text = act(fmt::format("print({})", i));
    c.finish_reason = "stop";
    c.prompt_tokens = 90;
    c.completion_tokens = 10;
    m.script.push_back({c});
  }
  auto r = run(m, task("Count."), {.max_tokens = 250});
  EXPECT_EQ(r.end_reason, agent::kEndMaxTokens);
  EXPECT_EQ(r.actions, 3);  // 100, 200, then 300 >= 250 stops it
  EXPECT_EQ(r.prompt_tokens + r.completion_tokens, 300);
  // Each generation may only use what is left of the budget.
  EXPECT_EQ(m.calls[2].opt.max_tokens, 50);
}

TEST(AgentLoop, TimeBudgetEndsTheRun) {
  ScriptedBackend m;
  for (int i = 0; i < 5; ++i) m.add({act("import time\ntime.sleep(0.6)")});
  auto r = run(m, task("Wait."), {.max_wall_s = 1});
  EXPECT_EQ(r.end_reason, agent::kEndMaxTime);
  EXPECT_LE(r.actions, 2);
}

// A model call that hangs is ended by the run's time budget or a signal: the loop gives each
// call the deadline and the stop flag, and a call they ended is max_time or interrupted.
TEST(AgentLoop, TheBudgetAndASignalEndAModelCallInProgress) {
  ScriptedBackend m;
  m.errors[0] = Error{"ended", std::string(llm::kCancelled)};
  auto t0 = std::chrono::steady_clock::now();
  auto r = run(m, task("Anything."), {.max_wall_s = 30});
  EXPECT_EQ(r.end_reason, agent::kEndMaxTime);
  ASSERT_EQ(m.calls.size(), 1u);
  auto budget = std::chrono::duration<double>(m.calls[0].opt.deadline - t0).count();
  EXPECT_NEAR(budget, 30.0, 1.0);

  ScriptedBackend s;
  s.errors[0] = Error{"ended", std::string(llm::kCancelled)};
  std::atomic<bool> stop{true};
  agent::RunHooks hooks;
  hooks.stop = &stop;
  auto i = run(s, task("Anything."), {}, hooks);
  EXPECT_EQ(i.end_reason, agent::kEndInterrupted);
  ASSERT_EQ(s.calls.size(), 1u);
  EXPECT_EQ(s.calls[0].opt.cancel, &stop);
}

// A signal while a step's code runs ends the block at once (not after its timeout) and the run
// as interrupted.
TEST(AgentLoop, ASignalEndsARunningBlock) {
  ScriptedBackend m;
  m.add({act("import time\ntime.sleep(25)")});
  std::atomic<bool> stop{false};
  agent::RunHooks hooks;
  hooks.stop = &stop;
  std::thread signal([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    stop = true;
  });
  auto t0 = std::chrono::steady_clock::now();
  auto r = run(m, task("Wait."), {}, hooks);
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  signal.join();
  EXPECT_EQ(r.end_reason, agent::kEndInterrupted);
  EXPECT_LT(s, 10) << "the block ran to its end";
}

// A model that finds the fitted prompt too long (the token estimate ran low) is asked again with
// it fitted tighter, not given up on.
TEST(AgentLoop, APromptTheModelFindsTooLongIsFittedAgain) {
  ScriptedBackend m;
  m.errors[0] = Error{"the prompt has 528 tokens; the model's context holds 512", std::string(llm::kContextLengthExceeded)};
  m.add({act("final_answer(3)")});
  auto r = run(m, task("Three."));
  EXPECT_EQ(r.end_reason, agent::kEndFinalAnswer) << r.end_detail;
  ASSERT_TRUE(r.final_answer);
  EXPECT_EQ(*r.final_answer, Json(3));
  EXPECT_EQ(m.calls.size(), 2u);
}

TEST(AgentLoop, ModelErrorIsAnEndReason) {
  ScriptedBackend m;
  m.add({act("x = 1")});
  m.errors[1] = Error{"connection refused"};
  auto r = run(m, task("Anything."));
  EXPECT_EQ(r.end_reason, agent::kEndModelError);
  EXPECT_NE(r.end_detail.find("connection refused"), std::string::npos);
  EXPECT_EQ(r.actions, 1);
}

TEST(AgentLoop, AStepThatTimesOutRestartsTheSession) {
  ScriptedBackend m;
  m.add({act("a = 5\nwhile True:\n    pass")});
  m.add({act("final_answer('a' in globals())")});
  agent::AgentConfig c;
  c.step_limits.timeout_s = 1;
  auto r = run(m, task("Loop."), c);
  ASSERT_EQ(r.steps.size(), 2u);
  EXPECT_NE(r.steps[0].error.find("time limit"), std::string::npos) << r.steps[0].error;
  EXPECT_NE(r.steps[0].error.find("session was restarted"), std::string::npos);
  ASSERT_TRUE(r.final_answer);
  EXPECT_EQ(*r.final_answer, Json(false));  // a fresh session: `a` is gone
}

TEST(AgentLoop, NoCodeIsSaidAndCounts) {
  ScriptedBackend m;
  m.add({"I think the answer is 4."});
  m.add({act("final_answer(4)")});
  auto r = run(m, task("2+2?"));
  ASSERT_EQ(r.steps.size(), 2u);
  EXPECT_NE(r.steps[0].error.find("No code block"), std::string::npos);
  EXPECT_NE(m.calls[1].text().find("No code block"), std::string::npos);
  EXPECT_EQ(*r.final_answer, Json(4));
}

TEST(AgentLoop, RepeatedCodeReplansThenStopsAsStuck) {
  ScriptedBackend m;
  for (int i = 0; i < 3; ++i) m.add({act("print('same')")});
  m.add({"1. Try something else."});  // the re-plan
  for (int i = 0; i < 3; ++i) m.add({act("print('same')")});
  auto r = run(m, task("Do it."), {.max_steps = 20});
  EXPECT_EQ(r.end_reason, agent::kEndStuck);
  EXPECT_NE(r.end_detail.find("the same code 3 times in a row, also after re-planning"), std::string::npos)
      << r.end_detail;
  ASSERT_EQ(r.steps.size(), 7u);
  EXPECT_EQ(r.steps[3].kind, "replan");
  EXPECT_EQ(r.plan, "1. Try something else.");
  // The re-plan request says why, and the plan is in the next prompt.
  EXPECT_NE(m.calls[3].text().find("the same code 3 times in a row"), std::string::npos);
  EXPECT_NE(m.calls[4].text().find("1. Try something else."), std::string::npos);
}

TEST(AgentLoop, RepeatedErrorReplans) {
  ScriptedBackend m;
  for (int i = 0; i < 3; ++i) m.add({act(fmt::format("v = {}\nraise ValueError('bad input')", i))});
  m.add({"1. Check the input first."});
  m.add({act("final_answer('ok')")});
  auto r = run(m, task("Do it."));
  EXPECT_EQ(r.end_reason, agent::kEndFinalAnswer);
  ASSERT_EQ(r.steps.size(), 5u);
  EXPECT_EQ(r.steps[3].kind, "replan");
  EXPECT_NE(r.steps[3].thought.find("the same error 3 times in a row"), std::string::npos) << r.steps[3].thought;
}

TEST(AgentLoop, PlanFirstAndReplanAfterTwoFailures) {
  ScriptedBackend m;
  m.add({"1. Compute.\n2. Answer."});
  m.add({act("1 / 0")});
  m.add({act("int('x')")});
  m.add({"1. Compute without dividing by zero.\n2. Answer."});
  m.add({act("final_answer(1)")});
  auto r = run(m, task("Compute."), {.plan = true});
  ASSERT_EQ(r.steps.size(), 5u);
  EXPECT_EQ(r.steps[0].kind, "plan");
  EXPECT_EQ(r.steps[3].kind, "replan");
  EXPECT_NE(r.steps[3].thought.find("the last 2 steps failed"), std::string::npos);
  EXPECT_EQ(r.actions, 3);
  EXPECT_EQ(r.end_reason, agent::kEndFinalAnswer);
  EXPECT_NE(m.calls[0].text().find("numbered plan"), std::string::npos);
  EXPECT_NE(m.calls[1].text().find("1. Compute.\n2. Answer."), std::string::npos);
}

TEST(AgentLoop, BlockedActionReplansWithPlanning) {
  CounterEnv env(3, 1);  // inc() is blocked after the first
  auto t = agent::task_from_environment(env);
  ASSERT_TRUE(t);
  ScriptedBackend m;
  m.add({"1. inc three times."});
  m.add({act("inc()\ninc()")});
  m.add({"1. The counter cannot pass 1; answer what it is."});
  m.add({act("final_answer(get())")});
  auto r = run(m, *t, {.plan = true}, {.env = &env});
  ASSERT_EQ(r.steps.size(), 4u);
  EXPECT_EQ(r.steps[2].kind, "replan");
  EXPECT_NE(r.steps[2].thought.find("an action was blocked"), std::string::npos);
  EXPECT_NE(r.steps[1].error.find("ToolError raised at line 2: `inc()`: tool 'inc': the counter is at its limit (1)"),
            std::string::npos)
      << r.steps[1].error;
  ASSERT_TRUE(r.check);
  EXPECT_FALSE(r.check->success);
  EXPECT_EQ(r.check->reason, "the counter is 1, not 3");
}

TEST(AgentLoop, EnvironmentToolsStateAndGoalCheck) {
  CounterEnv env(3);
  auto t = agent::task_from_environment(env);
  ASSERT_TRUE(t);
  ScriptedBackend m;
  m.add({act(env.expert_steps()[0], "Raise it three times.")});
  auto r = run(m, *t, {}, {.env = &env});
  EXPECT_EQ(r.end_reason, agent::kEndFinalAnswer);
  ASSERT_TRUE(r.check);
  EXPECT_TRUE(r.check->success) << r.check->reason;
  EXPECT_EQ(env.value(), 3);
  EXPECT_EQ(r.tool_calls, 4);  // inc x3, get; the loop's own report is not counted
  EXPECT_EQ(r.steps[0].tool_calls.size(), 4u);
  std::string prompt = m.calls[0].text();
  EXPECT_NE(prompt.find("def inc()"), std::string::npos);
  EXPECT_NE(prompt.find("Counter(value=0)"), std::string::npos);
  EXPECT_NE(prompt.find("cannot pass 5"), std::string::npos);
}

TEST(AgentLoop, CompactFormatForWandModels) {
  ScriptedBackend m;
  m.format = "pot";  // a wand model: the compact completion format
  m.add({"Add them.\nCode:\nx = 2 + 3\nx"});
  m.add({"Answer.\nCode:\nfinal_answer(x)"});
  auto r = run(m, task("What is 2 + 3?"));
  EXPECT_EQ(r.prompt_format, "completion");
  EXPECT_EQ(*r.final_answer, Json(5));
  ASSERT_EQ(m.calls.size(), 2u);
  EXPECT_EQ(m.calls[0].prompt.rfind("Task: What is 2 + 3?\n", 0), 0u);
  // Up to "Thought:" without the space, which BPE joins to the next word.
  EXPECT_EQ(m.calls[0].prompt.substr(m.calls[0].prompt.size() - 10), "\n\nThought:");
  EXPECT_EQ(m.calls[0].opt.stop, std::vector<std::string>{agent::kStepStop});
  // The second prompt holds the first step exactly as render_step writes it.
  std::string step1 = agent::render_step({"Add them.", "x = 2 + 3\nx", "5"});
  EXPECT_NE(m.calls[1].prompt.find(step1), std::string::npos) << m.calls[1].prompt;
}

// wand's own agent model (prompt_format "agent") is prompted with exactly the text it was
// trained on: replaying a corpus document's steps (a mistake and its real error included) through
// the loop, with the real sandbox and environment, gives back that document byte for byte.
TEST(AgentLoop, LeanPromptOfWandsAgentModelIsTheCorpusDocument) {
  const Json spec = {{"room", "pantry"},
                     {"items", {{{"name", "milk"}, {"place", "fridge"}}, {{"name", "mug"}, {"place", "counter"}}}},
                     {"goal", {{"kind", "fill_put"}, {"item", "mug"}, {"drink", "milk"}, {"place", "table"}}},
                     {"instruction", "Put a mug of milk on the table."}};
  auto fresh = [&] { return agent::make_kitchen_state(spec); };
  auto mistake = agent::find_mistake(fresh, 0);
  ASSERT_TRUE(mistake);
  auto doc_env = fresh();
  auto doc = agent::expert_document(*doc_env, false, &*mistake);
  ASSERT_TRUE(doc.ok()) << doc.error().message;
  auto traj_env = fresh();
  auto traj = agent::expert_trajectory(*traj_env, &*mistake);
  ASSERT_TRUE(traj.ok());
  ScriptedBackend m;
  m.format = agent::kOwnPromptFormat;
  for (auto& st : *traj) {
    std::string code = st.code;
    while (!code.empty() && code.back() == '\n') code.pop_back();
    m.add({" " + st.thought + "\nCode:\n" + code});
  }
  auto env = fresh();
  auto t = agent::task_from_environment(*env);
  ASSERT_TRUE(t.ok());
  auto r = run(m, *t, {}, {.env = env.get()});
  EXPECT_EQ(r.end_reason, agent::kEndFinalAnswer);
  ASSERT_TRUE(r.check);
  EXPECT_TRUE(r.check->success) << r.check->reason;
  ASSERT_EQ(r.steps.size(), traj->size());
  EXPECT_FALSE(r.steps[0].error.empty());  // the mistake failed in the sandbox too
  const auto& last = m.calls.back().prompt;
  EXPECT_EQ(last + r.steps.back().output + "\nObservation:\n" + r.steps.back().observation + "\n\n", *doc);
  // No rules or tool signatures: the model learnt them.
  EXPECT_EQ(m.calls[0].prompt.find("Rules:"), std::string::npos);
  EXPECT_EQ(m.calls[0].prompt, doc->substr(0, doc->find("Thought: ") + 8));

  // The run's SFT export is the same text: each row's prompt is what the model was prompted
  // with, its completion what it wrote up to the stop sequence.
  std::string path = ::testing::TempDir() + "agent_lean_" + std::to_string(::getpid()) + ".db";
  fs::remove(path);
  auto store = store::Store::open(path);
  ASSERT_TRUE(store);
  auto id = (*store)->create_run({.kind = "agent", .dataset = "kitchen"});
  ASSERT_TRUE(id);
  agent::PromptHead head{.instruction = t->instruction, .rules = t->rules, .tools = agent::tools_text(t->tools),
                         .observation = t->observation};
  ASSERT_TRUE((*store)->record_problem(*id, agent::to_problem(0, "kitchen/x", head, r)));
  auto back = (*store)->get_run(*id);
  ASSERT_TRUE(back);
  std::stringstream sft;
  auto stats = agent::export_trajectories(*back, "sft", sft);
  ASSERT_TRUE(stats);
  ASSERT_EQ(stats->rows, static_cast<int>(m.calls.size()));
  std::string row_text;
  for (std::size_t i = 0; std::getline(sft, row_text); ++i) {
    Json row = Json::parse(row_text);
    EXPECT_EQ(row["prompt"], m.calls[i].prompt) << "step " << i;
    EXPECT_EQ(row["completion"], r.steps[i].output + agent::kStepStop) << "step " << i;
  }
  std::stringstream whole;
  ASSERT_TRUE(agent::export_trajectories(*back, "trajectories", whole));
  EXPECT_EQ(Json::parse(whole.str())["text"], *doc);
  fs::remove(path);
}

TEST(AgentFormat, RenderStepAndParseStepAgree) {
  std::string text = agent::render_step({"Open it\nnow.", "open('fridge')", "ok"});
  EXPECT_EQ(text, "Thought: Open it now.\nCode:\nopen('fridge')\nObservation:\nok\n\n");
  auto p = agent::parse_step(text.substr(9), true);
  EXPECT_EQ(p.thought, "Open it now.");
  EXPECT_EQ(p.code, "open('fridge')");
  EXPECT_EQ(agent::render_header({.instruction = "Do X.", .tools = "def f() -> None:\n"}),
            "Task: Do X.\nTools:\ndef f() -> None:\n\n");
  EXPECT_EQ(agent::render_plan("1. a\n2. b"), "Plan:\n1. a\n2. b\n\n");
}

TEST(AgentFormat, ClipMiddleKeepsHeadAndTail) {
  std::string text;
  for (int i = 0; i < 200; ++i) text += fmt::format("line {}\n", i);
  std::string c = agent::clip_middle(text, 300);
  EXPECT_LT(c.size(), 360u);
  EXPECT_EQ(c.rfind("line 0\n", 0), 0u);
  EXPECT_NE(c.find("line 199\n"), std::string::npos);
  EXPECT_NE(c.find("characters cut"), std::string::npos);
  EXPECT_EQ(agent::clip_middle("short", 300), "short");
}

TEST(AgentLoop, LongOutputIsClippedHeadAndTail) {
  ScriptedBackend m;
  m.add({act("for i in range(5000):\n    print('row', i)")});
  m.add({act("final_answer(1)")});
  auto r = run(m, task("Print a lot."), {.observation_chars = 500});
  const std::string& obs = r.steps[0].observation;
  EXPECT_LE(obs.size(), 560u);
  EXPECT_EQ(obs.rfind("row 0\n", 0), 0u);
  EXPECT_NE(obs.find("row 4999"), std::string::npos);
}

// 50 steps that each print a kilobyte: the prompt stays within the context budget (older steps
// condensed, the oldest summary lines left out) instead of growing with every step.
TEST(AgentLoop, PromptStaysBoundedOverFiftySteps) {
  ScriptedBackend m;
  for (int i = 0; i < 50; ++i) {
    llm::Completion c;
    c.text = act(fmt::format("print('{}' * 1000)", char('a' + i % 26)), fmt::format("Step {} of the long task.", i));
    c.finish_reason = "stop";
    m.script.push_back({c});
  }
  agent::AgentConfig cfg{.max_steps = 50, .step_tokens = 128, .context_tokens = 2048, .stuck_repeats = 100};
  auto r = run(m, task("A long task that prints a lot."), cfg);
  EXPECT_EQ(r.end_reason, agent::kEndMaxSteps);
  ASSERT_EQ(m.calls.size(), 50u);
  std::size_t largest = 0;
  std::vector<std::size_t> sizes;
  for (auto& c : m.calls) {
    sizes.push_back(c.text().size());
    largest = std::max(largest, c.text().size());
  }
  // Estimated at 4 bytes a token: the budget (2048 tokens less the generation's 128) is ~7.7 kB.
  EXPECT_LE(largest, 2048u * 4) << "prompt sizes grow: " << sizes[10] << " ... " << sizes[49];
  EXPECT_TRUE(r.steps[49].condensed);
  EXPECT_FALSE(r.steps[0].condensed);
  // The newest steps are still whole; the prompt at step 50 is no bigger than at step 10 by much.
  EXPECT_NE(m.calls[49].text().find("Step 48 of the long task."), std::string::npos);
  EXPECT_LT(sizes[49], sizes[10] + 1500);
  std::string report;
  for (std::size_t i = 0; i < sizes.size(); i += 7) report += fmt::format("{}:{} ", i + 1, sizes[i]);
  std::cout << "prompt bytes by step: " << report << "\n";
}

// A model whose context is smaller than --context (wand's own 1k models under the default 4k
// budget) is never sent a prompt past its context: even the newest steps are condensed then.
TEST(AgentLoop, PromptFitsTheModelsOwnContext) {
  ScriptedBackend m;
  m.context = 512;  // ~2 kB at the loop's first estimate of 4 bytes a token
  for (int i = 0; i < 4; ++i) {
    llm::Completion c;
    c.text = act(fmt::format("print('{}' * 1000)", char('a' + i)), fmt::format("Step {}.", i));
    c.finish_reason = "stop";
    m.script.push_back({c});
  }
  agent::AgentConfig cfg{.max_steps = 4, .step_tokens = 512, .context_tokens = 4096, .stuck_repeats = 100};
  auto r = run(m, task("A task whose observations are long."), cfg);
  EXPECT_EQ(r.end_reason, agent::kEndMaxSteps);
  ASSERT_EQ(m.calls.size(), 4u);
  for (auto& c : m.calls) EXPECT_LE(c.text().size(), 512u * 4) << c.text().substr(0, 200);
  EXPECT_TRUE(r.steps[3].condensed);
}

TEST(AgentLoop, InvalidConfigAndEmptyTaskAreErrors) {
  ScriptedBackend m;
  auto r = agent::run_agent(m, shared_sandbox(), task("x"), {.max_steps = 0});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message, "max_steps: must be 1..1000, got 0");
  auto e = agent::run_agent(m, shared_sandbox(), task("  \n"), {});
  ASSERT_FALSE(e);
  EXPECT_EQ(e.error().message, "the task is empty");
  EXPECT_TRUE(m.calls.empty());
}

TEST(AgentLoop, InterruptEndsAfterTheStep) {
  ScriptedBackend m;
  m.add({act("x = 1")});
  m.add({act("x = 2")});
  std::atomic<bool> stop{false};
  agent::RunHooks hooks;
  hooks.stop = &stop;
  hooks.on_step = [&](const agent::Step&) { stop = true; };
  auto r = run(m, task("Anything."), {}, hooks);
  EXPECT_EQ(r.end_reason, agent::kEndInterrupted);
  EXPECT_EQ(r.actions, 1);
}

// ----------------------------------------------------------------- records and exports

TEST(AgentRecord, StoredStepsReadBackAndExport) {
  std::string path = ::testing::TempDir() + "agent_record_" + std::to_string(::getpid()) + ".db";
  fs::remove(path);
  CounterEnv env(2);
  auto t = agent::task_from_environment(env);
  ASSERT_TRUE(t);
  ScriptedBackend m;
  m.add({act("inc()\nget()", "One up.")});
  m.add({act("inc()\nfinal_answer(get())", "Done.")});
  auto r = run(m, *t, {}, {.env = &env});
  ASSERT_TRUE(r.success());
  agent::PromptHead head{.instruction = t->instruction, .rules = t->rules, .tools = agent::tools_text(t->tools),
                         .observation = t->observation};
  auto store = store::Store::open(path);
  ASSERT_TRUE(store);
  auto id = (*store)->create_run({.kind = "agent", .dataset = "counter"});
  ASSERT_TRUE(id);
  ASSERT_TRUE((*store)->record_problem(*id, agent::to_problem(0, "counter/test/0", head, r)));
  auto run_back = (*store)->get_run(*id);
  ASSERT_TRUE(run_back);
  const auto& p = run_back->problems[0];
  EXPECT_EQ(p.outcome, "final_answer");
  EXPECT_EQ(p.correct, true);
  ASSERT_EQ(p.samples.size(), 2u);
  agent::Step s = agent::step_from_sample(p.samples[0]);
  EXPECT_EQ(s.thought, "One up.");
  EXPECT_EQ(s.code, "inc()\nget()");
  EXPECT_EQ(s.observation, "1");
  EXPECT_EQ(s.tool_calls.size(), 2u);
  EXPECT_NE(agent::format_step(s).find("Thought: One up."), std::string::npos);

  std::stringstream traj;
  auto stats = agent::export_trajectories(*run_back, "trajectories", traj);
  ASSERT_TRUE(stats);
  Json line = Json::parse(traj.str());
  EXPECT_EQ(line["success"], true);
  EXPECT_EQ(line["steps"].size(), 2u);
  EXPECT_EQ(line["final_answer"], Json(2));
  std::string expected_text = agent::render_header(head) + agent::render_step({"One up.", "inc()\nget()", "1"}) +
                              agent::render_step({"Done.", "inc()\nfinal_answer(get())", "Final answer: 2"});
  EXPECT_EQ(line["text"], expected_text);

  std::stringstream sft;
  stats = agent::export_trajectories(*run_back, "sft", sft);
  ASSERT_TRUE(stats);
  EXPECT_EQ(stats->rows, 2);
  std::string first, second;
  std::getline(sft, first);
  std::getline(sft, second);
  Json row = Json::parse(second);
  EXPECT_EQ(row["prompt"], agent::render_header(head) + agent::render_step({"One up.", "inc()\nget()", "1"}) + "Thought:");
  EXPECT_EQ(row["completion"], " Done.\nCode:\ninc()\nfinal_answer(get())\nObservation:");

  auto wrong = agent::export_trajectories(*run_back, "dpo", sft);
  ASSERT_FALSE(wrong);
  EXPECT_NE(wrong.error().message.find("--format dpo"), std::string::npos);
  fs::remove(path);
}

}  // namespace
}  // namespace wand::test
