"""A REST API on loopback for the rest_api tests: a real HTTP server (http.server) in a thread, serving the same
nested records in every pagination style and behind every auth kind, plus endpoints that misbehave.

Routes (GET unless said; `PAGE` = 2 records a page):
  /json_link/items?page=N        {"data": {"items": [...]}, "links": {"next": URL | null}}
  /header_link/items?page=N      [...] with a `Link: <URL>; rel="next"` header
  /offset/items?offset=&limit=   {"items": [...], "total": n}
  /page_number/items?page=N      {"results": [...]} (pages from 1; an empty page ends it)
  /cursor/items?after=TOKEN      {"items": [...], "next_cursor": TOKEN | null}
  /auth/<kind>/items             the records as one list, only with the right credentials (kind: bearer,
                                 api_key_header, api_key_query, basic, oauth2); POST /oauth/token issues the
                                 OAuth2 token for the client id and secret (form fields)
  /flaky/items                   429 (Retry-After: 0) twice, then the records
  /broken/items                  500, always
  /delta/items?updated_since=X   records with updated_at >= X, oldest first, json_link paging (fails with 403
                                 on page `fail_on_page` while that is set)
  /loop/items                    a next link to itself, always
  /endless/items?page=N          a next link to page N+1, always
  /object/items                  a JSON object without the records path
  /odd/items, /nan/items         numbers beyond 64 bits / a double, and NaN (not JSON)
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

PAGE = 2
BEARER_TOKEN = "bearer-s3cret-7f1e"
API_KEY = "apikey-s3cret-9a2c"
BASIC_USER = "basic-user-5d"
BASIC_PASSWORD = "basic-s3cret-b7e0"
CLIENT_ID = "client-id-41c8"
CLIENT_SECRET = "client-s3cret-d93a"
ISSUED_TOKEN = "issued-s3cret-token-2b6f"
SECRET_VALUES = (BEARER_TOKEN, API_KEY, BASIC_PASSWORD, CLIENT_SECRET, ISSUED_TOKEN)
API_KEY_HEADER = "X-Api-Key"
API_KEY_PARAM = "access_code"  # not one of the names dlt redacts by itself


def record(number: int, *, updated_at: str | None = None, name: str | None = None) -> dict[str, Any]:
    """A nested record: an object and a list inside."""
    return {
        "id": number,
        "name": name or f"item {number}",
        "updated_at": updated_at or f"2026-01-01T00:00:{number:02d}Z",
        "address": {"city": f"city {number}", "geo": {"lat": number + 0.5}},
        "tags": [{"tag": "a"}, {"tag": f"t{number}"}],
    }


@dataclass
class FixtureApi:
    """The server's data and counters; tests change `records` between runs and read `requests`."""

    records: list[dict[str, Any]] = field(default_factory=lambda: [record(n) for n in range(1, 6)])
    fail_on_page: int | None = None
    delta_needs_key: bool = False  # /delta/items answers only with API_KEY in the query parameter API_KEY_PARAM
    flaky_failures: int = 2
    requests: list[tuple[str, dict[str, str], dict[str, str]]] = field(default_factory=list)
    url: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def hits(self, path: str) -> int:
        return sum(1 for p, _, _ in self.requests if p == path)


