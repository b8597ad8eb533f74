#!/usr/bin/env python3
"""The YAML work of scripts/check-k8s, run in its venv (kubernetes-validate,
jsonschema, PyYAML, checkov).

  check.py validate FILE...            every object against the Kubernetes
                                       1.30 and newest bundled schemas
                                       (strict); custom kinds against the
                                       CRDs in k8s/crds/ (strict); an
                                       unknown kind is an error
  check.py policy SKIPS GOOD... -- BAD...
                                       checkov over rendered files: GOOD ones
                                       must pass but for the skips named in
                                       SKIPS, each BAD one must fail with the
                                       check its name says
  check.py mutants RENDERED OUTDIR     BAD variants of a rendered overlay
  check.py served RENDERED NAMESPACE OUT
                                       the objects the test apiserver serves,
                                       for a server-side dry-run; says what
                                       was converted or skipped and why
  check.py secrets FILE...             no Secret object, no Secret value
  check.py adapter VALUES RENDERED OUT  the HPA's metrics have adapter rules;
                                       their queries as a rules file
  check.py old-crds OUT                 the CRDs as the v1.20 apiserver takes them
  check.py dockerfile DOCKERFILE DOCKERIGNORE
                                       every COPY source from the context
                                       exists and is not ignored
"""

import copy
import json
import os
import subprocess
import sys

import jsonschema
import kubernetes_validate
import yaml

