// Batch jobs on a cluster: `wand eval --shard I/N` and `wand bench --shard I/N` on the parts of a
// run, `--merge` of their files, compared with one machine's run of the same work (the same
// numbers, the same per-sample rows); the errors of a bad set of shards; and
// deploy/slurm/eval-array.sbatch through a real single-node Slurm (slurmctld, slurmd and munged
// started here, as root).
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>

#include <fmt/core.h>

#include "common/json.h"
#include "support.h"

namespace wand::test {
namespace {

namespace fs = std::filesystem;

struct Cmd {
  int rc;
  std::string out, err;
};

// Runs a shell command line; stdout and stderr are captured.
Cmd shell(const std::string& cmd) {
  static int calls = 0;
  std::string err_path = fmt::format("{}wand_cluster_err{}_{}", ::testing::TempDir(), ::getpid(), ++calls);
  FILE* p = ::popen((cmd + " 2> " + err_path).c_str(), "r");
  std::string out;
  char buf[4096];
  for (size_t n; (n = fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
  int st = ::pclose(p);
  std::string err = slurp(err_path);
  fs::remove(err_path);
  return {WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st), out, err};
}

Cmd wand(const std::string& args) { return shell(std::string(WAND_BINARY) + " " + args); }

std::vector<Json> json_lines(const std::string& path) {
  std::vector<Json> lines;
  std::ifstream in(path);
  for (std::string l; std::getline(in, l);) lines.push_back(Json::parse(l));
  return lines;
}

// The fields that time a run: they differ between any two runs, sharded or not.
Json untimed(Json j) {
  for (const char* f : {"wall_time", "samples_per_s", "sample_time_p50", "sample_time_p99", "timings", "wall_s"}) j.erase(f);
  return j;
}

std::vector<Json> untimed(std::vector<Json> rows) {
  for (auto& r : rows) r = untimed(r);
  return rows;
}

std::string humaneval_path() { return std::string(WAND_SHARED_DATA) + "/humaneval/HumanEval.jsonl"; }

// A fresh folder, removed at the end of the test.
struct TempDir {
  std::string path;
  TempDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    path = fmt::format("{}wand_cluster_{}_{}", ::testing::TempDir(), info->name(), ::getpid());
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
  std::string operator/(const std::string& name) const { return path + "/" + name; }
};

// A canned completion set on the first 30 HumanEval tasks, three samples each, written round by
// round (task 0, 1, ..., 29, then 0, 1, ...) so no task's samples are contiguous: the reference
// solution, a stub that fails, and the reference again on odd tasks or a syntax error on even
// ones. Task t passes 1 of 3 (even) or 2 of 3 (odd): pass@1 = 0.5, pass@2 = 5/6, pass@3 = 1.
std::string write_samples(const std::string& path) {
  std::vector<Json> tasks;
  std::ifstream in(humaneval_path());
  for (std::string l; tasks.size() < 30 && std::getline(in, l);) tasks.push_back(Json::parse(l));
  std::ofstream out(path);
  for (int round = 0; round < 3; ++round)
    for (std::size_t t = 0; t < tasks.size(); ++t) {
      std::string ref = tasks[t]["canonical_solution"];
      std::string completion = round == 0 ? ref : round == 1 ? "    return None\n" : t % 2 ? ref : "    return (\n";
      out << Json{{"task_id", tasks[t]["task_id"]}, {"completion", completion}}.dump() << "\n";
    }
  return path;
}

class EvalShards : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(humaneval_path())) GTEST_SKIP() << humaneval_path() << " not found: needs ../shared/data";
    samples = write_samples(dir / "samples.jsonl");
    args = fmt::format("eval --dataset {} --samples {} --k 1,2,3 --timeout 20 --cells 2 --json", humaneval_path(), samples);
  }
  // Shard I/3 into dir/shard-I.jsonl, with extra options.
  Cmd shard(int i, const std::string& extra = "", const std::string& name = "") {
    return wand(fmt::format("{} {} --shard {}/3 --out {}", args, extra, i, dir / (name.empty() ? fmt::format("shard-{}.jsonl", i) : name)));
  }
  TempDir dir;
  std::string samples, args;
};

