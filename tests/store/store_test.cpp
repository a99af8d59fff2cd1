// The run store (src/store) and `wand runs`: schema migrations, round trips, real concurrent
// writer processes, a writer killed with SIGKILL, and the command's output and errors.
#include <libpq-fe.h>
#include <pwd.h>
#include <signal.h>
#include <sqlite3.h>
#include <fmt/core.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <set>
#include <thread>

#include "store/store.h"
#include "support.h"

namespace wand::test {
namespace {

namespace fs = std::filesystem;

std::vector<std::string>& made_dirs() {
  static std::vector<std::string> dirs;
  return dirs;
}

// The folders go when the tests end (the kill test's stores are tens of MB).
struct RemoveDirs : ::testing::Environment {
  void TearDown() override {
    for (const auto& d : made_dirs()) fs::remove_all(d);
  }
};
const auto* remove_dirs = ::testing::AddGlobalTestEnvironment(new RemoveDirs);

// A fresh folder per call.
std::string temp_dir() {
  static int calls = 0;
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  fs::path d = fs::path(::testing::TempDir()) /
               fmt::format("wand_store_{}_{}_{}_{}", info->test_suite_name(), info->name(), getpid(), ++calls);
  fs::remove_all(d);
  fs::create_directories(d);
  made_dirs().push_back(d.string());
  return d.string();
}

std::unique_ptr<store::Store> open_ok(const std::string& path) {
  auto s = store::Store::open(path);
  if (!s) ADD_FAILURE() << s.error().message;
  return s ? std::move(*s) : nullptr;
}

// Raw SQL on a store file, for fixtures and for checking what is on disk.
std::string sql_scalar(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  sqlite3_open(path.c_str(), &db);
  std::string out;
  char* err = nullptr;
  sqlite3_exec(
      db, sql.c_str(),
      [](void* o, int n, char** vals, char**) {
        if (n > 0 && vals[0]) *static_cast<std::string*>(o) = vals[0];
        return 0;
      },
      &out, &err);
  if (err) {
    ADD_FAILURE() << sql << ": " << err;
    sqlite3_free(err);
  }
  sqlite3_close(db);
  return out;
}

store::RunConfig bench_config(const std::string& dataset = "numbers") {
  store::RunConfig c;
  c.kind = "bench";
  c.dataset = dataset;
  c.model_spec = "local:models/wand-pot.gguf";
  c.model_id = "wand-pot (llama, 4.3M, q8_0)";
  c.method = "pot";
  c.prompt_hash = "sha256:0123abcd";
  c.options = {{"temperature", 0.7}, {"samples", 3}};
  c.seed = 1;
  c.total_problems = 3;
  return c;
}

// A deterministic problem whose content can be checked after a crash: `pad` bytes per text.
store::ProblemRecord make_problem(int index, int samples, size_t pad = 0) {
  store::ProblemRecord p;
  p.index = index;
  p.problem_id = fmt::format("p{}", index);
  p.input = fmt::format("Question {}: how many?", index);
  p.expected = std::to_string(index * 2);
  p.answer = std::to_string(index * 2);
  p.correct = index % 3 != 1;
  p.vote = {{std::to_string(index * 2), samples}};
  p.outcome = "ok";
  p.timings = {{"generate", 0.5}, {"execute", 0.01}};
  p.prompt_tokens = 10 + index;
  p.completion_tokens = 20 + index;
  for (int k = 0; k < samples; ++k) {
    store::SampleRecord s;
    s.index = k;
    s.seed = index * 100 + k;
    s.prompt = "Question: ...\nProgram:\n";
    s.completion = fmt::format("answer = {}\n", index * 2) + std::string(pad, static_cast<char>('a' + k));
    s.program = s.completion;
    s.exec_result = {{"status", "ok"}, {"stdout", std::to_string(index * 2) + "\n"}};
    s.verdict = {{"passed", true}};
    s.answer = std::to_string(index * 2);
    s.logprob = -0.5 * k;
    p.samples.push_back(std::move(s));
  }
  return p;
}

// The problem as recorded, without the store's timestamp, for comparing with what was written.
Json comparable(const store::ProblemRecord& p) {
  Json j = store::to_json(p);
  j.erase("recorded_at");
  return j;
}

// Runs child(w) in n forked processes at once (each returns its exit code) and expects every one
// to exit 0.
void in_processes(int n, const std::function<int(int)>& child) {
  std::vector<pid_t> pids;
  for (int w = 0; w < n; ++w) {
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) _exit(child(w));
    pids.push_back(pid);
  }
  for (pid_t pid : pids) {
    int st = 0;
    waitpid(pid, &st, 0);
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << "child exit " << WEXITSTATUS(st);
  }
}

// ---- PostgreSQL: a real server for the backend-parametrized tests ----

// Runs a shell command line; its exit status.
int sh(const std::string& cmd) {
  int st = std::system(cmd.c_str());
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

// A PostgreSQL server of its own for this test process: initdb into a temp folder, pg_ctl start
// on a unix socket only (no TCP port to collide on), trust authentication; stopped when the
// tests end. initdb refuses root, so as root it runs as the `postgres` user the server package
// made. Each test gets a database of its own.
class PgServer {
 public:
  static PgServer& get() {
    static PgServer server;
    return server;
  }
  // Why there is no server ("" when there is one).
  const std::string& unavailable() const { return why_; }
  // A new empty database's URI.
  std::string new_database() {
    std::string name = fmt::format("wand_test_{}", ++databases_);
    PGconn* c = PQconnectdb(uri("postgres").c_str());
    PGresult* r = PQexec(c, ("CREATE DATABASE " + name).c_str());
    if (PQresultStatus(r) != PGRES_COMMAND_OK) ADD_FAILURE() << "CREATE DATABASE: " << PQerrorMessage(c);
    PQclear(r);
    PQfinish(c);
    return uri(name);
  }
  std::string uri(const std::string& db) const {
    return fmt::format("postgresql:///{}?host={}&port={}&user=postgres", db, dir_ + "/sock", port_);
  }
  void stop() {
    if (started_) sh(run_as_ + bin_ + "/pg_ctl -D " + dir_ + "/data -m immediate -w stop >/dev/null 2>&1");
    started_ = false;
    if (!dir_.empty()) fs::remove_all(dir_);
  }

 private:
  PgServer() {
    for (const char* candidate : {"/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/16/bin", "/usr/lib/postgresql/17/bin"})
      if (fs::exists(std::string(candidate) + "/initdb")) bin_ = candidate;
    if (bin_.empty()) {
      why_ = "no PostgreSQL server binaries (install postgresql: scripts/setup.sh)";
      return;
    }
    dir_ = fmt::format("/tmp/wand_pg_{}", ::getpid());
    fs::remove_all(dir_);
    fs::create_directories(dir_ + "/sock");
    if (::geteuid() == 0) {
      if (!::getpwnam("postgres")) {
        why_ = "running as root and there is no postgres user for initdb";
        return;
      }
      sh("chown -R postgres: " + dir_);
      run_as_ = "runuser -u postgres -- ";
    }
    auto [fd, port] = loopback_listener();  // a port number no other server here uses now
    ::close(fd);
    port_ = port;
    std::string init_log = dir_ + "/initdb.log", log = dir_ + "/server.log";  // the server (as postgres) writes its own
    if (sh(run_as_ + bin_ + "/initdb -D " + dir_ + "/data -A trust -U postgres -E UTF8 --locale=C --no-sync >" + init_log +
           " 2>&1") != 0) {
      why_ = "initdb failed: " + slurp(init_log);
      return;
    }
    std::string opts = fmt::format("-k {} -p {} -c listen_addresses='' -c fsync=off -c max_connections=200", dir_ + "/sock", port_);
    if (sh(run_as_ + bin_ + "/pg_ctl -D " + dir_ + "/data -l " + log + " -w -t 60 -o \"" + opts + "\" start >/dev/null") != 0) {
      why_ = "pg_ctl start failed: " + slurp(log);
      return;
    }
    started_ = true;
  }
  std::string bin_, dir_, run_as_, why_;
  int port_ = 0, databases_ = 0;
  bool started_ = false;
};

struct StopPg : ::testing::Environment {
  void TearDown() override { PgServer::get().stop(); }
};
const auto* stop_pg = ::testing::AddGlobalTestEnvironment(new StopPg);

// The store tests that hold for every backend: SQLite files and PostgreSQL databases.
class StoreBackends : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (GetParam() == "postgresql" && !PgServer::get().unavailable().empty())
      GTEST_SKIP() << PgServer::get().unavailable();
  }
  bool pg() const { return GetParam() == "postgresql"; }
  // A new, empty store location.
  std::string location() { return pg() ? PgServer::get().new_database() : temp_dir() + "/runs.db"; }
  // Runs SQL statements on either backend (fixtures: an older schema).
  void exec(const std::string& loc, const std::string& sql) {
    if (!pg()) {
      sqlite3* db = nullptr;
      ASSERT_EQ(sqlite3_open(loc.c_str(), &db), SQLITE_OK);
      char* err = nullptr;
      EXPECT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err), SQLITE_OK) << (err ? err : "");
      sqlite3_free(err);
      sqlite3_close(db);
      return;
    }
    PGconn* c = PQconnectdb(loc.c_str());
    PGresult* r = PQexec(c, sql.c_str());
    EXPECT_EQ(PQresultStatus(r), PGRES_COMMAND_OK) << PQerrorMessage(c);
    PQclear(r);
    PQfinish(c);
  }
  // The first column of the first row of a query, on either backend.
  std::string scalar(const std::string& loc, const std::string& sql) {
    if (!pg()) return sql_scalar(loc, sql);
    PGconn* c = PQconnectdb(loc.c_str());
    PGresult* r = PQexec(c, sql.c_str());
    std::string out = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) ? PQgetvalue(r, 0, 0) : "";
    if (PQresultStatus(r) != PGRES_TUPLES_OK) ADD_FAILURE() << sql << ": " << PQerrorMessage(c);
    PQclear(r);
    PQfinish(c);
    return out;
  }
};
INSTANTIATE_TEST_SUITE_P(Backends, StoreBackends, ::testing::Values("sqlite", "postgresql"),
                         [](const auto& info) { return info.param; });

