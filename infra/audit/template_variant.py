"""template.yaml with other parameter defaults, for the static checks.

checkov and cfn-lint evaluate a template's conditions with its parameter defaults, so the
optional resources (the log groups' KMS key, the VPC's security groups and endpoint) are only
checked in a copy whose defaults turn them on:

    python -m infra.audit.template_variant LogsKmsKey=true VpcId=vpc-0123456789abcdef0 \
        VpcSubnetIds=subnet-0123456789abcdef0 > /tmp/template.yaml
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"


def with_defaults(text: str, defaults: dict[str, str]) -> str:
    """The template text with each named parameter's `Default:` line replaced."""
    for name, value in defaults.items():
        line = re.compile(rf"(\n  {re.escape(name)}:\n(?:    .*\n)*?    Default: ).*")
        quoted = f'"{value}"'
        # A template, not a function: `\g<1>` keeps the key; backslashes in the value are literal.
        text, found = line.subn(r"\g<1>" + quoted.replace("\\", "\\\\"), text, count=1)
        if not found:
            raise SystemExit(f"template_variant: no parameter {name} with a Default")
    return text


def main(argv: list[str]) -> int:
    pairs = dict(arg.split("=", 1) for arg in argv)
    sys.stdout.write(with_defaults(TEMPLATE.read_text(), pairs))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
