#!/usr/bin/env bash
# Static security checks, each with zero unjustified findings:
#
#   1. bandit on handler/ (what ships in the Lambda); justified lines carry `# nosec <id>`
#   2. checkov on template.yaml, offline (no download, no API key, no network); the findings
#      not fixed are suppressed beside their resource with a reason (checkov:skip=...). Again,
#      with cfn-lint, on a copy whose defaults turn the optional KMS key and VPC on
#   3. the locked runtime dependencies (handler/requirements-webhooks.txt, uv.lock's export
#      with the `webhooks` extra: every function's): pip-audit
#      against PyPI's vulnerability data where the registry serves it, and always the offline
#      audit against the committed advisory snapshot (infra/audit/advisories.py), which says
#      how old that snapshot is
#
# checkov and pip-audit live in .venv-audit (pinned with hashes in infra/requirements-audit.txt):
# they bring ~100 packages that must not enter the service's lockfile. bandit is in .venv.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV_AUDIT=.venv-audit
total_start=$SECONDS
step_start=$SECONDS
step() { printf '\n== %s\n' "$*"; step_start=$SECONDS; }
took() { printf '   ok (%d s)\n' $((SECONDS - step_start)); }
fail() { printf 'static-checks: FAIL: %s\n' "$*" >&2; exit 1; }

# The same isolation as .ci/sam-checks.sh: no network at all where the machine allows it.
if unshare --net true 2>/dev/null; then
  offline() { unshare --net "$@"; }
  offline_note="in a network namespace without network"
else
  offline() { "$@"; }
  offline_note="network isolation unavailable here (unshare); no API key is set"
fi

[[ -x .venv/bin/python ]] || make --no-print-directory .venv/.synced

step "bandit on handler/ ($offline_note)"
offline .venv/bin/bandit -r handler -q -f custom \
  --msg-template '   {relpath}:{line} {test_id} {severity}: {msg}' ||
  fail "bandit found issues in handler/ (fix them, or justify one with '# nosec <id>' and a reason)"
justified=$(grep -rc --include='*.py' '# nosec B[0-9]' handler | awk -F: '{s += $2} END {print s + 0}')
echo "   0 findings; $justified lines justified with '# nosec <id>' and a reason:"
grep -rn --include='*.py' '# nosec B[0-9]' handler | sed -E 's/^([^:]+:[0-9]+):.*# (noqa: [A-Z0-9]+ - )?(.*)  # nosec (B[0-9]+).*/     \1 \4: \3/'
took

step "checkov and pip-audit in $VENV_AUDIT (infra/requirements-audit.txt)"
want=$(sha256sum infra/requirements-audit.txt | cut -d' ' -f1)
if [[ ! -x "$VENV_AUDIT/bin/checkov" || "$(cat "$VENV_AUDIT/.requirements.sha256" 2>/dev/null)" != "$want" ]]; then
  rm -rf "$VENV_AUDIT"
  py=$(infra/scripts/find-python313.sh)
  "$py" -m venv "$VENV_AUDIT"
  "$VENV_AUDIT/bin/python" -m pip install --quiet --disable-pip-version-check \
    --require-hashes --no-deps -r infra/requirements-audit.txt 2> >(grep -v "^WARNING: Location" >&2)
  echo "$want" >"$VENV_AUDIT/.requirements.sha256"
fi
echo "   checkov $("$VENV_AUDIT/bin/checkov" --version), $("$VENV_AUDIT/bin/pip-audit" --version)"
took

report=$(mktemp -d)
trap 'rm -rf "$report"' EXIT

# checkov on one template: fails on a finding neither fixed nor justified, prints each
# justification, and fails on one that gives no reason.
# --skip-download: no policy download, no API key. BC_SKIP_MAPPING: no lookup of guideline links.
checkov_on() {
  local template=$1 out="$report/checkov-$2"
  mkdir -p "$out"
  if ! BC_SKIP_MAPPING=TRUE offline "$VENV_AUDIT/bin/checkov" -f "$template" \
    --framework cloudformation --skip-download --compact -o cli -o json \
    --output-file-path "$out" >"$out/stdout.txt" 2>"$out/stderr.txt"; then
    cat "$out/results_cli.txt" "$out/stderr.txt" 2>/dev/null || cat "$out/stdout.txt"
    fail "checkov: a finding neither fixed nor justified ($2)"
  fi
  "$PWD/.venv/bin/python" - "$out/results_json.json" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
summary = doc["summary"]
skipped = doc["results"].get("skipped_checks", [])
print(f"   {summary['passed']} passed, {summary['failed']} failed, {summary['skipped']} justified "
      f"(checkov {summary['checkov_version']}):")
unjustified = []
for check in skipped:
    reason = (check.get("check_result") or {}).get("suppress_comment", "")
    print(f"     {check['check_id']} {check['resource']}: {reason}")
    if len(reason.split()) < 8:
        unjustified.append(check["check_id"])
if len(skipped) != summary["skipped"]:
    unjustified.append(f"{summary['skipped'] - len(skipped)} skips not listed")
if summary["failed"] or unjustified:
    sys.exit(f"static-checks: FAIL: {summary['failed']} failed, unjustified: {unjustified}")
PY
}

step "checkov on template.yaml ($offline_note)"
checkov_on template.yaml "default parameters"
took

# The optional resources exist only when their parameters are set, and both tools evaluate
# conditions with the defaults: check a copy whose defaults turn everything optional on.
step "checkov and cfn-lint with the optional KMS key and VPC turned on ($offline_note)"
mkdir -p "$report/optional"
.venv/bin/python -m infra.audit.template_variant LogsKmsKey=true VpcId=vpc-0123456789abcdef0 \
  VpcSubnetIds=subnet-0123456789abcdef0,subnet-0fedcba9876543210 >"$report/optional/template.yaml"
checkov_on "$report/optional/template.yaml" "optional features on"
if [[ -x .venv-sam/bin/cfn-lint ]]; then
  offline .venv-sam/bin/cfn-lint "$report/optional/template.yaml" ||
    fail "cfn-lint: the template with the optional features on"
  echo "   cfn-lint: 0 findings"
else
  echo "   cfn-lint: not installed here (.ci/sam-checks.sh installs it into .venv-sam)"
fi
took

step "locked runtime dependencies: known vulnerabilities"
# pip-audit reaches PyPI's JSON API, through the registry where that is all there is. Its
# report says per package whether it could audit it; the offline audit always runs.
mkdir -p "$report/audit"
set +e
# requirements-webhooks.txt: every function's dependencies plus the receiver's (a superset).
timeout 180 "$VENV_AUDIT/bin/pip-audit" -r handler/requirements-webhooks.txt --no-deps --disable-pip \
  --vulnerability-service pypi --progress-spinner off --format json \
  --output "$report/audit/pip-audit.json" >/dev/null 2>"$report/audit/stderr.txt"
pip_audit_rc=$?
set -e
[[ $pip_audit_rc -eq 0 || -s "$report/audit/pip-audit.json" ]] ||
  echo "   pip-audit failed (exit $pip_audit_rc): $(tail -n1 "$report/audit/stderr.txt")"
.venv/bin/python -m infra.audit.advisories check --pip-audit-json "$report/audit/pip-audit.json" ||
  fail "a locked runtime dependency has a known vulnerability, or was not audited"
took

printf '\nstatic-checks: all passed in %d s\n' $((SECONDS - total_start))