TEST(Store, DefaultPathFollowsWandHomeThenXdg) {
  auto env = [](const char* k) { return std::getenv(k) ? std::optional<std::string>(std::getenv(k)) : std::nullopt; };
  auto home = env("WAND_HOME"), xdg = env("XDG_DATA_HOME");
  setenv("WAND_HOME", "/srv/wand", 1);
  EXPECT_EQ(store::default_store_path(), "/srv/wand/runs.db");
  unsetenv("WAND_HOME");
  setenv("XDG_DATA_HOME", "/data", 1);
  EXPECT_EQ(store::default_store_path(), "/data/wand/runs.db");
  unsetenv("XDG_DATA_HOME");
  EXPECT_EQ(store::default_store_path(), std::string(std::getenv("HOME")) + "/.local/share/wand/runs.db");
  if (home) setenv("WAND_HOME", home->c_str(), 1);
  if (xdg) setenv("XDG_DATA_HOME", xdg->c_str(), 1);
}

TEST(Store, CreatesFoldersAndAnEmptyFileBecomesAStore) {
  std::string dir = temp_dir();
  std::string nested = dir + "/a/b/runs.db";
  ASSERT_TRUE(open_ok(nested));
  EXPECT_EQ(sql_scalar(nested, "SELECT version FROM wand_schema"), std::to_string(store::schema_version()));
  EXPECT_EQ(sql_scalar(nested, "PRAGMA journal_mode"), "wal");

  std::string empty = dir + "/empty.db";
  std::ofstream(empty).close();  // 0 bytes: version 0
  auto s = open_ok(empty);
  ASSERT_TRUE(s);
  EXPECT_EQ(sql_scalar(empty, "SELECT version FROM wand_schema"), "2");
  ASSERT_TRUE(s->create_run(bench_config()));
}

