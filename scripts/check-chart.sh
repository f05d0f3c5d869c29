#!/usr/bin/env bash
# Renders and validates the Helm chart in helm/ with real tooling, no helm binary needed.
#
#   scripts/check-chart.sh
#
# Tools (installed on first run, reused after; nothing to do by hand):
#   .run/tools/venv  Python venv from tests/helm/requirements.txt: helm-python-sdk (Helm's own Go
#                    SDK as a shared library: lint, template, values schema), kubernetes-validate
#                    (Kubernetes JSON schemas, --strict), check-jsonschema, yamllint, PyYAML
#   promtool         Debian's `prometheus` package (apt-get installed when missing; starts nothing)
#
# Checks, each counted:
#   yamllint          Chart.yaml, values.yaml, helm/ci/*.yaml, tests/helm/cases/*.yaml
#   check-jsonschema  values.schema.json against its metaschema; every values file and every
#                     merged (defaults + overrides) values set against values.schema.json
#   tests/helm/check_chart.py  helm lint --strict and helm template for each case (default,
#                     production = helm/ci/production-values.yaml, tests/helm/cases/*), values that
#                     must be refused (no token secret, ...), invariants of the manifests, Redis URL
#                     per mode, config.toml against config/default.toml, dashboard and alert
#                     metric names against src/metrics.rs, docs/operations.md tables
#   kubernetes-validate --strict  built-in kinds of every case, for Kubernetes 1.30 and 1.37
#                     (and 1.27 for the exec-preStop case)
#   check-jsonschema  ServiceMonitor and PrometheusRule against tests/helm/schemas/
#   promtool check rules  the rendered alerts and every dashboard query
#   promtool test rules   tests/helm/alerts.test.yaml against the production alerts
# Prints `chart: N passed, M failed` last; exits non-zero on any failure.
# Output lands in .run/chart/ (rendered manifests, logs of failing checks).

set -uo pipefail

SB_SCRIPT="check-chart"
# shellcheck source=scripts/lib.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"
cd "$SB_ROOT" || exit 1

TOOLS="$SB_RUN/tools"
VENV="$TOOLS/venv"
OUT="$SB_RUN/chart"
REQS="tests/helm/requirements.txt"

# ---- tools -------------------------------------------------------------------------------

setup_venv() {
    local want have=""
    want=$(sha256sum "$REQS" | cut -d' ' -f1)
    [[ -f "$VENV/.requirements.sha256" ]] && have=$(cat "$VENV/.requirements.sha256")
    if [[ -x "$VENV/bin/python" && "$want" == "$have" ]]; then
        return 0
    fi
    local py=""
    for c in python3 python3.13 python3.12 python3.11; do
        if command -v "$c" >/dev/null && "$c" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            py=$c
            break
        fi
    done
    [[ -n "$py" ]] || sb_die "needs Python >= 3.11 (tomllib) for the chart tools"
    sb_log "installing chart tools into $VENV with $($py --version) (once)"
    rm -rf "$VENV"
    mkdir -p "$TOOLS"
    "$py" -m venv "$VENV" || sb_die "python venv failed (apt-get install python3-venv?)"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$REQS" || sb_die "pip install -r $REQS failed"
    printf '%s\n' "$want" >"$VENV/.requirements.sha256"
}

setup_promtool() {
    command -v promtool >/dev/null && return 0
    [[ $(id -u) == 0 ]] || sb_die "promtool missing: apt-get install prometheus (needs root)"
    sb_log "installing promtool (Debian package prometheus; it starts nothing)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q --no-install-recommends prometheus >/dev/null 2>&1 ||
        { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q --no-install-recommends prometheus >/dev/null 2>&1; } ||
        sb_die "apt-get install prometheus failed"
    # The package's service must not run here.
    if command -v systemctl >/dev/null && systemctl is-active --quiet prometheus 2>/dev/null; then
        systemctl stop prometheus >/dev/null 2>&1 || true
    fi
    command -v promtool >/dev/null || sb_die "promtool still missing after installing prometheus"
}

setup_venv
setup_promtool

# ---- checks ------------------------------------------------------------------------------

PASSED=0
FAILED=0
FAILURES=()
rm -rf "$OUT"
mkdir -p "$OUT/logs"

# check NAME CMD...: runs CMD, counts it, keeps its output in .run/chart/logs/ and shows it on failure.
check() {
    local name=$1
    shift
    local log
    log="$OUT/logs/$(printf '%s' "$name" | tr -c 'A-Za-z0-9._-' '_').log"
    if "$@" >"$log" 2>&1; then
        PASSED=$((PASSED + 1))
        printf 'PASS %s\n' "$name"
    else
        FAILED=$((FAILED + 1))
        FAILURES+=("$name")
        printf 'FAIL %s\n' "$name"
        sed 's/^/    /' "$log" | tail -n 40
    fi
}

