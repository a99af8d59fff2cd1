// `wand._wand`: the Python face of the sandbox and the judge (pybind11). Deliberately thin:
// requests, options and results cross as JSON text in the JSON-lines schema (README), so the
// checks and field names are exactly `wand exec --json`'s and `wand eval`'s; the Python package
// (wand/__init__.py) turns them into objects. Every call that runs code releases the GIL, and a
// Sandbox is thread-safe, so many Python threads share its cells.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <stdexcept>

#include <fmt/core.h>

#include "common/json.h"
#include "feedback/evaluate.h"
#include "feedback/rewards.h"
#include "sandbox/sandbox.h"

namespace py = pybind11;
using namespace wand;

namespace {

Json parse(const std::string& text, const char* what) {
  auto j = parse_json(text, what);
  if (!j) throw py::value_error(j.error().message);
  return std::move(*j);
}

template <class T>
T value_or_raise(Result<T> r) {
  if (!r) throw py::value_error(r.error().message);
  return std::move(*r);
}

// Requests from JSON text, each checked as the JSON-lines schema checks it; errors name the
// request's index when there are several.
std::vector<sandbox::ExecRequest> requests(const std::vector<std::string>& texts) {
  std::vector<sandbox::ExecRequest> out;
  for (std::size_t i = 0; i < texts.size(); ++i) {
    auto r = sandbox::request_from_json(parse(texts[i], "a request"));
    if (!r) throw py::value_error(texts.size() > 1 ? fmt::format("request {}: {}", i, r.error().message) : r.error().message);
    out.push_back(std::move(*r));
  }
  return out;
}

// Judge and reward options from a JSON object: timeout, memory_mb, answer, partial_credit,
// strict, extract_code, mapping ("binary" or "coderl"), ks.
feedback::RewardOptions reward_options(const std::string& text) {
  Json j = parse(text, "the options");
  feedback::RewardOptions o;
  auto& judge = o.eval.judge;
  try {
    if (j.contains("timeout")) judge.timeout_s = j["timeout"].get<double>();
    if (j.contains("memory_mb")) judge.memory_mb = j["memory_mb"].get<std::size_t>();
    if (j.contains("answer")) judge.answer = j["answer"].get<std::string>();
    if (j.contains("partial_credit")) judge.partial_credit = j["partial_credit"].get<bool>();
    if (j.contains("strict")) judge.strict = j["strict"].get<bool>();
    if (j.contains("float_tol") && !j["float_tol"].is_null()) judge.float_tol = j["float_tol"].get<double>();
    if (j.contains("max_output") && !j["max_output"].is_null()) judge.max_output_bytes = j["max_output"].get<std::size_t>();
    if (j.contains("extract_code")) o.eval.extract_code = j["extract_code"].get<bool>();
    if (j.contains("ks")) o.eval.ks = j["ks"].get<std::vector<int>>();
    if (j.contains("mapping")) o.mapping = value_or_raise(feedback::reward_mapping_from_string(j["mapping"].get<std::string>()));
  } catch (const Json::exception& e) {
    throw py::value_error(fmt::format("an option has the wrong type: {}", e.what()));
  }
  sandbox::Limits limits;
  limits.timeout_s = judge.timeout_s;
  limits.memory_mb = judge.memory_mb;
  limits.max_output_bytes = judge.max_output_bytes;
  if (auto ok = sandbox::validate(limits); !ok) throw py::value_error(ok.error().message);
  if (auto ok = feedback::validate(o.eval); !ok) throw py::value_error(ok.error().message);
  return o;
}

// A judge option the tasks never read is refused, as `wand eval` refuses it (ValueError naming
// the keyword): strict on a word problem, answer on a code task, ...
void refuse_unused(const feedback::RewardOptions& o, const feedback::Task& task) {
  if (auto u = feedback::unused_option(o.eval.judge, task.kind)) {
    std::string name = u->name;
    std::replace(name.begin(), name.end(), '-', '_');
    throw py::value_error(fmt::format("{}: not read by {} tasks; it is for {}", name, task.format, u->used_by));
  }
}

struct PySandbox {
  std::unique_ptr<sandbox::Sandbox> sb;
};

// Runs `work(stop)` without the GIL on a thread of its own while this thread checks Python's
// signals every 0.1 s: a Ctrl-C sets `stop` (a batch starts no further request), waits for the
// runs in progress, and raises KeyboardInterrupt. Without it, Ctrl-C waited for the whole batch.
template <class Work>
auto interruptible(Work work) {
  std::atomic<bool> stop{false};
  auto done = std::async(std::launch::async, [&] { return work(&stop); });
  bool interrupted = false;
  {
    py::gil_scoped_release free;
    while (done.wait_for(std::chrono::milliseconds(100)) != std::future_status::ready) {
      py::gil_scoped_acquire hold;
      if (PyErr_CheckSignals() != 0) {  // the handler raised (KeyboardInterrupt): it stays set
        stop = true;
        interrupted = true;
        break;
      }
    }
    done.wait();
  }
  if (interrupted) throw py::error_already_set();
  return done.get();
}

}  // namespace