// Version 1 as it was released, written by hand: opening it migrates to the current version and
// keeps what it held.
TEST_P(StoreBackends, MigratesAVersion1Store) {
  std::string path = location();
  const char* v1 = R"(
    CREATE TABLE wand_schema (version INTEGER NOT NULL);
    INSERT INTO wand_schema VALUES (1);
    CREATE TABLE runs (id TEXT PRIMARY KEY, kind TEXT NOT NULL, status TEXT NOT NULL, created_at TEXT NOT NULL,
      finished_at TEXT, dataset TEXT, model_spec TEXT, model_id TEXT, method TEXT, prompt_hash TEXT, options TEXT,
      seed BIGINT, wand_version TEXT, total_problems INTEGER, summary TEXT);
    CREATE TABLE problems (run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE, idx INTEGER NOT NULL,
      problem_id TEXT, input TEXT, expected TEXT, answer TEXT, correct INTEGER, vote TEXT, outcome TEXT, timings TEXT,
      prompt_tokens BIGINT, completion_tokens BIGINT, recorded_at TEXT NOT NULL, PRIMARY KEY (run_id, idx));
    CREATE TABLE samples (run_id TEXT NOT NULL, problem_idx INTEGER NOT NULL, idx INTEGER NOT NULL, seed BIGINT,
      prompt TEXT, completion TEXT, program TEXT, exec_result TEXT, verdict TEXT, answer TEXT, logprob DOUBLE PRECISION,
      PRIMARY KEY (run_id, problem_idx, idx),
      FOREIGN KEY (run_id, problem_idx) REFERENCES problems (run_id, idx) ON DELETE CASCADE);
    INSERT INTO runs VALUES ('0ld0ld00', 'bench', 'finished', '2026-01-02T03:04:05.000Z', '2026-01-02T03:05:00.000Z',
      'numbers', 'local:old.gguf', 'old', 'pot', NULL, '{"samples":1}', 7, '0.0.9', 1, '{"accuracy":1.0}');
    INSERT INTO problems VALUES ('0ld0ld00', 0, 'q0', 'What is 2+2?', '4', '4', 1, NULL, 'ok', NULL, 5, 6,
      '2026-01-02T03:04:30.000Z');
    INSERT INTO samples VALUES ('0ld0ld00', 0, 0, 7, 'Q', 'answer = 4', 'answer = 4', '{"status":"ok"}', NULL, '4', -0.25);
  )";
  exec(path, v1);

  auto s = open_ok(path);
  ASSERT_TRUE(s);
  EXPECT_EQ(scalar(path, "SELECT version FROM wand_schema"), "2");
  auto run = s->get_run("0ld0ld00");
  ASSERT_TRUE(run) << run.error().message;
  EXPECT_EQ(run->info.status, "finished");
  EXPECT_EQ(run->info.config.seed, 7);
  EXPECT_EQ(run->info.config.options["samples"], 1);
  EXPECT_EQ(run->info.summary["accuracy"], 1.0);
  EXPECT_TRUE(run->info.config.extra.is_null());
  ASSERT_EQ(run->problems.size(), 1u);
  EXPECT_EQ(run->problems[0].input, "What is 2+2?");
  EXPECT_EQ(run->problems[0].correct, true);
  ASSERT_EQ(run->problems[0].samples.size(), 1u);
  EXPECT_EQ(run->problems[0].samples[0].exec_result["status"], "ok");
  EXPECT_EQ(run->problems[0].samples[0].logprob, -0.25);
  EXPECT_EQ(run->info.accuracy(), 1.0);
  // The new columns work on the migrated store.
  auto cfg = bench_config();
  cfg.extra = {{"rounds", 2}};
  auto id = s->create_run(cfg);
  ASSERT_TRUE(id);
  EXPECT_EQ(s->get_run_info(*id)->config.extra["rounds"], 2);
}

TEST(Store, RefusesANewerSchemaNamingBothVersions) {
  std::string path = temp_dir() + "/future.db";
  ASSERT_TRUE(open_ok(path));
  sql_scalar(path, "UPDATE wand_schema SET version = 99");
  auto s = store::Store::open(path);
  ASSERT_FALSE(s);
  const std::string& m = s.error().message;
  EXPECT_NE(m.find(path), std::string::npos) << m;
  EXPECT_NE(m.find("version 99"), std::string::npos) << m;
  EXPECT_NE(m.find("up to 2"), std::string::npos) << m;
  EXPECT_EQ(sql_scalar(path, "SELECT version FROM wand_schema"), "99");  // left alone
}