TEST_F(EvalShards, MergedShardsGiveTheSingleMachineNumbersAndRows) {
  Cmd single = wand(args + " --out " + dir / "single.jsonl");
  ASSERT_EQ(single.rc, 0) << single.err;
  Json one = Json::parse(single.out);
  EXPECT_NEAR(one["pass_at_k"]["pass@1"].get<double>(), 0.5, 1e-12);
  EXPECT_NEAR(one["pass_at_k"]["pass@2"].get<double>(), 5.0 / 6, 1e-12);
  EXPECT_NEAR(one["pass_at_k"]["pass@3"].get<double>(), 1.0, 1e-12);
  EXPECT_EQ(one["tasks"], 30);
  EXPECT_EQ(one["samples"], 90);

  for (int i = 0; i < 3; ++i) {
    Cmd s = shard(i);
    ASSERT_EQ(s.rc, 0) << s.err;
    EXPECT_EQ(Json::parse(s.out)["samples"], 30) << "tasks i, i+3, ... of 30: 10 tasks, 3 samples each";
    auto lines = json_lines(dir / fmt::format("shard-{}.jsonl", i));
    ASSERT_EQ(lines.size(), 31u);
    EXPECT_EQ(lines[0]["wand_eval_shard"]["shard"], fmt::format("{}/3", i));
    for (std::size_t r = 1; r < lines.size(); ++r) EXPECT_EQ(lines[r]["task_index"].get<int>() % 3, i);
  }
  // In any order of the files: the single run's numbers bit for bit, and its rows.
  for (const char* order : {"shard-0.jsonl shard-1.jsonl shard-2.jsonl", "shard-2.jsonl shard-0.jsonl shard-1.jsonl"}) {
    std::string files;
    std::istringstream names(order);
    for (std::string n; names >> n;) files += " " + dir / n;
    Cmd merged = wand("eval --json --merge" + files + " --out " + dir / "merged.jsonl");
    ASSERT_EQ(merged.rc, 0) << merged.err;
    EXPECT_EQ(untimed(Json::parse(merged.out)), untimed(one)) << merged.out;
    EXPECT_EQ(untimed(json_lines(dir / "merged.jsonl")), untimed(json_lines(dir / "single.jsonl")));
  }
  // The text summary of a merge names the numbers as a single run does.
  Cmd text = wand(fmt::format("eval --merge {} {} {}", dir / "shard-0.jsonl", dir / "shard-1.jsonl", dir / "shard-2.jsonl"));
  EXPECT_EQ(text.rc, 0) << text.err;
  EXPECT_NE(text.out.find("pass@1         0.5000"), std::string::npos) << text.out;

  // A bad set of shards: exit 2, naming the file and what is wrong.
  auto expect_refused = [&](const std::string& files, const std::string& says) {
    Cmd r = wand("eval --merge " + files);
    EXPECT_EQ(r.rc, 2) << files << "\n" << r.out;
    EXPECT_NE(r.err.find(says), std::string::npos) << r.err;
  };
  std::string s0 = dir / "shard-0.jsonl", s1 = dir / "shard-1.jsonl", s2 = dir / "shard-2.jsonl";
  expect_refused(s0 + " " + s1, "missing shard 2/3");
  expect_refused(s0 + " " + s1 + " " + s2 + " " + s1, s1 + ": shard 1/3 is also in " + s1);
  expect_refused(dir / "single.jsonl", dir / "single.jsonl" + ": not a shard file");
  expect_refused(dir / "nowhere.jsonl", "nowhere.jsonl");
  // An output that is one of the inputs would overwrite it; --html has no report to write here.
  expect_refused(s0 + " " + s1 + " " + s2 + " --out " + s1, "--out " + s1 + ": the same file as --merge " + s1);
  expect_refused(s0 + " " + s1 + " " + s2 + " --html " + dir / "m.html", "--html: --merge writes no HTML report");
  EXPECT_EQ(json_lines(s1).size(), 31u) << "the shard was overwritten";
  // A truncated shard file (a node that died while writing).
  {
    auto lines = json_lines(s2);
    std::ofstream cut(dir / "cut.jsonl");
    for (std::size_t i = 0; i + 1 < lines.size(); ++i) cut << lines[i].dump() << "\n";
  }
  expect_refused(s0 + " " + s1 + " " + dir / "cut.jsonl", "cut.jsonl: holds 29 samples, its header says 30");
  // Shards of runs with other options or other samples.
  ASSERT_EQ(shard(2, "--partial-credit", "other-options.jsonl").rc, 0);
  expect_refused(s0 + " " + s1 + " " + dir / "other-options.jsonl", "other-options.jsonl: header field options is");
  // A shard judged against another copy of the dataset (one prompt changed, none of these tasks).
  {
    std::ifstream in(humaneval_path());
    std::ofstream copy(dir / "humaneval-copy.jsonl");
    std::vector<std::string> lines;
    for (std::string l; std::getline(in, l);) lines.push_back(l);
    Json last = Json::parse(lines.back());
    last["prompt"] = last["prompt"].get<std::string>() + "# edited\n";
    lines.back() = last.dump();
    for (auto& l : lines) copy << l << "\n";
  }
  Cmd other_dataset = wand(fmt::format("eval --dataset {} --samples {} --k 1,2,3 --timeout 20 --cells 2 --shard 2/3 --out {}",
                                       dir / "humaneval-copy.jsonl", samples, dir / "other-dataset.jsonl"));
  ASSERT_EQ(other_dataset.rc, 0) << other_dataset.err;
  expect_refused(s0 + " " + s1 + " " + dir / "other-dataset.jsonl", "other-dataset.jsonl: header field dataset_sha256 is");
  // Shards of the same run split 3 and 4 ways do not mix.
  ASSERT_EQ(wand(fmt::format("{} --shard 3/4 --out {}", args, dir / "four.jsonl")).rc, 0);
  expect_refused(s0 + " " + s1 + " " + dir / "four.jsonl", "four.jsonl: header field shard_count is 4, but " + s0 + " has 3");
  {
    std::ofstream more(dir / "samples.jsonl", std::ios::app);
    more << Json{{"task_id", "HumanEval/0"}, {"completion", "    return 1\n"}}.dump() << "\n";
  }
  ASSERT_EQ(shard(2, "", "other-samples.jsonl").rc, 0);
  expect_refused(s0 + " " + s1 + " " + dir / "other-samples.jsonl", "other-samples.jsonl: header field samples_sha256 is");
}

