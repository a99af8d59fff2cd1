#include "store/store.h"

#include <fmt/core.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <limits>
#include <map>
#include <mutex>
#include <ostream>
#include <random>
#include <string_view>
#include <thread>

#include "store/backend.h"
#include "store/retry.h"

// The schema's migrations, embedded from src/store/schema/*.sql (CMakeLists.txt).
extern const std::string_view wand_embedded_schema_001;
extern const std::string_view wand_embedded_schema_002;

namespace wand::store {
namespace {

namespace fs = std::filesystem;
using backend::Connection;
using backend::DbError;
using backend::Stmt;
using backend::Transaction;
using backend::TxKind;

// Migration N brings a store from version N-1 to N. Append only: a released file never changes.
const std::string_view* const kMigrations[] = {&wand_embedded_schema_001, &wand_embedded_schema_002};
constexpr int kLatest = static_cast<int>(std::size(kMigrations));

// A store we must not touch (not ours, or newer than this binary): not retried, not a DbError.
struct Refused : std::runtime_error {
  Refused(const std::string& what, std::string code = "") : std::runtime_error(what), code(std::move(code)) {}
  std::string code;  // Error::code: kNoStore for a database with no store in it
};

std::string now_iso() {
  auto now = std::chrono::system_clock::now();
  std::time_t t = std::chrono::system_clock::to_time_t(now);
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  return fmt::format("{}.{:03d}Z", buf, static_cast<int>(ms));
}

std::string host_name() {
  char buf[256] = {};
  ::gethostname(buf, sizeof buf - 1);
  return buf;
}

// "host:pid": who writes a running run.
std::string this_owner() { return fmt::format("{}:{}", host_name(), ::getpid()); }

// A run left "running" by a process of this host that is gone was interrupted. Runs owned by
// another host cannot be checked from here and keep their stored status.
bool owner_is_dead(const std::string& owner) {
  auto colon = owner.rfind(':');
  if (colon == std::string::npos || owner.substr(0, colon) != host_name()) return false;
  pid_t pid = std::atoi(owner.c_str() + colon + 1);
  return pid > 0 && ::kill(pid, 0) == -1 && errno == ESRCH;
}

// Empty strings and null JSON are stored as NULL.
std::optional<std::string_view> text_or_null(const std::string& s) {
  if (s.empty()) return std::nullopt;
  return std::string_view(s);
}
template <class T>
Json or_null(const std::optional<T>& v) {
  return v ? Json(*v) : Json(nullptr);
}

std::optional<std::string> json_or_null(const Json& j) {
  if (j.is_null()) return std::nullopt;
  return dump_text(j);
}
Json json_column(const Stmt& st, int col) {
  if (st.is_null(col)) return nullptr;
  // The file may come from anywhere: the guarded parse, so a hostile value cannot overflow the
  // stack. What is not JSON (written by another tool) is kept as text.
  std::string text = st.text(col);
  auto j = parse_json(text, "a stored JSON value");
  return j ? std::move(*j) : Json(text);
}
std::optional<std::string> opt_text(const Stmt& st, int col) {
  if (st.is_null(col)) return std::nullopt;
  return st.text(col);
}
std::optional<int64_t> opt_int(const Stmt& st, int col) {
  if (st.is_null(col)) return std::nullopt;
  return st.int64(col);
}

constexpr std::string_view kRunColumns =
    "SELECT r.id, r.kind, r.status, r.created_at, r.finished_at, r.dataset, r.model_spec, r.model_id, "
    "r.method, r.prompt_hash, r.options, r.seed, r.wand_version, r.total_problems, r.summary, r.owner, "
    "r.extra, "
    "(SELECT COUNT(*) FROM problems p WHERE p.run_id = r.id), "
    "(SELECT COUNT(p.correct) FROM problems p WHERE p.run_id = r.id), "
    "(SELECT COUNT(*) FROM problems p WHERE p.run_id = r.id AND p.correct = 1) "
    "FROM runs r ";

RunInfo read_run(const Stmt& st) {
  RunInfo r;
  r.id = st.text(0);
  r.config.kind = st.text(1);
  r.status = st.text(2);
  r.created_at = st.text(3);
  r.finished_at = st.text(4);
  r.config.dataset = st.text(5);
  r.config.model_spec = st.text(6);
  r.config.model_id = st.text(7);
  r.config.method = st.text(8);
  r.config.prompt_hash = st.text(9);
  r.config.options = json_column(st, 10);
  r.config.seed = opt_int(st, 11);
  r.config.wand_version = st.text(12);
  if (!st.is_null(13)) r.config.total_problems = static_cast<int>(st.int64(13));
  r.summary = json_column(st, 14);
  if (r.status == "running" && owner_is_dead(st.text(15))) r.status = "interrupted";
  r.config.extra = json_column(st, 16);
  r.problems_done = static_cast<int>(st.int64(17));
  r.problems_judged = static_cast<int>(st.int64(18));
  r.problems_correct = static_cast<int>(st.int64(19));
  return r;
}

}  // namespace

int schema_version() { return kLatest; }

bool is_database_uri(std::string_view location) { return backend::is_postgres_uri(location); }

std::string default_store_path() {
  auto env = [](const char* name) -> std::string {
    const char* v = std::getenv(name);
    return v && *v ? v : "";
  };
  if (auto shared = env("WAND_STORE"); !shared.empty()) return shared;
  if (auto home = env("WAND_HOME"); !home.empty()) return home + "/runs.db";
  if (auto xdg = env("XDG_DATA_HOME"); !xdg.empty()) return xdg + "/wand/runs.db";
  return env("HOME") + "/.local/share/wand/runs.db";
}

std::optional<double> RunInfo::accuracy() const {
  if (problems_judged == 0) return std::nullopt;
  return static_cast<double>(problems_correct) / problems_judged;
}

Json to_json(const RunInfo& r) {
  auto str = [](const std::string& s) { return s.empty() ? Json(nullptr) : Json(s); };
  const RunConfig& c = r.config;
  Json j = {{"id", r.id},
            {"kind", c.kind},
            {"status", r.status},
            {"created_at", r.created_at},
            {"finished_at", str(r.finished_at)},
            {"dataset", str(c.dataset)},
            {"model_spec", str(c.model_spec)},
            {"model_id", str(c.model_id)},
            {"method", str(c.method)},
            {"prompt_hash", str(c.prompt_hash)},
            {"options", c.options},
            {"seed", or_null(c.seed)},
            {"wand_version", str(c.wand_version)},
            {"total_problems", or_null(c.total_problems)},
            {"extra", c.extra},
            {"summary", r.summary},
            {"problems_done", r.problems_done},
            {"problems_judged", r.problems_judged},
            {"problems_correct", r.problems_correct}};
  j["accuracy"] = or_null(r.accuracy());
  return j;
}

Json to_json(const SampleRecord& s) {
  return {{"index", s.index},
          {"seed", or_null(s.seed)},
          {"prompt", s.prompt},
          {"completion", s.completion},
          {"program", s.program},
          {"exec_result", s.exec_result},
          {"verdict", s.verdict},
          {"answer", or_null(s.answer)},
          {"logprob", or_null(s.logprob)},
          {"extra", s.extra}};
}

Json to_json(const ProblemRecord& p) {
  Json samples = Json::array();
  for (const auto& s : p.samples) samples.push_back(to_json(s));
  return {{"index", p.index},
          {"problem_id", p.problem_id},
          {"input", p.input},
          {"expected", p.expected},
          {"answer", or_null(p.answer)},
          {"correct", or_null(p.correct)},
          {"vote", p.vote},
          {"outcome", p.outcome},
          {"timings", p.timings},
          {"prompt_tokens", p.prompt_tokens},
          {"completion_tokens", p.completion_tokens},
          {"extra", p.extra},
          {"recorded_at", p.recorded_at},
          {"samples", std::move(samples)}};
}

struct Store::Impl {
  std::string path;  // as given; a PostgreSQL URI without its password
  std::unique_ptr<Connection> conn;
  Connection& db;
  std::mutex mu;  // one connection shared by the caller's threads: a transaction at a time

