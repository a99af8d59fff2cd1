// Samples that try to forge a passing verdict instead of passing the tests (reward hacking), in
// both judging modes: none of them may pass, and none may find the run's key.
#include <fmt/core.h>

#include "support.h"

namespace wand::test {
namespace {
using feedback::ErrorClass;
using feedback::Task;

// The issue's task: add_pair(x, y) with three asserts. Every attack below returns x - y.
Task add_pair() {
  return humaneval_task("add_pair", "def add_pair(x, y):\n    \"\"\"x plus y\"\"\"\n",
                        "    assert candidate(1, 1) == 2\n    assert candidate(2, 3) == 5\n    assert candidate(0, 4) == 4\n");
}

const char* kForgeByConstants = R"py(    return x - y
import json, os, sys
# The old harness's nonce was a literal: find it in this code object's constants, print an
# "all passed" record with it and leave before the tests run.
for c in sys._getframe().f_code.co_consts:
    if isinstance(c, str) and c.startswith("@@wand-"):
        print(c + json.dumps({"done": True, "total": 3, "failed": 0}))
os._exit(0)
)py";

// Everything a sample can read without walking the heap: its source, every code object's
// constants, linecache, the environment, argv, whatever is left on the channel; then it writes
// forged records (with each candidate secret, and bare) to every descriptor and leaves.
const char* kForgeEverywhere = R"py(    return x - y
import json, linecache, os, sys, types
found = []
def walk(code):
    for c in code.co_consts:
        if isinstance(c, str): found.append(c)
        if isinstance(c, types.CodeType): walk(c)
walk(sys._getframe().f_code)
found += linecache.getlines("main.py") + list(os.environ.values()) + sys.argv
for fd in range(3, 64):
    try:
        os.set_blocking(fd, False)
        found.append(os.read(fd, 1 << 16).decode("latin-1"))
    except OSError: pass
print("LEAK", json.dumps(found), flush=True)
recs = [{"plan": 3}] + [{"test": i, "source": "x", "passed": True} for i in range(3)] + [{"done": True, "total": 3, "failed": 0}]
for secret in found[:200] + [""]:
    for fd in range(1, 64):
        for r in recs:
            try: os.write(fd, ("%s %s\n" % (secret, json.dumps(r))).encode())
            except OSError: pass
os._exit(0)
)py";

class Verdicts : public ::testing::TestWithParam<bool> {
 protected:
  feedback::JudgeOptions opt() const {
    feedback::JudgeOptions o;
    o.strict = GetParam();
    o.timeout_s = 5;
    return o;
  }
  // Judges `completion` on add_pair; the verdict must be a failure.
  feedback::Verdict expect_failed(const std::string& completion, std::vector<sandbox::ExecResult>* runs = nullptr) {
    auto v = judge_all({add_pair()}, {completion}, opt(), runs)[0];
    EXPECT_FALSE(v.passed) << completion;
    EXPECT_LT(v.reward, 0) << v.feedback;
    return v;
  }
  void TearDown() override { EXPECT_EQ(run_processes(), 0); }
};

TEST_P(Verdicts, TheIssuesForgedRecordFails) {
  auto v = expect_failed(kForgeByConstants);
  EXPECT_EQ(v.error, ErrorClass::wrong_answer);
  EXPECT_EQ(v.feedback, "The program exited before its tests ran.");
}

TEST_P(Verdicts, NoSecretInSourceConstantsEnvironmentArgvOrChannelAndForgedRecordsFail) {
  std::vector<sandbox::ExecResult> runs;
  Task t = add_pair();
  auto sub = feedback::prepare(t, kForgeEverywhere, opt());
  auto r = shared_sandbox().run(sub.requests[0]);
  auto v = feedback::judge(t, sub, std::span(&r, 1), opt());
  EXPECT_FALSE(v.passed);
  ASSERT_NE(r.stdout_data.find("LEAK"), std::string::npos) << r.stderr_data;
  EXPECT_EQ(r.stdout_data.find(sub.key), std::string::npos);
  EXPECT_EQ(r.stdout_data.find("candidate(2, 3)"), std::string::npos) << "the tests are not in the program";
  // A correct function that writes to the harness's channel fails too: the channel is not its own.
  auto honest_but_noisy = expect_failed("    return x + y\nimport os\nos.write(3, b'garbage\\n')\n");
  if (!GetParam()) {
    EXPECT_EQ(honest_but_noisy.feedback,
              "The harness's report channel carried records it did not sign: the program wrote there.");
  }
}

