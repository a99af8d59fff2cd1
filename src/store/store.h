// The run store: every solve, bench, code-generation or agent run records its config and, per
// problem, every prompt, completion, program, execution result, verdict and vote, so a number in
// a report can be traced back and re-run (DESIGN.md, "Records are reproducible").
//
// One SQLite database per user by default (default_store_path()); a PostgreSQL database when the
// location is a libpq URI (postgresql://user@host/db), for runs recorded by many workers on many
// machines into one store (README: A shared store). The schema is portable SQL kept in
// src/store/schema/*.sql (embedded at build time), the same for both, with a version number;
// opening a store applies the missing migrations in one transaction and refuses a store newer
// than this binary. JSON values are stored as text. Nothing here exposes either database: the
// backends sit behind backend.h, internal to src/store.
//
// Safe under concurrent writers (several processes on one file or database): SQLite with a WAL
// journal, a busy timeout and every write one `BEGIN IMMEDIATE` transaction; PostgreSQL with
// one transaction per write; both retried while the database is busy. A problem and all its
// samples are written in one transaction, so a killed writer leaves each problem whole or absent.
// Durability (SQLite): a record survives the writer's death (Ctrl-C, kill -9); with
// synchronous=NORMAL a power cut may lose the last few records but never corrupts the file.
// PostgreSQL text cannot hold NUL bytes or invalid UTF-8: those become U+FFFD there.
#pragma once
#include <cstdint>
#include <iosfwd>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/json.h"
#include "common/status.h"

namespace wand::store {

// The newest schema version this binary knows.
int schema_version();

// Whether a store location is a database server's URI (postgresql://, postgres://) rather than a file.
bool is_database_uri(std::string_view location);

// $WAND_STORE (a file or a postgresql:// URI), else $WAND_HOME/runs.db, else
// $XDG_DATA_HOME/wand/runs.db, else $HOME/.local/share/wand/runs.db.
std::string default_store_path();
// Error::code of Store::open(path, create = false) when there is no store there yet (no file, or
// a database without wand's tables): what reading commands show as "no runs recorded yet".
inline constexpr const char* kNoStore = "no_store";
// That order in words, for help texts and messages.
inline constexpr const char* kDefaultStoreSources =
    "$WAND_STORE, else $WAND_HOME/runs.db, else $XDG_DATA_HOME/wand/runs.db or ~/.local/share/wand/runs.db";

// The kinds of run wand records: `wand solve`, `wand bench`, `wand code`, `wand agent`, `wand improve`.
inline const std::vector<std::string> kRunKinds = {"solve", "bench", "code", "agent", "improve"};

// What a run is: set once when it is created. Empty strings and null JSON are stored as NULL.
struct RunConfig {
  std::string kind;         // one of kRunKinds (required)
  std::string dataset;      // a dataset file or set name
  std::string model_spec;   // as given: "local:PATH.gguf", "openai:URL/MODEL"
  std::string model_id;     // llm::Backend::id(): what actually answered
  std::string method;       // "pot", "cot", ...
  std::string prompt_hash;  // hash of the prompt template(s)
  Json options;             // sampling and method options
  std::optional<int64_t> seed;
  std::string wand_version;             // filled with this binary's version when empty
  std::optional<int> total_problems;    // how many problems the run means to record
  Json extra;                           // anything a kind of run needs beyond the columns
};

// One attempt at a problem: a sampled completion and what became of it.
struct SampleRecord {
  int index = 0;  // 0-based within its problem
  std::optional<int64_t> seed;
  std::string prompt, completion, program;
  Json exec_result;  // sandbox::ExecResult as JSON
  Json verdict;      // feedback's verdict as JSON
  std::optional<std::string> answer;
  std::optional<double> logprob;
  Json extra;
};

// One problem of a run with its samples.
struct ProblemRecord {
  int index = 0;           // 0-based position in the run's dataset; unique per run
  std::string problem_id;  // the dataset's own id, if any
  std::string input;       // the question or task
  std::string expected;    // the label, if any
  std::optional<std::string> answer;  // the run's final answer
  std::optional<bool> correct;        // null when not judged
  Json vote;                          // how the samples voted
  std::string outcome;                // "ok", "no_answer", "timeout", ...
  Json timings;                       // seconds by phase
  int64_t prompt_tokens = 0, completion_tokens = 0;
  Json extra;
  std::vector<SampleRecord> samples;
  std::string recorded_at;  // set by the store (ISO 8601 UTC)
};

// A run as stored, without its problems.
struct RunInfo {
  std::string id;
  RunConfig config;
  // "running", "finished" or "interrupted". A run left "running" by a process of this host that
  // no longer exists reads as "interrupted".
  std::string status;
  std::string created_at, finished_at;  // ISO 8601 UTC; finished_at empty until finished
  Json summary;                         // from finish_run
  int problems_done = 0;                // problems recorded
  int problems_judged = 0;              // of those, with a verdict (correct not null)
  int problems_correct = 0;
  std::optional<double> accuracy() const;  // correct / judged, when any was judged
};

struct Run {
  RunInfo info;
  std::vector<ProblemRecord> problems;  // by index
};

struct RunFilter {
  std::string kind;  // empty: every kind
  int limit = 50;    // newest first; 0: no limit
};

Json to_json(const RunInfo& run);
Json to_json(const ProblemRecord& problem);  // with its samples
Json to_json(const SampleRecord& sample);

class Store {
 public:
  // Opens (create: creating it and its parent folders if missing) the store at `path` — a SQLite
  // file, or a postgresql:// URI of an existing database (create: its tables are made when it
  // has none) — and brings its schema up to date. Errors name the path (a URI without its
  // password): not a wand store, corrupt, unwritable, missing (when !create), a server that does
  // not answer, or a schema newer than this binary knows (both versions named).
  static Result<std::unique_ptr<Store>> open(const std::string& path, bool create = true);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  const std::string& path() const;  // as given; a URI without its password

