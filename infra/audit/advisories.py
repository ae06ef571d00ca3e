"""Known vulnerabilities in the locked runtime dependencies, offline.

`pip-audit` asks PyPI's JSON API for each locked version's advisories. Where that API is not
reachable (CI reaches the package index only, and the index's mirror of the JSON API answers no
per-version data), its answer is "could not audit", not "no vulnerabilities". This tool says
which happened, then checks every locked version against a committed snapshot of the PyPA
Advisory Database (OSV records, CC-BY 4.0), and says how old that snapshot is.

    # the check (.ci/static-checks.sh): exit 1 on a known vulnerability or an unaudited package
    python -m infra.audit.advisories check --pip-audit-json .audit/pip-audit.json

    # refresh the snapshot from a checkout of pypa/advisory-database
    python -m infra.audit.advisories snapshot --database ~/src/advisory-database

Snapshot and lock are compared package by package: a locked package the snapshot does not cover
fails the check until the snapshot is refreshed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

ROOT = Path(__file__).resolve().parents[2]
# Every runtime dependency of any function: the webhook receiver's set holds the others'.
REQUIREMENTS = ROOT / "handler/requirements-webhooks.txt"
SNAPSHOT = Path(__file__).with_name("advisories.json")
SOURCE = "PyPA Advisory Database (pypa/advisory-database), CC-BY 4.0"
STALE_AFTER_DAYS = 30


def locked_versions(requirements: Path) -> dict[str, str]:
    """`name==version` pins of an exported lockfile (uv export), by canonical name."""
    pins = re.findall(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)", requirements.read_text(), re.M)
    return {canonicalize_name(name): version for name, version in pins}


def _version(text: str) -> Version | None:
    try:
        return Version(text)
    except InvalidVersion:
        return None


def _in_range(version: Version, events: list[dict[str, str]]) -> bool:
    """OSV ECOSYSTEM range semantics: events in version order flip affected on and off."""
    ordered = []
    for event in events:
        kind, value = next(iter(event.items()))
        bound = Version("0") if value == "0" else _version(value)
        if bound is not None:
            ordered.append((bound, kind))
    affected = False
    for bound, kind in sorted(ordered, key=lambda pair: pair[0]):
        if kind == "introduced" and version >= bound:
            affected = True
        elif (kind == "fixed" and version >= bound) or (
            kind == "last_affected" and version > bound
        ):
            affected = False
    return affected


def affects(advisory: dict[str, Any], name: str, version: str) -> bool:
    """Whether an OSV advisory names this exact PyPI version as affected."""
    parsed = _version(version)
    for affected in advisory.get("affected", []):
        package = affected.get("package", {})
        if package.get("ecosystem") != "PyPI" or canonicalize_name(package.get("name", "")) != name:
            continue
        if version in affected.get("versions", []):
            return True
        for span in affected.get("ranges", []):
            ecosystem = span.get("type") == "ECOSYSTEM"
            if parsed is not None and ecosystem and _in_range(parsed, span.get("events", [])):
                return True
    return False


def pip_audit_summary(report: Path | None) -> tuple[list[str], list[str]]:
    """What pip-audit said: lines to print, and the vulnerabilities it found."""
    if report is None or not report.exists() or not report.read_text().strip():
        return ["pip-audit: did not run or wrote no report"], []
    doc = json.loads(report.read_text())
    dependencies = doc.get("dependencies", doc if isinstance(doc, list) else [])
    skipped = [d for d in dependencies if d.get("skip_reason")]
    audited = [d for d in dependencies if not d.get("skip_reason")]
    found = [f"{d['name']}=={d['version']}: {v['id']}" for d in audited for v in d.get("vulns", [])]
    lines = [
        f"pip-audit (PyPI vulnerability service): audited {len(audited)} of "
        f"{len(dependencies)} locked packages, {len(found)} known vulnerabilities"
    ]
    if skipped:
        reasons = sorted({d["skip_reason"].split(":", 1)[0] for d in skipped})
        lines.append(f"pip-audit could not audit {len(skipped)}: {'; '.join(reasons)}")
    return lines, found


def check(requirements: Path, snapshot_path: Path, report: Path | None, today: dt.date) -> int:
    locked = locked_versions(requirements)
    snapshot = json.loads(snapshot_path.read_text())
    lines, found = pip_audit_summary(report)
    for line in lines:
        print(f"   {line}")

    taken = dt.date.fromisoformat(snapshot["date"][:10])
    age = (today - taken).days
    print(
        f"   offline audit: {len(locked)} locked runtime packages against the {snapshot['source']}"
        f" at {snapshot['revision'][:12]} of {taken} ({age} days old)"
    )
    if age > STALE_AFTER_DAYS:
        print(
            f"   STALE: advisories published after {taken} are unknown to the offline audit; "
            "refresh infra/audit/advisories.json where the database can be fetched "
            "(python -m infra.audit.advisories snapshot --database <checkout>)"
        )
    uncovered = sorted(set(locked) - set(snapshot["packages"]))
    advisories_checked = 0
    for name, version in sorted(locked.items()):
        for advisory in snapshot["packages"].get(name, []):
            advisories_checked += 1
            if affects(advisory, name, version):
                aliases = ", ".join(advisory.get("aliases", []))
                found.append(f"{name}=={version}: {advisory['id']} ({aliases})")
    print(
        f"   {advisories_checked} advisories for these packages checked against their locked "
        f"versions: {len(found)} affect them"
    )
    for item in found:
        print(f"   VULNERABLE {item}")
    if uncovered:
        print(f"   NOT AUDITED (not in the snapshot; refresh it): {', '.join(uncovered)}")
    return 1 if found or uncovered else 0


def _git(database: Path, *args: str) -> str:
    return subprocess.run(  # noqa: S603 - fixed argv, a local checkout
        ["git", "-C", str(database), *args],  # noqa: S607
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


def snapshot(database: Path, requirements: Path, out: Path, revision: str, date: str) -> None:
    """The advisories of the locked packages, from a checkout of the database (vulns/<name>/)."""
    packages: dict[str, list[dict[str, Any]]] = {}
    for name in sorted(locked_versions(requirements)):
        folder = next(
            (d for d in (database / "vulns").iterdir() if canonicalize_name(d.name) == name), None
        )
        files: Iterable[Path] = sorted(folder.glob("*.yaml")) if folder else []
        packages[name] = [_essentials(yaml.safe_load(f.read_text())) for f in files]
    doc = {"source": SOURCE, "revision": revision, "date": date, "packages": packages}
    out.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
    total = sum(map(len, packages.values()))
    print(f"{out}: {total} advisories for {len(packages)} packages, database of {date}")


def _essentials(record: dict[str, Any]) -> dict[str, Any]:
    """What the check reads, and what a reader needs to look the advisory up."""
    return {
        "id": record["id"],
        "aliases": record.get("aliases", []),
        "affected": [
            {k: a[k] for k in ("package", "ranges", "versions") if k in a}
            for a in record.get("affected", [])
        ],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("check", help="audit the lock against the snapshot")
    run.add_argument("--pip-audit-json", type=Path, help="pip-audit's JSON report, if it ran")
    take = commands.add_parser("snapshot", help="rewrite the snapshot from a database checkout")
    take.add_argument("--database", type=Path, required=True)
    take.add_argument("--revision", help="the database's commit (default: git HEAD)")
    take.add_argument("--date", help="the database's commit date, ISO 8601 (default: git)")
    for sub in (run, take):
        sub.add_argument("--requirements", type=Path, default=REQUIREMENTS)
        sub.add_argument("--snapshot", type=Path, default=SNAPSHOT)
    args = parser.parse_args(argv)
    if args.command == "check":
        today = dt.datetime.now(dt.UTC).date()
        return check(args.requirements, args.snapshot, args.pip_audit_json, today)
    revision = args.revision or _git(args.database, "rev-parse", "HEAD")
    date = args.date or _git(args.database, "log", "-1", "--format=%cI")
    snapshot(args.database, args.requirements, args.snapshot, revision, date)
    return 0


if __name__ == "__main__":
    sys.exit(main())