TEST(Store, RefusesWhatIsNotAStore) {
  std::string dir = temp_dir();
  std::string text = dir + "/notes.db";
  std::ofstream(text) << std::string(8192, 'x');
  auto a = store::Store::open(text);
  ASSERT_FALSE(a);
  EXPECT_NE(a.error().message.find(text), std::string::npos) << a.error().message;
  EXPECT_NE(a.error().message.find("not a SQLite database"), std::string::npos) << a.error().message;

  std::string other = dir + "/other.db";
  sql_scalar(other, "CREATE TABLE users (name TEXT)");
  auto b = store::Store::open(other);
  ASSERT_FALSE(b);
  EXPECT_NE(b.error().message.find(other + " is not a wand run store"), std::string::npos) << b.error().message;

  // A store whose pages were overwritten: an error naming it, never a crash.
  std::string broken = dir + "/broken.db";
  {
    auto s = open_ok(broken);
    auto id = s->create_run(bench_config());
    for (int i = 0; i < 20; ++i) ASSERT_TRUE(s->record_problem(*id, make_problem(i, 2, 2000)));
  }
  sql_scalar(broken, "PRAGMA wal_checkpoint(TRUNCATE)");
  {
    std::fstream f(broken, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(4096 * 2);
    std::string junk(4096 * 4, '\x5a');
    f.write(junk.data(), junk.size());
  }
  auto c = store::Store::open(broken);
  if (c) {  // the damage may be found only when the pages are read
    auto runs = (*c)->list_runs();
    auto run = runs && !runs->empty() ? (*c)->get_run(runs->front().id) : Result<store::Run>(Error{"no runs"});
    ASSERT_FALSE(runs && run) << "a store with overwritten pages read back fine";
    const std::string& m = runs ? run.error().message : runs.error().message;
    EXPECT_NE(m.find(broken), std::string::npos) << m;
  } else {
    EXPECT_NE(c.error().message.find(broken), std::string::npos) << c.error().message;
  }

  auto d = store::Store::open("/dev/null/wand/runs.db");
  ASSERT_FALSE(d);
  EXPECT_NE(d.error().message.find("/dev/null/wand/runs.db"), std::string::npos) << d.error().message;
  auto e = store::Store::open(dir);
  ASSERT_FALSE(e);
  EXPECT_NE(e.error().message.find("is a folder"), std::string::npos) << e.error().message;
  auto f = store::Store::open(dir + "/missing.db", /*create=*/false);
  ASSERT_FALSE(f);
  EXPECT_NE(f.error().message.find("no run store at " + dir + "/missing.db"), std::string::npos);
  EXPECT_FALSE(fs::exists(dir + "/missing.db"));
  // libpq's key=value form is refused, never a SQLite file named after it, and its password is
  // not echoed; a file whose name merely has '=' in it is still a file.
  auto g = store::Store::open("host=localhost dbname=wand password=hunter2");
  ASSERT_FALSE(g);
  EXPECT_NE(g.error().message.find("postgresql://"), std::string::npos) << g.error().message;
  EXPECT_EQ(g.error().message.find("hunter2"), std::string::npos) << g.error().message;
  EXPECT_FALSE(fs::exists("host=localhost dbname=wand password=hunter2"));
  EXPECT_TRUE(store::Store::open(dir + "/runs=1.db"));
}

TEST_P(StoreBackends, RoundTripsEveryField) {
  std::string path = location();
  auto s = open_ok(path);
  store::RunConfig c = bench_config("données/ГСМ 数学.jsonl");
  c.seed = -9'000'000'000'000'000'000LL;
  c.options = {{"stop", {"\n\n", "Question:"}}, {"nested", {{"a", nullptr}, {"b", 1e-300}}}, {"emoji", "🪄"}};
  c.extra = Json::array({1, "two", 3.5});
  auto id = s->create_run(c);
  ASSERT_TRUE(id) << id.error().message;
  EXPECT_EQ(id->size(), 8u);

  store::ProblemRecord p = make_problem(0, 3, 1 << 20);  // 1 MiB per completion and program
  p.input = "Ава has 23 🍎; 佐藤 gives 17. How many?\nA line\twith a tab and a \"quote\"";
  p.samples[1].completion = std::string("before\0after", 12);  // a NUL byte inside
  p.samples[1].answer = "";                                     // empty is not absent
  p.samples[2].answer.reset();
  p.samples[2].logprob.reset();
  p.samples[2].seed.reset();
  p.samples[2].extra = {{"feedback", "line 3: NameError"}};
  p.correct.reset();
  p.answer.reset();
  ASSERT_TRUE(s->record_problem(*id, p));
  // PostgreSQL's text holds no NUL byte: the store writes U+FFFD there (store.h).
  const std::string nul_stored = pg() ? std::string("before\xEF\xBF\xBD" "after") : std::string("before\0after", 12);
  p.samples[1].completion = nul_stored;
  store::ProblemRecord q = make_problem(1, 0);
  q.correct = false;
  ASSERT_TRUE(s->record_problem(*id, q));

  s.reset();  // read back through a new connection
  s = open_ok(path);
  auto run = s->get_run(*id);
  ASSERT_TRUE(run) << run.error().message;
  const store::RunConfig& rc = run->info.config;
  EXPECT_EQ(rc.kind, "bench");
  EXPECT_EQ(rc.dataset, c.dataset);
  EXPECT_EQ(rc.model_spec, c.model_spec);
  EXPECT_EQ(rc.model_id, c.model_id);
  EXPECT_EQ(rc.method, "pot");
  EXPECT_EQ(rc.prompt_hash, c.prompt_hash);
  EXPECT_EQ(rc.options, c.options);
  EXPECT_EQ(rc.seed, c.seed);
  EXPECT_EQ(rc.total_problems, 3);
  EXPECT_EQ(rc.extra, c.extra);
  EXPECT_EQ(rc.wand_version, "0.1.0");  // filled in by the store
  EXPECT_EQ(run->info.status, "running");
  EXPECT_EQ(run->info.problems_done, 2);
  EXPECT_EQ(run->info.problems_judged, 1);
  EXPECT_EQ(run->info.problems_correct, 0);
  EXPECT_EQ(run->info.accuracy(), 0.0);
  ASSERT_EQ(run->problems.size(), 2u);
  EXPECT_EQ(comparable(run->problems[0]), comparable(p));
  EXPECT_EQ(comparable(run->problems[1]), comparable(q));
  EXPECT_EQ(run->problems[0].samples[1].completion, nul_stored);
  EXPECT_EQ(run->problems[0].samples[0].completion.size(), (1u << 20) + 11);
  EXPECT_FALSE(run->problems[0].recorded_at.empty());

  ASSERT_TRUE(s->finish_run(*id, {{"accuracy", 0.0}, {"problems", 2}}));
  auto info = s->get_run_info(*id);
  EXPECT_EQ(info->status, "finished");
  EXPECT_FALSE(info->finished_at.empty());
  EXPECT_EQ(info->summary["problems"], 2);

  std::ostringstream out;
  ASSERT_TRUE(s->export_run(*id, out));
  std::istringstream lines(out.str());
  std::vector<Json> js;
  for (std::string l; std::getline(lines, l);) js.push_back(Json::parse(l));
  ASSERT_EQ(js.size(), 3u);
  EXPECT_EQ(js[0]["type"], "run");
  EXPECT_EQ(js[0]["id"], *id);
  EXPECT_EQ(js[0]["options"], c.options);
  EXPECT_EQ(js[1]["type"], "problem");
  EXPECT_EQ(js[1]["input"], p.input);
  EXPECT_EQ(js[1]["samples"].size(), 3u);
  EXPECT_EQ(js[1]["samples"][1]["completion"], nul_stored);
  EXPECT_EQ(js[2]["index"], 1);
}

// JSON columns written by something else: too deep for nlohmann's recursion, or not JSON at all,
// come back as text instead of crashing the reader.
TEST(Store, ForeignJsonInAStoreIsKeptAsText) {
  std::string path = temp_dir() + "/runs.db";
  auto s = open_ok(path);
  auto id = *s->create_run(bench_config());
  std::string deep = std::string(100000, '[') + std::string(100000, ']');
  sql_scalar(path, "UPDATE runs SET options = '" + deep + "', summary = '{not json' WHERE id = '" + id + "'");
  auto info = s->get_run_info(id);
  ASSERT_TRUE(info);
  EXPECT_EQ(info->config.options, Json(deep));
  EXPECT_EQ(info->summary, Json("{not json"));
}

TEST_P(StoreBackends, RefusesDuplicatesAndUnknownRuns) {
  auto s = open_ok(location());
  auto id = s->create_run(bench_config());
  ASSERT_TRUE(s->record_problem(*id, make_problem(4, 1)));
  auto again = s->record_problem(*id, make_problem(4, 1));
  ASSERT_FALSE(again);
  EXPECT_NE(again.error().message.find("problem 4 of run " + *id + " is already recorded"), std::string::npos);
  store::ProblemRecord twice = make_problem(5, 2);
  twice.samples[1].index = 0;
  auto dup = s->record_problem(*id, twice);
  ASSERT_FALSE(dup);
  EXPECT_NE(dup.error().message.find("sample index 0 appears twice"), std::string::npos) << dup.error().message;
  EXPECT_EQ(*s->finished_problems(*id), std::vector<int>{4});  // the failed problem left nothing

  auto none = s->record_problem("deadbeef", make_problem(0, 1));
  ASSERT_FALSE(none);
  EXPECT_NE(none.error().message.find("no run 'deadbeef'"), std::string::npos);
  EXPECT_FALSE(s->get_run("deadbeef"));
  EXPECT_FALSE(s->finish_run("deadbeef", {}));
  EXPECT_FALSE(s->create_run(store::RunConfig{}));  // no kind
  ASSERT_TRUE(s->finish_run(*id, {}));
  auto done = s->resume_run(*id);
  ASSERT_FALSE(done);
  EXPECT_NE(done.error().message.find("already finished"), std::string::npos);
}

TEST_P(StoreBackends, ListsNewestFirstByKindAndResolvesPrefixes) {
  auto s = open_ok(location());
  std::vector<std::string> ids;
  for (const char* kind : {"bench", "solve", "bench"}) {
    auto c = bench_config();
    c.kind = kind;
    ids.push_back(*s->create_run(c));
    std::this_thread::sleep_for(std::chrono::milliseconds(5));  // distinct creation times
  }
  auto all = s->list_runs();
  ASSERT_EQ(all->size(), 3u);
  EXPECT_EQ((*all)[0].id, ids[2]);
  EXPECT_EQ((*all)[2].id, ids[0]);
  auto benches = s->list_runs({"bench", 0});
  ASSERT_EQ(benches->size(), 2u);
  EXPECT_EQ(s->list_runs({"", 1})->size(), 1u);
  EXPECT_TRUE(s->list_runs({"agent", 10})->empty());

  EXPECT_EQ(*s->resolve_id(ids[1]), ids[1]);
  EXPECT_EQ(*s->resolve_id(ids[1].substr(0, 7)), ids[1]);  // unique unless the ids share 7 digits
  EXPECT_FALSE(s->resolve_id("zz"));
  EXPECT_FALSE(s->resolve_id("%"));
  EXPECT_FALSE(s->resolve_id(""));
}

// Writer processes: each records its own run and its share of one common run at the same time.
TEST_P(StoreBackends, ConcurrentWriterProcessesLoseNothing) {
  std::string path = location();
  std::string common;
  {
    auto s = open_ok(path);
    auto c = bench_config("shared");
    c.total_problems = 0;
    common = *s->create_run(c);
  }
  constexpr int kWriters = 6, kProblems = 25;
  in_processes(kWriters, [&](int w) {
    auto s = store::Store::open(path);  // each process its own connection, opened concurrently
    if (!s) return 10;
    auto c = bench_config(fmt::format("writer {}", w));
    c.total_problems = kProblems;
    auto id = (*s)->create_run(c);
    if (!id) return 11;
    for (int i = 0; i < kProblems; ++i) {
      if (!(*s)->record_problem(*id, make_problem(i, 3, 300))) return 12;
      if (!(*s)->record_problem(common, make_problem(w * kProblems + i, 2))) return 13;
    }
    return (*s)->finish_run(*id, {{"writer", w}}) ? 0 : 14;
  });
  auto s = open_ok(path);
  auto runs = s->list_runs({"bench", 0});
  ASSERT_EQ(runs->size(), kWriters + 1u);
  for (const auto& r : *runs) {
    auto run = s->get_run(r.id);
    ASSERT_TRUE(run);
    if (r.id == common) {
      ASSERT_EQ(run->problems.size(), size_t(kWriters * kProblems));
      for (int i = 0; i < kWriters * kProblems; ++i) EXPECT_EQ(comparable(run->problems[i]), comparable(make_problem(i, 2)));
      continue;
    }
    EXPECT_EQ(r.status, "finished");
    ASSERT_EQ(run->problems.size(), size_t(kProblems));
    for (int i = 0; i < kProblems; ++i) EXPECT_EQ(comparable(run->problems[i]), comparable(make_problem(i, 3, 300)));
  }
  if (!pg()) {
    EXPECT_EQ(scalar(path, "PRAGMA integrity_check"), "ok");
  }
}

// Processes opening a store that does not exist yet, all at once: one creates and migrates it, the
// others wait for it and use it.
TEST_P(StoreBackends, ProcessesCreatingOneStoreAtOnce) {
  std::string path = location();
  in_processes(8, [&](int) {
    auto s = store::Store::open(path);
    if (!s) {
      fprintf(stderr, "%s\n", s.error().message.c_str());
      return 10;
    }
    auto id = (*s)->create_run(bench_config());
    return id && (*s)->record_problem(*id, make_problem(0, 1)) ? 0 : 11;
  });
  auto s = open_ok(path);
  auto runs = s->list_runs({"", 0});
  ASSERT_EQ(runs->size(), 8u);
  for (const auto& r : *runs) EXPECT_EQ(r.problems_done, 1);
  EXPECT_EQ(scalar(path, "SELECT COUNT(*) FROM wand_schema"), "1");
}

// Threads sharing one Store (a bench's parallel problems) take turns on its connection.
TEST_P(StoreBackends, ThreadsShareOneStore) {
  auto s = open_ok(location());
  auto id = *s->create_run(bench_config());
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 20; ++i) EXPECT_TRUE(s->record_problem(id, make_problem(t * 20 + i, 2)));
    });
  for (auto& t : threads) t.join();
  auto done = s->finished_problems(id);
  ASSERT_EQ(done->size(), 80u);
  EXPECT_EQ(done->back(), 79);
}

