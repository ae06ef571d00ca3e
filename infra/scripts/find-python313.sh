#!/usr/bin/env bash
# Print the path of a CPython 3.13 interpreter (the Lambda runtime's version), or explain and
# fail. Looks at $PYTHON313, python3.13 on PATH, then pyenv's versions.
set -euo pipefail

is_313() { [[ -x "$1" ]] && "$1" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 13))' 2>/dev/null; }

candidates=()
[[ -n "${PYTHON313:-}" ]] && candidates+=("$PYTHON313")
command -v python3.13 >/dev/null 2>&1 && candidates+=("$(command -v python3.13)")
pyenv_root="${PYENV_ROOT:-$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")}"
for dir in "$pyenv_root"/versions/3.13*; do candidates+=("$dir/bin/python3.13"); done
candidates+=(/usr/local/bin/python3.13 /usr/bin/python3.13)

for candidate in "${candidates[@]}"; do
  if is_313 "$candidate"; then
    # Resolve pyenv shims to the real interpreter so the venv does not depend on the shim.
    "$candidate" -c 'import sys; print(sys.executable)'
    exit 0
  fi
done

cat >&2 <<'MSG'
error: Python 3.13 not found (the Lambda runtime is python3.13, so tests run on 3.13).
Looked at $PYTHON313, python3.13 on PATH, $(pyenv root)/versions/3.13*, /usr/local/bin, /usr/bin.
Install it (e.g. `pyenv install 3.13`) or point PYTHON313 at an interpreter, then retry.
MSG
exit 1