TEST(EvalShardsCli, BadShardOptionsExitTwoNamingThem) {
  std::string ds = humaneval_path();
  for (const char* bad : {"3/3", "-1/3", "1/0", "a/3", "1", "1/3/4", "1/ 3"}) {
    Cmd r = wand(fmt::format("eval --dataset {} --reference --shard '{}' --out /tmp/x", ds, bad));
    EXPECT_EQ(r.rc, 2) << bad;
    EXPECT_NE(r.err.find(fmt::format("--shard '{}'", bad)), std::string::npos) << r.err;
  }
  Cmd no_out = wand(fmt::format("eval --dataset {} --reference --shard 0/2", ds));
  EXPECT_EQ(no_out.rc, 2);
  EXPECT_NE(no_out.err.find("--shard 0/2 needs --out"), std::string::npos) << no_out.err;
  Cmd mixed = wand(fmt::format("eval --merge a.jsonl --dataset {}", ds));
  EXPECT_EQ(mixed.rc, 2);
  EXPECT_NE(mixed.err.find("--dataset: not an option of --merge"), std::string::npos) << mixed.err;
  Cmd none = wand("eval --reference");
  EXPECT_EQ(none.rc, 2);
  EXPECT_NE(none.err.find("--dataset is required"), std::string::npos) << none.err;
}

