// The CodeAct agent loop (DESIGN.md layer 3, `agent`; Wang et al. 2024, "Executable Code Actions
// Elicit Better LLM Agents"): the model writes a thought and one Python code block per step; the
// block runs in a persistent sandboxed session with the granted tools (tools::open_session); what
// it printed, the value of its last expression, its tool calls and its error (the verdict's
// feedback text, with the line) come back as the next observation; the run ends when the program
// calls final_answer(x), or a step, token or time budget is spent, or the agent is stuck. Every end
// reason is recorded. Skills (skills.h) the library retrieves for the task are loaded into the
// session before the first step and shown in the prompt.
//
//   agent::AgentTask task{.instruction = "How many primes are below 100?"};
//   auto r = agent::run_agent(backend, sandbox, task, {.max_steps = 8});
//   // r->end_reason == "final_answer"; r->final_answer == 25
//
// Environments (env.h) supply the task, the rules, the tools and the first observation, and
// check the final state (agent::task_from_environment, AgentResult::check).
#pragma once
#include <atomic>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "agent/env.h"
#include "common/json.h"
#include "common/status.h"
#include "llm/llm.h"
#include "sandbox/sandbox.h"
#include "tools/tools.h"

namespace wand::agent {

class SkillLibrary;  // skills.h

// ---------------------------------------------------------------------------------------------
// The compact completion format: what wand's own agent model reads and writes, what the corpus's
// agent part trains it on, and what any completion (non-chat) model is prompted with. One place
// (these functions), so training text and prompts never drift apart. A whole trajectory is
//
//   render_header(...)                          the task, rules, tools, skills, first state
//   [render_plan(plan)]                         with planning: "Plan:\n1. ...\n"
//   render_step(step 1) render_step(step 2) ... one per action
//
// and one step reads
//
//   Thought: <one line>
//   Code:
//   <python lines>
//   Observation:
//   <observation lines>
//   <blank line>
//
// The model is prompted with everything up to and including "Thought:" of the next step and
// generates up to the stop sequence "\nObservation:" (kStepStop); the loop then appends the
// observation. The last step of a solved task calls final_answer(...) and its observation is
// "Final answer: <value as JSON>".
// ---------------------------------------------------------------------------------------------

// wand's own agent models (Backend::prompt_format() == kOwnPromptFormat) are prompted lean: the
// header leaves out the constant rules and tool signatures (the model learnt them from its
// training data, and a 1M-parameter model does not look ~700 tokens back for the task), and every
// step restates the task ("Task: ...\n" before "Thought: "), so the instruction is always a few
// dozen tokens before what the model writes. Chat and other completion models keep the full header.
inline constexpr const char* kOwnPromptFormat = "agent";
bool lean_prompt(const std::string& prompt_format);

// What the header shows.
struct PromptHead {
  std::string instruction;   // the task
  std::string rules;         // the environment's describe() or the free-form rules; may be empty
  std::string tools;         // tools::python_signatures of the granted tools; may be empty
  std::string skills;        // the retrieved skills' signatures and docstrings; may be empty
  std::string observation;   // the first observation (the environment's state); may be empty
};
// "Task: ...\nRules:\n...\nTools:\n...\nSkills:\n...\nState:\n...\n\n" (empty parts left out).
std::string render_header(const PromptHead& head);

// One step as it appears in the compact format (thought newlines are folded to spaces; code and
// observation are written as given, with a trailing newline added when missing).
struct StepText {
  std::string thought;
  std::string code;
  std::string observation;
  std::string task;  // lean prompts: the task, restated before the step ("Task: <one line>\n"); "" for none
};
std::string render_step(const StepText& step);
// What a step starts with: ["Task: <task>\n"] "Thought: ".
std::string step_start(const std::string& task);
// What the prompt ends with before the model writes a step: step_start(task) without its last
// space ("...Thought:"). BPE tokenizers join a space to the word after it (" Open"), so a prompt
// ending in a bare space is a token sequence the model never saw in training (it wrote "Thought:
// 1: store." after one); the model writes the space itself, and parse_step trims it.
std::string step_prompt(const std::string& task);
// The task as one line (newlines folded to spaces, trimmed): what the reminder shows.
std::string one_line_task(const std::string& instruction);
// "Plan:\n<plan>\n\n": a numbered plan, written before the first step.
std::string render_plan(const std::string& plan);
// "Replan: <why, one line>\nPlan:\n<plan>\n\n": a revised plan, between steps.
std::string render_replan(const std::string& why, const std::string& plan);
// The header's Tools section: the registry's Python signatures (tools::python_signatures), then
// final_answer's, which every session defines.
std::string tools_text(const tools::Registry& tools);

// The stop sequence of a step's generation, and the text that starts one.
inline constexpr const char* kStepStop = "\nObservation:";
inline constexpr const char* kThoughtStart = "Thought: ";

// A model's step output split into its thought and its code: a fenced block when there is one
// (feedback::extract_code), else the compact format's "Code:" section, else the text when it
// parses as code-like lines; `thought` is the text before the code. No code: `code` is "".
struct ParsedStep {
  std::string thought;
  std::string code;
};
ParsedStep parse_step(const std::string& output, bool compact);

// ---------------------------------------------------------------------------------------------
// The loop
// ---------------------------------------------------------------------------------------------

// What the agent is asked to do, with what.
struct AgentTask {
  std::string instruction;            // required
  std::string rules;                  // environment rules (Environment::describe) or extra rules
  std::string observation;            // the first observation (Environment::observe); may be empty
  tools::Registry tools;              // granted to the session (environment primitives, --tools, --mcp)
};

// The task an environment instance poses, with its tools merged with `extra` (a name in both is
// an error naming it).
Result<AgentTask> task_from_environment(Environment& env, const tools::Registry& extra = {});

struct AgentConfig {
  int max_steps = 10;             // actions (plan steps do not count); 1..1000
  long max_tokens = 0;            // prompt + completion tokens of the whole run; 0: no limit
  double max_wall_s = 600;        // seconds for the whole run (model and sandbox); 0: no limit
  int step_tokens = 512;          // max_tokens of one generation
  // The prompt's budget in tokens: older steps are condensed (their code and observation
  // replaced by a one-line summary each, the newest `keep_recent` kept whole) when the prompt
  // would pass it. Tokens are estimated as bytes / 4 until the backend reports a real count,
  // then with the ratio it reported.
  int context_tokens = 4096;
  int keep_recent = 3;
  std::size_t observation_chars = 1500;  // an observation longer than this keeps its head and tail
  bool plan = false;              // --plan: a numbered plan first; re-plan when a step fails twice
                                  // or an environment action is blocked (a tool error)
  // Stuck: the same code, or the same error, this many steps in a row triggers a re-plan; the
  // same again after the re-plan ends the run ("stuck").
  int stuck_repeats = 3;
  float temperature = 0;
  uint64_t seed = 0;
  std::string format = "auto";    // "chat", "completion" or "auto": completion for wand's own
                                  // models (Backend::prompt_format not empty), else chat
  sandbox::Limits step_limits{.timeout_s = 30};  // each code block
  tools::Budget tool_budget;      // per block
  int skills = 5;                 // how many retrieved skills to load (with a library); 0: none
};
// Errors name the field and the bad value ("max_steps: must be 1..1000, got 0").
VoidResult validate(const AgentConfig& config);

// One step of a trajectory: a model call and what became of it.
struct Step {
  int index = 0;                  // 0-based over the run, plan steps included
  std::string kind;               // "act", "plan" or "replan"
  std::string prompt;             // as sent: the completion prompt, or the chat turns as JSON
  std::string output;             // the model's text
  std::string thought, code;      // "act": parsed from output ("" when it wrote no code)
  std::string observation;        // what the next prompt shows (clipped)
  Json exec;                      // the block's sandbox::ExecResult as JSON (null when none ran)
  Json tool_calls = Json::array();  // tools::ToolCall records, the loop's own calls left out
  std::string error;              // the error's feedback text ("ToolError raised at line 2: ..."); "" when none
  std::optional<Json> value;      // the last expression's value (repr, as a JSON string), when not None
  int prompt_tokens = 0, completion_tokens = 0;
  double model_s = 0, exec_s = 0;
  bool condensed = false;         // older steps were condensed to build this step's prompt
};
// Every field; without `texts`, not the prompt, the model's output and the execution result
// (the large ones, which a stored sample keeps in columns of their own).
Json to_json(const Step& step, bool texts = true);

// End reasons (AgentResult::end_reason).
inline constexpr const char* kEndFinalAnswer = "final_answer";
inline constexpr const char* kEndMaxSteps = "max_steps";
inline constexpr const char* kEndMaxTokens = "max_tokens";
inline constexpr const char* kEndMaxTime = "max_time";
inline constexpr const char* kEndStuck = "stuck";
inline constexpr const char* kEndModelError = "model_error";
inline constexpr const char* kEndSandboxError = "sandbox_error";
inline constexpr const char* kEndInterrupted = "interrupted";

struct AgentResult {
  std::vector<Step> steps;
  std::string end_reason;          // one of the kEnd* above
  std::string end_detail;          // a sentence: why it ended ("the same error 3 times ...")
  std::optional<Json> final_answer;  // what the program passed to final_answer
  std::optional<GoalCheck> check;  // environment runs: the goal check after the run
  std::string plan;                // the latest plan ("" without planning)
  std::vector<std::string> skills_loaded;   // names of the skills put in the session
  std::vector<std::string> skills_demoted;  // retrieved skills whose tests failed (demoted, not loaded)
  std::vector<std::string> skills_saved;    // functions of a successful run saved to the library
  long prompt_tokens = 0, completion_tokens = 0;
  int actions = 0, tool_calls = 0;
  double wall_s = 0;
  std::string prompt_format;       // "chat" or "completion"
  bool lean = false;               // completion prompts without rules and tools, the task before each step (lean_prompt)
  bool success() const;            // check->success, else a final answer was given
  Json to_json() const;            // everything, steps included
};

struct RunHooks {
  std::function<void(const Step&)> on_step;   // after each step (printing as it goes)
  const std::atomic<bool>* stop = nullptr;    // set: end after the step in progress, or the model call now ("interrupted")
  Environment* env = nullptr;                 // checked after the run (AgentResult::check)
  SkillLibrary* skills = nullptr;             // retrieval before the first step; saving after success
  bool write_skills = true;                   // false: the library is only read (wand agent --no-store)
};

// Runs the loop. Errors only for what prevents a run at all (an invalid config, an empty
// instruction, a session that cannot open); everything that happens during the run, a model
// error included, is an end reason of the result.
Result<AgentResult> run_agent(llm::Backend& model, sandbox::Sandbox& sandbox, const AgentTask& task,
                              const AgentConfig& config, const RunHooks& hooks = {});

// Keeps the head and tail of a long text: the first and last parts of `max_chars` with
// "\n... [N characters cut] ...\n" between them (cut at line ends where near). UTF-8 safe.
std::string clip_middle(const std::string& text, std::size_t max_chars);

// The default model of `wand agent`: $WAND_AGENT_MODEL, else models/wand-agent.gguf under
// `models_dir` when present; an error telling how to point at a model or a server otherwise.
Result<std::string> default_agent_model(const std::string& models_dir);

}  // namespace wand::agent
