"""Renders the Switchboard chart with Helm's own library and checks what comes out.

Run by scripts/check-chart.sh inside its tool venv (helm-python-sdk, PyYAML). Prints one line
per check, `PASS name` or `FAIL name: why`, and writes what the shell script validates next
into OUT (argument 1):

  OUT/<case>.yaml              every rendered manifest of a case
  OUT/<case>.k8s.yaml          the built-in kinds (for kubernetes-validate)
  OUT/<case>.<Kind>.yaml       ServiceMonitor / PrometheusRule (for their JSON schemas)
  OUT/<case>.values.json       the merged values (for check-jsonschema)
  OUT/rules/*.rules.yaml       alert rules and dashboard queries (for promtool check rules)
"""

from __future__ import annotations

import json
import re
import sys
import tomllib
from pathlib import Path
from typing import Any, Callable

import helm_python as helm
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm"
CASES = Path(__file__).resolve().parent / "cases"
RELEASE, NAMESPACE = "switchboard", "chat"
CRD_KINDS = {"ServiceMonitor", "PrometheusRule"}

results: list[tuple[str, str | None]] = []


def check(name: str, fn: Callable[[], None]) -> None:
    try:
        fn()
        results.append((name, None))
        print(f"PASS {name}", flush=True)
    except Exception as e:  # noqa: BLE001 - every failure is reported, none stops the run
        msg = str(e).strip().replace("\n", " | ")
        results.append((name, msg))
        print(f"FAIL {name}: {type(e).__name__}: {msg}", flush=True)


def ensure(cond: bool, msg: str) -> None:
    if not cond:
        raise AssertionError(msg)


# ---- the cases ---------------------------------------------------------------------------

def load_yaml(p: Path) -> dict[str, Any]:
    return yaml.safe_load(p.read_text()) or {}


CASE_VALUES: dict[str, dict[str, Any]] = {
    # The chart's defaults plus the one value nobody may leave out.
    "default": {"auth": {"existingSecret": "switchboard-auth"}},
    "production": load_yaml(CHART / "ci" / "production-values.yaml"),
}
for p in sorted(CASES.glob("*.yaml")):
    CASE_VALUES[p.stem] = load_yaml(p)

# Values that must not render, and the words the error must contain.
NEGATIVE: dict[str, tuple[dict[str, Any], str]] = {
    "no-token-secret": ({}, "auth.existingSecret is required"),
    "sqlite-with-replicas": ({"auth": {"existingSecret": "a"}, "replicaCount": 3}, "SQLite"),
    "sqlite-with-autoscaling": ({"auth": {"existingSecret": "a"}, "autoscaling": {"enabled": True}}, "SQLite"),
    "grace-too-short": ({"auth": {"existingSecret": "a"}, "terminationGracePeriodSeconds": 20}, "terminationGracePeriodSeconds"),
    "standalone-two-hosts": ({"auth": {"existingSecret": "a"}, "redis": {"hosts": ["a:1", "b:2"]}}, "exactly one entry"),
    "cluster-database": ({"auth": {"existingSecret": "a"}, "redis": {"mode": "cluster", "database": 3}}, "database must be 0"),
    "schema-redis-mode": ({"auth": {"existingSecret": "a"}, "redis": {"mode": "memcached"}}, "/redis/mode"),
    "schema-outbound-queue": ({"auth": {"existingSecret": "a"}, "limits": {"outbound_queue": 2}}, "/limits/outbound_queue"),
    "schema-unknown-key": ({"auth": {"existingSecret": "a"}, "chat": {"offer_timeout": 5}}, "offer_timeout"),
    "schema-key-prefix-brace": ({"auth": {"existingSecret": "a"}, "redis": {"key_prefix": "{sb}"}}, "/redis/key_prefix"),
    "pdb-both": ({"auth": {"existingSecret": "a"}, "podDisruptionBudget": {"minAvailable": 1}}, "not both"),
    # Chat files: a per-pod directory cannot serve several nodes; relative paths land on the
    # read-only root filesystem; credentials never inline.
    "files-local-with-replicas": ({"auth": {"existingSecret": "a"}, "store": {"existingSecret": "pg"}, "replicaCount": 2},
                                  "files.url (file:///var/lib/switchboard/files) is a directory inside each pod"),
    "files-relative-with-autoscaling": ({"auth": {"existingSecret": "a"}, "store": {"existingSecret": "pg"}, "autoscaling": {"enabled": True},
                                         "files": {"url": ".run/files"}}, "files.sharedVolume to a ReadWriteMany PersistentVolumeClaim"),
    "files-relative": ({"auth": {"existingSecret": "a"}, "files": {"url": ".run/files"}}, "read-only root filesystem"),
    "files-s3-and-volume": ({"auth": {"existingSecret": "a"}, "files": {"url": "s3://bucket/p", "sharedVolume": "c"}}, "S3 needs no volume"),
    "files-s3-secret-unused": ({"auth": {"existingSecret": "a"}, "files": {"s3": {"existingSecret": "s"}}}, "would be unused"),
    "files-on-config-mount": ({"auth": {"existingSecret": "a"}, "files": {"url": "/etc/switchboard"}}, "already mounts"),
    "schema-files-url": ({"auth": {"existingSecret": "a"}, "files": {"url": "ftp://host/dir"}}, "/files/url"),
    "schema-files-inline-key": ({"auth": {"existingSecret": "a"}, "files": {"s3": {"accessKeyId": "AKIA..."}}}, "accessKeyId"),
    "schema-allowed-types": ({"auth": {"existingSecret": "a"}, "files": {"allowed_types": ["Image/*"]}}, "/files/allowed_types/0"),
    "idle-below-ping": ({"auth": {"existingSecret": "a"}, "limits": {"idle_timeout_ms": 19999}}, "limits.idle_timeout_ms (19999)"),
    "ping-over-grace": ({"auth": {"existingSecret": "a"}, "chat": {"agent_grace_ms": 30000}}, "chat.agent_grace_ms (30000)"),
    "lock-over-statement": ({"auth": {"existingSecret": "a"}, "store": {"lock_timeout_ms": 20000}}, "store.lock_timeout_ms (20000)"),
    "probe-below-ready-timeout": ({"auth": {"existingSecret": "a"}, "server": {"ready_timeout_ms": 3000}}, "probes.readiness.timeoutSeconds"),
    "ingress-timeout-below-ping": ({"auth": {"existingSecret": "a"}, "ingress": {"enabled": True, "nginx": {"proxyReadTimeout": 10}}},
                                   "ingress.nginx.proxyReadTimeout"),
    "login-backoff-max-below-first": ({"auth": {"existingSecret": "a"}, "limits": {"login_backoff_max_ms": 10}}, "login_backoff_max_ms"),
    "metrics-port-is-http-port": ({"auth": {"existingSecret": "a"}, "server": {"metricsPort": 8080}}, "server.metricsPort"),
}