// A writer killed with SIGKILL mid-run: every problem it reported is there whole, none is half
// written, the run reads as interrupted, and resuming it records only what is missing.
TEST(Store, KilledWriterLeavesWholeProblemsAndResumes) {
  std::string path = temp_dir() + "/runs.db";
  ASSERT_TRUE(open_ok(path));
  std::mt19937 rng(std::random_device{}());
  constexpr int kTotal = 100000, kSamples = 4;
  constexpr size_t kPad = 64 * 1024;  // large samples: a kill is likely to land inside a write
  for (int round = 0; round < 3; ++round) {
    int fds[2];
    ASSERT_EQ(pipe(fds), 0);
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      close(fds[0]);
      auto s = store::Store::open(path);
      if (!s) _exit(10);
      auto c = bench_config();
      c.total_problems = kTotal;
      auto id = (*s)->create_run(c);
      if (!id) _exit(11);
      std::string line = *id + "\n";
      if (write(fds[1], line.data(), line.size()) < 0) _exit(12);
      for (int i = 0; i < kTotal; ++i) {
        if (!(*s)->record_problem(*id, make_problem(i, kSamples, kPad))) _exit(13);
        line = std::to_string(i) + "\n";
        if (write(fds[1], line.data(), line.size()) < 0) _exit(12);
      }
      _exit(0);
    }
    close(fds[1]);
    FILE* in = fdopen(fds[0], "r");
    char buf[64];
    ASSERT_TRUE(fgets(buf, sizeof buf, in));
    std::string id(buf, strcspn(buf, "\n"));
    int acknowledged = -1;
    int wait_for = 3 + static_cast<int>(rng() % 5);
    while (acknowledged < wait_for && fgets(buf, sizeof buf, in)) acknowledged = std::atoi(buf);
    ASSERT_EQ(acknowledged, wait_for) << "the writer stopped early";
    std::this_thread::sleep_for(std::chrono::microseconds(rng() % 20000));
    kill(pid, SIGKILL);
    int st = 0;
    waitpid(pid, &st, 0);
    fclose(in);
    ASSERT_TRUE(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL) << "the writer ended before the kill";

    auto s = open_ok(path);
    auto done = s->finished_problems(id);
    ASSERT_TRUE(done);
    ASSERT_GE(done->size(), size_t(acknowledged + 1));  // nothing reported done was lost
    for (size_t i = 0; i < done->size(); ++i) ASSERT_EQ((*done)[i], int(i));
    auto run = s->get_run(id);
    ASSERT_TRUE(run);
    EXPECT_EQ(run->info.status, "interrupted");
    for (const auto& p : run->problems) EXPECT_EQ(comparable(p), comparable(make_problem(p.index, kSamples, kPad)));
    EXPECT_EQ(sql_scalar(path, fmt::format("SELECT COUNT(*) FROM samples WHERE run_id = '{}'", id)),
              std::to_string(done->size() * kSamples));
    EXPECT_EQ(sql_scalar(path, "PRAGMA integrity_check"), "ok");

    // Resume: take the run over and record what is missing.
    auto resumed = s->resume_run(id);
    ASSERT_TRUE(resumed) << resumed.error().message;
    EXPECT_EQ(resumed->config.total_problems, kTotal);
    EXPECT_EQ(s->get_run_info(id)->status, "running");
    int next = static_cast<int>(done->size());
    ASSERT_TRUE(s->record_problem(id, make_problem(next, 1)));
    EXPECT_EQ(s->finished_problems(id)->back(), next);
    ASSERT_TRUE(s->finish_run(id, {{"resumed", true}}));
    EXPECT_EQ(s->get_run_info(id)->status, "finished");
  }
}

