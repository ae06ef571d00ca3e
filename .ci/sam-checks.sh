#!/usr/bin/env bash
# Deployment checks, offline: what `sam deploy` would ship is valid, packaged from the
# lockfile, and answers every infra/events event when imported the way Lambda imports it.
#
#   1. handler/requirements.txt and requirements-webhooks.txt are exactly `uv export` of uv.lock
#      (without and with the `webhooks` extra), hashes included (no drift)
#   2. cfn-lint template.yaml                     - zero findings
#   3. sam validate --lint                        - zero findings
#   4. sam build: handler/Makefile (template Metadata BuildMethod: makefile), no container
#   5. the artifact (LinkTokenFunction's; the smoke test checks the other functions' are the
#      same bytes, the webhook receiver's plus the `webhooks` extra): size; one cpython-313
#      unchecked-hash .pyc per .py, each matching its source; botocore/data exactly the
#      Makefile's BOTOCORE_KEEP; the code exactly handler/'s; every *.dist-info kept; every
#      function's compiled extensions all aarch64; LinkTokenFunction's handler imports with
#      every extension refused (the others' extensions are named)
#   6. the pruned botocore data resolves every region's endpoints of the kept services exactly
#      as the full botocore of .venv (same version) does
#   7. infra/smoke (python -m infra.smoke): the handler imported from the build output, every event invoked,
#      no module of the build output compiled from source (its .pyc are used)
#   8. infra/conformance (python -m infra.conformance): the build output run by awslambdaric against a Runtime API
#      emulator: every event's status, JSON-only logs, EMF, init and unhandled errors
#   9. the operator scripts: deploy.sh's refusals and DeployRevision, put-plaid-secret.sh's
#      reads and that the keys never reach a command line (tests/integration/test_deploy_script.py,
#      tests/integration/test_put_plaid_secret.py)
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

step "Python 3.13 (the Lambda runtime's version; handler/Makefile installs and compiles with it)"
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

step "handler/requirements.txt and requirements-webhooks.txt are uv.lock's runtime dependencies (drift check)"
UV="${UV:-$(command -v uv || echo .tools/bin/uv)}"
[[ -x "$(command -v "$UV")" ]] || fail "uv not found: run 'make test' first (it bootstraps uv)"
fresh=$(mktemp)
trap 'rm -f "$fresh"' EXIT
strip() { grep -v '^[[:space:]]*#' "$1" | sed '/^[[:space:]]*$/d'; }
# requirements.txt: every function's; requirements-webhooks.txt: the receiver's (+ the extra).
for file in requirements.txt requirements-webhooks.txt; do
  [[ -f "handler/$file" ]] || fail "handler/$file is missing: run 'make requirements'"
  # With hashes: handler/Makefile installs with --require-hashes, so a file without them would
  # not build, and a hash that differs from uv.lock's is drift too.
  grep -q -- '--hash=sha256:' "handler/$file" ||
    fail "handler/$file has no hashes: run 'make requirements'"
  extra=()
  [[ $file == requirements-webhooks.txt ]] && extra=(--extra webhooks)
  "$UV" export --frozen --no-dev --no-emit-project "${extra[@]}" --quiet -o "$fresh"
  if ! diff <(strip "handler/$file") <(strip "$fresh"); then
    fail "handler/$file differs from uv.lock (left: file, right: lock): run 'make requirements'"
  fi
done
pinned=$(strip handler/requirements.txt | grep -c '==')
pinned_webhooks=$(strip handler/requirements-webhooks.txt | grep -c '==')
echo "   $pinned pinned packages ($pinned_webhooks for the webhook receiver), identical to uv.lock"
took

step "cfn-lint template.yaml ($offline_note)"
offline "$VENV_SAM/bin/cfn-lint" template.yaml
took

step "sam validate --lint ($offline_note)"
offline "$VENV_SAM/bin/sam" validate --lint --config-file infra/samconfig.toml --config-env dev
took

