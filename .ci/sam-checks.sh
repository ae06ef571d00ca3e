#!/usr/bin/env bash
# Deployment checks, offline: what `sam deploy` would ship is valid, packaged from the
# lockfile, and answers every infra/events event when imported the way Lambda imports it.
#
#   1. handler/requirements.txt is exactly `uv export` of uv.lock (no drift, nothing unlocked)
#   2. cfn-lint template.yaml                     - zero findings
#   3. sam validate --lint                        - zero findings
#   4. sam build (python3.13, arm64, no container) and the artifact's size
#   5. the artifact's compiled extensions: all aarch64, each package with a pure-Python fallback
#   6. tests/smoke_build.py: the handler imported from the build output, every event invoked
#   7. infra/scripts/put-plaid-secret.sh never puts a key on a command line
#
# SAM CLI and cfn-lint live in .venv-sam (pinned with hashes in infra/requirements-sam.txt):
# SAM CLI pins boto3 and pydantic, which must not leak into the service's own .venv.
# Steps 2 and 3 run in a network namespace with no network at all when the machine allows it,
# which proves they contact no AWS endpoint. No AWS credentials are used anywhere.
set -euo pipefail
cd "$(dirname "$0")/.."

export SAM_CLI_TELEMETRY=0 AWS_DEFAULT_REGION=us-east-1 AWS_REGION=us-east-1
export AWS_EC2_METADATA_DISABLED=true AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
unset AWS_PROFILE AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN
# SAM CLI keeps its settings in an app directory; a private one per checkout, marked as having
# just checked for a newer SAM CLI, so it does not query PyPI for that on every run.
export __SAM_CLI_APP_DIR="$PWD/.aws-sam/cli-home"
mkdir -p "$__SAM_CLI_APP_DIR"
printf '{"telemetryEnabled": false, "lastVersionCheck": %s}\n' "$(date +%s)" \
  >"$__SAM_CLI_APP_DIR/metadata.json"

FUNCTION=LinkTokenFunction
VENV_SAM=.venv-sam
total_start=$SECONDS
step_start=$SECONDS
step() { printf '\n== %s\n' "$*"; step_start=$SECONDS; }
took() { printf '   ok (%d s)\n' $((SECONDS - step_start)); }
fail() { printf 'sam-checks: FAIL: %s\n' "$*" >&2; exit 1; }

# Run a command with no network at all (a fresh network namespace), if this machine lets us.
if unshare --net true 2>/dev/null; then
  offline() { unshare --net "$@"; }
  offline_note="in a network namespace without network"
else
  offline() { "$@"; }
  offline_note="network isolation unavailable here (unshare); no AWS credentials are set"
fi

step "Python 3.13 (the Lambda runtime's version; SAM's python builder needs python3.13 on PATH)"
if [[ -x infra/scripts/find-python313.sh ]]; then
  PY313=$(infra/scripts/find-python313.sh)
else
  for candidate in "$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")"/versions/3.13*/bin/python3.13; do
    [[ -x "$candidate" ]] && PY313=$candidate
  done
fi
[[ -n "${PY313:-}" && -x "$PY313" ]] ||
  fail "Python 3.13 not found: install it (pyenv install 3.13) or set PYTHON313"
PATH="$(dirname "$PY313"):$PATH"
export PATH
echo "   $PY313"
took

step "SAM CLI and cfn-lint in $VENV_SAM (infra/requirements-sam.txt)"
want=$(sha256sum infra/requirements-sam.txt | cut -d' ' -f1)
if [[ ! -x "$VENV_SAM/bin/sam" || "$(cat "$VENV_SAM/.requirements.sha256" 2>/dev/null)" != "$want" ]]; then
  rm -rf "$VENV_SAM"
  "$PY313" -m venv "$VENV_SAM"
  "$VENV_SAM/bin/python" -m pip install --quiet --disable-pip-version-check \
    --require-hashes --no-deps -r infra/requirements-sam.txt
  echo "$want" >"$VENV_SAM/.requirements.sha256"
fi
echo "   $("$VENV_SAM/bin/sam" --version), $("$VENV_SAM/bin/cfn-lint" --version)"
took

step "handler/requirements.txt is uv.lock's runtime dependencies (drift check)"
UV="${UV:-$(command -v uv || echo .tools/bin/uv)}"
[[ -x "$(command -v "$UV")" ]] || fail "uv not found: run 'make test' first (it bootstraps uv)"
[[ -f handler/requirements.txt ]] || fail "handler/requirements.txt is missing: run 'make requirements'"
hashes=(--no-hashes)
grep -q -- '--hash=' handler/requirements.txt && hashes=()
fresh=$(mktemp)
trap 'rm -f "$fresh"' EXIT
"$UV" export --frozen --no-dev --no-emit-project "${hashes[@]}" --quiet -o "$fresh"
strip() { grep -v '^[[:space:]]*#' "$1" | sed '/^[[:space:]]*$/d'; }
if ! diff <(strip handler/requirements.txt) <(strip "$fresh"); then
  fail "handler/requirements.txt differs from uv.lock (left: file, right: lock): run 'make requirements'"
fi
echo "   $(strip handler/requirements.txt | grep -c '==') pinned packages, identical to uv.lock"
took

step "cfn-lint template.yaml ($offline_note)"
offline "$VENV_SAM/bin/cfn-lint" template.yaml
took

step "sam validate --lint ($offline_note)"
offline "$VENV_SAM/bin/sam" validate --lint --config-file infra/samconfig.toml --config-env dev
took

