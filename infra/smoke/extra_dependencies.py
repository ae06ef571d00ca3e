"""Which functions handler/Makefile builds with more dependencies than LinkTokenFunction's, and
which files of a build output those extra distributions account for.

handler/Makefile is the one place that says so: a line `build-<function>: REQUIREMENTS =
$(HERE)/<file>` gives that function its own requirements file (the webhook receiver's
requirements-webhooks.txt: requirements.txt plus the `webhooks` extra). The smoke test then
holds such a function's build to LinkTokenFunction's bytes plus exactly those distributions.
"""

from __future__ import annotations

import re
from pathlib import Path

HANDLER = Path(__file__).resolve().parents[2] / "handler"
_OWN_REQUIREMENTS = re.compile(r"^build-(\w+): REQUIREMENTS = \$\(HERE\)/([\w.-]+)$", re.M)
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==", re.M)


def own_requirements(makefile: Path = HANDLER / "Makefile") -> dict[str, Path]:
    """function logical id -> its own requirements file, for the functions that have one."""
    return {
        function: makefile.parent / name
        for function, name in _OWN_REQUIREMENTS.findall(makefile.read_text())
    }


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


def extra_distributions(requirements: Path, base: Path = HANDLER / "requirements.txt") -> set[str]:
    """The (normalized) names pinned in `requirements` and not in `base`."""
    pins = {_normalized(n) for n in _PIN.findall(requirements.read_text())}
    return pins - {_normalized(n) for n in _PIN.findall(base.read_text())}


def installed_distributions(build: Path) -> set[str]:
    """The (normalized) names of the distributions installed in a build output."""
    return {_dist_name(dist) for dist in build.glob("*.dist-info")}


def _dist_name(dist: Path) -> str:
    return _normalized(dist.name.removesuffix(".dist-info").rsplit("-", 1)[0])


def extra_top_level(build: Path, distributions: set[str]) -> set[str]:
    """The top-level names (packages, modules, extensions, *.dist-info) that the installed
    `distributions` put into `build`, from their RECORD files."""
    tops: set[str] = set()
    for dist in build.glob("*.dist-info"):
        if _dist_name(dist) not in distributions:
            continue
        tops.add(dist.name)
        record = dist / "RECORD"
        for line in record.read_text().splitlines() if record.is_file() else []:
            path = line.split(",", 1)[0]
            if path and not path.startswith(".."):
                tops.add(path.split("/", 1)[0])
    return tops