PYBIND11_MODULE(_wand, m) {
  m.doc() = "wand's sandbox and judge (use the `wand` package, not this module)";
  py::class_<PySandbox, std::shared_ptr<PySandbox>>(m, "Sandbox")
      .def(py::init([](std::size_t cells, std::vector<std::string> preload, bool warm_stdlib) {
             sandbox::Options o;
             o.cells = cells;
             o.preload = std::move(preload);
             o.warm_stdlib = warm_stdlib;
             Result<std::unique_ptr<sandbox::Sandbox>> made = Error{""};
             {
               py::gil_scoped_release free;  // starting the cells' fork-servers takes a while
               made = sandbox::Sandbox::create(o);
             }
             if (!made) throw std::runtime_error(made.error().message);
             return std::make_shared<PySandbox>(PySandbox{std::move(*made)});
           }),
           py::arg("cells"), py::arg("preload"), py::arg("warm_stdlib"))
      .def_property_readonly("cells", [](const PySandbox& s) { return s.sb->cells(); })
      .def("run_batch",
           [](PySandbox& s, const std::vector<std::string>& texts) {
             auto reqs = requests(texts);
             auto results = interruptible([&](const std::atomic<bool>* stop) { return s.sb->run_batch(reqs, {}, stop); });
             std::vector<std::string> out;
             for (auto& r : results) out.push_back(dump_text(sandbox::to_json(r)));
             return out;
           })
      .def("rewards",
           // items: JSON text of [[data_source, solution, ground_truth], ...]; returns JSON text of
           // [{"score", "verdict"}, ...]. Every item is checked before anything runs.
           [](PySandbox& s, const std::string& items_text, const std::string& options_text) {
             Json items = parse(items_text, "the reward items");
             auto opt = reward_options(options_text);
             std::vector<feedback::Task> tasks;
             std::vector<std::string> solutions;
             for (std::size_t i = 0; i < items.size(); ++i) {
               const Json& it = items[i];
               if (!it.is_array() || it.size() != 3 || !it[0].is_string() || !it[1].is_string())
                 throw py::value_error(fmt::format("sample {}: expected [data_source, solution_str, ground_truth]", i));
               auto t = feedback::reward_task(it[0].get<std::string>(), it[2]);
               if (!t) throw py::value_error(items.size() > 1 ? fmt::format("sample {}: {}", i, t.error().message)
                                                              : t.error().message);
               tasks.push_back(std::move(*t));
               solutions.push_back(it[1]);
             }
             std::vector<feedback::Verdict> verdicts;
             {
               py::gil_scoped_release free;
               verdicts = feedback::judge_rewards(*s.sb, tasks, solutions, opt);
             }
             Json out = Json::array();
             for (auto& v : verdicts) out.push_back({{"score", feedback::reward_value(v, opt)}, {"verdict", v.to_json()}});
             return dump_text(out);
           })
      .def("evaluate",
           // dataset: a JSON-lines file `wand eval` reads; samples: JSON text of [{task_id,
           // completion}, ...]. Returns JSON text of {"summary": ..., "samples": [...]}.
           [](PySandbox& s, const std::string& dataset, const std::string& samples_text, const std::string& options_text) {
             auto opt = reward_options(options_text);
             auto tasks = value_or_raise(feedback::load_tasks(dataset));
             refuse_unused(opt, tasks.front());  // one format a file
             Json samples = parse(samples_text, "the samples");
             std::map<std::string, std::size_t> by_id;
             for (std::size_t t = 0; t < tasks.size(); ++t) by_id[tasks[t].task_id] = t;
             std::vector<feedback::EvalSample> list;
             for (std::size_t i = 0; i < samples.size(); ++i) {
               const Json& x = samples[i];
               if (!x.is_object() || !x.contains("task_id") || !x.contains("completion") || !x["completion"].is_string())
                 throw py::value_error(fmt::format("sample {}: expected an object with task_id and completion", i));
               std::string id = x["task_id"].is_string() ? x["task_id"].get<std::string>() : x["task_id"].dump();
               auto it = by_id.find(id);
               if (it == by_id.end())
                 throw py::value_error(fmt::format("sample {}: task_id '{}' is not in {}", i, id, dataset));
               list.push_back({it->second, x["completion"]});
             }
             feedback::EvalReport report;
             {
               py::gil_scoped_release free;
               report = feedback::evaluate(*s.sb, dataset, tasks, list, opt.eval);
             }
             Json rows = Json::array();
             for (auto& r : report.results) rows.push_back(feedback::sample_json(r, tasks));
             return dump_text({{"summary", report.summary()}, {"samples", rows}});
           });
  m.def("task_check", [](const std::string& task_text) {
    // A task record (a dataset line) checked as `wand eval` reads one; returns nothing or raises.
    value_or_raise(feedback::task_from_json(parse(task_text, "the task"), "task"));
  });
  m.def("judge",
        [](std::shared_ptr<PySandbox> s, const std::string& task_text, const std::string& completion,
           const std::string& options_text) {
          auto task = value_or_raise(feedback::task_from_json(parse(task_text, "the task"), "task"));
          auto opt = reward_options(options_text);
          refuse_unused(opt, task);
          std::vector<feedback::Task> tasks{task};
          feedback::EvalReport report;
          {
            py::gil_scoped_release free;
            report = feedback::evaluate(*s->sb, "judge", tasks, {{0, completion}}, opt.eval);
          }
          Json v = report.results.at(0).verdict.to_json();
          v["reward_value"] = feedback::reward_value(report.results[0].verdict, opt);
          return dump_text(v);
        });
}