TEST_P(Verdicts, EarlyExitsAtModuleLevelOrInTheCandidateFail) {
  auto module = expect_failed("    return x + y\nimport os\nos._exit(0)\n");
  EXPECT_EQ(module.feedback, "The program exited before its tests ran.");
  expect_failed("    return x + y\nimport sys\nsys.exit(0)\n");
  auto in_call = expect_failed("    import os\n    os._exit(0)\n");
  EXPECT_NE(in_call.error, ErrorClass::none);
}

TEST_P(Verdicts, ACandidateKillingItsParentSiblingsOrEverythingFails) {
  expect_failed("    import os, signal\n    os.kill(os.getppid(), signal.SIGKILL)\n    return x - y\n");
  expect_failed("    import os, signal\n    os.kill(1, signal.SIGKILL)\n    os.kill(-1, signal.SIGKILL)\n    return x - y\n");
  expect_failed("    import os, signal\n    os.kill(1, signal.SIGKILL)\n    os._exit(0)\n");
}

TEST_P(Verdicts, RecordsOfTheRightShapeButUnsignedOrIllTypedFail) {
  // Exactly the shape of a signed record, with fields of the wrong types; then, for strict
  // mode's pipe, a load report whose fields are not strings and numbers.
  auto v = expect_failed("    return x + y\nimport os\nfor fd in range(3, 20):\n    try:\n"
                         "        os.write(fd, b'%s {\"test\": \"x\", \"plan\": [], \"done\": 1}\\n' % (b'0' * 64))\n"
                         "        os.write(fd, b'{\"error\": {\"type\": 5, \"message\": [], \"line\": \"x\"}}\\n')\n"
                         "    except OSError:\n        pass\nos._exit(0)\n");
  EXPECT_NE(v.error, ErrorClass::none);
}

TEST_P(Verdicts, ACandidateThatHangsOrGarblesTheChannelFails) {
  auto hang = expect_failed("    while True: pass\n");
  EXPECT_EQ(hang.error, ErrorClass::timeout);
  // Strict mode: a reply on the sample's own pipe that is not a value.
  expect_failed("    import os\n    os.write(4, b'{\"value\": 5}\\n' * 3)\n    os.write(5, b'{\"value\": 5}\\n' * 3)\n"
                "    return x - y\n");
}

INSTANTIATE_TEST_SUITE_P(Modes, Verdicts, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "strict" : "default"; });

TEST(StrictVerdicts, TheSampleNeverHoldsTheKeyOrTheTestsEvenWalkingItsHeap) {
  // The child forks before the trusted side reads the job: its whole heap has neither.
  Task t = add_pair();
  feedback::JudgeOptions o;
  o.strict = true;
  auto sub = feedback::prepare(t, R"py(    return x + y
import gc, os
seen = []
for obj in gc.get_objects():
    if obj is seen: continue
    for v in (obj.values() if isinstance(obj, dict) else obj if isinstance(obj, (list, tuple)) else ()):
        if isinstance(v, (str, bytes)): seen.append(v if isinstance(v, str) else v.decode("latin-1"))
needle = "".join(["candidate(2", ", 3)"])  # built at run time: a literal would be in the heap
print("HEAP", len(seen), any(needle in s for s in seen))
# The trusted parent as this cell's /proc numbers it: its memory and descriptors are closed.
ppid = int(open("/proc/self/stat").read().rsplit(")", 1)[1].split()[1])
for what in ("mem", "environ"):
    try:
        open("/proc/%d/%s" % (ppid, what), "rb").read(1)
        print(what, "OPEN")
    except OSError as e:
        print(what, "DENIED")
opened = []
for n in os.listdir("/proc/%d/fd" % ppid):  # the names are visible; the descriptors are not
    for how in (os.O_RDONLY, os.O_WRONLY):
        try:
            os.open("/proc/%d/fd/%s" % (ppid, n), how)
            opened.append(n)
        except OSError:
            pass
print("fd", "OPEN %s" % opened if opened else "DENIED")
)py", o);
  auto r = shared_sandbox().run(sub.requests[0]);
  auto v = feedback::judge(t, sub, std::span(&r, 1), o);
  EXPECT_TRUE(v.passed) << v.feedback << r.stderr_data;  // an honest function still passes
  EXPECT_NE(r.stdout_data.find("HEAP"), std::string::npos) << r.stderr_data;
  EXPECT_NE(r.stdout_data.find(" False\n"), std::string::npos) << r.stdout_data;
  EXPECT_EQ(r.stdout_data.find(sub.key), std::string::npos);
  for (const char* what : {"mem", "environ", "fd"})
    EXPECT_NE(r.stdout_data.find(fmt::format("{} DENIED", what)), std::string::npos) << r.stdout_data;
}

}  // namespace
}  // namespace wand::test
