"""Start the server exactly as `make serve` does, on a free port, for tests over real HTTP.

    from infra.gateway.serve_process import serve

    with serve({"ALLOWED_ORIGINS": "http://localhost:5173", "WORKERS": "2"}) as server:
        requests.post(server.url + "/link-token", headers={"authorization": f"Bearer {token}"})
        server.standin_url       # the loopback Plaid stand-in (None when Plaid is configured)
        server.control_url       # POST a JSON list of {status, body, headers, delay} to script it
        server.dev_token         # the banner's ready-made development JWT
        server.worker_pids()     # every worker that reported ready so far
        server.worker_pids("ItemsFunction")   # one function's
        server.output()          # everything printed: banner, access log, handler logs

`serve(env)` runs `make serve` with PORT=0 (a free port) in a new process group and waits for
the banner's `serve: ready` line (or fails with the output so far). The environment is this
process's without AWS_*, PLAID_*, POWERTOOLS_* and make's own variables, plus `env`. On exit
it sends SIGINT to the group, as Ctrl-C in a terminal does, and asserts that every process of
the group (make, the server, its workers, multiprocessing's helper) is gone within
`stop_within` seconds. `start_make_serve(env)` and `interrupt_and_check(server)` are the two
halves, for a test that needs to act before the server is ready.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_DROPPED_PREFIXES = ("AWS_", "PLAID_", "POWERTOOLS_")
_DROPPED = {"MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES", "WEB_ROOT", "ALLOWED_ORIGINS"}


@dataclass
class ServeProcess:
    """A running `make serve`: where it listens and what it printed."""

    process: subprocess.Popen[bytes]
    lines: list[str] = field(default_factory=list)
    url: str = ""
    reader: threading.Thread | None = None

    def output(self) -> str:
        return "\n".join(self.lines)

    def _banner(self, label: str) -> str | None:
        prefix = f"serve: {label}: "
        return next((ln[len(prefix) :] for ln in self.lines if ln.startswith(prefix)), None)

    @property
    def standin_url(self) -> str | None:
        return self._banner("Plaid stand-in")

    @property
    def control_url(self) -> str | None:
        script = self._banner("stand-in script")
        return script.removeprefix("POST ") if script else None

    @property
    def dev_token(self) -> str:
        token = next(ln for ln in self.lines if ln.startswith("serve: dev token"))
        return token.rsplit(" ", 1)[1]

    def worker_pids(self, function: str | None = None) -> list[int]:
        """Every worker that reported ready so far (of one function, if named)."""
        return [
            int(m.group(1))
            for ln in list(self.lines)
            if (m := re.fullmatch(r"serve: worker ready \(pid (\d+)(?:, (\w+))?\)", ln))
            and function in {None, m.group(2)}
        ]

    def wait_for(self, pattern: str, timeout: float = 30.0, after: int = 0) -> re.Match[str]:
        """The first output line (from index `after`) matching `pattern`, waiting for it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines)[after:]:
                if match := re.search(pattern, line):
                    return match
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"no line matching {pattern!r}; output:\n{self.output()}")


def _stat_fields(pid: int) -> list[str] | None:
    """/proc/<pid>/stat after the command name: state, ppid, pgrp, ...; None once gone."""
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def is_running(pid: int) -> bool:
    """Alive: neither gone nor a zombie waiting for a parent (or init) to reap it."""
    fields = _stat_fields(pid)
    return fields is not None and fields[0] != "Z"


def _all_pids() -> list[int]:
    return [int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit()]


def children(pid: int) -> list[int]:
    """The running processes whose parent is `pid`."""
    return [
        child
        for child in _all_pids()
        if (fields := _stat_fields(child)) and fields[0] != "Z" and int(fields[1]) == pid
    ]


def _group_members(pgid: int) -> list[int]:
    """The running processes still in the process group."""
    return [
        member
        for member in _all_pids()
        if (fields := _stat_fields(member)) and fields[0] != "Z" and int(fields[2]) == pgid
    ]


def start_make_serve(env: Mapping[str, str] | None = None) -> ServeProcess:
    """`make serve` with PORT=0 in a new process group, its output collected; no waiting."""
    child_env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(_DROPPED_PREFIXES) and key not in _DROPPED
    }
    child_env.update({"PORT": "0", "HOST": "127.0.0.1", "PYTHONUNBUFFERED": "1", **(env or {})})
    command = ["make", "--no-print-directory", "-s", "-C", str(ROOT), "serve"]
    process = subprocess.Popen(  # noqa: S603 - a fixed command; make from PATH, as people run it
        command,
        env=child_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    server = ServeProcess(process)

    def read() -> None:
        assert process.stdout is not None
        for raw in process.stdout:
            server.lines.append(raw.decode(errors="replace").rstrip("\n"))

    server.reader = threading.Thread(target=read, daemon=True)
    server.reader.start()
    return server


def interrupt_and_check(server: ServeProcess, stop_within: float = 10.0) -> None:
    """SIGINT to the whole group, as Ctrl-C does; assert every process is gone in time."""
    pgid = server.process.pid
    deadline = time.monotonic() + stop_within
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGINT)
    while _group_members(pgid) and time.monotonic() < deadline:
        time.sleep(0.02)
    left = _group_members(pgid)
    if left:  # say where it hangs (serve's faulthandler), then leave nothing behind
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGUSR1)
        time.sleep(1.0)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
    server.process.wait(5)
    if server.reader is not None:
        server.reader.join(5)
    assert not left, f"still running {stop_within} s after SIGINT: {left}\n{server.output()}"


@contextmanager
def serve(
    env: Mapping[str, str] | None = None, start_within: float = 90.0, stop_within: float = 10.0
) -> Iterator[ServeProcess]:
    """`make serve` on a free loopback port; see the module docstring."""
    server = start_make_serve(env)
    try:
        server.url = server.wait_for(r"^serve: listening on (http://\S+)$", start_within).group(1)
        server.wait_for(r"^serve: ready", 30.0)
        yield server
    finally:
        interrupt_and_check(server, stop_within)