TEST_P(StoreBackends, InterruptMarksARunAndOnlyAnUnfinishedRunResumes) {
  auto s = open_ok(location());
  auto id = *s->create_run(bench_config());
  auto live = s->resume_run(id);
  ASSERT_FALSE(live);
  EXPECT_NE(live.error().message.find("still running"), std::string::npos);
  ASSERT_TRUE(s->interrupt_run(id));
  EXPECT_EQ(s->get_run_info(id)->status, "interrupted");
  ASSERT_TRUE(s->resume_run(id));
}

// A finished run reopened for more problems (wand improve --rounds past its end): only a finished
// one, only to a larger total, and its recorded problems stay.
TEST_P(StoreBackends, OnlyAFinishedRunExtendsAndKeepsItsProblems) {
  auto s = open_ok(location());
  auto id = *s->create_run(bench_config());
  auto early = s->extend_run(id, 10);
  ASSERT_FALSE(early);
  EXPECT_NE(early.error().message.find("is running, not finished: resume it"), std::string::npos) << early.error().message;
  ASSERT_TRUE(s->record_problem(id, make_problem(0, 1)));
  ASSERT_TRUE(s->record_problem(id, make_problem(1, 1)));
  ASSERT_TRUE(s->finish_run(id, {{"rounds", 2}}));
  auto small = s->extend_run(id, 2);
  ASSERT_FALSE(small);
  EXPECT_NE(small.error().message.find("has 2 problems recorded; extending it needs more than that, got 2"), std::string::npos)
      << small.error().message;
  auto more = s->extend_run(id, 5);
  ASSERT_TRUE(more) << more.error().message;
  auto info = *s->get_run_info(id);
  EXPECT_EQ(info.status, "running");
  EXPECT_EQ(info.config.total_problems, 5);
  EXPECT_TRUE(info.finished_at.empty());
  EXPECT_TRUE(info.summary.is_null()) << info.summary.dump();
  EXPECT_EQ(*s->finished_problems(id), (std::vector<int>{0, 1}));
  ASSERT_TRUE(s->record_problem(id, make_problem(2, 1)));
  ASSERT_TRUE(s->finish_run(id, {{"rounds", 3}}));
  EXPECT_EQ(s->get_run_info(id)->status, "finished");
  EXPECT_FALSE(s->resume_run(id));
}

// ---- `wand runs` ----

struct CliRun {
  int rc;
  std::string out, err;
};

