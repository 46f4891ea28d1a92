"""`dataplatform dev` stops everything it started: SIGTERM or SIGINT to the CLI alone (as a service manager or `kill`
sends it) stops the Dagster webserver, the daemon and their code servers, and then the embedded PostgreSQL
the UI was using. Real processes: the CLI in a subprocess with a state folder of its own."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil
import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 600  # a loaded build machine: initdb, migrations and Dagster's start-up
STOP_TIMEOUT = 120  # the CLI's grace period for the group (30 s) with room for the warehouse's stop


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=5) as response:
            return response.status == 200
    except OSError:
        return False


def _postmaster_pid(home: Path) -> int | None:
    pid_file = home / "postgres" / "data" / "postmaster.pid"
    return int(pid_file.read_text().splitlines()[0]) if pid_file.exists() else None


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_stop_signal_stops_the_ui_its_daemon_and_the_warehouse(tmp_path: Path, stop: signal.Signals) -> None:
    home = tmp_path / "home"
    port = _free_port()
    env = {**os.environ, "DATAPLATFORM_HOME": str(home), "DAGSTER_HOME": str(home / "dagster"),
           "PYTHONPATH": str(ROOT)}
    for key in ("DATAPLATFORM_DATABASE_URL", "DATAPLATFORM_METADATA_DIR"):
        env.pop(key, None)
    log = tmp_path / "dev.log"
    with log.open("w") as out:
        cli = subprocess.Popen([sys.executable, "-m", "cli.main", "dev", "--port", str(port)], cwd=ROOT, env=env,
                               stdout=out, stderr=subprocess.STDOUT)
    tree: list[psutil.Process] = []
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not _answers(port):
            assert cli.poll() is None, log.read_text()
            assert time.monotonic() < deadline, f"the UI did not answer on port {port}:\n{log.read_text()}"
            time.sleep(1)
        tree += psutil.Process(cli.pid).children(recursive=True)
        commands = [" ".join(p.cmdline()) for p in tree]
        assert any("dagster_webserver" in c for c in commands), commands
        assert any("dagster._daemon" in c for c in commands), commands
        postmaster = _postmaster_pid(home)
        assert postmaster is not None and psutil.pid_exists(postmaster), log.read_text()

        cli.send_signal(stop)  # to the CLI alone, as `kill` or a service manager sends it
        code = cli.wait(timeout=STOP_TIMEOUT)
        output = log.read_text()
        assert code == 0, output
        _, alive = psutil.wait_procs(tree, timeout=STOP_TIMEOUT)
        assert [p for p in alive if p.status() != psutil.STATUS_ZOMBIE] == [], (alive, output)
        assert not _answers(port)
        assert f"Dagster UI stopped ({stop.name})" in output and "embedded PostgreSQL stopped" in output, output
        assert not psutil.pid_exists(postmaster) or psutil.Process(postmaster).status() == psutil.STATUS_ZOMBIE
        assert _postmaster_pid(home) is None
    finally:  # after a failed assertion above: leave nothing behind
        if cli.poll() is None:
            tree += psutil.Process(cli.pid).children(recursive=True)
            cli.kill()
            cli.wait()
        for process in tree:
            with contextlib.suppress(psutil.Error):
                process.kill()
