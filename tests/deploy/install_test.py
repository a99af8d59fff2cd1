"""`cmake --install` gives a wand that works from its own folder: the binary, wand-train and the
modules in PREFIX/bin, the shipped models in PREFIX/share/wand/models, found from there (not from
the source tree the binary was built from), and a module loaded on demand.

usage: install_test.py BUILD_DIR
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile


def main():
    build = sys.argv[1]
    prefix = tempfile.mkdtemp(prefix="wand_install_")
    try:
        subprocess.run(["cmake", "--install", build, "--prefix", prefix], check=True, stdout=subprocess.DEVNULL)
        wand = os.path.join(prefix, "bin", "wand")
        for f in ["wand", "wand_openai.so", "wand_server.so", "wand_feedback_http.so", "wand_store_postgres.so"]:
            assert os.path.exists(os.path.join(prefix, "bin", f)), f"{f} not installed"
        models = os.path.join(prefix, "share", "wand", "models")
        for f in ["wand-pot.gguf", "wand-pot-delex.gguf", "wand-code.gguf", "wand-agent.gguf", "heldout-templates.jsonl", "MODEL_CARD.md"]:
            assert os.path.exists(os.path.join(models, f)), f"{f} not installed"

        env = {k: v for k, v in os.environ.items() if not k.startswith("WAND_")}
        run = lambda *args: subprocess.run([wand, *args], capture_output=True, text=True, env=env, cwd=prefix, timeout=120)
        r = run("solve", "Ann has 3 pens and buys 4 more. How many pens does she have?", "--json", "--store", os.path.join(prefix, "runs.db"))
        assert r.returncode in (0, 1), r.stderr
        model = json.loads(r.stdout)["model"]
        assert model == "local:" + os.path.realpath(os.path.join(models, "wand-pot-delex.gguf")), model

        # wand eval --remote loads wand_feedback_http.so from beside the installed binary; a port
        # nobody listens on then fails the run for not answering (3), not for a missing module.
        tasks = os.path.join(prefix, "tasks.jsonl")
        with open(tasks, "w") as f:
            f.write(json.dumps({"task_id": "t/0", "prompt": "def f():\n", "canonical_solution": "    return 1\n",
                                "test": "def check(c):\n    assert c() == 1\n", "entry_point": "f"}) + "\n")
        r = run("eval", "--dataset", tasks, "--reference", "--remote", "http://127.0.0.1:1", "--remote-timeout", "1")
        assert r.returncode == 3, (r.returncode, r.stderr)
        assert "no answer" in r.stderr and "cannot load" not in r.stderr, r.stderr
    finally:
        shutil.rmtree(prefix, ignore_errors=True)
    print("ok")


if __name__ == "__main__":
    main()