// Runs `ENV wand ARGS`.
CliRun wand(const std::string& args, const std::string& env = "") {
  std::string err_path = ::testing::TempDir() + "wand_runs_err";
  std::string cmd = env + " " + std::string(WAND_BINARY) + " " + args + " 2> " + err_path;
  FILE* p = ::popen(cmd.c_str(), "r");
  std::string out;
  char buf[4096];
  for (size_t n; (n = fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
  int st = ::pclose(p);
  return {WEXITSTATUS(st), out, slurp(err_path)};
}

// A store with a finished bench run (2 of 3 problems, 1 correct of 2) and a running solve run.
struct CliStore {
  std::string path, bench, solve;
};
CliStore cli_store() {
  CliStore c;
  c.path = temp_dir() + "/runs.db";
  auto s = open_ok(c.path);
  c.bench = *s->create_run(bench_config("heldout-numbers.jsonl"));
  EXPECT_TRUE(s->record_problem(c.bench, make_problem(0, 2)));
  EXPECT_TRUE(s->record_problem(c.bench, make_problem(1, 2)));
  EXPECT_TRUE(s->finish_run(c.bench, {{"accuracy", 0.5}}));
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  store::RunConfig solve = bench_config("");
  solve.kind = "solve";
  solve.total_problems.reset();
  c.solve = *s->create_run(solve);
  return c;
}

TEST(RunsCli, ListShowsATable) {
  CliStore c = cli_store();
  CliRun r = wand("runs list --store " + c.path);
  ASSERT_EQ(r.rc, 0) << r.err;
  std::istringstream lines(r.out);
  std::vector<std::string> rows;
  for (std::string l; std::getline(lines, l);) rows.push_back(l);
  ASSERT_EQ(rows.size(), 3u) << r.out;
  EXPECT_EQ(rows[0].rfind("ID", 0), 0u) << rows[0];
  EXPECT_EQ(rows[1].rfind(c.solve, 0), 0u) << rows[1];  // newest first
  // The solve run is owned by this (living) test process: still running.
  EXPECT_NE(rows[1].find("running"), std::string::npos) << rows[1];
  EXPECT_EQ(rows[2].rfind(c.bench, 0), 0u) << rows[2];
  for (const char* want : {"bench", "wand-pot", "pot", "heldout-numbers.jsonl", "2/3", "50.0%", "finished"})
    EXPECT_NE(rows[2].find(want), std::string::npos) << want << " in " << rows[2];

  CliRun kind = wand("runs list --kind solve --json --store " + c.path);
  ASSERT_EQ(kind.rc, 0) << kind.err;
  Json j = Json::parse(kind.out);
  ASSERT_EQ(j.size(), 1u);
  EXPECT_EQ(j[0]["id"], c.solve);
  CliRun bogus = wand("runs list --kind bogus --store " + c.path);  // not a kind of run: refused, not an empty list
  EXPECT_EQ(bogus.rc, 2);
  EXPECT_NE(bogus.err.find("--kind"), std::string::npos) << bogus.err;
  EXPECT_NE(bogus.err.find("improve"), std::string::npos) << bogus.err;  // the kinds are named
  EXPECT_EQ(Json::parse(wand("runs list --limit 1 --json --store " + c.path).out).size(), 1u);
  // Without --store: $WAND_HOME/runs.db.
  std::string home = fs::path(c.path).parent_path().string();
  CliRun env = wand("runs list --json", "WAND_HOME=" + home);
  ASSERT_EQ(env.rc, 0) << env.err;
  EXPECT_EQ(Json::parse(env.out).size(), 2u);
}

// A reader that closes the pipe (`wand runs export ID | head`) ends the export quietly: exit 4,
// as every command's closed pipe, and nothing said on stderr.
TEST(RunsCli, AClosedPipeEndsTheExportQuietly) {
  std::string path = temp_dir() + "/big.db";
  std::string id;
  {
    auto s = open_ok(path);
    id = *s->create_run(bench_config("big.jsonl"));
    for (int i = 0; i < 400; ++i) ASSERT_TRUE(s->record_problem(id, make_problem(i, 2, 400)));  // > a pipe's 64 KiB
    ASSERT_TRUE(s->finish_run(id, {}));
  }
  std::string err = temp_dir() + "/pipe.err", rc = temp_dir() + "/pipe.rc";
  std::string cmd = fmt::format("{{ {} runs export {} --store {} 2>{}; echo $? >{}; }} | head -c 100 >/dev/null",
                                WAND_BINARY, id, path, err, rc);
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  EXPECT_EQ(std::atoi(slurp(rc).c_str()), 4);
  EXPECT_EQ(slurp(err), "") << "a closed pipe is not an error to print";
}

TEST(RunsCli, ShowAndExport) {
  CliStore c = cli_store();
  CliRun r = wand("runs show " + c.bench.substr(0, 6) + " --store " + c.path);
  ASSERT_EQ(r.rc, 0) << r.err;
  for (std::string want : {"run       " + c.bench + " (bench, finished)", std::string("local:models/wand-pot.gguf"),
                           std::string("seed 1"), std::string("2/3 recorded, 1 correct of 2 judged (50.0%)"),
                           std::string("\"accuracy\":0.5"), std::string("#0    correct"), std::string("#1    wrong")})
    EXPECT_NE(r.out.find(want), std::string::npos) << want << " in\n" << r.out;

  CliRun js = wand("runs show --json " + c.bench + " --store " + c.path);
  ASSERT_EQ(js.rc, 0) << js.err;
  Json j = Json::parse(js.out);
  EXPECT_EQ(j["problems"].size(), 2u);
  EXPECT_EQ(j["problems"][1]["samples"].size(), 2u);

  std::string file = temp_dir() + "/run.jsonl";
  CliRun ex = wand("runs export " + c.bench + " --out " + file + " --store " + c.path);
  ASSERT_EQ(ex.rc, 0) << ex.err;
  CliRun out = wand("runs export " + c.bench + " --store " + c.path);
  EXPECT_EQ(out.out, slurp(file));
  std::istringstream lines(out.out);
  std::vector<Json> rows;
  for (std::string l; std::getline(lines, l);) rows.push_back(Json::parse(l));
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0]["type"], "run");
  EXPECT_EQ(rows[0]["summary"]["accuracy"], 0.5);
  EXPECT_EQ(rows[2]["type"], "problem");
  EXPECT_EQ(rows[2]["samples"][1]["seed"], 101);
}