ROOT = os.environ.get("ROOT", os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
CRDS = os.path.join(ROOT, "k8s", "crds")
# The oldest Kubernetes Corral's manifests support, and the newest the
# installed kubernetes-validate knows.
VERSIONS = ["1.30.0", kubernetes_validate.latest_version()]


def die(msg):
    print(msg, file=sys.stderr)
    sys.exit(1)


def load(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def name(o):
    md = o.get("metadata", {})
    return f"{o.get('kind')}/{md.get('name')}" + (f" (namespace {md['namespace']})" if md.get("namespace") else "")


# --- schemas -----------------------------------------------------------------

def strict(schema):
    """A CRD schema that refuses unknown fields, as `--strict` does for core
    kinds: objects with declared properties and no preserve-unknown-fields
    get additionalProperties: false."""
    if isinstance(schema, dict):
        s = {k: strict(v) for k, v in schema.items()}
        if (s.get("type") == "object" and "properties" in s and "additionalProperties" not in s
                and not s.get("x-kubernetes-preserve-unknown-fields")):
            s["additionalProperties"] = False
        return s
    if isinstance(schema, list):
        return [strict(v) for v in schema]
    return schema


def crd_schemas():
    out = {}
    for dirpath, _, files in os.walk(CRDS):
        for f in files:
            if not f.endswith(".yaml"):
                continue
            for crd in load(os.path.join(dirpath, f)):
                if crd.get("kind") != "CustomResourceDefinition":
                    continue
                group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
                for v in crd["spec"]["versions"]:
                    if v.get("served"):
                        out[(f"{group}/{v['name']}", kind)] = strict(v["schema"]["openAPIV3Schema"])
    return out


def validate(*files):
    crds = crd_schemas()
    errors, counts = [], {}
    for path in files:
        for o in load(path):
            where = f"{os.path.basename(path)}: {name(o)}"
            key = (o.get("apiVersion"), o.get("kind"))
            if key in crds:
                # metadata is checked by the apiserver's ObjectMeta; the CRD
                # schema describes it as a bare object.
                v = jsonschema.Draft7Validator(crds[key])
                errs = sorted(v.iter_errors(o), key=lambda e: list(e.absolute_path))
                for e in errs:
                    errors.append(f"{where}: {'.'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}")
                counts["CRD " + key[1]] = counts.get("CRD " + key[1], 0) + 1
                continue
            for version in VERSIONS:
                try:
                    kubernetes_validate.validate(o, version, strict=True)
                except kubernetes_validate.SchemaNotFoundError:
                    errors.append(f"{where}: {key[0]} {key[1]} is not a kind of Kubernetes {version}"
                                  " nor of a CRD in k8s/crds/")
                    break
                except kubernetes_validate.ValidationError as e:
                    errors.append(f"{where}: Kubernetes {version}: {'.'.join(map(str, e.path)) or '(top)'}: {e.message}")
            counts[key[1]] = counts.get(key[1], 0) + 1
    if errors:
        die("schema validation failed:\n  " + "\n  ".join(errors))
    total = sum(counts.values())
    print(f"  {total} objects valid (strict) against Kubernetes {' and '.join(VERSIONS)} "
          f"and the prometheus-operator CRDs: " + ", ".join(f"{n} {k}" for k, n in sorted(counts.items())))


# --- policy ------------------------------------------------------------------

# The checks the policy must run on every workload and may never skip:
# resource limits, non-root, a fixed tag, no wildcard in Roles.
REQUIRED = {
    "CKV_K8S_11": "CPU limits",
    "CKV_K8S_13": "memory limits",
    "CKV_K8S_14": "image tag fixed, not latest or blank",
    "CKV_K8S_23": "no root containers",
    "CKV_K8S_40": "a high UID",
    "CKV_K8S_49": "no wildcards in Roles",
    "CKV_K8S_20": "no privilege escalation",
    "CKV_K8S_22": "read-only root filesystem",
    "CKV_K8S_37": "capabilities dropped",
}


def checkov(files):
    work = os.path.dirname(os.path.abspath(files[0]))
    env = dict(os.environ, BC_SKIP_MAPPING="TRUE", CHECKOV_RUN_SCA_PACKAGE_SCAN_V2="false")
    exe = os.path.join(os.path.dirname(sys.executable), "checkov")
    args = [exe, "--framework", "kubernetes", "--skip-download", "--compact", "-o", "json"]
    for f in files:
        args += ["-f", f]
    out = subprocess.run(args, cwd=work, env=env, capture_output=True, text=True)
    if out.returncode not in (0, 1):
        die(f"checkov failed ({out.returncode}): {out.stderr[-2000:]}")
    data = json.loads(out.stdout)
    if isinstance(data, dict):
        data = [data]
    results = []
    for report in data:
        if report.get("check_type") != "kubernetes":
            continue
        for r in report["results"].get("failed_checks", []):
            results.append(("FAILED", r))
        for r in report["results"].get("passed_checks", []):
            results.append(("PASSED", r))
    return results


def policy(skips_file, *files):
    sep = files.index("--") if "--" in files else len(files)
    good, bad = list(files[:sep]), list(files[sep + 1:])
    with open(skips_file) as f:
        skips = yaml.safe_load(f)["skips"]
    for s in skips:
        if not s.get("reason", "").strip():
            die(f"{skips_file}: skip of {s['check']} has no reason")
        if s["check"] in REQUIRED:
            die(f"{skips_file}: {s['check']} ({REQUIRED[s['check']]}) may not be skipped")
    results = checkov(good + bad)
    base = lambda p: os.path.basename(p)
    failures, used, ran = [], set(), set()
    for state, r in results:
        f = base(r["file_path"])
        if f not in map(base, good):
            continue
        ran.add(r["check_id"])
        if state != "FAILED":
            continue
        resource = r["resource"]  # Kind.namespace.name
        match = [i for i, s in enumerate(skips)
                 if s["check"] == r["check_id"] and s.get("resource") in (None, resource)]
        if match:
            used.update(match)
        else:
            failures.append(f"{f}: {r['check_id']} {r['check_name']}: {resource}")
    missing = sorted(set(REQUIRED) - ran)
    if missing:
        failures.append("checks that did not run: " + ", ".join(f"{c} ({REQUIRED[c]})" for c in missing))
    stale = [f"{s['check']} {s.get('resource', '(all)')}" for i, s in enumerate(skips) if i not in used]
    if stale:
        failures.append(f"skips in {skips_file} that no longer match a failure (remove them): " + ", ".join(stale))
    # Each BAD file is named bad-<CHECK>-….yaml: it must fail that check.
    for b in bad:
        want = base(b).split("-")[1]
        got = {r["check_id"] for state, r in results if state == "FAILED" and base(r["file_path"]) == base(b)}
        if want not in got:
            failures.append(f"{base(b)}: the policy did not catch it (expected {want} to fail; failed: {sorted(got) or 'none'})")
        else:
            print(f"  {base(b)}: caught by {want}")
    if failures:
        die("policy check failed:\n  " + "\n  ".join(failures))
    print(f"  {len(good)} rendered overlay(s) pass checkov's Kubernetes checks "
          f"({len(skips)} skips, each justified in {os.path.relpath(skips_file, ROOT)})")


def containers(o):
    spec = o.get("spec", {})
    pod = spec.get("template", {}).get("spec") if "template" in spec else None
    if pod is None:
        return []
    return pod.get("containers", []) + pod.get("initContainers", [])


def mutants(rendered, outdir):
    """Regressions the policy must catch, one per file."""
    docs = load(rendered)

    def write(check, what, change):
        ds = copy.deepcopy(docs)
        change(ds)
        with open(os.path.join(outdir, f"bad-{check}-{what}.yaml"), "w") as f:
            yaml.safe_dump_all(ds, f, sort_keys=False)

    def find(ds, kind, nm):
        return next(o for o in ds if o["kind"] == kind and o["metadata"]["name"] == nm)

    def no_memory_limit(ds):
        containers(find(ds, "Deployment", "corral-gateway"))[0].get("resources", {}).get("limits", {}).pop("memory", None)

    def no_cpu_limit(ds):
        containers(find(ds, "Deployment", "ollama"))[0].get("resources", {}).get("limits", {}).pop("cpu", None)

    def latest(ds):
        c = containers(find(ds, "Deployment", "corral"))[0]
        c["image"] = c["image"].rsplit(":", 1)[0] + ":latest"

    def root(ds):
        d = find(ds, "Deployment", "corral")
        d["spec"]["template"]["spec"].setdefault("securityContext", {}).update(runAsUser=0, runAsNonRoot=False)
        containers(d)[0].setdefault("securityContext", {})["runAsNonRoot"] = False

    def wildcard(ds):
        find(ds, "Role", "corral-cluster-driver")["rules"][0]["verbs"] = ["*"]

    write("CKV_K8S_13", "gateway-without-memory-limit", no_memory_limit)
    write("CKV_K8S_11", "ollama-without-cpu-limit", no_cpu_limit)
    write("CKV_K8S_14", "portal-on-latest", latest)
    write("CKV_K8S_23", "portal-as-root", root)
    write("CKV_K8S_49", "role-with-wildcard-verb", wildcard)


# --- secrets -----------------------------------------------------------------

def secrets(*files):
    found = []
    for path in files:
        try:
            docs = load(path)
        except yaml.YAMLError:
            continue
        for o in docs:
            if isinstance(o, dict) and o.get("kind") == "Secret":
                found.append(f"{path}: {name(o)} (Secrets are created by hand, never committed: k8s/README.md)")
            if isinstance(o, dict) and "stringData" in o:
                found.append(f"{path}: {name(o)} carries stringData")
    if found:
        die("Secret values in the repository:\n  " + "\n  ".join(found))
    print(f"  no Secret objects or values in {len(files)} files")


# --- what the test apiserver serves -------------------------------------------

# Kinds whose version the v1.20 test apiserver does not serve, and the older
# version it does serve with the same fields for what Corral uses.
OLDER = {
    ("autoscaling/v2", "HorizontalPodAutoscaler"): "autoscaling/v2beta2",
    ("policy/v1", "PodDisruptionBudget"): "policy/v1beta1",
}


def discovery():
    """(group/version, kind) pairs the apiserver at $KUBECONFIG serves."""
    kc = lambda *a: subprocess.run(["kubectl", *a], check=True, capture_output=True, text=True).stdout
    have = set()
    for gv in kc("api-versions").split():
        path = "/api/v1" if gv == "v1" else f"/apis/{gv}"
        for r in json.loads(kc("get", "--raw", path))["resources"]:
            if "/" not in r["name"]:
                have.add((gv, r["kind"]))
    return have


def served(rendered, namespace, out):
    have = discovery()
    keep, notes = [], []
    for o in load(rendered):
        key = (o["apiVersion"], o["kind"])
        o = copy.deepcopy(o)
        if o.get("metadata", {}).get("namespace"):
            o["metadata"]["namespace"] = namespace
        for s in o.get("subjects", []) or []:
            if s.get("namespace"):
                s["namespace"] = namespace
        pod = o.get("spec", {}).get("template", {}).get("spec")
        for v in (pod or {}).get("volumes", []):
            if "ephemeral" in v:
                del v["ephemeral"]
                v["emptyDir"] = {}
                notes.append(f"  {name(o)}: volume {v['name']} is a generic ephemeral volume, alpha and off in"
                             " Kubernetes 1.20 (GA in 1.23); dry-run with an emptyDir in its place")
        if key in have:
            keep.append(o)
        elif key in OLDER and (OLDER[key], key[1]) in have:
            o["apiVersion"] = OLDER[key]
            keep.append(o)
            notes.append(f"  {name(o)}: {key[0]} is not served (Kubernetes 1.20); dry-run as {OLDER[key]}, the same fields")
        else:
            notes.append(f"  {name(o)}: {key[0]} {key[1]} is not served; skipped (validated against the schemas above)")
    with open(out, "w") as f:
        yaml.safe_dump_all(keep, f, sort_keys=False)
    for n in notes:
        print(n)
    print(f"  {len(keep)} objects to dry-run")


# --- Dockerfile ----------------------------------------------------------------

def dockerfile(path, ignore_file):
    """Every `COPY`/`ADD` from the build context names a path that exists
    in the repository and that .dockerignore does not exclude."""
    import fnmatch
    ignores = []
    if os.path.exists(ignore_file):
        with open(ignore_file) as f:
            for line in f:
                line = line.strip()
                if line and not line.startswith("#"):
                    ignores.append(line.rstrip("/"))

    def ignored(rel):
        out = False
        for pat in ignores:
            neg = pat.startswith("!")
            pat = pat.lstrip("!").lstrip("/")
            parts = rel.split("/")
            hit = any(fnmatch.fnmatch("/".join(parts[:i + 1]), pat) for i in range(len(parts)))
            if hit:
                out = not neg
        return out

    # Join continuation lines, then read COPY/ADD instructions.
    with open(path) as f:
        text = f.read().replace("\\\n", " ")
    problems, copied, sources = [], 0, []
    for line in text.splitlines():
        words = line.split()
        if not words or words[0].upper() not in ("COPY", "ADD"):
            continue
        args = [w for w in words[1:] if not w.startswith("--")]
        if any(w.startswith("--from") for w in words[1:]):
            continue  # from another stage
        if args and args[0].startswith("["):
            args = json.loads(" ".join(args))
        for src in args[:-1]:
            copied += 1
            rel = os.path.normpath(src).lstrip("/")
            sources.append(rel)
            full = os.path.join(ROOT, rel)
            if not os.path.exists(full):
                problems.append(f"{src}: does not exist")
            elif rel != "." and ignored(rel):
                problems.append(f"{src}: excluded by {os.path.basename(ignore_file)}")
    if copied == 0:
        problems.append("no COPY from the build context found")
    # The workspace's members must all be copied, or cargo cannot load it.
    import tomllib
    with open(os.path.join(ROOT, "Cargo.toml"), "rb") as f:
        members = tomllib.load(f)["workspace"]["members"]
    for m in members:
        if not any(m == s or m.startswith(s + "/") for s in sources):
            problems.append(f"workspace member {m} (Cargo.toml) is not copied")
    if problems:
        die(f"{path}:\n  " + "\n  ".join(problems))
    print(f"  {copied} paths copied from the build context, all present and not ignored")


# --- prometheus-adapter ----------------------------------------------------------

def adapter(values_file, rendered, out):
    """The HPA's custom metrics are served by a rule of the adapter's values;
    its queries, templates filled in, go to OUT as recording rules for
    `promtool check rules`."""
    with open(values_file) as f:
        rules = yaml.safe_load(f)["rules"]["custom"]
    served = {r["name"]["as"]: r for r in rules}
    groups, problems = [], []
    for o in load(rendered):
        if o["kind"] != "HorizontalPodAutoscaler":
            continue
        for m in o["spec"].get("metrics", []):
            if m["type"] != "Pods":
                continue
            metric = m["pods"]["metric"]["name"]
            rule = served.get(metric)
            if rule is None:
                problems.append(f"{name(o)}: metric {metric} is served by no rule in {values_file}")
                continue
            query = (rule["metricsQuery"].replace("<<.Series>>", metric)
                     .replace("<<.LabelMatchers>>", 'namespace="corral",pod=~"ollama-.*"')
                     .replace("<<.GroupBy>>", "pod"))
            groups.append({"name": f"adapter rule {metric}", "rules": [
                {"record": "adapter:series_query", "expr": rule["seriesQuery"]},
                {"record": "adapter:metrics_query", "expr": query}]})
            print(f"  {name(o)}: pods/{metric} served by the adapter rule for {rule['seriesQuery']}")
    if not groups and not problems:
        problems.append(f"{rendered}: no HPA with a Pods metric")
    if problems:
        die("\n".join(problems))
    with open(out, "w") as f:
        yaml.safe_dump({"groups": groups}, f)


def old_crds(out):
    """The CRDs for the v1.20 test apiserver, which refuses a schema
    `default: ""` (it reads it as null): those defaults left out. Only the
    dry-run uses this copy; the objects set none of those fields."""
    docs, dropped = [], 0

    def strip(v):
        nonlocal dropped
        if isinstance(v, dict):
            if v.get("default") == "":
                del v["default"]
                dropped += 1
            for x in v.values():
                strip(x)
        elif isinstance(v, list):
            for x in v:
                strip(x)

    for dirpath, _, files in os.walk(CRDS):
        for f in sorted(files):
            if f.endswith(".yaml"):
                for d in load(os.path.join(dirpath, f)):
                    if d.get("kind") == "CustomResourceDefinition":
                        strip(d)
                        docs.append(d)
    with open(out, "w") as f:
        yaml.safe_dump_all(docs, f, sort_keys=False)
    print(f"  {len(docs)} CRDs; {dropped} empty-string schema defaults left out for v1.20")


def main():
    cmd, *args = sys.argv[1:]
    {"validate": validate, "policy": policy, "mutants": mutants, "served": served, "secrets": secrets, "dockerfile": dockerfile, "adapter": adapter, "old-crds": old_crds}[cmd](*args)


if __name__ == "__main__":
    main()