def docs_of(manifests: dict[str, str]) -> list[dict[str, Any]]:
    out = []
    for path, text in sorted(manifests.items()):
        if not path.endswith((".yaml", ".yml")):
            continue
        for d in yaml.safe_load_all(text):
            if d:
                out.append(d)
    return out


def by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d.get("kind") == kind]


def one(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = by_kind(docs, kind)
    ensure(len(found) == 1, f"expected one {kind}, found {len(found)}")
    return found[0]


# ---- facts from the server's source ------------------------------------------------------

def default_toml() -> dict[str, Any]:
    return tomllib.loads((ROOT / "config" / "default.toml").read_text())


def metrics_source() -> str:
    """src/metrics.rs, then its submodules (src/metrics/*.rs), with whitespace normalised, so
    rustfmt's line breaks do not matter."""
    files = [ROOT / "src" / "metrics.rs", *sorted((ROOT / "src" / "metrics").glob("*.rs"))]
    src = re.sub(r"\s+", " ", " ".join(f.read_text() for f in files))
    return re.sub(r",\s*\)", ")", re.sub(r"\(\s+", "(", src))


def metric_families_full() -> list[tuple[str, str, str, str]]:
    """(name, kind, labels, help) of every family registered in src/metrics.rs, in source order."""
    src = metrics_source()
    found: list[tuple[int, str, str, str, str]] = []
    # The helpers: counter(&r, name, help), counter_vec(.., &[labels]), gauge_vec(..), histogram(..).
    for m in re.finditer(r'\b(counter_vec|counter|gauge_vec|histogram)\(&?r, "([a-z_]+)", "([^"]+)"(?:, &\[([^\]]*)\])?', src):
        kind = {"histogram": "histogram", "gauge_vec": "gauge"}.get(m.group(1), "counter")
        found.append((m.start(), m.group(2), kind, m.group(4) or "", m.group(3)))
    # Registered by hand: IntGauge(Vec)::new(..) and HistogramVec::new(HistogramOpts::new(..).buckets(..), &[labels]).
    for m in re.finditer(r'\b(IntGaugeVec|IntGauge)::new\((?:Opts::new\()?"([a-z_]+)", "([^"]+)"\)?(?:, &\[([^\]]*)\])?', src):
        found.append((m.start(), m.group(2), "gauge", m.group(4) or "", m.group(3)))
    for m in re.finditer(r'\bHistogramVec::new\(HistogramOpts::new\("([a-z_]+)", "([^"]+)"\)\s*(?:\.buckets\([^)]*\))?, &\[([^\]]*)\]', src):
        found.append((m.start(), m.group(1), "histogram", m.group(3), m.group(2)))
    # Every family the registry gets must have been found: a new registration style fails here
    # instead of silently leaving a family out of the dashboard, alert and docs checks.
    names = set(re.findall(r'"(switchboard_[a-z_]+)"', src))
    missed = names - {f[1] for f in found}
    ensure(not missed, f"families in src/metrics.rs the parser does not understand: {sorted(missed)}")
    ensure(found, "no metric family found in src/metrics.rs")
    return [(n, k, l, h) for _, n, k, l, h in sorted(found)]


def metric_families() -> dict[str, str]:
    """Family name -> kind (counter, gauge, histogram)."""
    return {n: k for n, k, _, _ in metric_families_full()}


def series_names(expr: str) -> set[str]:
    """Metric names a PromQL expression reads (good enough for our own queries)."""
    names = set(re.findall(r"\b(switchboard_[a-z_]+)\b", expr))
    return names


def family_of(series: str, fams: dict[str, str]) -> str | None:
    if series in fams:
        return series
    for suffix in ("_bucket", "_sum", "_count"):
        if series.endswith(suffix) and fams.get(series[: -len(suffix)]) == "histogram":
            return series[: -len(suffix)]
    return None


# ---- the checks --------------------------------------------------------------------------

def main(out: Path) -> int:
    out.mkdir(parents=True, exist_ok=True)
    (out / "rules").mkdir(exist_ok=True)
    rendered: dict[str, list[dict[str, Any]]] = {}
    fams = metric_families()

    with helm.Chart.load(CHART) as chart:
        check("chart metadata", lambda: (ensure(chart.name == "switchboard", chart.name),
                                         ensure(chart.metadata.get("apiVersion") == "v2", "apiVersion must be v2")))

        for case, values in CASE_VALUES.items():
            def lint(values: dict[str, Any] = values) -> None:
                report = helm.lint(CHART, values, strict=True, namespace=NAMESPACE)
                bad = [m for m in report.get("messages") or [] if m.get("severity", 0) >= 2] + list(report.get("errors") or [])
                ensure(not bad, json.dumps(bad))
            check(f"helm lint --strict [{case}]", lint)

            def render(case: str = case, values: dict[str, Any] = values) -> None:
                chart.validate_schema(values)
                manifests = chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)
                docs = docs_of(manifests)
                rendered[case] = docs
                (out / f"{case}.yaml").write_text(yaml.safe_dump_all(docs, sort_keys=False))
                (out / f"{case}.k8s.yaml").write_text(yaml.safe_dump_all([d for d in docs if d["kind"] not in CRD_KINDS], sort_keys=False))
                for kind in CRD_KINDS:
                    (out / f"{case}.{kind}.yaml").unlink(missing_ok=True)
                    for d in by_kind(docs, kind):
                        (out / f"{case}.{kind}.yaml").write_text(yaml.safe_dump(d, sort_keys=False))
                (out / f"{case}.values.json").write_text(json.dumps(chart.merge_values(values), indent=1))
                notes = [v for k, v in manifests.items() if k.endswith("NOTES.txt")]
                ensure(notes and "drains" in notes[0], "NOTES.txt did not render")
            check(f"helm template [{case}]", render)

        for name, (values, words) in NEGATIVE.items():
            def refuse(values: dict[str, Any] = values, words: str = words) -> None:
                try:
                    chart.validate_schema(values)
                    chart.render(values, name=RELEASE, namespace=NAMESPACE)
                except helm.HelmError as e:
                    ensure(words in str(e), f"refused, but the message lacks {words!r}: {e}")
                    return
                raise AssertionError("rendered, but must be refused")
            check(f"refuses [{name}]", refuse)

    for case, docs in rendered.items():
        check(f"invariants [{case}]", lambda case=case, docs=docs: invariants(case, docs))
        check(f"config.toml matches the server's tree [{case}]", lambda docs=docs: config_tree(docs))

    check("redis URL per mode", lambda: redis_urls(rendered))
    check("optional objects follow their switches", lambda: switches(rendered))
    check("values.yaml defaults equal config/default.toml", values_defaults)

    for case, docs in rendered.items():
        for rule in by_kind(docs, "PrometheusRule"):
            def alerts(rule: dict[str, Any] = rule, case: str = case) -> None:
                groups = rule["spec"]["groups"]
                (out / "rules" / f"alerts-{case}.rules.yaml").write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
                for g in groups:
                    for r in g["rules"]:
                        for s in series_names(r["expr"]):
                            ensure(family_of(s, fams) is not None, f"{r['alert']}: {s} is not a family in src/metrics.rs")
                        ensure("severity" in r.get("labels", {}), f"{r['alert']}: no severity")
                        ensure("summary" in r.get("annotations", {}), f"{r['alert']}: no summary")
            check(f"alert rules use real metrics [{case}]", alerts)

    dash = json.loads((CHART / "dashboards" / "switchboard.json").read_text())
    check("dashboard structure", lambda: dashboard_structure(dash))
    check("dashboard queries use real metrics", lambda: dashboard_metrics(dash, fams, out))
    check("dashboard ConfigMap carries the JSON", lambda: dashboard_configmap(rendered["production"], dash))
    check("docs/operations.md tables match the source", docs_tables)

    failed = [r for r in results if r[1]]
    print(f"chart-python: {len(results) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


def invariants(case: str, docs: list[dict[str, Any]]) -> None:
    dep = one(docs, "Deployment")
    pod = dep["spec"]["template"]["spec"]
    c = pod["containers"][0]
    cm = one(docs, "ConfigMap") if len(by_kind(docs, "ConfigMap")) == 1 else \
        next(d for d in by_kind(docs, "ConfigMap") if "config.toml" in d["data"])
    conf = tomllib.loads(cm["data"]["config.toml"])

    # Probes: readiness on /readyz, liveness on /healthz, on the named port the server listens on.
    ensure(c["readinessProbe"]["httpGet"]["path"] == "/readyz", "readiness must be /readyz")
    ensure(c["livenessProbe"]["httpGet"]["path"] == "/healthz", "liveness must be /healthz")
    port = next(p for p in c["ports"] if p["name"] == "http")["containerPort"]
    ensure(conf["server"]["listen"].endswith(f":{port}"), f"listen {conf['server']['listen']} vs containerPort {port}")
    ensure(c["args"][:3] == ["serve", "--config", "/etc/switchboard/config.toml"], f"args {c['args']}")
    ensure(any(m["mountPath"] == "/etc/switchboard" for m in c["volumeMounts"]), "config not mounted")

    # Drain: the grace period covers the preStop pause and the server's drain.
    pre = c.get("lifecycle", {}).get("preStop", {})
    pause = pre.get("sleep", {}).get("seconds") or int((pre.get("exec", {}).get("command") or ["", "", "0"])[-1])
    ensure(pause > 0, "no preStop pause")
    grace = pod["terminationGracePeriodSeconds"]
    ensure(grace > conf["server"]["drain_seconds"] + pause, f"grace {grace} <= drain {conf['server']['drain_seconds']} + preStop {pause}")

    # Hardening.
    psc, sc = pod["securityContext"], c["securityContext"]
    ensure(psc.get("runAsNonRoot") is True and sc.get("readOnlyRootFilesystem") is True, "must run non-root with a read-only root fs")
    ensure(sc.get("allowPrivilegeEscalation") is False and "ALL" in sc.get("capabilities", {}).get("drop", []), "privileges not dropped")
    ensure(pod.get("automountServiceAccountToken") is False, "service account token mounted")
    ensure(c["resources"].get("requests", {}).get("cpu"), "no CPU request (the HPA needs one)")

    # Secrets only by reference: the token secret always, never a literal credential.
    env = {e["name"]: e for e in c.get("env", [])}
    ts = env.get("SWITCHBOARD__AUTH__TOKEN_SECRET", {})
    ensure("secretKeyRef" in ts.get("valueFrom", {}), "token secret must come from a secretKeyRef")
    ensure("token_secret" not in conf["auth"], "token_secret written into the ConfigMap")
    for d in docs:
        ensure(d["kind"] != "Secret", "the chart must not create Secrets")
    for name, e in env.items():
        v = e.get("value", "")
        ensure(not re.search(r"://[^/@$]*:[^/@$(]+@", v), f"{name} carries an inline password")
    for u in (conf["redis"].get("url", ""), conf["store"].get("url", "")):
        ensure("@" not in u, f"credentials in the ConfigMap: {u}")
    ensure(("url" in conf["store"]) != ("SWITCHBOARD__STORE__URL" in env), "store URL must come from exactly one place")
    ensure(("url" in conf["redis"]) != ("SWITCHBOARD__REDIS__URL" in env), "redis URL must come from exactly one place")

    # Chat files: S3 credentials only from a Secret; a local url is a mounted volume, and a
    # shared one whenever more than one pod can run.
    files_url = conf["files"]["url"]
    ensure("SWITCHBOARD__FILES__URL" not in env, "files.url belongs in the ConfigMap (it carries no credentials)")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT", "AWS_SESSION_TOKEN"):
        if name in env:
            ensure(files_url.startswith("s3://"), f"{name} set although files.url is {files_url}")
            ensure("secretKeyRef" in env[name].get("valueFrom", {}) and "value" not in env[name], f"{name} must come from a secretKeyRef")
    ensure(("AWS_ACCESS_KEY_ID" in env) == ("AWS_SECRET_ACCESS_KEY" in env), "AWS key id and secret key come together")
    ensure(not re.search(r"s3://[^/]*@", files_url), f"credentials in files.url: {files_url}")
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
    several = bool(by_kind(docs, "HorizontalPodAutoscaler")) or dep["spec"].get("replicas", 1) > 1
    if files_url.startswith("s3://"):
        ensure("files" not in volumes, "files volume mounted although files.url is S3")
    else:
        path = files_url.removeprefix("file://").rstrip("/")
        ensure(path.startswith("/"), f"files.url {files_url} is not absolute")
        ensure(mounts.get(path) == "files", f"files.url {files_url}: no files volume mounted at {path}")
        shared = "persistentVolumeClaim" in volumes["files"]
        ensure(shared or not several, "several pods with per-pod chat files")
        ensure(shared or volumes["files"].get("emptyDir") is not None, "files volume is neither a claim nor an emptyDir")

    # Rolling: surge first, never below capacity; pods roll on config changes.
    ru = dep["spec"]["strategy"]["rollingUpdate"]
    ensure(ru["maxUnavailable"] == 0, "rolling updates must not drop capacity")
    ensure("checksum/config" in dep["spec"]["template"]["metadata"]["annotations"], "no config checksum")

    svc = one(docs, "Service")
    ensure(svc["spec"].get("sessionAffinity", "None") == "None", "no sticky sessions")
    ensure(svc["spec"]["selector"] == dep["spec"]["selector"]["matchLabels"], "Service selector differs from the Deployment's")

    for ing in by_kind(docs, "Ingress"):
        ann = ing["metadata"].get("annotations", {})
        backend = ing["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
        ensure(backend["name"] == svc["metadata"]["name"], "Ingress points elsewhere")
        if case == "production":
            for k in ("proxy-read-timeout", "proxy-send-timeout"):
                ensure(ann.get(f"nginx.ingress.kubernetes.io/{k}") == "3600", f"{k} missing")
            ensure(not any("affinity" in k for k in ann), "sticky-session annotation")

    for hpa in by_kind(docs, "HorizontalPodAutoscaler"):
        ensure("replicas" not in dep["spec"], "replicas set while the HPA owns them")
        ensure(hpa["spec"]["scaleTargetRef"]["name"] == dep["metadata"]["name"], "HPA targets something else")
        ensure(hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu", "HPA first metric must be CPU")

    if case == "default":
        ensure(not by_kind(docs, "Ingress") and not by_kind(docs, "HorizontalPodAutoscaler"), "optional objects on by default")
        ensure(conf["store"]["url"].startswith("sqlite://"), "default store must be SQLite")
        ensure(any(v.get("emptyDir") is not None and v["name"] == "data" for v in pod["volumes"]), "SQLite needs a writable volume")
        aff = pod["affinity"]["podAntiAffinity"]
        ensure("preferredDuringSchedulingIgnoredDuringExecution" in aff, "anti-affinity must be soft by default")


def config_tree(docs: list[dict[str, Any]]) -> None:
    """Every key the chart writes exists in the server's tree; every tree key is written
    except those that come from the environment."""
    cm = next(d for d in by_kind(docs, "ConfigMap") if "config.toml" in d.get("data", {}))
    conf = tomllib.loads(cm["data"]["config.toml"])
    tree = default_toml()
    from_env = {("auth", "token_secret"), ("auth", "identify_secret"), ("redis", "url"), ("store", "url"),
                ("mail", "smtp_url")}
    ensure(set(conf) == set(tree), f"sections {sorted(conf)} vs {sorted(tree)}")
    for section, keys in tree.items():
        extra = set(conf[section]) - set(keys)
        ensure(not extra, f"[{section}] keys the server does not know: {extra}")
        missing = {k for k in keys if k not in conf[section] and (section, k) not in from_env}
        ensure(not missing, f"[{section}] keys missing: {missing}")
        for k, v in conf[section].items():
            ensure(type(v) is type(keys[k]), f"{section}.{k}: {type(v).__name__}, server expects {type(keys[k]).__name__}")


def env_or_conf_url(docs: list[dict[str, Any]], section: str) -> str:
    c = one(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    for e in c.get("env", []):
        if e["name"] == f"SWITCHBOARD__{section.upper()}__URL":
            return e.get("value") or f"<secret {e['valueFrom']['secretKeyRef']['name']}/{e['valueFrom']['secretKeyRef']['key']}>"
    cm = next(d for d in by_kind(docs, "ConfigMap") if "config.toml" in d.get("data", {}))
    return tomllib.loads(cm["data"]["config.toml"])[section]["url"]


def redis_urls(rendered: dict[str, list[dict[str, Any]]]) -> None:
    want = {
        "default": "redis://redis:6379/0",
        "production": "redis-sentinel://:$(REDIS_PASSWORD)@redis-sentinel-0.redis-sentinel:26379/0"
                      "?sentinelServiceName=switchboard&node=redis-sentinel-1.redis-sentinel:26379"
                      "&node=redis-sentinel-2.redis-sentinel:26379",
        "standalone-password": "redis://switchboard:$(REDIS_PASSWORD)@redis-master.data:6379/2",
        "cluster": "rediss-cluster://rc-0.rc:6379?node=rc-1.rc:6379&node=rc-2.rc:6379",
        "redis-url-secret": "<secret sb-redis-url/url>",
    }
    for case, url in want.items():
        got = env_or_conf_url(rendered[case], "redis")
        ensure(got == url, f"[{case}] {got} != {url}")
    for case in ("production", "standalone-password"):
        env = [e["name"] for e in one(rendered[case], "Deployment")["spec"]["template"]["spec"]["containers"][0]["env"]]
        ensure(env.index("REDIS_PASSWORD") < env.index("SWITCHBOARD__REDIS__URL"), "REDIS_PASSWORD must precede its use")
    ensure(env_or_conf_url(rendered["production"], "store") == "<secret switchboard-postgres/uri>", "production store URL")


def switches(rendered: dict[str, list[dict[str, Any]]]) -> None:
    prod, default = rendered["production"], rendered["default"]
    for kind in ("Ingress", "HorizontalPodAutoscaler", "ServiceMonitor", "PrometheusRule"):
        ensure(len(by_kind(prod, kind)) == 1, f"production lacks {kind}")
        ensure(not by_kind(default, kind), f"default has {kind}")
    ensure(len(by_kind(prod, "ConfigMap")) == 2 and len(by_kind(default, "ConfigMap")) == 1, "dashboard ConfigMap switch")
    ensure(len(by_kind(default, "PodDisruptionBudget")) == 1, "PDB on by default")
    hpa = one(prod, "HorizontalPodAutoscaler")
    ensure([m["type"] for m in hpa["spec"]["metrics"]] == ["Resource", "Pods"], "production HPA: CPU + connections")
    sm = one(prod, "ServiceMonitor")
    ensure(sm["spec"]["endpoints"][0]["path"] == "/metrics" and sm["spec"]["endpoints"][0]["port"] == "metrics", "ServiceMonitor endpoint")
    # /metrics on its own port, which the Service names and the ingress never routes to.
    svc_ports = {p["name"]: p for p in one(prod, "Service")["spec"]["ports"]}
    ensure(svc_ports.get("metrics", {}).get("targetPort") == "metrics", "Service lacks the metrics port")
    prod_conf = tomllib.loads(next(d for d in by_kind(prod, "ConfigMap") if "config.toml" in d.get("data", {}))["data"]["config.toml"])
    ensure(prod_conf["server"]["metrics_listen"].endswith(":9090"), "metrics_listen from server.metricsPort")
    custom = one(rendered["redis-url-secret"], "Ingress")["metadata"]["annotations"]
    ensure(custom == {"example.com/custom": "yes"}, f"nginx annotations must be switchable: {custom}")
    cluster = one(rendered["cluster"], "Deployment")["spec"]["template"]["spec"]
    ensure(cluster["containers"][0]["lifecycle"]["preStop"]["exec"]["command"] == ["sleep", "8"], "exec preStop")
    ensure(cluster["terminationGracePeriodSeconds"] == 60, "explicit grace period")
    ensure("requiredDuringSchedulingIgnoredDuringExecution" in cluster["affinity"]["podAntiAffinity"], "hard anti-affinity")
    files = {e["name"]: e for e in one(prod, "Deployment")["spec"]["template"]["spec"]["containers"][0]["env"]}
    ensure(files["AWS_SECRET_ACCESS_KEY"]["valueFrom"]["secretKeyRef"]["name"] == "switchboard-files-s3", "production S3 keys")
    ensure(files["AWS_REGION"]["value"] == "eu-central-1" and "AWS_ENDPOINT" not in files, "production S3 region / endpoint")
    minio = {e["name"]: e for e in one(rendered["standalone-password"], "Deployment")["spec"]["template"]["spec"]["containers"][0]["env"]}
    ensure(minio["AWS_ENDPOINT"]["valueFrom"]["secretKeyRef"] == {"name": "sb-minio", "key": "endpoint"}, "MinIO endpoint from the Secret")
    ensure(minio["AWS_ALLOW_HTTP"]["value"] == "true", "allowHttp")
    claim = next(v for v in cluster["volumes"] if v["name"] == "files")
    ensure(claim.get("persistentVolumeClaim", {}).get("claimName") == "sb-files", "files.sharedVolume claim")
    body = one(prod, "Ingress")["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-body-size"]
    ensure(int(body.removesuffix("k")) * 1024 >= 20971520, f"ingress body size {body} below files.max_bytes")
    rule = one(rendered["cluster"], "PrometheusRule")
    ensure('service="chat"' in rule["spec"]["groups"][0]["rules"][0]["expr"], "alert selector override")


def values_defaults() -> None:
    values = load_yaml(CHART / "values.yaml")
    tree = default_toml()
    # Deliberate differences: the chart listens on all addresses, logs JSON, and takes URLs
    # and the token secret from elsewhere.
    # files.url: the server's relative .run/files would be on the read-only root filesystem.
    differ = {("server", "listen"), ("server", "metrics_listen"), ("log", "format"), ("redis", "url"), ("store", "url"), ("auth", "token_secret"),
              ("auth", "identify_secret"), ("mail", "smtp_url"),
              ("files", "url")}
    for section, keys in tree.items():
        for k, v in keys.items():
            if (section, k) in differ:
                continue
            ensure(k in values[section], f"values.yaml lacks {section}.{k}")
            ensure(values[section][k] == v, f"{section}.{k}: values.yaml {values[section][k]!r}, server default {v!r}")
        for k in values[section]:
            ensure(k in keys or not re.fullmatch(r"[a-z]+(_[a-z]+)+", k),
                   f"{section}.{k} looks like a server key but the server has none")


def dashboard_structure(dash: dict[str, Any]) -> None:
    ensure(dash.get("uid") and dash.get("title") and isinstance(dash.get("schemaVersion"), int), "uid/title/schemaVersion")
    ids = [p["id"] for p in dash["panels"]]
    ensure(len(ids) == len(set(ids)), "duplicate panel ids")
    vars_ = {v["name"] for v in dash["templating"]["list"]}
    ensure({"datasource", "namespace", "job"} <= vars_, f"variables {vars_}")
    cells: set[tuple[int, int]] = set()
    for p in dash["panels"]:
        g = p["gridPos"]
        ensure(0 <= g["x"] and g["x"] + g["w"] <= 24, f"panel {p['title']} outside the grid")
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                ensure((x, y) not in cells, f"panel {p['title']} overlaps another")
                cells.add((x, y))
        if p["type"] == "row":
            continue
        ensure(p.get("datasource", {}).get("uid") == "${datasource}", f"{p['title']}: datasource must be the variable")
        ensure(p.get("targets"), f"{p['title']}: no queries")
        for t in p["targets"]:
            ensure(t.get("expr") and t.get("refId"), f"{p['title']}: query without expr/refId")
    titles = " ".join(p["title"].lower() for p in dash["panels"])
    for need in ("connections by role", "messages", "frames rejected", "chats requested", "offers", "request to accept",
                 "flush jobs", "flush duration", "redis errors", "slow consumers", "redis subscriptions"):
        ensure(need in titles, f"no panel about {need}")


def dashboard_metrics(dash: dict[str, Any], fams: dict[str, str], out: Path) -> None:
    rules, problems = [], []
    used: set[str] = set()
    for p in dash["panels"]:
        for t in p.get("targets", []):
            expr = t["expr"]
            for s in series_names(expr):
                f = family_of(s, fams)
                if f is None:
                    problems.append(f"{p['title']}: {s} is not a family in src/metrics.rs")
                    continue
                used.add(f)
                if fams[f] == "counter" and f"rate({s}" not in expr:
                    problems.append(f"{p['title']}: counter {s} must be read through rate()")
            # Grafana's interval variables are not PromQL; promtool gets a plain duration.
            expr = expr.replace("$__rate_interval", "5m").replace("$__interval", "1m")
            rules.append({"record": f"dashboard:panel{p['id']}:{t['refId'].lower()}", "expr": expr})
    # Written first, so promtool parses the queries even when a name check below fails.
    (out / "rules" / "dashboard.rules.yaml").write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}, sort_keys=False))
    missing = set(fams) - used
    if missing:
        problems.append(f"families without a panel: {sorted(missing)}")
    ensure(not problems, "; ".join(problems))


def dashboard_configmap(docs: list[dict[str, Any]], dash: dict[str, Any]) -> None:
    cm = next(d for d in by_kind(docs, "ConfigMap") if "switchboard.json" in d.get("data", {}))
    ensure(cm["metadata"]["labels"].get("grafana_dashboard") == "1", "label grafana_dashboard: \"1\"")
    ensure(json.loads(cm["data"]["switchboard.json"]) == dash, "ConfigMap JSON differs from helm/dashboards/switchboard.json")


# ---- docs/operations.md tables -----------------------------------------------------------

def config_doc_comments() -> dict[tuple[str, str], str]:
    """(section, key) -> the `///` comment of the field in src/config.rs."""
    src = (ROOT / "src" / "config.rs").read_text()
    out: dict[tuple[str, str], str] = {}
    for m in re.finditer(r"pub struct (\w+) \{(.*?)\n\}", src, re.S):
        section = m.group(1).lower()
        doc: list[str] = []
        for line in m.group(2).splitlines():
            line = line.strip()
            if line.startswith("///"):
                doc.append(line[3:].strip())
            elif line.startswith("pub "):
                key = line[4:].split(":")[0]
                out[(section, key)] = " ".join(doc)
                doc = []
            elif line and not line.startswith("#"):
                doc = []
    return out


SHARED_DOCS = {
    ("limits", "burst_frames"): "Burst of frames per connection above `frames_per_second`.",
    ("store", "max_connections"): "Connections in the SQL pool of each node.",
}


# Chart values that set the keys the chart does not copy verbatim.
CHART_VALUE = {
    ("server", "listen"): "`server.listenHost`, `server.port`",
    ("server", "metrics_listen"): "`server.listenHost`, `server.metricsPort` (default 9090; 0 = on `server.port`)",
    ("redis", "url"): "`redis.mode`, `redis.hosts`, … or `redis.existingSecret` + `urlKey`",
    ("store", "url"): "`store.existingSecret` + `urlKey` (else SQLite at `store.sqlitePath`)",
    ("auth", "token_secret"): "`auth.existingSecret` + `tokenSecretKey`",
    ("auth", "identify_secret"): "`auth.existingSecret` + `identifySecretKey` (empty: identify off)",
    ("mail", "smtp_url"): "`mail.existingSecret` + `smtpUrlKey` (empty: no notifications)",
    ("files", "url"): "`files.url` (default `file:///var/lib/switchboard/files` on an emptyDir or `files.sharedVolume`; "
                      "S3 keys from `files.s3.existingSecret`)",
}


def config_table() -> str:
    docs = config_doc_comments()
    rows = ["| key | default | environment variable | chart value | meaning |", "| --- | --- | --- | --- | --- |"]
    for section, keys in default_toml().items():
        for k, v in keys.items():
            meaning = docs.get((section, k)) or SHARED_DOCS.get((section, k))
            if not meaning:
                raise AssertionError(f"{section}.{k} has no doc comment in src/config.rs and no entry in SHARED_DOCS")
            default = json.dumps(v) if isinstance(v, (str, list, bool)) else str(v)
            chart_value = CHART_VALUE.get((section, k), f"`{section}.{k}`")
            rows.append(f"| `{section}.{k}` | `{default}` | `SWITCHBOARD__{section.upper()}__{k.upper()}` | {chart_value} | {meaning} |")
    return "\n".join(rows)


def metrics_table() -> str:
    rows = ["| family | type | labels | meaning |", "| --- | --- | --- | --- |"]
    for name, kind, labels, help_ in metric_families_full():
        labels = ", ".join(f"`{x.strip().strip(chr(34))}`" for x in labels.split(",") if x.strip()) or "—"
        rows.append(f"| `{name}` | {kind} | {labels} | {help_} |")
    return "\n".join(rows)


def docs_tables() -> None:
    text = (ROOT / "docs" / "operations.md").read_text()
    for name, table in (("config", config_table()), ("metrics", metrics_table())):
        m = re.search(rf"<!-- BEGIN {name}-table -->\n(.*?)\n<!-- END {name}-table -->", text, re.S)
        ensure(m is not None, f"docs/operations.md lacks the {name}-table markers")
        ensure(m.group(1).strip() == table.strip(),
               f"the {name} table is stale: run `.run/tools/venv/bin/python tests/helm/check_chart.py --tables` and paste its output")


if __name__ == "__main__":
    if sys.argv[1:] == ["--tables"]:
        print("<!-- BEGIN config-table -->\n" + config_table() + "\n<!-- END config-table -->\n")
        print("<!-- BEGIN metrics-table -->\n" + metrics_table() + "\n<!-- END metrics-table -->")
        sys.exit(0)
    sys.exit(main(Path(sys.argv[1])))
