"""Several `wand serve` workers behind nginx on loopback, with deploy/nginx/wand.conf rendered into
a temporary folder: what tests/deploy/loadbalance_test.py and scripts/soak.py start."""
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_health(port, timeout=60):
    end = time.time() + timeout
    while time.time() < end:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                if r.status == 200:
                    return True
        except OSError:
            time.sleep(0.2)
    return False


def missing_tools():
    """The names of nginx and wrk that are not installed."""
    return [t for t in ("nginx", "wrk") if not shutil.which(t) and not os.path.exists("/usr/sbin/" + t)]


class Cluster:
    """`workers` wand serve processes (each `worker_args` added) and nginx in front, on free ports.
    A context manager: stops them all on exit, and removes the folder unless keep is set."""

    def __init__(self, wand, src, workers=3, worker_args=()):
        self.wand, self.src = wand, src
        self.tmp = tempfile.mkdtemp(prefix="wand-lb-")
        self.keep = False
        self.log = open(os.path.join(self.tmp, "workers.log"), "w")
        self.ports = [free_port() for _ in range(workers)]
        self.workers = [subprocess.Popen([wand, "serve", "--exec", "--port", str(p)] + list(worker_args),
                                         stdout=self.log, stderr=self.log) for p in self.ports]
        self.nginx = None
        for p in self.ports:
            if not wait_health(p):
                self.stop()
                raise RuntimeError(f"worker on {p} did not answer /health; see {self.tmp}/workers.log")
        self.port = free_port()
        self.conf = self._render()
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        check = subprocess.run([nginx, "-t", "-c", self.conf, "-p", self.tmp], capture_output=True, text=True)
        self.config_ok = check.returncode == 0
        self.config_log = check.stderr.strip()
        self.nginx = subprocess.Popen([nginx, "-c", self.conf, "-p", self.tmp], stderr=subprocess.DEVNULL)
        if not wait_health(self.port):
            self.stop()
            raise RuntimeError(f"nginx did not answer /health: {self.config_log}")

    def url(self, path=""):
        return f"http://127.0.0.1:{self.port}{path}"

    def access_log(self):
        return self._log("access.log")

    def error_log(self):
        return self._log("error.log")

    def _log(self, name):
        with open(os.path.join(self.tmp, name)) as f:
            return f.read().splitlines()

    def _render(self):
        with open(os.path.join(self.src, "deploy", "nginx", "wand.conf")) as f:
            conf = f.read()
        conf = conf.replace("@WORKERS@", "\n".join(f"    server 127.0.0.1:{p} max_fails=1 fail_timeout=10s;"
                                                   for p in self.ports))
        conf = conf.replace("@LISTEN@", f"127.0.0.1:{self.port}").replace("@BODY_MB@", "16")
        with open(os.path.join(self.tmp, "wand.conf"), "w") as f:
            f.write(conf)
        user = "user root root;\n" if os.geteuid() == 0 else ""  # nginx's workers keep the caller's user
        t = self.tmp
        main = f"""{user}daemon off;
worker_processes 2;
pid {t}/nginx.pid;
error_log {t}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    log_format wand '$status $request_uri upstream=$upstream_addr upstream_status=$upstream_status';
    access_log {t}/access.log wand;
    client_body_temp_path {t}/body;
    proxy_temp_path {t}/proxy;
    fastcgi_temp_path {t}/fastcgi;
    uwsgi_temp_path {t}/uwsgi;
    scgi_temp_path {t}/scgi;
    include {t}/wand.conf;
}}
"""
        path = os.path.join(t, "nginx.conf")
        with open(path, "w") as f:
            f.write(main)
        return path

    def stop(self):
        procs = self.workers + ([self.nginx] if self.nginx else [])
        for p in procs:
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
        if not self.keep:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