// wand bench's shards with the shipped model: the merged accuracy, Wilson interval, coverage and
// tokens, and the per-problem lines, are the single run's.
TEST(BenchShards, MergedShardsGiveTheSingleMachineNumbers) {
  TempDir dir;
  std::string args = "bench synthetic --set numbers --limit 10 --seed 7 --no-store --json -q";
  Cmd single = wand(args + " --out " + dir / "single.jsonl");
  ASSERT_EQ(single.rc, 0) << single.err;
  std::string files;
  for (int i = 0; i < 3; ++i) {
    std::string f = dir / fmt::format("shard-{}.jsonl", i);
    Cmd s = wand(fmt::format("{} --shard {}/3 --out {}", args, i, f));
    ASSERT_EQ(s.rc, 0) << s.err;
    EXPECT_EQ(Json::parse(s.out)["problems"], i == 0 ? 4 : 3);
    files += " " + f;
  }
  Cmd merged = wand("bench --json --merge" + files + " --out " + dir / "merged.jsonl");
  ASSERT_EQ(merged.rc, 0) << merged.err;
  Json one = Json::parse(single.out), m = Json::parse(merged.out);
  for (const char* f : {"problems", "correct", "accuracy", "ci95", "answered", "coverage", "answered_by", "prompt_tokens",
                        "completion_tokens", "model_id", "method", "dataset"})
    EXPECT_EQ(m[f], one[f]) << f;
  EXPECT_EQ(m["problems"], 10);
  EXPECT_EQ(untimed(json_lines(dir / "merged.jsonl")), untimed(json_lines(dir / "single.jsonl")));

  Cmd text = wand("bench --merge" + files);
  EXPECT_EQ(text.rc, 0) << text.err;
  EXPECT_NE(text.out.find(fmt::format("({} of 10; 95% CI", one["correct"].get<int>())), std::string::npos) << text.out;

  Cmd missing = wand(fmt::format("bench --merge {} {}", dir / "shard-0.jsonl", dir / "shard-2.jsonl"));
  EXPECT_EQ(missing.rc, 2);
  EXPECT_NE(missing.err.find("missing shard 1/3"), std::string::npos) << missing.err;
  Cmd no_seed = wand("bench synthetic --limit 3 --no-store --shard 0/2 --out " + dir / "x.jsonl");
  EXPECT_EQ(no_seed.rc, 2);
  EXPECT_NE(no_seed.err.find("--shard 0/2 needs --seed"), std::string::npos) << no_seed.err;
  Cmd other_seed = wand(fmt::format("bench synthetic --set numbers --limit 10 --seed 8 --no-store -q --shard 1/3 --out {}",
                                    dir / "seed8.jsonl"));
  ASSERT_EQ(other_seed.rc, 0) << other_seed.err;
  Cmd mixed = wand(fmt::format("bench --merge {} {} {}", dir / "shard-0.jsonl", dir / "seed8.jsonl", dir / "shard-2.jsonl"));
  EXPECT_EQ(mixed.rc, 2);
  EXPECT_NE(mixed.err.find("seed8.jsonl: header field options is"), std::string::npos) << mixed.err;
  Cmd with_method = wand("bench --merge" + files + " --method cot");
  EXPECT_EQ(with_method.rc, 2);
  EXPECT_NE(with_method.err.find("--method: not an option of --merge"), std::string::npos) << with_method.err;
  Cmd over_input = wand("bench --merge" + files + " --html " + dir / "shard-0.jsonl");
  EXPECT_EQ(over_input.rc, 2);
  EXPECT_NE(over_input.err.find("--html " + dir / "shard-0.jsonl" + ": the same file as --merge"), std::string::npos)
      << over_input.err;
}

// --- a real single-node Slurm

bool on_path(const std::string& name) { return shell("command -v " + name + " >/dev/null").rc == 0; }

pid_t read_pid(const std::string& path) {
  std::ifstream in(path);
  pid_t pid = 0;
  in >> pid;
  return pid;
}

// munged, slurmctld and slurmd for this host, every file in one folder; stopped (and killed if
// they do not stop) when it goes, whatever the test's outcome.
class LocalSlurm {
 public:
  explicit LocalSlurm(const std::string& dir) : dir_(dir) {}
  ~LocalSlurm() { stop(); }