  Impl(std::string p, std::unique_ptr<Connection> c) : path(std::move(p)), conn(std::move(c)), db(*conn) {}

  // Runs fn under the lock, retried while busy; SQLite's and the store's errors become an Error
  // naming the store.
  template <class F>
  auto guarded(F&& fn) -> Result<decltype(fn())> {
    std::lock_guard lock(mu);
    try {
      return retry_busy<DbError>(fn);
    } catch (const Refused& e) {
      return Error{e.what()};
    } catch (const DbError& e) {
      return Error{fmt::format("run store {}: {}", path, e.what())};
    }
  }

  void require_run(const std::string& id) {
    Stmt st(db, "SELECT 1 FROM runs WHERE id = ?");
    st.bind(1, std::string_view(id));
    if (!st.step()) throw Refused(fmt::format("no run '{}' in {}", id, path));
  }

  RunInfo run_info(const std::string& id) {
    Stmt st(db, std::string(kRunColumns) + "WHERE r.id = ?");
    st.bind(1, std::string_view(id));
    if (!st.step()) throw Refused(fmt::format("no run '{}' in {}", id, path));
    return read_run(st);
  }

  // The stored schema version: 0 for an empty database. A database holding other tables and no
  // wand_schema is someone else's: refused rather than written into.
  int stored_version() {
    auto names = db.tables();
    bool any = !names.empty(), ours = std::find(names.begin(), names.end(), "wand_schema") != names.end();
    if (!ours) {
      if (any) throw Refused(fmt::format("{} is not a wand run store (it holds other tables)", path));
      return 0;
    }
    Stmt v(db, "SELECT version FROM wand_schema");
    if (!v.step()) throw Refused(fmt::format("{} is not a wand run store (wand_schema is empty)", path));
    return static_cast<int>(v.int64(0));
  }

