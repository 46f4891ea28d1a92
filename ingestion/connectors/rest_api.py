"""Connector for `rest_api` systems: JSON over HTTP, read with dlt's own REST client.

What comes from dlt: the HTTP client (`dlt.sources.helpers.rest_client.RESTClient`), its paginators
(JSON link, `Link` header, offset/limit, page number, cursor token) and auth classes (bearer, API key,
HTTP basic, OAuth2 client credentials), and the retrying session of `dlt.sources.helpers.requests`
(exponential backoff honouring `Retry-After` for 429, 5xx, timeouts and connection resets), configured
per system from its `retry` limits. What the platform adds: mapping the metadata to those classes, random
jitter on every retry wait, terminal errors that name the endpoint and the URL (never a secret, never a
query string), a records path that must be there, a page limit and a repeated-page check (a pagination
that never ends stops with an error), and the cursor.

The cursor: `audit.cursor` is the truth, and the only record of where an endpoint stands. Its stored value
is sent as the endpoint's `cursor_param` (so records whose cursor value equals it are read again, never
lost at the boundary; silver sees them unchanged), and the largest `cursor_field` value read goes to
`CursorReached`, which landing stores only once the batch has landed. dlt's own incremental state
(`dlt.sources.incremental`, the pipeline state) is not used at all: the client is called directly, outside
any dlt resource state, so there is no second cursor that could disagree with the audit table.

Run on its own to see what an endpoint returns: `python -m ingestion.connectors.rest_api URL [RECORDS_PATH]`.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import orjson
import requests
from dlt.common import jsonpath
from dlt.sources.helpers.requests import Client
from dlt.sources.helpers.rest_client import RESTClient
from dlt.sources.helpers.rest_client.auth import (
    APIKeyAuth,
    AuthConfigBase,
    BearerTokenAuth,
    HttpBasicAuth,
    OAuth2ClientCredentials,
)
from dlt.sources.helpers.rest_client.client import PageData
from dlt.sources.helpers.rest_client.paginators import (
    BasePaginator,
    HeaderLinkPaginator,
    JSONLinkPaginator,
    JSONResponseCursorPaginator,
    OffsetPaginator,
    PageNumberPaginator,
    SinglePagePaginator,
)
from dlt.sources.helpers.rest_client.redaction import SENSITIVE_PARAMS, sanitize_url
from tenacity import wait_random

from ingestion.connectors.base import CursorReached, EndpointCheck, PendingLoad, load_at_run_time, load_named
from metadata.models import (
    ApiKeyAuth,
    BasicAuth,
    BearerAuth,
    Connection,
    CursorPaging,
    HeaderLinkPaging,
    JsonLinkPaging,
    OAuth2ClientCredentialsAuth,
    OffsetPaging,
    PageNumberPaging,
    RestApiConnection,
    RestEndpoint,
    RetryLimits,
)
from secret_store.redact import redact, remember_secret

logger = logging.getLogger(__name__)


class _Redacting(logging.Filter):
    """Masks the secrets this process knows in what urllib3 logs at debug level: the full URL of every
    request, an API key in the query string included."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = redact(record.getMessage()), ()
        return True


_REDACTING = _Redacting()


class RestApiError(RuntimeError):
    """The API answered something the batch cannot be built from; the message names the endpoint and URL."""


def url_without_query(url: str) -> str:
    """The URL to show in a message: a query string may carry an API key, so none is shown."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


# ------------------------------------------------------------------------------------------ dlt's client


class _RetryingClient(Client):
    """dlt's retrying `requests` client, plus random jitter on each wait (dlt's backoff has none), so that
    several runs retrying one server do not come back in step."""

    def __init__(self, *, jitter: float, **kwargs: Any) -> None:
        self._jitter = jitter
        super().__init__(**kwargs)

    def _make_session(self) -> Any:
        session = super()._make_session()
        retrying = session.send.retry  # the tenacity Retrying dlt wrapped `send` with
        retrying.wait = retrying.wait + wait_random(0, self._jitter)
        return session


def retrying_session(limits: RetryLimits, base_url: str) -> requests.Session:
    """A session that retries 429, 5xx, timeouts and connection resets as the system's limits say.

    The proxy settings of the environment (HTTP_PROXY, HTTPS_PROXY, NO_PROXY) are read once for the base URL,
    not on every request (which costs more than a loopback request itself); `.netrc` is not read: credentials
    come from the metadata's secret references only."""
    session = _RetryingClient(
        jitter=limits.jitter,
        raise_for_status=False,  # the REST client's response hook raises, after the retries
        request_timeout=limits.timeout,
        request_max_attempts=limits.max_attempts,
        request_backoff_factor=limits.backoff_factor,
        request_max_retry_delay=limits.max_delay,
        respect_retry_after_header=True,
    ).session
    session.proxies.update(requests.utils.get_environ_proxies(base_url))
    session.trust_env = False
    return session


