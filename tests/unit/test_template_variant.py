"""infra/audit/template_variant.py: the copy of template.yaml the static checks run on with the
optional features on must differ from the template in exactly the defaults it was asked to set."""

from __future__ import annotations

from pathlib import Path

import pytest

from infra.audit.template_variant import with_defaults
from infra.gateway.cfn_template import parse_template

ROOT = Path(__file__).resolve().parents[2]
TEXT = (ROOT / "template.yaml").read_text()
WANTED = {
    "LogsKmsKey": "true",
    "VpcId": "vpc-0123456789abcdef0",
    "VpcSubnetIds": "subnet-0123456789abcdef0,subnet-0fedcba9876543210",
}


def load(text: str) -> dict[str, object]:
    return parse_template(text)


def test_the_variant_changes_exactly_the_named_defaults() -> None:
    original, variant = load(TEXT), load(with_defaults(TEXT, WANTED))
    parameters = variant["Parameters"]
    assert isinstance(parameters, dict)
    for name, value in WANTED.items():
        assert parameters[name]["Default"] == value
        parameters[name]["Default"] = original["Parameters"][name]["Default"]  # type: ignore[index]
    assert variant == original


def test_an_unknown_parameter_is_an_error_not_a_silent_no_op() -> None:
    with pytest.raises(SystemExit, match="no parameter NoSuchParameter"):
        with_defaults(TEXT, {"NoSuchParameter": "x"})