  // A new run, "running" and owned by this process; returns its id (8 hex digits).
  Result<std::string> create_run(const RunConfig& config);
  // Records one problem and its samples atomically. A problem index recorded twice is an error.
  VoidResult record_problem(const std::string& run_id, const ProblemRecord& problem);
  // Indices of the recorded problems, ascending: what a resumed run skips.
  Result<std::vector<int>> finished_problems(const std::string& run_id);
  // Marks the run finished with its summary (accuracy, counts, times...).
  VoidResult finish_run(const std::string& run_id, const Json& summary);
  // Marks the run interrupted (a Ctrl-C handler's last word).
  VoidResult interrupt_run(const std::string& run_id);
  // Takes an unfinished run over for this process (status "running" again) to finish it;
  // a finished run is an error.
  Result<RunInfo> resume_run(const std::string& run_id);
  // Takes a finished run over to record more problems (`wand improve --rounds` past where it
  // ended): "running" again, its finish time and summary cleared, total_problems raised to
  // `total_problems`. A run that is not finished, or a total not above its recorded problems,
  // is an error.
  Result<RunInfo> extend_run(const std::string& run_id, int64_t total_problems);

  // An id or a unique prefix of one; an unknown or ambiguous id is an error naming it.
  Result<std::string> resolve_id(const std::string& id_or_prefix);
  Result<std::vector<RunInfo>> list_runs(const RunFilter& filter = {});
  Result<RunInfo> get_run_info(const std::string& run_id);
  Result<Run> get_run(const std::string& run_id);  // with problems and samples
  // JSON lines: {"type":"run",...} then one {"type":"problem",...,"samples":[...]} per problem.
  VoidResult export_run(const std::string& run_id, std::ostream& out);

 private:
  struct Impl;
  explicit Store(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace wand::store