  // create: an empty database becomes a store; else it is an error.
  void migrate(bool create) {
    int version = stored_version();
    if (version == kLatest) return;  // the common case takes no write lock
    if (version == 0 && !create)
      throw Refused(fmt::format("no run store at {} (the database holds no wand tables)", path), kNoStore);
    Transaction tx(db, TxKind::migrate);
    int have = stored_version();
    if (have > kLatest)
      throw Refused(fmt::format("{} has run store schema version {}; this wand knows versions up to {} "
                                "(use a newer wand, or another --store)",
                                path, have, kLatest));
    if (have == kLatest) return;  // another process migrated it meanwhile
    for (int v = have + 1; v <= kLatest; ++v) db.exec(std::string(*kMigrations[v - 1]));
    Stmt(db, "UPDATE wand_schema SET version = ?").bind(1, kLatest).run();
    tx.commit();
  }
};

Store::Store(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Store::~Store() = default;
const std::string& Store::path() const { return impl_->path; }

namespace {
// "host=db dbname=wand user=me": libpq's keyword/value form, which would otherwise become the
// name of a SQLite file in the working folder (its password with it). A file name rarely starts
// with one of these keywords and '='.
bool looks_like_libpq_keywords(std::string_view s) {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  for (std::string_view key : {"host", "hostaddr", "port", "dbname", "user", "password", "service", "sslmode",
                               "connect_timeout", "options", "application_name"}) {
    std::string_view rest = s.substr(0, s.find('='));
    while (!rest.empty() && rest.back() == ' ') rest.remove_suffix(1);
    if (rest == key && s.find('=') != std::string_view::npos) return true;
  }
  return false;
}
}  // namespace

Result<std::unique_ptr<Store>> Store::open(const std::string& path, bool create) {
  if (path.empty()) return Error{"run store: the path is empty"};
  if (backend::is_postgres_uri(path)) {
    std::string shown = backend::redact_uri(path);
    try {
      auto impl = std::make_unique<Impl>(shown, backend::open_postgres(path));
      retry_busy<DbError>([&] { impl->migrate(create); });
      return std::unique_ptr<Store>(new Store(std::move(impl)));
    } catch (const Refused& e) {
      return Error{e.what(), e.code};
    } catch (const DbError& e) {
      return Error{fmt::format("run store {}: {}", shown, e.what())};
    }
  }
  if (looks_like_libpq_keywords(path))  // not echoed: such a string may hold password=...
    return Error{"run store: a libpq key=value connection string (host=... dbname=...) is not a store location; "
                 "give PostgreSQL as a URI, postgresql://USER:PASSWORD@HOST:PORT/DBNAME, or a SQLite file path"};
  std::error_code ec;
  if (!create && !fs::exists(path, ec)) return Error{fmt::format("no run store at {}", path), kNoStore};
  if (fs::is_directory(path, ec)) return Error{fmt::format("run store {} is a folder, not a file", path)};
  if (create) {
    fs::path parent = fs::path(path).parent_path();
    if (!parent.empty() && !fs::create_directories(parent, ec) && ec)
      return Error{fmt::format("run store {}: cannot create the folder {}: {}", path, parent.string(), ec.message())};
  }
  std::unique_ptr<Impl> impl;
  try {
    impl = std::make_unique<Impl>(path, backend::open_sqlite(path, create));
    Connection& db = impl->db;
    retry_busy<DbError>([&] {
      // Reading the journal mode is the first read of the file: a file that is not a database
      // fails here. WAL lets readers work while one process writes.
      Stmt st(db, "PRAGMA journal_mode = WAL");
      st.step();
      if (st.text(0) != "wal") throw Refused(fmt::format("run store {}: cannot use a WAL journal ({})", path, st.text(0)));
    });
    // A committed transaction survives the writer's death; fsync only at checkpoints.
    db.exec("PRAGMA synchronous = NORMAL");
    retry_busy<DbError>([&] { impl->migrate(true); });
  } catch (const Refused& e) {
    return Error{e.what()};
  } catch (const DbError& e) {
    using K = DbError::Kind;
    std::string why = e.kind == K::not_a_db   ? "not a SQLite database (or its header is corrupt)"
                      : e.kind == K::corrupt  ? "the database is corrupt"
                      : e.kind == K::readonly ? "not writable"
                      : e.kind == K::cantopen ? "cannot open it (missing folder or no permission)"
                                              : e.what();
    return Error{fmt::format("run store {}: {}", path, why)};
  }
  return std::unique_ptr<Store>(new Store(std::move(impl)));
}

Result<std::string> Store::create_run(const RunConfig& config) {
  if (config.kind.empty()) return Error{"create_run: the run's kind is empty"};
  return impl_->guarded([&] {
    std::mt19937_64 rng(std::random_device{}());
    for (;;) {
      std::string id = fmt::format("{:08x}", static_cast<uint32_t>(rng()));
      Transaction tx(impl_->db);
      Stmt exists(impl_->db, "SELECT 1 FROM runs WHERE id = ?");
      exists.bind(1, std::string_view(id));
      if (exists.step()) continue;  // 1 in 4 billion per run already stored
      Stmt st(impl_->db,
                   "INSERT INTO runs (id, kind, status, created_at, dataset, model_spec, model_id, method, "
                   "prompt_hash, options, seed, wand_version, total_problems, owner, extra) "
                   "VALUES (?, ?, 'running', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
      st.bind(1, std::string_view(id))
          .bind(2, std::string_view(config.kind))
          .bind(3, std::string_view(now_iso()))
          .bind(4, text_or_null(config.dataset))
          .bind(5, text_or_null(config.model_spec))
          .bind(6, text_or_null(config.model_id))
          .bind(7, text_or_null(config.method))
          .bind(8, text_or_null(config.prompt_hash))
          .bind(9, json_or_null(config.options))
          .bind(10, config.seed)
          .bind(11, std::string_view(config.wand_version.empty() ? WAND_VERSION : config.wand_version))
          .bind(12, config.total_problems)
          .bind(13, std::string_view(this_owner()))
          .bind(14, json_or_null(config.extra));
      st.run();
      tx.commit();
      return id;
    }
  });
}

VoidResult Store::record_problem(const std::string& run_id, const ProblemRecord& p) {
  return impl_->guarded([&]() -> Ok {
    Connection& db = impl_->db;
    Transaction tx(db);
    impl_->require_run(run_id);
    Stmt dup(db, "SELECT 1 FROM problems WHERE run_id = ? AND idx = ?");
    dup.bind(1, std::string_view(run_id)).bind(2, p.index);
    if (dup.step()) throw Refused(fmt::format("problem {} of run {} is already recorded", p.index, run_id));
    Stmt st(db,
                 "INSERT INTO problems (run_id, idx, problem_id, input, expected, answer, correct, vote, "
                 "outcome, timings, prompt_tokens, completion_tokens, recorded_at, extra) "
                 "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
    std::optional<int> correct;
    if (p.correct) correct = *p.correct ? 1 : 0;
    st.bind(1, std::string_view(run_id))
        .bind(2, p.index)
        .bind(3, text_or_null(p.problem_id))
        .bind(4, text_or_null(p.input))
        .bind(5, text_or_null(p.expected))
        .bind(6, p.answer)
        .bind(7, correct)
        .bind(8, json_or_null(p.vote))
        .bind(9, text_or_null(p.outcome))
        .bind(10, json_or_null(p.timings))
        .bind(11, p.prompt_tokens)
        .bind(12, p.completion_tokens)
        .bind(13, std::string_view(now_iso()))
        .bind(14, json_or_null(p.extra))
        .run();
    Stmt ins(db,
                  "INSERT INTO samples (run_id, problem_idx, idx, seed, prompt, completion, program, "
                  "exec_result, verdict, answer, logprob, extra) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
    for (const auto& s : p.samples) {
      ins.reset();
      ins.bind(1, std::string_view(run_id))
          .bind(2, p.index)
          .bind(3, s.index)
          .bind(4, s.seed)
          .bind(5, std::string_view(s.prompt))
          .bind(6, std::string_view(s.completion))
          .bind(7, std::string_view(s.program))
          .bind(8, json_or_null(s.exec_result))
          .bind(9, json_or_null(s.verdict))
          .bind(10, s.answer)
          .bind(11, s.logprob)
          .bind(12, json_or_null(s.extra));
      try {
        ins.run();
      } catch (const DbError& e) {
        if (e.kind != DbError::Kind::constraint) throw;
        throw Refused(fmt::format("problem {} of run {}: sample index {} appears twice", p.index, run_id, s.index));
      }
    }
    tx.commit();
    return Ok{};
  });
}

Result<std::vector<int>> Store::finished_problems(const std::string& run_id) {
  return impl_->guarded([&] {
    impl_->require_run(run_id);
    Stmt st(impl_->db, "SELECT idx FROM problems WHERE run_id = ? ORDER BY idx");
    st.bind(1, std::string_view(run_id));
    std::vector<int> done;
    while (st.step()) done.push_back(static_cast<int>(st.int64(0)));
    return done;
  });
}

VoidResult Store::finish_run(const std::string& run_id, const Json& summary) {
  return impl_->guarded([&]() -> Ok {
    Transaction tx(impl_->db);
    impl_->require_run(run_id);
    Stmt(impl_->db, "UPDATE runs SET status = 'finished', finished_at = ?, summary = ? WHERE id = ?")
        .bind(1, std::string_view(now_iso()))
        .bind(2, json_or_null(summary))
        .bind(3, std::string_view(run_id))
        .run();
    tx.commit();
    return Ok{};
  });
}

VoidResult Store::interrupt_run(const std::string& run_id) {
  return impl_->guarded([&]() -> Ok {
    Transaction tx(impl_->db);
    impl_->require_run(run_id);
    Stmt(impl_->db, "UPDATE runs SET status = 'interrupted' WHERE id = ? AND status = 'running'")
        .bind(1, std::string_view(run_id))
        .run();
    tx.commit();
    return Ok{};
  });
}

Result<RunInfo> Store::resume_run(const std::string& run_id) {
  return impl_->guarded([&] {
    Transaction tx(impl_->db);
    RunInfo info = impl_->run_info(run_id);
    if (info.status == "finished") throw Refused(fmt::format("run {} is already finished", run_id));
    if (info.status == "running")
      throw Refused(fmt::format("run {} is still running in another process", run_id));
    Stmt(impl_->db, "UPDATE runs SET status = 'running', owner = ? WHERE id = ?")
        .bind(1, std::string_view(this_owner()))
        .bind(2, std::string_view(run_id))
        .run();
    tx.commit();
    info.status = "running";
    return info;
  });
}

Result<RunInfo> Store::extend_run(const std::string& run_id, int64_t total_problems) {
  return impl_->guarded([&] {
    Transaction tx(impl_->db);
    RunInfo info = impl_->run_info(run_id);
    if (info.status != "finished")
      throw Refused(fmt::format("run {} is {}, not finished: resume it instead of extending it", run_id, info.status));
    if (total_problems <= info.problems_done)
      throw Refused(fmt::format("run {} has {} problems recorded; extending it needs more than that, got {}", run_id,
                                info.problems_done, total_problems));
    Stmt(impl_->db,
         "UPDATE runs SET status = 'running', owner = ?, finished_at = NULL, summary = NULL, total_problems = ? "
         "WHERE id = ?")
        .bind(1, std::string_view(this_owner()))
        .bind(2, total_problems)
        .bind(3, std::string_view(run_id))
        .run();
    tx.commit();
    info.status = "running";
    info.config.total_problems = total_problems;
    info.finished_at.clear();
    info.summary = Json();
    return info;
  });
}

Result<std::string> Store::resolve_id(const std::string& id) {
  return impl_->guarded([&] {
    if (id.empty()) throw Refused("the run id is empty");
    // substr rather than LIKE, so '%' and '_' in what the user typed match only themselves.
    Stmt st(impl_->db, "SELECT id FROM runs WHERE substr(id, 1, ?) = ? ORDER BY id LIMIT 3");
    st.bind(1, static_cast<int64_t>(id.size())).bind(2, std::string_view(id));
    std::vector<std::string> found;
    while (st.step()) found.push_back(st.text(0));
    for (const auto& f : found)
      if (f == id) return id;
    if (found.empty()) throw Refused(fmt::format("no run '{}' in {}", id, impl_->path));
    if (found.size() > 1)
      throw Refused(fmt::format("run id '{}' is ambiguous in {} ({}, {}, ...)", id, impl_->path, found[0], found[1]));
    return found[0];
  });
}

Result<std::vector<RunInfo>> Store::list_runs(const RunFilter& f) {
  return impl_->guarded([&] {
    Stmt st(impl_->db, std::string(kRunColumns) +
                                "WHERE (CAST(? AS TEXT) IS NULL OR r.kind = ?) ORDER BY r.created_at DESC, r.id LIMIT ?");
    // No limit is the largest one (PostgreSQL refuses SQLite's -1).
    st.bind(1, text_or_null(f.kind))
        .bind(2, text_or_null(f.kind))
        .bind(3, f.limit > 0 ? int64_t{f.limit} : std::numeric_limits<int64_t>::max());
    std::vector<RunInfo> runs;
    while (st.step()) runs.push_back(read_run(st));
    return runs;
  });
}

Result<RunInfo> Store::get_run_info(const std::string& run_id) {
  return impl_->guarded([&] { return impl_->run_info(run_id); });
}

Result<Run> Store::get_run(const std::string& run_id) {
  return impl_->guarded([&] {
    Connection& db = impl_->db;
    // One read transaction: the run, its problems and their samples from the same snapshot while
    // another process may be appending.
    Transaction snapshot(db, TxKind::read);
    Run run;
    run.info = impl_->run_info(run_id);
    Stmt ps(db,
                 "SELECT idx, problem_id, input, expected, answer, correct, vote, outcome, timings, "
                 "prompt_tokens, completion_tokens, recorded_at, extra FROM problems WHERE run_id = ? ORDER BY idx");
    ps.bind(1, std::string_view(run_id));
    std::map<int, size_t> at;
    while (ps.step()) {
      ProblemRecord p;
      p.index = static_cast<int>(ps.int64(0));
      p.problem_id = ps.text(1);
      p.input = ps.text(2);
      p.expected = ps.text(3);
      p.answer = opt_text(ps, 4);
      if (!ps.is_null(5)) p.correct = ps.int64(5) != 0;
      p.vote = json_column(ps, 6);
      p.outcome = ps.text(7);
      p.timings = json_column(ps, 8);
      p.prompt_tokens = ps.int64(9);
      p.completion_tokens = ps.int64(10);
      p.recorded_at = ps.text(11);
      p.extra = json_column(ps, 12);
      at[p.index] = run.problems.size();
      run.problems.push_back(std::move(p));
    }
    Stmt ss(db,
                 "SELECT problem_idx, idx, seed, prompt, completion, program, exec_result, verdict, answer, "
                 "logprob, extra FROM samples WHERE run_id = ? ORDER BY problem_idx, idx");
    ss.bind(1, std::string_view(run_id));
    while (ss.step()) {
      SampleRecord s;
      s.index = static_cast<int>(ss.int64(1));
      s.seed = opt_int(ss, 2);
      s.prompt = ss.text(3);
      s.completion = ss.text(4);
      s.program = ss.text(5);
      s.exec_result = json_column(ss, 6);
      s.verdict = json_column(ss, 7);
      s.answer = opt_text(ss, 8);
      if (!ss.is_null(9)) s.logprob = ss.real(9);
      s.extra = json_column(ss, 10);
      run.problems[at.at(static_cast<int>(ss.int64(0)))].samples.push_back(std::move(s));
    }
    snapshot.commit();
    return run;
  });
}

VoidResult Store::export_run(const std::string& run_id, std::ostream& out) {
  auto run = get_run(run_id);
  if (!run) return run.error();
  Json head = to_json(run->info);
  head["type"] = "run";
  out << dump_text(head) << '\n';
  for (const auto& p : run->problems) {
    Json line = to_json(p);
    line["type"] = "problem";
    out << dump_text(line) << '\n';
  }
  out.flush();
  if (!out) return Error{fmt::format("exporting run {}: the output could not be written", run_id)};
  return Ok{};
}

}  // namespace wand::store