class _RemembersToken(OAuth2ClientCredentials):
    """dlt's OAuth2 client credentials flow; the access token it gets is a secret too (masked everywhere)."""

    def obtain_token(self) -> None:
        super().obtain_token()
        if self.access_token:
            remember_secret(str(self.access_token))


class _PlatformClient(RESTClient):
    """dlt's REST client with the platform's rules for a response: the records path must be there, the body
    must be JSON, and the URL it logs never carries a secret query parameter. Each body is parsed once (dlt's
    client and its paginator would each parse it) and the records path compiled once, not per page."""

    def __init__(self, *, endpoint: str, records_path: str | None, secret_params: set[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.endpoint, self.secret_params = endpoint, SENSITIVE_PARAMS | secret_params
        self.records_path = records_path
        self._selector = jsonpath.compile_path(records_path) if records_path else None

    def _log_request(self, request: requests.Request, prepared_url: str) -> None:
        if logger.isEnabledFor(logging.INFO):
            logger.info(redact(f"{request.method.upper()} {sanitize_url(prepared_url, self.secret_params)}"))

    def extract_response(self, response: requests.Response, data_selector: Any) -> list[Any]:
        where = f"endpoint {self.endpoint}: GET {url_without_query(response.url)}"
        try:
            body = _parse(response)
        except ValueError:
            raise RestApiError(f"{where} answered with a body that is not JSON "
                               f"(Content-Type {response.headers.get('Content-Type')!r})") from None
        response.json = lambda **_: body  # type: ignore[method-assign]  # the paginator reads the same body
        if self._selector is None:
            if not isinstance(body, list):
                raise RestApiError(f"{where} answered with a JSON {type(body).__name__}, not a list of records; "
                                   "declare the endpoint's 'records_path' (where the records are in the body)")
            return body
        found = [match.value for match in self._selector.find(body)]
        if not found:
            keys = ", ".join(map(repr, list(body)[:10])) if isinstance(body, dict) else type(body).__name__
            raise RestApiError(f"{where}: the records path {self.records_path!r} is not in the response (it has: "
                               f"{keys}); fix the endpoint's 'records_path'")
        data = found[0] if len(found) == 1 else found
        if data is None:
            return []
        return data if isinstance(data, list) else [data]


def _auth(connection: RestApiConnection, session: requests.Session) -> AuthConfigBase | None:
    auth = connection.auth
    if isinstance(auth, BearerAuth):
        return BearerTokenAuth(token=str(auth.token))
    if isinstance(auth, ApiKeyAuth):
        return APIKeyAuth(name=auth.name, api_key=str(auth.api_key), location=auth.location)
    if isinstance(auth, BasicAuth):
        return HttpBasicAuth(username=str(auth.username), password=str(auth.password))
    if isinstance(auth, OAuth2ClientCredentialsAuth):
        extra = {"scope": " ".join(auth.scopes)} if auth.scopes else {}
        return _RemembersToken(access_token_url=auth.token_url, client_id=str(auth.client_id),
                               client_secret=str(auth.client_secret), access_token_request_data=extra,
                               session=session)
    return None


def _paginator(endpoint: RestEndpoint) -> BasePaginator:
    paging = endpoint.paginator
    if isinstance(paging, JsonLinkPaging):
        return JSONLinkPaginator(next_url_path=paging.next_url_path)
    if isinstance(paging, HeaderLinkPaging):
        return HeaderLinkPaginator()
    if isinstance(paging, OffsetPaging):
        return OffsetPaginator(limit=paging.limit, offset_param=paging.offset_param, limit_param=paging.limit_param,
                               total_path=paging.total_path, stop_after_empty_page=True)
    if isinstance(paging, PageNumberPaging):
        return PageNumberPaginator(base_page=paging.base_page, page_param=paging.page_param,
                                   total_path=paging.total_path, stop_after_empty_page=True)
    if isinstance(paging, CursorPaging):
        return JSONResponseCursorPaginator(cursor_path=paging.cursor_path, cursor_param=paging.cursor_param)
    return SinglePagePaginator()


def _client(connection: RestApiConnection, endpoint: str) -> _PlatformClient:
    urllib3_log = logging.getLogger("urllib3.connectionpool")
    if _REDACTING not in urllib3_log.filters:
        urllib3_log.addFilter(_REDACTING)
    session = retrying_session(connection.retry, connection.base_url)
    auth = connection.auth
    secret_params = {auth.name} if isinstance(auth, ApiKeyAuth) and auth.location == "query" else set()
    return _PlatformClient(endpoint=endpoint, records_path=connection.endpoints[endpoint].records_path,
                           secret_params=secret_params, base_url=connection.base_url,
                           headers=dict(connection.headers) or None, auth=_auth(connection, session), session=session)


# ------------------------------------------------------------------------------------------ reading


def _failure(endpoint: str, connection: RestApiConnection, err: Exception) -> RestApiError:
    """A terminal error, in words: what failed, where (no query string), and what to do."""
    where = f"endpoint {endpoint}"
    if isinstance(err, requests.HTTPError) and err.response is not None:
        response = err.response
        status, url = response.status_code, url_without_query(response.url)
        auth = connection.auth
        if isinstance(auth, OAuth2ClientCredentialsAuth) and url == url_without_query(auth.token_url):
            return RestApiError(f"{where}: the OAuth2 token request to {url} was refused (HTTP {status}); check the "
                                "secrets of 'auth.client_id' and 'auth.client_secret' and 'auth.token_url'")
        if status in (401, 403):
            what = "the credentials were refused" if auth else "the API needs credentials; declare 'auth'"
            return RestApiError(f"{where}: GET {url} answered HTTP {status} {response.reason}: {what}"
                                + ("; check the secrets of 'auth'" if auth else ""))
        if status == 404:
            return RestApiError(f"{where}: GET {url} answered HTTP 404 Not Found; check 'base_url' and the "
                                "endpoint's 'path'")
        if status == 429 or status >= 500:
            return RestApiError(f"{where}: GET {url} still answered HTTP {status} {response.reason} after "
                                f"{connection.retry.max_attempts} attempts; try again later, or raise the system's "
                                "'retry' limits")
        return RestApiError(f"{where}: GET {url} answered HTTP {status} {response.reason}")
    if isinstance(err, requests.RequestException):
        url = url_without_query(err.request.url) if err.request is not None and err.request.url else connection.base_url
        return RestApiError(f"{where}: no answer from {url} after {connection.retry.max_attempts} attempts "
                            f"({type(err).__name__}); check that the server is up and 'base_url' is right")
    return RestApiError(f"{where}: {redact(str(err))}")


def _pages(client: _PlatformClient, endpoint: str, spec: RestEndpoint, params: dict[str, Any],
           connection: RestApiConnection) -> Iterator[PageData[Any]]:
    """The endpoint's pages, stopping with an error at a page already read (a server returning the same next
    link) or beyond `max_pages` (a pagination that never ends)."""
    seen: set[str] = set()
    try:
        for page in client.paginate(spec.path, params=params, paginator=_paginator(spec),
                                    data_selector="$"):  # any: extract_response uses the compiled records path
            sent = page.response.request
            fingerprint = f"{sent.url} {sent.body!r}"
            if fingerprint in seen:
                raise RestApiError(f"endpoint {endpoint}: the server sent the same page again "
                                   f"(GET {url_without_query(str(sent.url))} with the same parameters, page "
                                   f"{len(seen) + 1}); its pagination does not advance: check the endpoint's "
                                   "'paginator'")
            seen.add(fingerprint)
            if len(seen) > spec.max_pages:
                raise RestApiError(f"endpoint {endpoint}: more than {spec.max_pages} pages in one run "
                                   f"(GET {url_without_query(str(sent.url))}); the pagination does not end: check "
                                   "the endpoint's 'paginator', or raise its 'max_pages'")
            yield page
    except RestApiError:
        raise
    except Exception as err:
        raise _failure(endpoint, connection, err) from None


# One encoder for every record (json.dumps with any non-default option builds a new one per call).
_ENCODE = json.JSONEncoder(allow_nan=False, check_circular=False).encode
_STDLIB = "_platform_stdlib_json"  # set on a response whose body only the standard decoder could read


# 20 digits in a row: maybe an integer beyond 64 bits, which orjson would read as a float (losing digits).
_LONG_NUMBER = re.compile(rb"[0-9]{20}")


def _parse(response: requests.Response) -> Any:
    """The body, parsed by orjson (several times faster than the standard decoder, and strict: no NaN, no
    lone surrogates). A body orjson refuses (1e400, NaN) or might read inexactly (20 digits in a row: an
    integer beyond 64 bits) the standard decoder reads, and that page's records are then encoded by the
    standard encoder, which keeps every digit and names what jsonb cannot hold."""
    content = response.content
    if not _LONG_NUMBER.search(content):
        try:
            return orjson.loads(content)
        except orjson.JSONDecodeError:
            pass
    body = json.loads(content)
    setattr(response, _STDLIB, True)
    return body


def _encoder(response: requests.Response) -> Any:
    """orjson for a page orjson parsed (it writes the same JSON, faster); the standard encoder otherwise."""
    if getattr(response, _STDLIB, False):
        return _ENCODE

    def encode(record: Any) -> str:
        return orjson.dumps(record).decode()

    return encode


def _value_at(record: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(record, dict):
            return None
        record = record.get(part)
    return record


def _order(value: Any) -> tuple[int, Any]:
    """Cursor values compare as numbers when they are numbers, else as text (ISO timestamps sort as text)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return 0, value
    return 1, str(value)


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _not_before(value: Any, start: str | None) -> bool:
    """Whether `value` is at or after the stored cursor (typed like `value`); a cursor never moves back."""
    if start is None:
        return True
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            return value >= float(start)
        except ValueError:
            return True
    return str(value) >= start


class RestApiConnector:
    """The `rest_api` connector: each run is a batch that reads every endpoint (a delta endpoint from its cursor)."""

    def next_load(self, system_id: str, connection: Connection, *, landed: set[str], cursors: Mapping[str, str],
                  base_dir: Path) -> PendingLoad:
        """Always a load: only reading the API tells whether anything is new. Its source ref is the run's UTC
        timestamp, which is also the batch timestamp (the moment the data was taken)."""
        assert isinstance(connection, RestApiConnection)
        return load_at_run_time(landed=landed, cursors=self._delta_cursors(connection, cursors))

    def find_load(self, system_id: str, connection: Connection, source_ref: str, *, cursors: Mapping[str, str],
                  base_dir: Path) -> PendingLoad:
        """The batch `source_ref` again, read from where it started (the API answers with what it has now)."""
        assert isinstance(connection, RestApiConnection)
        return load_named(source_ref, self._delta_cursors(connection, cursors))

    @staticmethod
    def _delta_cursors(connection: RestApiConnection, cursors: Mapping[str, str]) -> dict[str, str]:
        return {e: v for e, v in cursors.items() if e in connection.endpoints and connection.endpoints[e].cursor_param}

    def raw_records(self, connection: Connection, endpoint: str, load: PendingLoad, *, base_dir: Path,
                    reached: CursorReached) -> Iterator[str]:
        """The endpoint's records, each as its JSON text; a delta endpoint's largest cursor value goes to `reached`."""
        assert isinstance(connection, RestApiConnection)
        spec = connection.endpoints[endpoint]
        params: dict[str, Any] = dict(spec.params)
        start = load.cursors.get(endpoint) if spec.cursor_param else None
        if spec.cursor_param and (sent := start if start is not None else spec.initial_cursor) is not None:
            params[spec.cursor_param] = sent
        if start is not None:
            reached.advance(endpoint, start)  # nothing newer read: the endpoint stays where it was
        best: Any = None
        number = 0
        for page in _pages(_client(connection, endpoint), endpoint, spec, params, connection):
            encode = _encoder(page.response)
            for record in page:
                number += 1
                try:
                    text = encode(record)
                except ValueError:
                    raise RestApiError(f"endpoint {endpoint}: record {number} holds NaN or Infinity, which is not "
                                       "JSON and PostgreSQL's jsonb refuses") from None
                if "\\u0000" in text:
                    raise RestApiError(f"endpoint {endpoint}: record {number} holds a NUL character (\\u0000), "
                                       "which PostgreSQL's jsonb cannot store")
                if spec.cursor_field is not None:
                    value = _value_at(record, spec.cursor_field)
                    if value is not None and (best is None or _order(value) > _order(best)):
                        best = value
                yield text
            if best is not None and _not_before(best, start):
                reached.advance(endpoint, _as_text(best))

    def check(self, connection: Connection, *, base_dir: Path) -> list[EndpointCheck]:
        """Per endpoint: the first page is requested (with the credentials), nothing is landed."""
        assert isinstance(connection, RestApiConnection)
        results = []
        for endpoint, spec in connection.endpoints.items():
            params = dict(spec.params)
            if spec.cursor_param and spec.initial_cursor is not None:
                params[spec.cursor_param] = spec.initial_cursor
            try:
                page = next(_pages(_client(connection, endpoint), endpoint, spec, params, connection), [])
            except RestApiError as err:
                results.append(EndpointCheck(endpoint, False, redact(str(err))))
                continue
            auth = "credentials accepted" if connection.auth else "no credentials needed"
            results.append(EndpointCheck(endpoint, True, f"answers, {auth}; {len(page)} record(s) on the first page"))
        return results


if __name__ == "__main__":
    url = urlsplit(sys.argv[1])
    source = RestApiConnection.model_validate({
        "type": "rest_api", "base_url": urlunsplit((url.scheme, url.netloc, "", "", "")),
        "endpoints": {"endpoint": {"path": url.path or "/", "records_path": (sys.argv[2:] or [None])[0]}},
    })
    for raw in RestApiConnector().raw_records(source, "endpoint", PendingLoad("now", dt.datetime.now(dt.UTC)),
                                              base_dir=Path("."), reached=CursorReached()):
        print(raw)