  // Empty on success, else what failed.
  std::string start() {
    for (auto d : {"state", "spool", "log", "munge"}) fs::create_directories(dir_ + "/" + d);
    fs::permissions(dir_ + "/munge", fs::perms::owner_all, fs::perm_options::replace);
    if (shell(fmt::format("head -c 1024 /dev/urandom > {0}/munge/munge.key && chmod 400 {0}/munge/munge.key", dir_)).rc)
      return "cannot write a munge key";
    // Ports the kernel says are free now.
    int ports[2];
    for (int& p : ports) {
      auto [fd, port] = loopback_listener();
      p = port;
      ::close(fd);
    }
    std::string host = shell("hostname").out;
    while (!host.empty() && host.back() == '\n') host.pop_back();
    conf_ = dir_ + "/slurm.conf";
    // The cgroup plugins need a cgroup hierarchy of their own, which a container rarely grants:
    // processes are tracked through /proc (proctrack/linuxproc) and tasks are not bound (task/none).
    std::ofstream(conf_) << fmt::format(
        "ClusterName=wandtest\nSlurmctldHost={0}(127.0.0.1)\nSlurmctldPort={1}\nSlurmdPort={2}\n"
        "AuthType=auth/munge\nCredType=cred/munge\nAuthInfo=socket={3}/munge/munge.sock\n"
        "ProctrackType=proctrack/linuxproc\nTaskPlugin=task/none\nJobAcctGatherType=jobacct_gather/none\n"
        "SwitchType=switch/none\nMpiDefault=none\nSchedulerType=sched/builtin\nSelectType=select/cons_tres\n"
        "SelectTypeParameters=CR_CPU\nStateSaveLocation={3}/state\nSlurmdSpoolDir={3}/spool\n"
        "SlurmctldPidFile={3}/slurmctld.pid\nSlurmdPidFile={3}/slurmd.pid\nSlurmctldLogFile={3}/log/slurmctld.log\n"
        "SlurmdLogFile={3}/log/slurmd.log\nSlurmUser=root\nSlurmdUser=root\nReturnToService=2\n"
        "NodeName={0} NodeAddr=127.0.0.1 CPUs=2 State=UNKNOWN\nPartitionName=wand Nodes={0} Default=YES "
        "MaxTime=INFINITE State=UP\n",
        host, ports[0], ports[1], dir_);
    ::setenv("SLURM_CONF", conf_.c_str(), 1);
    if (shell(fmt::format("munged -f --socket={0}/munge/munge.sock --key-file={0}/munge/munge.key "
                          "--pid-file={0}/munge/munged.pid --log-file={0}/munge/munged.log --seed-file={0}/munge/seed",
                          dir_))
            .rc)
      return "munged did not start: " + slurp(dir_ + "/munge/munged.log");
    if (Cmd c = shell("slurmctld -f " + conf_); c.rc) return "slurmctld did not start: " + c.err + slurp(dir_ + "/log/slurmctld.log");
    if (Cmd c = shell("slurmd -f " + conf_); c.rc) return "slurmd did not start: " + c.err + slurp(dir_ + "/log/slurmd.log");
    for (int i = 0; i < 60; ++i) {
      if (shell("sinfo -h -o %t").out.starts_with("idle")) return "";
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
    return "the node did not become idle in 30 s: " + shell("sinfo").out + slurp(dir_ + "/log/slurmd.log");
  }

  std::string logs() const {
    return slurp(dir_ + "/log/slurmctld.log").substr(0, 4000) + slurp(dir_ + "/log/slurmd.log").substr(0, 4000);
  }

  void stop() {
    if (conf_.empty()) return;
    shell("scontrol shutdown");
    for (auto f : {"/slurmd.pid", "/slurmctld.pid", "/munge/munged.pid"}) {
      pid_t pid = read_pid(dir_ + f);
      if (pid <= 0) continue;
      ::kill(pid, SIGTERM);
      for (int i = 0; i < 50 && ::kill(pid, 0) == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
      if (::kill(pid, 0) == 0) ::kill(pid, SIGKILL);
    }
    ::unsetenv("SLURM_CONF");
    conf_.clear();
  }

 private:
  std::string dir_, conf_;
};

TEST(Slurm, JobArrayShardsAndMergesToTheSingleMachineRun) {
  if (::geteuid() != 0) GTEST_SKIP() << "starting slurmctld, slurmd and munged needs root";
  for (const char* tool : {"munged", "slurmctld", "slurmd", "sbatch", "scontrol", "sinfo"})
    if (!on_path(tool)) GTEST_SKIP() << tool << " not found: install slurm-wlm and munge (scripts/setup.sh)";
  if (!fs::exists(humaneval_path())) GTEST_SKIP() << humaneval_path() << " not found: needs ../shared/data";
  TempDir dir;
  std::string samples = write_samples(dir / "samples.jsonl");
  std::string opts = fmt::format("--dataset {} --samples {} --k 1,2,3 --timeout 20 --cells 1", humaneval_path(), samples);
  Cmd single = wand("eval --json " + opts + " --out " + dir / "single.jsonl");
  ASSERT_EQ(single.rc, 0) << single.err;

  LocalSlurm slurm(dir / "slurm");
  fs::create_directories(dir / "slurm");
  std::string why = slurm.start();
  ASSERT_EQ(why, "");
  std::string script = std::string(WAND_SOURCE_DIR) + "/deploy/slurm/eval-array.sbatch";
  // Submits "N OUT eval|bench ARGS" (the array and its merge job); waits, bounded, for OUT/summary.json.
  auto submit_and_wait = [&](const std::string& out, const std::string& what) {
    Cmd submit = shell(fmt::format("WAND={} {} submit {}", WAND_BINARY, script, what));
    EXPECT_EQ(submit.rc, 0) << submit.err;
    EXPECT_TRUE(submit.out.starts_with("array ")) << submit.out;
    // Bounded: the shards and the merge, two at a time on two CPUs.
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(300);
    while (!fs::exists(out + "/summary.json") && std::chrono::steady_clock::now() < deadline) {
      if (shell("squeue -h | wc -l").out == "0\n" && !fs::exists(out + "/summary.json")) break;  // all ended
      std::this_thread::sleep_for(std::chrono::seconds(1));
    }
    return fs::exists(out + "/summary.json");
  };
  ASSERT_TRUE(submit_and_wait(dir / "out", "3 " + dir / "out" + " eval " + opts))
      << "no summary: " << shell("squeue").out << slurp(dir / "out/merge.log") << slurp(dir / "out/shard-0.log") << slurm.logs();
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(fs::exists(dir / fmt::format("out/shard-{}.jsonl", i)));
  EXPECT_EQ(untimed(Json::parse(slurp(dir / "out/summary.json"))), untimed(Json::parse(single.out)));
  EXPECT_EQ(untimed(json_lines(dir / "out/merged.jsonl")), untimed(json_lines(dir / "single.jsonl")));

  // wand bench through the same script: two shards of the shipped model's held-out set.
  std::string bench = "synthetic --set numbers --limit 6 --seed 7 --no-store -q";
  Cmd one = wand("bench --json " + bench);
  ASSERT_EQ(one.rc, 0) << one.err;
  ASSERT_TRUE(submit_and_wait(dir / "bench", "2 " + dir / "bench" + " bench " + bench))
      << "no summary: " << slurp(dir / "bench/merge.log") << slurp(dir / "bench/shard-0.log") << slurm.logs();
  Json merged = Json::parse(slurp(dir / "bench/summary.json")), single_bench = Json::parse(one.out);
  for (const char* f : {"problems", "correct", "accuracy", "ci95", "answered", "coverage", "prompt_tokens", "completion_tokens"})
    EXPECT_EQ(merged[f], single_bench[f]) << f;
  slurm.stop();
}

}  // namespace
}  // namespace wand::test
