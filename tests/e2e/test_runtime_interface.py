"""The handler under AWS's runtime interface client, from the checkout (the same checks run
on the `sam build` output in .ci/sam-checks.sh): see infra/conformance/ric.py."""

from __future__ import annotations

import sys
import sysconfig
from pathlib import Path

from infra.conformance.ric import conformance, source_target


def test_handler_conforms_under_awslambdaric() -> None:
    # -S leaves site-packages out: the handler's dependencies come from the dev environment's.
    site_packages = Path(sysconfig.get_paths()["purelib"])
    report = conformance(source_target(), sys.executable, extra_paths=(site_packages,))
    assert not report.faults, "\n".join(report.lines + report.faults)
    assert len(report.lines) == 6