step "sam build (handler/Makefile: python3.13 aarch64 wheels, botocore data pruned, bytecode; no container)"
# --no-cached: CI must build from the lockfile every time, never reuse an old dependency tree.
"$VENV_SAM/bin/sam" build --config-file infra/samconfig.toml --config-env dev --no-cached
took

# The botocore services the artifact keeps: handler/Makefile is the one place that says so.
keep=$(make --no-print-directory -s -f handler/Makefile print-BOTOCORE_KEEP)
[[ -n "$keep" ]] || fail "handler/Makefile names no BOTOCORE_KEEP services"

[[ -x .venv/bin/python ]] || make --no-print-directory .venv/.synced
# Each function's handler module, LinkTokenFunction's first (the one the smoke test runs).
handlers=$(.venv/bin/python -c '
from infra.gateway.cfn_template import LINK_TOKEN_FUNCTION, invoked_functions, load_template
functions = sorted(invoked_functions(load_template()), key=lambda f: f.function != LINK_TOKEN_FUNCTION)
print(" ".join(f"{f.function}={f.handler.rsplit(chr(46), 1)[0]}" for f in functions))')

step "artifact: size, bytecode, botocore data, code, licences, compiled extensions"
"$PY313" -I -B - ".aws-sam/build/$FUNCTION" handler "$keep" "$pinned" "$handlers" <<'PY'
"""What `sam build` produced, checked against what handler/Makefile promises.

Size: unzipped, and zipped as `sam deploy` uploads it. Bytecode: every .py has a .pyc for the
runtime's CPython 3.13 in `unchecked-hash` mode, made from exactly that source: Python never
checks such a .pyc against its source at run time, so this is where a stale one would be
caught. botocore/data holds exactly the kept services (and endpoints.json names no other).
The code is exactly handler/'s .py files, and nothing of the build's own (Makefile,
requirements.txt, console scripts). Every installed distribution keeps its *.dist-info (the
licences live there).

Lambda runs arm64, this machine is x86_64: a compiled extension in the artifact must be an
aarch64 build (an x86_64 one would mean pip fell back to the host's wheels), and the handler
the smoke test runs here (LinkTokenFunction's) must import without any extension.
"""
import importlib.util, io, json, pathlib, subprocess, sys, zipfile

root, source = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
keep, pinned = set(sys.argv[3].split()), int(sys.argv[4])
handlers = dict(pair.split("=", 1) for pair in sys.argv[5].split())  # function -> module
bad = []
files = [p for p in root.rglob("*") if p.is_file()]
unzipped = sum(p.stat().st_size for p in files)
buffer = io.BytesIO()
with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
    for path in files:
        archive.write(path, path.relative_to(root))
zipped = buffer.tell()
print(f"   {root}: {len(files)} files, {unzipped / 2**20:.1f} MiB unzipped, "
      f"{zipped / 2**20:.1f} MiB zipped (Lambda limits: 250 MiB unzipped, 50 MiB zipped upload)")

# Bytecode. This interpreter is the runtime's version, so its tag and magic number are the ones
# Lambda's python3.13 looks for.
if sys.implementation.cache_tag != "cpython-313":
    sys.exit(f"sam-checks: FAIL: run with CPython 3.13, not {sys.implementation.cache_tag}")
sources = [p for p in files if p.suffix == ".py" and "__pycache__" not in p.parts]
pycs = {p for p in files if p.suffix == ".pyc"}
faults = {"missing": [], "wrong version": [], "not unchecked-hash": [], "stale": []}
for src in sources:
    pyc = pathlib.Path(importlib.util.cache_from_source(str(src)))
    if pyc not in pycs:
        faults["missing"].append(src)
        continue
    header = pyc.read_bytes()[:16]
    flags = int.from_bytes(header[4:8], "little")
    if header[:4] != importlib.util.MAGIC_NUMBER:
        faults["wrong version"].append(pyc)
    elif flags != 0b01:  # bit 0: hash-based; bit 1: check the source (0 = unchecked)
        faults["not unchecked-hash"].append(pyc)
    elif header[8:16] != importlib.util.source_hash(src.read_bytes()):
        faults["stale"].append(pyc)
orphans = [p for p in pycs if not pathlib.Path(importlib.util.source_from_cache(str(p))).is_file()]
faults["without a source (or not cpython-313)"] = orphans
for what, paths in faults.items():
    if paths:
        bad.append(f"{len(paths)} .pyc {what}: {', '.join(str(p.relative_to(root)) for p in paths[:3])}")
print(f"   bytecode: {len(pycs)} .pyc for {len(sources)} .py ({len(pycs) / max(len(sources), 1):.2f} "
      f"per .py), all {sys.implementation.cache_tag}, unchecked-hash, each made from the source beside it")

# botocore/data (and boto3's resource models): exactly the kept services.
data = root / "botocore/data"
services = {p.name for p in data.iterdir() if p.is_dir()}
if services != keep:
    bad.append(f"botocore/data services {sorted(services)}, handler/Makefile keeps {sorted(keep)}")
endpoint_services = set()
for partition in json.loads((data / "endpoints.json").read_text())["partitions"]:
    endpoint_services |= set(partition["services"])
if not endpoint_services <= keep:
    bad.append(f"endpoints.json still names {sorted(endpoint_services - keep)[:5]}...")
boto3_models = sorted(p.name for p in (root / "boto3/data").glob("*/"))
if not set(boto3_models) <= keep:
    bad.append(f"boto3/data keeps {boto3_models}")
top = sorted(p.name for p in data.iterdir() if p.is_file())
print(f"   botocore/data: {', '.join(sorted(services))} + {', '.join(top)} "
      f"(endpoints.json {(data / 'endpoints.json').stat().st_size // 1024} KiB); "
      f"boto3/data: {', '.join(boto3_models) or 'no resource models'}")

# The code: exactly handler/'s app.py and linktoken/*.py, byte for byte; nothing of the build.
# handler/'s own code: its top-level modules (one per function's Handler) and its packages.
modules = sorted(p.name for p in source.glob("*.py"))
packages = sorted(p.parent.name for p in source.glob("*/__init__.py"))
def code(base):
    found = [base / m for m in modules if (base / m).is_file()]
    found += [p for package in packages for p in (base / package).rglob("*.py")]
    return {p.relative_to(base): p.read_bytes() for p in found if "__pycache__" not in p.parts}
shipped, wanted = code(root), code(source)
if shipped != wanted:
    differ = sorted(str(p) for p in set(shipped) | set(wanted) if shipped.get(p) != wanted.get(p))
    bad.append(f"the code differs from handler/: {', '.join(differ[:5])}")
extra = [p.name for package in packages for p in (root / package).rglob("*")
         if p.is_file() and p.suffix not in (".py", ".pyc")]
build_files = [n for n in ("Makefile", "requirements.txt", "requirements-webhooks.txt", "bin")
               if (root / n).exists()]
if extra or build_files:
    bad.append(f"not runtime code: {extra + build_files}")
print(f"   code: {', '.join(modules)} + {len(wanted) - len(modules)} modules of "
      f"{', '.join(packages)}, identical to handler/; no Makefile, requirements.txt or bin/")

dist_infos = sorted(root.glob("*.dist-info"))
licences = [p for d in dist_infos for p in d.rglob("*") if p.is_file() and "LICEN" in p.name.upper()]
if len(dist_infos) != pinned:
    bad.append(f"{len(dist_infos)} *.dist-info for {pinned} pinned packages")
print(f"   {len(dist_infos)} *.dist-info kept, one per pinned package ({len(licences)} licence files)")

ELF_MACHINES = {0xB7: "aarch64", 0x3E: "x86_64"}
# Every function's distributions (each is built into .aws-sam/build/<function>): the ones
# LinkTokenFunction does not ship are named with the functions that do.
builds = {function: root.parent / function for function in handlers}
shipped_by = {}
for function, build in builds.items():
    for dist in build.glob("*.dist-info"):
        shipped_by.setdefault(dist.name, (dist, []))[1].append(function)
for dist_name, (dist, functions) in sorted(shipped_by.items()):
    base = dist.parent
    record = (dist / "RECORD").read_text().splitlines() if (dist / "RECORD").exists() else []
    shared = [line.split(",", 1)[0] for line in record if line.split(",", 1)[0].endswith(".so")]
    name = dist_name.removesuffix(".dist-info")
    only = "" if len(functions) == len(builds) else f" (only {', '.join(functions)})"
    if not shared:
        print(f"   pure      {name}{only}")
        continue
    arches = set()
    for so in shared:
        header = (base / so).read_bytes()[:20]
        arches.add(ELF_MACHINES.get(int.from_bytes(header[18:20], "little"), "unknown"))
    if arches != {"aarch64"}:
        bad.append(f"{name}: extensions built for {sorted(arches)}, not aarch64")
    print(f"   compiled  {name}: {len(shared)} extension(s) for {'/'.join(sorted(arches))}{only}")

# This machine cannot load an aarch64 extension. Each handler module is imported from its own
# function's build with every extension load refused (as a failed load, ImportError), which
# names the extensions it asks for and shows whether it imports without them.
# LinkTokenFunction's must: the smoke test runs it here. The others' use of an extension (the
# webhook receiver's cryptography) is tested in .venv's x86_64 build of the same version.
refused_extensions = (
    "import importlib, importlib.abc, importlib.machinery, os, sys\n"
    "root = os.path.abspath(sys.argv[1]); sys.path.insert(0, root)\n"
    "class Refuse(importlib.abc.MetaPathFinder):\n"
    "    def find_spec(self, name, path=None, target=None):\n"
    "        spec = importlib.machinery.PathFinder.find_spec(name, path)\n"
    "        if spec and isinstance(spec.loader, importlib.machinery.ExtensionFileLoader) "
    "and spec.origin.startswith(root):\n"
    "            print('asked', spec.origin[len(root) + 1:], flush=True)\n"
    "            raise ImportError(f'refused: {name}')\n"
    "sys.meta_path.insert(0, Refuse())\n"
    "importlib.import_module(sys.argv[2])\n"
)
for number, (function, module) in enumerate(handlers.items()):
    build = builds[function]
    owner = {line.split(",", 1)[0]: dist.name.removesuffix(".dist-info")
             for dist in build.glob("*.dist-info") if (dist / "RECORD").exists()
             for line in (dist / "RECORD").read_text().splitlines()}
    run = subprocess.run([sys.executable, "-I", "-S", "-B", "-c", refused_extensions, str(build),
                          module], capture_output=True, text=True)
    asked = sorted({owner.get(line.split()[1], line.split()[1])
                    for line in run.stdout.splitlines() if line.startswith("asked ")})
    if run.returncode != 0 and not asked:
        bad.append(f"{function}: {module} fails to import: {run.stderr.strip()[-300:]}")
    elif run.returncode != 0 and number == 0:
        bad.append(f"{function} (the smoke test's) needs {', '.join(asked)}, which cannot load here")
    if run.returncode == 0:
        print(f"   {function} ({module}): imports here with every extension refused")
    else:
        print(f"   {function} ({module}): needs {', '.join(asked)}'s extension (arm64 only here; "
              f"its use is tested with .venv's x86_64 build of the same version)")
if bad:
    sys.exit("sam-checks: FAIL: " + "; ".join(bad))
PY
took

[[ -x .venv/bin/python ]] || make --no-print-directory .venv/.synced

step "pruned botocore data: the kept services' endpoints are unchanged in every region"
full_botocore=$(.venv/bin/python -c 'import botocore, os; print(os.path.dirname(os.path.dirname(botocore.__file__)))')
endpoints_probe='
import json, sys
sys.path.insert(0, sys.argv[1])
import botocore, botocore.session
from botocore.config import Config
session = botocore.session.get_session()
endpoints = session.get_component("data_loader").load_data("endpoints")
out = {"botocore": botocore.__version__}
variants = {"default": Config(), "fips": Config(use_fips_endpoint=True),
            "dualstack": Config(use_dualstack_endpoint=True)}
for partition in endpoints["partitions"]:
    for region in sorted(partition["regions"]):
        for service in sys.argv[2:]:
            for variant, config in variants.items():
                key = " ".join((partition["partition"], region, service, variant))
                try:
                    client = session.create_client(service, region_name=region, config=config,
                                                   aws_access_key_id="x", aws_secret_access_key="x")
                    model = client.meta.service_model
                    operation = model.operation_model(model.operation_names[0])
                    # The URL a request would go to (endpoint rule set), and the legacy
                    # resolver'"'"'s answer from endpoints.json, which the pruning trimmed.
                    url = client._ruleset_resolver.construct_endpoint(
                        operation_model=operation, call_args={}, request_context={}).url
                    out[key] = [url, client.meta.endpoint_url, client.meta.region_name]
                except Exception as exc:
                    out[key] = f"{type(exc).__name__}: {exc}"
print(json.dumps(out, sort_keys=True))
'
# shellcheck disable=SC2086  # $keep: one argument per service
pruned_endpoints=$("$PY313" -I -S -B -c "$endpoints_probe" ".aws-sam/build/$FUNCTION" $keep)
# shellcheck disable=SC2086
full_endpoints=$("$PY313" -I -S -B -c "$endpoints_probe" "$full_botocore" $keep)
if [[ "$pruned_endpoints" != "$full_endpoints" ]]; then
  diff <(tr ',' '\n' <<<"$full_endpoints") <(tr ',' '\n' <<<"$pruned_endpoints") | head -20
  fail "the pruned botocore data resolves endpoints differently (left: full botocore, right: artifact)"
fi
# shellcheck disable=SC2086
"$PY313" -c 'import json, sys
doc = json.loads(sys.argv[1]); keys = [k for k in doc if k != "botocore"]
regions = {tuple(k.split()[:2]) for k in keys}
partitions = {k.split()[0] for k in keys}
print(f"   botocore {doc["botocore"]}: {len(keys)} endpoints ({len(regions)} regions in {len(partitions)} partitions x "
      f"{len(sys.argv) - 2} services x default/FIPS/dual-stack), identical to the full data: {", ".join(sys.argv[2:])}")' \
  "$pruned_endpoints" $keep
took

step "smoke test: the handler imported from the build output answers every event"
# A fingerprint of every file (path, size, mtime): the checks must change nothing in what ships.
fingerprint() { (cd ".aws-sam/build/$FUNCTION" && find . -printf '%p %s %T@\n' | sort | sha256sum); }
before=$(fingerprint)
.venv/bin/python -m infra.smoke --python "$PY313" --build-root .aws-sam/build
[[ "$(fingerprint)" == "$before" ]] || fail "the checks changed the build output"
took

step "conformance: the build output under awslambdaric, Lambda's runtime interface client"
before=$(fingerprint)
.venv/bin/python -m infra.conformance --python "$PY313" --build-root .aws-sam/build
[[ "$(fingerprint)" == "$before" ]] || fail "the conformance run changed the build output"
took

step "operator scripts: deploy.sh (with SAM CLI's parameter parser) and put-plaid-secret.sh"
# The deploy tests need .venv-sam, which exists from here on: a missing one is a failure.
REQUIRE_SAM_VENV=1 .venv/bin/python -m pytest -q -p no:cacheprovider \
  tests/integration/test_deploy_script.py tests/integration/test_put_plaid_secret.py
took

printf '\nsam-checks: all passed in %d s\n' $((SECONDS - total_start))
