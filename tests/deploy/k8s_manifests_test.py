#!/usr/bin/env python3
"""deploy/k8s/*.yaml parsed (python3-yaml) and checked for what the README promises: a Deployment
whose pods can run the sandbox (seccomp and AppArmor unconfined for its namespaces, non-root with
every capability dropped, /proc unmasked, no privilege), probes on /health, a Service onto its
port, and a CPU HorizontalPodAutoscaler onto the Deployment. No cluster runs here: this checks
the manifests' shape, not their behaviour. Usage: k8s_manifests_test.py SOURCE_DIR
"""
import glob
import os
import sys

try:
    import yaml
except ImportError:
    print("skipped: python3-yaml is not installed")
    sys.exit(77)

failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


def dig(obj, *path):
    for key in path:
        if isinstance(obj, dict) and key in obj:
            obj = obj[key]
        elif isinstance(obj, list) and isinstance(key, int) and key < len(obj):
            obj = obj[key]
        else:
            return None
    return obj


def main():
    docs = []
    for path in sorted(glob.glob(os.path.join(sys.argv[1], "deploy", "k8s", "*.yaml"))):
        with open(path) as f:
            docs += [d for d in yaml.safe_load_all(f) if d]
    kinds = {d.get("kind"): d for d in docs}
    for d in docs:
        check(all(k in d for k in ("apiVersion", "kind", "metadata", "spec")) and dig(d, "metadata", "name"),
              f"{d.get('kind')}: apiVersion, kind, metadata.name and spec")
    dep, svc, hpa = kinds.get("Deployment"), kinds.get("Service"), kinds.get("HorizontalPodAutoscaler")
    check(dep is not None and svc is not None and hpa is not None, "a Deployment, a Service and an HPA")
    if failures:
        return 1

    check(dep["apiVersion"] == "apps/v1", "Deployment is apps/v1")
    labels = dig(dep, "spec", "template", "metadata", "labels") or {}
    selector = dig(dep, "spec", "selector", "matchLabels") or {}
    check(selector and all(labels.get(k) == v for k, v in selector.items()), "Deployment's selector matches its pods")
    pod = dig(dep, "spec", "template", "spec")
    c = dig(pod, "containers", 0)
    args = (c.get("command") or []) + (c.get("args") or [])
    check("serve" in args and "--exec" in args, "the container runs wand serve --exec")
    check("--host" in args and args[args.index("--host") + 1] == "0.0.0.0",
          "it listens beyond loopback (--host 0.0.0.0; 127.0.0.1 is the default)")
    port = int(args[args.index("--port") + 1]) if "--port" in args else 8080
    ports = {p.get("name"): p["containerPort"] for p in c.get("ports", [])}
    check(port in ports.values(), f"containerPort {port} is the one wand serve listens on")

    psc, csc = pod.get("securityContext", {}), c.get("securityContext", {})
    check(dig(psc, "seccompProfile", "type") == "Unconfined" or dig(csc, "seccompProfile", "type") == "Unconfined",
          "seccomp unconfined (the runtime's default profile refuses clone(CLONE_NEWUSER))")
    check(psc.get("runAsNonRoot") is True and psc.get("runAsUser", 0) > 0, "runs as a non-root user")
    check(dig(csc, "capabilities", "drop") == ["ALL"] and not dig(csc, "capabilities", "add"),
          "every capability dropped, none added")
    check(csc.get("privileged") is False and csc.get("allowPrivilegeEscalation") is False, "not privileged")
    check(csc.get("procMount") == "Unmasked" and pod.get("hostUsers") is False,
          "/proc unmasked, in a pod user namespace (cells mount their own /proc)")
    for probe in ("readinessProbe", "livenessProbe"):
        check(dig(c, probe, "httpGet", "path") == "/health" and dig(c, probe, "httpGet", "port") in (port, *ports),
              f"{probe} on GET /health")
    check(dig(c, "resources", "requests", "cpu") is not None, "a CPU request (the HPA's utilisation is its share)")
    check(dig(c, "resources", "limits", "memory") is not None, "a memory limit")

    check(dig(svc, "spec", "selector") == selector, "the Service selects the Deployment's pods")
    target = dig(svc, "spec", "ports", 0, "targetPort")
    check(target in (port, *ports), "the Service's targetPort is the container's port")

    check(hpa["apiVersion"] == "autoscaling/v2", "HPA is autoscaling/v2")
    check(dig(hpa, "spec", "scaleTargetRef", "kind") == "Deployment" and
          dig(hpa, "spec", "scaleTargetRef", "name") == dig(dep, "metadata", "name"), "the HPA scales the Deployment")
    metric = dig(hpa, "spec", "metrics", 0)
    check(dig(metric, "type") == "Resource" and dig(metric, "resource", "name") == "cpu" and
          dig(metric, "resource", "target", "type") == "Utilization", "the HPA scales on CPU utilisation")
    check(0 < dig(hpa, "spec", "minReplicas") <= dig(hpa, "spec", "maxReplicas"), "min <= max replicas")
    print("PASSED" if not failures else f"FAILED: {len(failures)} checks")
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
