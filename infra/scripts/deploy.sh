#!/usr/bin/env bash
# Build and deploy one environment of infra/samconfig.toml:
#
#   infra/scripts/deploy.sh dev                 # or prod; extra args go to `sam deploy`
#   infra/scripts/deploy.sh prod --no-confirm-changeset
#
# Why not plain `sam deploy`: SAM decides whether to publish a new Lambda version from the
# template *text* and the code. Changing only a parameter value (PlaidEnv, LogLevel, ...) then
# updates $LATEST while the `live` alias, which API Gateway calls, stays on the old version
# with the old environment. This script passes DeployRevision, a hash of the code, the template
# and the parameter values, so any of them changing publishes exactly one new version.
#
# It uses the SAM CLI in .venv-sam (pinned; `make sam-checks` creates it), or SAM=/path/to/sam.
# Needs AWS credentials for the target account (AWS_PROFILE or the usual variables). It refuses
# a configuration that still has example values (EXAMPLE, REPLACE_WITH, example.com, ...).
set -euo pipefail
cd "$(dirname "$0")/../.."

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
case "${1:-}" in
  -h | --help) usage; exit 0 ;;
  "" | -*) usage >&2; echo "deploy: name the environment to deploy: dev or prod" >&2; exit 2 ;;
esac
env_name="$1"
shift
config="${DEPLOY_CONFIG:-infra/samconfig.toml}"
sam="${SAM:-.venv-sam/bin/sam}"
python="${SAM_PYTHON:-.venv-sam/bin/python}"
[[ -x "$sam" && -x "$python" ]] || {
  echo "deploy: no SAM CLI at $sam: run 'make sam-checks' once (it creates .venv-sam)" >&2
  exit 1
}
export SAM_CLI_TELEMETRY=0

# SAM's python builder runs pip from the `python3.13` it finds on PATH.
py313=$(infra/scripts/find-python313.sh)
PATH="$(dirname "$py313"):$PATH"
export PATH

# The parameter values, parsed by SAM's own parser, re-emitted one Key="Value" per line.
# (A command substitution, not `mapfile < <(...)`, so that a refusal below stops the script.)
overrides_text=$("$python" - "$config" "$env_name" <<'PY'
import sys, tomllib
from samcli.cli.types import CfnParameterOverridesType

config, env = sys.argv[1], sys.argv[2]
with open(config, "rb") as handle:
    section = tomllib.load(handle).get(env, {}).get("deploy", {}).get("parameters")
if section is None:
    with open(config, "rb") as handle:
        known = sorted(k for k, v in tomllib.load(handle).items() if isinstance(v, dict))
    sys.exit(f"deploy: no environment {env!r} in {config}; it has: {', '.join(known)}")
values = CfnParameterOverridesType().convert(section.get("parameter_overrides", []), None, None)
# The shipped configuration's example values: an issuer, audience, app name, package name or
# origin that is still one of them would deploy a stack nobody can use.
placeholders = sorted(
    k for k, v in values.items() if "example" in v.lower() or "replace_with" in v.lower()
)
if placeholders:
    sys.exit(f"deploy: replace the example values of {placeholders} in {config} [{env}] first")
for key, value in sorted(values.items()):
    if '"' in value:
        sys.exit(f"deploy: {key} contains a double quote, which parameter overrides cannot carry")
    print(f'{key}="{value}"')
PY
)
mapfile -t overrides <<<"$overrides_text"

"$sam" build --config-file "$config" --config-env "$env_name"

# Hash of what decides the function's behaviour: its code, the template, the parameter values.
revision=$(
  {
    sha256sum template.yaml
    find handler -type f ! -path '*/__pycache__/*' ! -name '*.pyc' -print0 | LC_ALL=C sort -z |
      xargs -0 sha256sum
    printf '%s\n' "$env_name" "${overrides[@]}"
  } | sha256sum | cut -c1-16
)
echo "deploy: $env_name, DeployRevision=$revision"

"$sam" deploy --config-file "$config" --config-env "$env_name" \
  --parameter-overrides "${overrides[@]}" "DeployRevision=$revision" "$@"
