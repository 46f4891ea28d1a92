"""A long-running child the CLI starts and must stop with everything it started: `dataplatform dev` runs
`dagster dev`, which starts the webserver, the daemon and their code servers.

The child runs in a process group of its own, so a signal to the CLI alone (SIGTERM from a service
manager or `kill`) does not leave it behind: SIGINT and SIGTERM are forwarded to the whole group, as a
terminal's Ctrl-C would send them, and the group gets a grace period to shut down before it is killed.
Only then does the caller go on (and release the warehouse the child was using).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Sequence

import psutil

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
GRACE_SECONDS = 30.0  # `dagster dev` waits for its webserver and daemon to stop: a few seconds when healthy
POLL_SECONDS = 0.2


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):  # none left (macOS: only zombies, EPERM)
        os.killpg(pgid, signum)


def _group_alive(pgid: int) -> bool:
    """Whether a live process of the group is left (zombies are not: an orphan's may wait for a lax PID 1)."""
    for process in psutil.process_iter(["status"]):
        with contextlib.suppress(psutil.Error, ProcessLookupError):
            if os.getpgid(process.pid) == pgid and process.info["status"] != psutil.STATUS_ZOMBIE:
                return True
    return False


def _wait_for_group(pgid: int, seconds: float) -> bool:
    """Wait until no live process of the group is left (True), or `seconds` have passed (False)."""
    deadline = time.monotonic() + seconds
    while _group_alive(pgid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(POLL_SECONDS)
    return True


def run_process_group(command: Sequence[str], *, grace_seconds: float = GRACE_SECONDS) -> tuple[int, int | None]:
    """Run `command` until it ends or this process is asked to stop; return (its exit status, the stop signal
    received or None). On SIGINT/SIGTERM the group gets the signal and `grace_seconds` to end, then SIGKILL.
    Whatever of the group outlives the child (a server whose parent died) is stopped the same way."""
    received: list[int] = []
    group: list[int] = []

    def forward(signum: int, frame: object) -> None:
        received.append(signum)
        if group:
            _signal_group(group[0], signum)

    previous = {s: signal.signal(s, forward) for s in STOP_SIGNALS}  # before the start: no signal is lost
    try:
        child = subprocess.Popen(list(command), start_new_session=True)  # its own group: pgid == pid
    except BaseException:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        raise
    pgid = child.pid
    group.append(pgid)
    if received:  # arrived while it started
        _signal_group(pgid, received[0])
    try:
        deadline: float | None = None
        while True:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(timeout=POLL_SECONDS)
                break
            if received and deadline is None:
                deadline = time.monotonic() + grace_seconds
            if deadline is not None and time.monotonic() >= deadline:
                _signal_group(pgid, signal.SIGKILL)
                child.wait()
                break
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if child.poll() is None:  # left by an exception of our own: never leave the group running
            _signal_group(pgid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(timeout=grace_seconds)
        if _group_alive(pgid):  # outlived the child (a server whose parent died): stopped the same way
            _signal_group(pgid, signal.SIGTERM)
            if not _wait_for_group(pgid, grace_seconds):
                _signal_group(pgid, signal.SIGKILL)
                _wait_for_group(pgid, grace_seconds)
    return child.wait(), (received[0] if received else None)