TEST(RunsCli, BadInputExitsTwoNamingIt) {
  CliStore c = cli_store();
  CliRun unknown = wand("runs show ffffffff0 --store " + c.path);
  EXPECT_EQ(unknown.rc, 2);
  EXPECT_NE(unknown.err.find("no run 'ffffffff0' in " + c.path), std::string::npos) << unknown.err;
  CliRun unknown_export = wand("runs export nope --store " + c.path);
  EXPECT_EQ(unknown_export.rc, 2);
  EXPECT_NE(unknown_export.err.find("'nope'"), std::string::npos) << unknown_export.err;

  std::string dir = temp_dir();
  std::string junk = dir + "/junk.db";
  std::ofstream(junk) << std::string(4096, 'j');
  CliRun corrupt = wand("runs list --store " + junk);
  EXPECT_EQ(corrupt.rc, 2);
  EXPECT_NE(corrupt.err.find(junk + ": not a SQLite database"), std::string::npos) << corrupt.err;

  CliRun missing_show = wand("runs show abc --store " + dir + "/none.db");
  EXPECT_EQ(missing_show.rc, 2);
  EXPECT_NE(missing_show.err.find("no run store at " + dir + "/none.db"), std::string::npos) << missing_show.err;
  CliRun missing_list = wand("runs list --store " + dir + "/none.db");
  EXPECT_EQ(missing_list.rc, 0);
  EXPECT_NE(missing_list.err.find("no runs recorded yet"), std::string::npos) << missing_list.err;
  EXPECT_FALSE(fs::exists(dir + "/none.db"));  // reading never creates a store

  CliRun bad_out = wand("runs export " + c.bench + " --out /dev/null/x.jsonl --store " + c.path);
  EXPECT_EQ(bad_out.rc, 2);
  EXPECT_NE(bad_out.err.find("/dev/null/x.jsonl"), std::string::npos) << bad_out.err;
  CliRun full = wand("runs export " + c.bench + " --out /dev/full --store " + c.path);
  EXPECT_EQ(full.rc, 4);  // a failed write, as for every command
  EXPECT_NE(full.err.find("/dev/full"), std::string::npos) << full.err;
  CliRun bad_limit = wand("runs list --limit -3 --store " + c.path);
  EXPECT_EQ(bad_limit.rc, 2);
  EXPECT_NE(bad_limit.err.find("--limit"), std::string::npos) << bad_limit.err;
  EXPECT_EQ(wand("runs").rc, 2);
}

// ---- PostgreSQL only ----

// A server that does not answer: an error naming the URI, without its password.
TEST(StorePostgres, UnreachableServerNamesTheUriWithoutThePassword) {
  for (std::string uri : {"postgresql://wand:s3cret@127.0.0.1:1/runs?connect_timeout=2",
                          "postgres://wand@127.0.0.1:1/runs?password=s3cret&connect_timeout=2"}) {
    auto s = store::Store::open(uri);
    ASSERT_FALSE(s);
    EXPECT_EQ(s.error().message.find("s3cret"), std::string::npos) << s.error().message;
    EXPECT_NE(s.error().message.find("run store postgres"), std::string::npos) << s.error().message;
    EXPECT_NE(s.error().message.find("***"), std::string::npos) << s.error().message;
  }
}

class StorePostgresServer : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!PgServer::get().unavailable().empty()) GTEST_SKIP() << PgServer::get().unavailable();
  }
};

// A database that holds someone else's tables is refused, not written into; reading a database
// without a store (runs list, export) does not create one.
TEST_F(StorePostgresServer, RefusesADatabaseThatIsNotAStore) {
  std::string uri = PgServer::get().new_database();
  auto none = store::Store::open(uri, /*create=*/false);
  ASSERT_FALSE(none);
  EXPECT_NE(none.error().message.find("no run store at"), std::string::npos) << none.error().message;
  PGconn* c = PQconnectdb(uri.c_str());
  PQclear(PQexec(c, "CREATE TABLE invoices (id INTEGER)"));
  PQfinish(c);
  auto theirs = store::Store::open(uri);
  ASSERT_FALSE(theirs);
  EXPECT_NE(theirs.error().message.find("is not a wand run store (it holds other tables)"), std::string::npos)
      << theirs.error().message;
}

// The hint of an interrupted `wand bench` names the store without its password, as every
// other message does: stderr ends up in shared logs (a cluster's job output).
TEST_F(StorePostgresServer, TheResumeHintHidesThePassword) {
  std::string uri = PgServer::get().new_database() + "&password=s3cret";  // trust: the password is not asked for
  std::string err_path = temp_dir() + "/hint.err";
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    if (!std::freopen(err_path.c_str(), "w", stderr) || !std::freopen("/dev/null", "w", stdout)) _exit(127);
    ::execl(WAND_BINARY, "wand", "bench", "synthetic", "--set", "templates", "--limit", "400", "--seed", "7", "-q",
            "--store", uri.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  // Interrupted once a problem is recorded (the run exists and Ctrl-C is caught), however slow the machine.
  bool recorded = false;
  for (int i = 0; i < 2400 && !recorded; ++i) {  // up to a minute
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
    auto db = store::Store::open(uri, /*create=*/false);
    if (!db) continue;
    auto runs = (*db)->list_runs();
    recorded = runs && !runs->empty() && !(*db)->finished_problems(runs->front().id)->empty();
  }
  ::kill(pid, SIGINT);
  int st = 0;
  ::waitpid(pid, &st, 0);
  ASSERT_TRUE(recorded) << slurp(err_path);
  std::string err = slurp(err_path);
  EXPECT_EQ(WIFEXITED(st) ? WEXITSTATUS(st) : -1, 130) << err;
  EXPECT_EQ(err.find("s3cret"), std::string::npos) << err;
  EXPECT_NE(err.find("password=***"), std::string::npos) << err;
  EXPECT_NE(err.find("(with the password in place of ***)"), std::string::npos) << err;
}

// `wand runs` and `wand bench` with --store URI and with WAND_STORE: runs recorded by the
// command, read back by another.
TEST_F(StorePostgresServer, CommandsRecordAndReadThroughAUri) {
  std::string uri = PgServer::get().new_database();
  CliRun empty = wand("runs list --store '" + uri + "'");  // as a SQLite file not there yet
  EXPECT_EQ(empty.rc, 0) << empty.err;
  EXPECT_NE(empty.err.find("no runs recorded yet"), std::string::npos) << empty.err;
  CliRun bench = wand("bench synthetic --limit 2 --seed 3 -q --json --store '" + uri + "'");
  ASSERT_EQ(bench.rc, 0) << bench.err;
  std::string id = Json::parse(bench.out)["run_id"];
  CliRun list = wand("runs list --json", "WAND_STORE='" + uri + "'");
  ASSERT_EQ(list.rc, 0) << list.err;
  Json runs = Json::parse(list.out);
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0]["id"], id);
  EXPECT_EQ(runs[0]["status"], "finished");
  EXPECT_EQ(runs[0]["problems_done"], 2);
  CliRun show = wand("runs export " + id + " --store '" + uri + "'");
  ASSERT_EQ(show.rc, 0) << show.err;
  EXPECT_EQ(std::count(show.out.begin(), show.out.end(), '\n'), 3);  // the run and its 2 problems
}

}  // namespace
}  // namespace wand::test