step "sam build (python3.13, arm64, without a container)"
# --no-cached: CI must build from the lockfile every time, never reuse an old dependency tree.
"$VENV_SAM/bin/sam" build --config-file infra/samconfig.toml --config-env dev --no-cached
took

step "artifact: size and compiled extensions"
"$PY313" -I -B - ".aws-sam/build/$FUNCTION" <<'PY'
"""Size of the artifact (unzipped, and zipped as `sam deploy` uploads it) and its extensions.

Lambda runs arm64, this machine is x86_64: a compiled extension in the artifact must be an
aarch64 build (an x86_64 one would mean pip fell back to the host's wheels), and its package
must import without it, because the smoke test here can only exercise that fallback.
"""
import io, pathlib, subprocess, sys, zipfile

root = pathlib.Path(sys.argv[1])
files = [p for p in root.rglob("*") if p.is_file()]
unzipped = sum(p.stat().st_size for p in files)
buffer = io.BytesIO()
with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
    for path in files:
        archive.write(path, path.relative_to(root))
zipped = buffer.tell()
print(f"   {root}: {len(files)} files, {unzipped / 2**20:.1f} MiB unzipped, "
      f"{zipped / 2**20:.1f} MiB zipped (Lambda limits: 250 MiB unzipped, 50 MiB zipped upload)")

ELF_MACHINES = {0xB7: "aarch64", 0x3E: "x86_64"}
bad = []
for dist in sorted(root.glob("*.dist-info")):
    wheel = (dist / "WHEEL").read_text()
    record = (dist / "RECORD").read_text().splitlines() if (dist / "RECORD").exists() else []
    shared = [line.split(",", 1)[0] for line in record if line.split(",", 1)[0].endswith(".so")]
    name = dist.name.removesuffix(".dist-info")
    if not shared:
        print(f"   pure      {name}")
        continue
    arches = set()
    for so in shared:
        header = (root / so).read_bytes()[:20]
        arches.add(ELF_MACHINES.get(int.from_bytes(header[18:20], "little"), "unknown"))
    if arches != {"aarch64"}:
        bad.append(f"{name}: extensions built for {sorted(arches)}, not aarch64")
    # This machine cannot load an aarch64 extension, so importing the package here proves it
    # has a pure-Python fallback (which is what the smoke test then runs).
    packages = sorted({so.split("/", 1)[0].split(".", 1)[0] for so in shared})
    probe = (
        "import importlib, sys; sys.path.insert(0, sys.argv[1]); "
        "mods = [importlib.import_module(m) for m in sys.argv[2:]]; "
        "print(sum(1 for m in list(sys.modules.values()) if (getattr(m, '__file__', '') or '').endswith('.so') "
        "and (m.__file__).startswith(sys.argv[1])))"
    )
    result = subprocess.run([sys.executable, "-I", "-S", "-B", "-c", probe, str(root), *packages],
                            capture_output=True, text=True)
    if result.returncode != 0:
        bad.append(f"{name}: does not import without its extension: {result.stderr.strip()[-300:]}")
        continue
    print(f"   compiled  {name}: {len(shared)} extension(s) for {'/'.join(sorted(arches))}; "
          f"imports here via its pure-Python fallback ({', '.join(packages)})")
if bad:
    sys.exit("sam-checks: FAIL: " + "; ".join(bad))
PY
took

step "smoke test: the handler imported from the build output answers every event"
[[ -x .venv/bin/python ]] || make --no-print-directory .venv/.synced
.venv/bin/python tests/smoke_build.py --python "$PY313" --build-root .aws-sam/build
[[ -z "$(find ".aws-sam/build/$FUNCTION" -name __pycache__ -print -quit)" ]] ||
  fail "the checks wrote bytecode into the build output"
took

step "put-plaid-secret.sh keeps the keys off every command line"
fake=$(mktemp -d)
trap 'rm -f "$fresh"; rm -rf "$fake"' EXIT
# A stand-in `aws` that records its argv and whatever it reads from stdin.
cat >"$fake/aws" <<'SH'
#!/usr/bin/env bash
printf '%s\n' "$*" >>"$FAKE_AWS_LOG/argv"
case "$*" in
  *describe-secret*) echo "arn:aws:secretsmanager:us-east-1:123456789012:secret:x-AbCdEf" ;;
  *get-secret-value*) echo "An error occurred (ResourceNotFoundException)" >&2; exit 254 ;;
  *file:///dev/stdin*) cat >"$FAKE_AWS_LOG/stdin"; echo "version-1" ;;
esac
SH
chmod +x "$fake/aws"
client_id=0123456789abcdef01234567 plaid_secret=fedcba9876543210fedcba98765432
printf '%s\n%s\n' "$client_id" "$plaid_secret" |
  FAKE_AWS_LOG="$fake" PATH="$fake:$PATH" infra/scripts/put-plaid-secret.sh --secret-id x 2>"$fake/stderr" ||
  { cat "$fake/stderr"; fail "put-plaid-secret.sh failed"; }
grep -q -e "$plaid_secret" -e "$client_id" "$fake/argv" "$fake/stderr" &&
  fail "a Plaid key reached a command line or the terminal"
expected_doc="{\"client_id\":\"$client_id\",\"secret\":\"$plaid_secret\"}"
[[ "$(cat "$fake/stdin")" == "$expected_doc" ]] || fail "the secret document sent on stdin is wrong"
echo "   the keys travelled only on stdin; the AWS CLI saw: $(tail -n1 "$fake/argv")"
took

printf '\nsam-checks: all passed in %d s\n' $((SECONDS - total_start))
