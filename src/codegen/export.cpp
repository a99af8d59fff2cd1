// Training data from recorded runs: sft, dpo and rewards rows (shapes in export.h).
#include "codegen/export.h"

#include <fmt/core.h>

#include <algorithm>
#include <map>
#include <ostream>
#include <set>

#include "common/text.h"
#include "feedback/feedback.h"
#include "reason/verifier.h"

namespace wand::codegen {
namespace {

// One recorded sample as training material.
struct Item {
  int sample = 0;
  Json prompt;             // a string, or chat messages
  std::string completion;  // what the model wrote
  std::string recorded_prompt, program;       // as recorded: the verifier reads them
  std::optional<std::string> answer;          // reasoning: the executed answer
  std::string key;         // the normalised program (dedupe)
  bool passed = false;
  std::string error_class, verified_by;
  double reward = 0;
  int tests_passed = 0, tests_total = 0;
  Json verdict() const { return {{"passed", passed}, {"error_class", error_class}, {"verified_by", verified_by}}; }
};

// A recorded prompt: chat messages were stored as their JSON array.
Json prompt_of(const std::string& p) {
  if (p.starts_with("[{")) {
    if (auto j = parse_json(p, "a recorded prompt"); j && j->is_array()) {
      bool messages = std::all_of(j->begin(), j->end(), [](const Json& m) {
        return m.is_object() && m.contains("role") && m.contains("content");
      });
      if (messages) return *j;
    }
  }
  return p;
}

int int_of(const Json& j, const char* k) { return j.contains(k) && j[k].is_number_integer() ? j[k].get<int>() : 0; }
std::string str_of(const Json& j, const char* k) {
  return j.is_object() && j.contains(k) && j[k].is_string() ? j[k].get<std::string>() : "";
}

// The samples of a problem that carry a program and a verdict, judged by the run's kind.
std::vector<Item> items_of(const store::RunInfo& run, const store::ProblemRecord& p, ExportStats& stats) {
  std::vector<Item> items;
  bool code = run.config.kind == "code";
  if (!code && p.expected.empty()) {
    bool any_program = std::any_of(p.samples.begin(), p.samples.end(), [](auto& s) { return !s.program.empty(); });
    stats.unlabelled += any_program;
    return items;
  }
  feedback::RewardMap rewards;
  for (auto& s : p.samples) {
    if (s.program.empty() || !s.verdict.is_object()) continue;
    if (code && str_of(s.extra, "role") != "coder") continue;
    Item it;
    it.sample = s.index;
    it.prompt = prompt_of(s.prompt);
    it.completion = s.completion;
    it.recorded_prompt = s.prompt, it.program = s.program, it.answer = s.answer;
    it.key = normalize_program(s.program);
    it.error_class = str_of(s.verdict, "error_class");
    if (code) {
      it.passed = s.verdict.value("passed", false);
      it.verified_by = str_of(s.extra, "verified_by");
      it.reward = s.verdict.contains("reward") && s.verdict["reward"].is_number() ? s.verdict["reward"].get<double>() : 0;
      it.tests_passed = int_of(s.verdict, "tests_passed");
      it.tests_total = int_of(s.verdict, "tests_total");
    } else {
      // A reasoning sample's recorded verdict says whether its program ran; the label says
      // whether its answer is right.
      bool ran = it.error_class == "none" || it.error_class == "wrong_answer";
      it.passed = ran && s.answer && feedback::answers_match(*s.answer, p.expected);
      it.verified_by = "label";
      if (ran) it.error_class = it.passed ? "none" : "wrong_answer";
      it.reward = it.passed ? rewards.pass
                  : ran     ? rewards.failing_tests
                  : s.verdict.contains("reward") && s.verdict["reward"].is_number() ? s.verdict["reward"].get<double>()
                                                                                      : 0;
      it.tests_passed = it.passed, it.tests_total = 1;
    }
    items.push_back(std::move(it));
  }
  return items;
}

Json assistant(const std::string& text) { return Json::array({{{"role", "assistant"}, {"content", text}}}); }

// TRL reads a conversational prompt with conversational completions; a text prompt with text.
Json completion_for(const Json& prompt, const std::string& text) { return prompt.is_array() ? assistant(text) : Json(text); }

}  // namespace

std::string document_of(const Json& row) {
  auto text = [](const Json& v) {
    if (v.is_string()) return v.get<std::string>();
    std::string s;
    if (v.is_array())
      for (auto& m : v) {
        std::string c = str_of(m, "content");
        s += c.ends_with("\n") ? c : c + "\n";
      }
    return s;
  };
  if (row.contains("messages")) return text(row["messages"]);
  return text(row.value("prompt", Json(""))) + text(row.value("completion", Json("")));
}

std::string normalize_program(std::string_view program) {
  std::string out;
  for (auto line : split_lines(program)) {
    std::string l(line);
    std::erase(l, '\r');
    while (!l.empty() && (l.back() == ' ' || l.back() == '\t')) l.pop_back();
    auto first = l.find_first_not_of(" \t");
    if (first == std::string::npos || l[first] == '#') continue;
    out += l + "\n";
  }
  return out;
}

VoidResult validate(const ExportOptions& o) {
  if (o.format != "sft" && o.format != "dpo" && o.format != "rewards" && o.format != "verifier")
    return Error{fmt::format("--format '{}': expected sft, dpo, rewards or verifier", o.format)};
  if (o.shape != "prompt-completion" && o.shape != "messages")
    return Error{fmt::format("--shape '{}': expected prompt-completion or messages", o.shape)};
  if (o.shape == "messages" && o.format != "sft") return Error{"--shape messages is a shape of sft rows only"};
  if (o.per_task < 0 || o.per_task > 1000000) return Error{fmt::format("--per-task {}: expected 0 to 1000000", o.per_task)};
  if (o.balanced && o.format != "verifier") return Error{"--balanced is an option of --format verifier"};
  return ok_status();
}

Result<ExportStats> export_training_data(const store::Run& run, const ExportOptions& o, std::ostream& out) {
  if (auto v = validate(o); !v) return v.error();
  if (o.format == "verifier" && run.info.config.kind == "code")
    return Error{fmt::format("--format verifier: run {} is a code run; a verifier reads word problems' programs and "
                             "answers (a solve or bench run)",
                             run.info.id)};
  ExportStats stats;
  auto write = [&](Json row) {
    out << dump_text(row) << '\n';
    ++stats.rows;
  };
  for (auto& p : run.problems) {
    Json base = {{"run_id", run.info.id},
                 {"task_id", p.problem_id.empty() ? std::to_string(p.index) : p.problem_id},
                 {"problem", p.index}};
    // Deduplicated within the task. A program judged both passing and failing (one that reads
    // the clock or a random number) is verified by nothing: it is left out of every format, so
    // no pair has the same program on both sides and no such sample is trained on as correct.
    std::vector<Item> items;
    auto all = items_of(run.info, p, stats);
    std::map<std::string, std::set<bool>> verdicts;
    for (const auto& it : all) verdicts[it.key].insert(it.passed);
    std::set<std::string> seen, flaky;
    for (auto& it : all) {
      if (verdicts[it.key].size() > 1) {
        stats.flaky += flaky.insert(it.key).second;
        continue;
      }
      if (!seen.insert(it.key).second) {
        ++stats.duplicates;
        continue;
      }
      items.push_back(std::move(it));
    }
    int rows = 0;
    auto room = [&] {
      if (o.per_task && rows >= o.per_task) {
        ++stats.capped;
        return false;
      }
      ++rows;
      return true;
    };
    if (o.format == "sft") {
      for (auto& it : items) {
        if (!it.passed || !room()) continue;
        Json row = base;
        if (o.shape == "messages") {
          Json messages = it.prompt.is_array() ? it.prompt : Json::array({{{"role", "user"}, {"content", it.prompt}}});
          messages.push_back({{"role", "assistant"}, {"content", it.completion}});
          row["messages"] = std::move(messages);
        } else {
          row["prompt"] = it.prompt;
          row["completion"] = completion_for(it.prompt, it.completion);
        }
        row["sample"] = it.sample;
        row["verdict"] = it.verdict();
        write(std::move(row));
      }
    } else if (o.format == "dpo") {
      // Pairs share their prompt exactly: each failing sample with a passing one (in turn).
      std::map<std::string, std::pair<std::vector<const Item*>, std::vector<const Item*>>> by_prompt;
      std::vector<std::string> order;
      for (auto& it : items) {
        std::string k = it.prompt.dump();
        if (!by_prompt.contains(k)) order.push_back(k);
        (it.passed ? by_prompt[k].first : by_prompt[k].second).push_back(&it);
      }
      for (auto& k : order) {
        auto& [chosen, rejected] = by_prompt[k];
        for (std::size_t i = 0; !chosen.empty() && i < rejected.size(); ++i) {
          if (!room()) continue;
          const Item& c = *chosen[i % chosen.size()];
          const Item& r = *rejected[i];
          Json row = base;
          row["prompt"] = c.prompt;
          row["chosen"] = completion_for(c.prompt, c.completion);
          row["rejected"] = completion_for(r.prompt, r.completion);
          row["chosen_sample"] = c.sample;
          row["rejected_sample"] = r.sample;
          row["verdict"] = {{"chosen", c.verdict()}, {"rejected", r.verdict()}};
          write(std::move(row));
        }
      }
    } else if (o.format == "verifier") {
      // Every program that answered, its answer labelled (an outcome verifier's training data);
      // balanced: a task with both labels only, as many wrong as right (the first in sample order).
      auto answered = [](const Item& it) { return it.answer && (it.error_class == "none" || it.error_class == "wrong_answer"); };
      int right = 0, wrong = 0;
      for (auto& it : items)
        if (answered(it)) ++(it.passed ? right : wrong);
      int wrong_left = o.balanced ? std::min(right, wrong) : wrong;
      if (o.balanced && (!right || !wrong)) continue;
      for (auto& it : items) {
        if (!answered(it) || (!it.passed && wrong_left-- <= 0) || !room()) continue;
        Json row = base;
        row["prompt"] = reason::verifier_prompt(it.recorded_prompt, it.program, *it.answer);
        row["completion"] = it.passed ? "1" : "0";
        row["answer"] = *it.answer;
        row["sample"] = it.sample;
        row["verdict"] = it.verdict();
        write(std::move(row));
      }
    } else {
      for (auto& it : items) {
        if (!room()) continue;
        Json row = base;
        row["prompt"] = it.prompt;
        row["completion"] = completion_for(it.prompt, it.completion);
        row["reward"] = it.reward;
        row["error_class"] = it.error_class;
        row["tests_passed"] = it.tests_passed;
        row["tests_total"] = it.tests_total;
        row["sample"] = it.sample;
        row["verdict"] = it.verdict();
        write(std::move(row));
      }
    }
    stats.tasks += rows > 0;
  }
  out.flush();
  if (!out) return Error{"writing the rows failed"};
  return stats;
}

}  // namespace wand::codegen
