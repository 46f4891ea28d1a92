"""The MongoDB server the metadata-registry tests use: a real MongoDB when DATAPLATFORM_TEST_MONGODB_URL is
set, otherwise NX-27017 (the `nx-27017` package: a MongoDB wire-protocol server on SQLite) started by the
test on a free loopback port, spoken to by pymongo over a real socket.

Each test gets its own database (named in the URL's path, which the registry honours), dropped at its end;
NX-27017 keeps its files in the test's temporary folder and is stopped at the end.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pymongo
import pymongo.errors

URL_ENV = "DATAPLATFORM_TEST_MONGODB_URL"
SERVER = Path(sys.executable).parent / "nx-27017"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{database}"))


@contextmanager
def _nx_27017(folder: Path) -> Iterator[str]:
    folder.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    log = folder / "nx-27017.log"
    process = subprocess.Popen(
        [str(SERVER), "--data-dir", str(folder / "data"), "--host", "127.0.0.1", "--port", str(port),
         "--log-file", str(log), "--pid-file", str(folder / "nx-27017.pid")],
        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    url = f"mongodb://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with pymongo.MongoClient(url, serverSelectionTimeoutMS=500) as client:
                    client.admin.command("ping")
                break
            except pymongo.errors.PyMongoError:
                if process.poll() is not None or time.monotonic() > deadline:
                    text = log.read_text() if log.exists() else ""
                    raise RuntimeError(f"nx-27017 did not start on port {port}: {text[-2000:]}") from None
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def mongodb_server(folder: Path) -> Iterator[str]:
    """The URL of the server under test (see the module docstring); `folder` holds NX-27017's files."""
    real = os.environ.get(URL_ENV)
    if real:
        yield real
        return
    with _nx_27017(folder) as url:
        yield url


@contextmanager
def fresh_database(server_url: str) -> Iterator[str]:
    """`server_url` naming a new database of its own, dropped afterwards."""
    database = f"metadata_test_{uuid.uuid4().hex[:10]}"
    url = _with_database(server_url, database)
    try:
        yield url
    finally:
        with pymongo.MongoClient(url, serverSelectionTimeoutMS=5000) as client:
            client.drop_database(database)
