"""infra/audit/advisories.py: the offline audit of the locked runtime dependencies.

It must find a vulnerable version (from the committed snapshot, not from the network), cover
every locked package, refuse a package the snapshot does not cover, and report a pip-audit
run that could audit nothing as exactly that.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from infra.audit.advisories import SNAPSHOT, affects, check, locked_versions
from tests.conftest import Output

ROOT = Path(__file__).resolve().parents[2]
TODAY = dt.date(2026, 11, 30)


def requirements(tmp_path: Path, *pins: str) -> Path:
    path = tmp_path / "requirements.txt"
    path.write_text("".join(f"{pin}\n    # via something\n" for pin in pins))
    return path


def test_every_locked_runtime_package_is_covered_and_none_is_vulnerable(
    output: Output,
) -> None:
    locked = locked_versions(ROOT / "handler/requirements.txt")
    assert "requests" in locked and "urllib3" in locked
    assert set(locked) <= set(json.loads(SNAPSHOT.read_text())["packages"])
    assert check(ROOT / "handler/requirements.txt", SNAPSHOT, None, TODAY) == 0
    assert "0 affect them" in output.read()


def test_a_known_vulnerable_version_fails_the_check(tmp_path: Path, output: Output) -> None:
    old = requirements(tmp_path, "requests==2.30.0", "urllib3==1.26.4")
    assert check(old, SNAPSHOT, None, TODAY) == 1
    out = output.read()
    # CVE-2023-32681 (requests < 2.31.0), CVE-2021-33503 (urllib3 < 1.26.5)
    assert "VULNERABLE requests==2.30.0: PYSEC-2023-74" in out
    assert "VULNERABLE urllib3==1.26.4: PYSEC-2021-108" in out


def test_a_package_the_snapshot_does_not_cover_fails_the_check(
    tmp_path: Path, output: Output
) -> None:
    assert check(requirements(tmp_path, "left-pad==1.0.0"), SNAPSHOT, None, TODAY) == 1
    assert "NOT AUDITED (not in the snapshot; refresh it): left-pad" in output.read()


def test_an_old_snapshot_says_so(tmp_path: Path, output: Output) -> None:
    taken = dt.date.fromisoformat(json.loads(SNAPSHOT.read_text())["date"][:10])
    check(ROOT / "handler/requirements.txt", SNAPSHOT, None, taken + dt.timedelta(days=31))
    stale = output.read()
    assert "STALE: advisories published after" in stale
    check(ROOT / "handler/requirements.txt", SNAPSHOT, None, taken + dt.timedelta(days=1))
    assert "STALE" not in output.read()[len(stale) :]


def test_pip_audit_that_audited_nothing_is_reported_as_such(tmp_path: Path, output: Output) -> None:
    report = tmp_path / "pip-audit.json"
    skip = "Dependency not found on PyPI and could not be audited: requests (2.34.2)"
    report.write_text(json.dumps({"dependencies": [{"name": "requests", "skip_reason": skip}]}))
    check(requirements(tmp_path, "requests==2.34.2"), SNAPSHOT, report, TODAY)
    out = output.read()
    assert "audited 0 of 1 locked packages" in out
    assert "could not audit 1: Dependency not found on PyPI" in out


def test_a_vulnerability_pip_audit_found_fails_the_check(tmp_path: Path) -> None:
    report = tmp_path / "pip-audit.json"
    vuln = {"id": "GHSA-xxxx", "fix_versions": ["9"], "aliases": [], "description": ""}
    dependency = {"name": "requests", "version": "2.34.2", "vulns": [vuln]}
    report.write_text(json.dumps({"dependencies": [dependency], "fixes": []}))
    assert check(requirements(tmp_path, "requests==2.34.2"), SNAPSHOT, report, TODAY) == 1


@pytest.mark.parametrize(
    ("version", "affected"),
    [("0.9", False), ("1.0", True), ("1.4.9", True), ("1.5", False), ("2.0", True), ("2.1", False)],
)
def test_osv_ranges_turn_on_at_introduced_and_off_at_fixed_or_after_last_affected(
    version: str, affected: bool
) -> None:
    advisory = {
        "affected": [
            {
                "package": {"ecosystem": "PyPI", "name": "Some_Package"},
                "ranges": [
                    {
                        "type": "ECOSYSTEM",
                        "events": [
                            {"introduced": "2.0"},
                            {"last_affected": "2.0"},
                            {"introduced": "1.0"},
                            {"fixed": "1.5"},
                        ],
                    }
                ],
            }
        ]
    }
    assert affects(advisory, "some-package", version) is affected
    assert not affects(advisory, "other-package", version)