PY="$VENV/bin/python"
BIN="$VENV/bin"
VALUES_FILES=(helm/values.yaml helm/ci/production-values.yaml tests/helm/cases/*.yaml)

printf '%s\n' "== tools: $("$PY" -c 'import importlib.metadata as m; print("helm-python-sdk", m.version("helm-python-sdk"), "(Helm SDK v4)")'), kubernetes-validate $("$BIN/kubernetes-validate" --version), check-jsonschema $("$BIN/check-jsonschema" --version | awk '{print $NF}'), yamllint $("$BIN/yamllint" --version | awk '{print $NF}'), $(promtool --version 2>&1 | head -n1 | cut -d'(' -f1)"

check "yamllint values and Chart.yaml" "$BIN/yamllint" --strict -c tests/helm/yamllint.yaml helm/Chart.yaml "${VALUES_FILES[@]}"
check "values.schema.json is a valid JSON schema" "$BIN/check-jsonschema" --check-metaschema helm/values.schema.json
check "values files match values.schema.json" "$BIN/check-jsonschema" --schemafile helm/values.schema.json "${VALUES_FILES[@]}"

# The Helm-library checks print their own PASS/FAIL lines; count them one by one.
"$PY" tests/helm/check_chart.py "$OUT" >"$OUT/logs/check_chart.log" 2>&1
py_rc=$?
while IFS= read -r line; do
    case $line in
        PASS\ *) PASSED=$((PASSED + 1)); printf '%s\n' "$line" ;;
        FAIL\ *) FAILED=$((FAILED + 1)); FAILURES+=("${line#FAIL }"); printf '%s\n' "$line" ;;
    esac
done <"$OUT/logs/check_chart.log"
if ((py_rc != 0)) && ! grep -q '^FAIL ' "$OUT/logs/check_chart.log"; then
    FAILED=$((FAILED + 1))
    FAILURES+=("check_chart.py crashed")
    printf 'FAIL check_chart.py crashed\n'
    tail -n 40 "$OUT/logs/check_chart.log" | sed 's/^/    /'
fi

shopt -s nullglob
for f in "$OUT"/*.values.json; do
    case_name=$(basename "$f" .values.json)
    check "merged values match values.schema.json [$case_name]" "$BIN/check-jsonschema" --schemafile helm/values.schema.json "$f"
done

for f in "$OUT"/*.k8s.yaml; do
    case_name=$(basename "$f" .k8s.yaml)
    versions=(1.30.0 1.37.0)
    # The exec-preStop case is the one meant for clusters older than 1.30.
    grep -q 'command: \[?sleep\|- sleep' "$f" && versions=(1.27.0 "${versions[@]}")
    for v in "${versions[@]}"; do
        check "kubernetes-validate --strict k8s $v [$case_name]" "$BIN/kubernetes-validate" --strict --quiet -k "$v" "$f"
    done
done

for f in "$OUT"/*.ServiceMonitor.yaml; do
    check "ServiceMonitor schema [$(basename "$f" .ServiceMonitor.yaml)]" "$BIN/check-jsonschema" --schemafile tests/helm/schemas/servicemonitor.json "$f"
done
for f in "$OUT"/*.PrometheusRule.yaml; do
    check "PrometheusRule schema [$(basename "$f" .PrometheusRule.yaml)]" "$BIN/check-jsonschema" --schemafile tests/helm/schemas/prometheusrule.json "$f"
done

for f in "$OUT"/rules/*.rules.yaml; do
    check "promtool check rules [$(basename "$f" .rules.yaml)]" promtool check rules "$f"
done
if [[ -f "$OUT/rules/alerts-production.rules.yaml" ]]; then
    # promtool test rules resolves rule_files next to the test file.
    cp tests/helm/alerts.test.yaml "$OUT/rules/alerts.test.yaml"
    check "promtool test rules [production alerts]" promtool test rules "$OUT/rules/alerts.test.yaml"
else
    FAILED=$((FAILED + 1))
    FAILURES+=("no production alerts rendered")
    printf 'FAIL no production alerts rendered\n'
fi

printf '\n'
if ((FAILED > 0)); then
    printf 'failed: %s\n' "${FAILURES[@]}"
    printf 'logs: %s\n' "$OUT/logs"
fi
printf 'chart: %d passed, %d failed\n' "$PASSED" "$FAILED"
((FAILED == 0))