class _Handler(BaseHTTPRequestHandler):
    api: FixtureApi

    def log_message(self, format: str, *args: Any) -> None:  # quiet: the tests assert values, not logs
        pass

    def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def _send_text(self, status: int, text: str) -> None:
        data = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        length = int(self.headers.get("Content-Length") or 0)
        form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
        self.api.requests.append((urlsplit(self.path).path, form, dict(self.headers)))
        if urlsplit(self.path).path != "/oauth/token":
            return self._send(404, {"error": "not found"})
        if (form.get("grant_type"), form.get("client_id"), form.get("client_secret")) != (
                "client_credentials", CLIENT_ID, CLIENT_SECRET):
            return self._send(401, {"error": "invalid_client"})
        return self._send(200, {"access_token": ISSUED_TOKEN, "token_type": "bearer", "expires_in": 3600})

    def do_GET(self) -> None:  # noqa: N802
        parts = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        with self.api.lock:
            self.api.requests.append((parts.path, query, dict(self.headers)))
            records = [dict(r) for r in self.api.records]
        route = parts.path
        base = self.api.url
        page = int(query.get("page", "1"))
        chunk = records[(page - 1) * PAGE: page * PAGE]
        next_page = f"{base}{route}?page={page + 1}" if page * PAGE < len(records) else None
        if route == "/json_link/items":
            return self._send(200, {"data": {"items": chunk}, "links": {"next": next_page}})
        if route == "/header_link/items":
            return self._send(200, chunk, {"Link": f'<{next_page}>; rel="next"'} if next_page else {})
        if route == "/offset/items":
            offset, limit = int(query.get("offset", "0")), int(query.get("limit", "10"))
            return self._send(200, {"items": records[offset: offset + limit], "total": len(records)})
        if route == "/page_number/items":
            return self._send(200, {"results": chunk})
        if route == "/cursor/items":
            start = int(query.get("after", "0"))
            items = records[start: start + PAGE]
            more = str(start + PAGE) if start + PAGE < len(records) else None
            return self._send(200, {"items": items, "next_cursor": more})
        if route.startswith("/auth/"):
            return self._auth(route.split("/")[2], query, records)
        if route == "/flaky/items":
            if self.api.hits(route) <= self.api.flaky_failures:
                return self._send(429, {"error": "slow down"}, {"Retry-After": "0"})
            return self._send(200, records)
        if route == "/broken/items":
            return self._send(500, {"error": "broken"})
        if route == "/delta/items":
            return self._delta(query, records)
        if route == "/loop/items":
            return self._send(200, {"items": records[:1], "next": f"{base}/loop/items"})
        if route == "/endless/items":
            return self._send(200, {"items": [record(page)], "next": f"{base}/endless/items?page={page + 1}"})
        if route == "/odd/items":  # numbers orjson refuses: beyond 64 bits, and beyond a double
            return self._send_text(200, '[{"id": 18446744073709551616, "big": 1.5e300}, {"id": 2, "tiny": 1e-400}]')
        if route == "/nan/items":
            return self._send_text(200, '[{"id": 1, "x": NaN}]')
        if route == "/object/items":
            return self._send(200, {"count": len(records)})
        return self._send(404, {"error": "not found"})

    def _auth(self, kind: str, query: dict[str, str], records: list[dict[str, Any]]) -> None:
        header = self.headers.get("Authorization", "")
        basic = "Basic " + base64.b64encode(f"{BASIC_USER}:{BASIC_PASSWORD}".encode()).decode()
        allowed = {
            "bearer": header == f"Bearer {BEARER_TOKEN}",
            "api_key_header": self.headers.get(API_KEY_HEADER) == API_KEY,
            "api_key_query": query.get(API_KEY_PARAM) == API_KEY,
            "basic": header == basic,
            "oauth2": header == f"Bearer {ISSUED_TOKEN}",
        }
        if kind not in allowed:
            return self._send(404, {"error": "not found"})
        if not allowed[kind]:
            return self._send(401, {"error": "unauthorized"})
        return self._send(200, records)

    def _delta(self, query: dict[str, str], records: list[dict[str, Any]]) -> None:
        if self.api.delta_needs_key and query.get(API_KEY_PARAM) != API_KEY:
            return self._send(401, {"error": "unauthorized"})
        since = query.get("updated_since", "")
        selected = sorted((r for r in records if r["updated_at"] >= since), key=lambda r: (r["updated_at"], r["id"]))
        page = int(query.get("page", "1"))
        if self.api.fail_on_page is not None and page >= self.api.fail_on_page:
            return self._send(403, {"error": "forbidden"})
        chunk = selected[(page - 1) * PAGE: page * PAGE]
        more = page * PAGE < len(selected)
        next_url = f"{self.api.url}/delta/items?updated_since={since}&page={page + 1}" if more else None
        return self._send(200, {"data": chunk, "next": next_url})


@contextmanager
def serve(*, port: int = 0) -> Iterator[FixtureApi]:
    """The fixture API on a loopback port (a free one by default), for the duration of the block."""
    api = FixtureApi()
    handler = type("Handler", (_Handler,), {"api": api})
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    api.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield api
    finally:
        server.shutdown()
        server.server_close()


if __name__ == "__main__":  # the API metadata/examples/rest_api reads: `python tests/rest_fixture_server.py`
    with serve(port=8765) as running:
        running.delta_needs_key = True
        print(f"fixture API on {running.url}; its API key is {API_KEY!r} (query parameter {API_KEY_PARAM!r});"
              " Ctrl-C stops it", flush=True)
        threading.Event().wait()
