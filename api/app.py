"""The HTTP service: `POST /hooks/{system_id}` for sources that have new data, and the operator's API (systems and
their last batches, recent runs, start a run). OpenAPI page at /docs.

A call that is let in is recorded in `audit.run_request` (audit/run_requests.py: a repeated delivery id finds the
first call's row, a call before the system's minimum interval is refused) and answered at once; Dagster's
`run_requests` sensor (orchestration/triggers.py) then starts one run of the system's job for it, through the run
queue, so the run shows in the UI like any other. The answer names the request; its run is shown by
`GET /requests/{request_id}` (and by the answer to the same delivery sent again) once the sensor has started it.

Secrets (webhook credentials, the operator's token) are read from the secret store at each call, so a new value
takes effect without a restart; none is ever part of an answer or a log line.
"""

from __future__ import annotations

import hashlib
import logging
import re
import uuid
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from api.auth import CredentialsInvalid, CredentialsMissing, bearer_of, check_signature, check_token
from audit import run_requests
from audit.status import recent_runs as recent_batches
from metadata.catalog import Catalog
from metadata.models import System
from secret_store.base import MissingSecretError, SecretStore
from secret_store.choice import platform_secret_store
from secret_store.redact import redact, remember_secret
from warehouse.session import connect

API_TOKEN_KEY = "api_token"  # the operator's token: secret key, i.e. DATAPLATFORM_SECRET_API_TOKEN by default
DELIVERY_ID_PATTERN = re.compile(r"^[\x21-\x7e]{1,200}$")  # printable ASCII, no spaces: a header value we can echo
LAST_BATCHES = 5
MAX_BODY_BYTES = 1024 * 1024

log = logging.getLogger("dataplatform.api")
# Module level: FastAPI resolves the (string) annotations of the endpoints from the module's names.
_OPERATOR_BEARER = HTTPBearer(auto_error=False, description="the operator's token (secret `api_token`)")

RunsOfRequests = Callable[[int], dict[str, Any] | None]
RecentRuns = Callable[[int], list[dict[str, Any]]]


def _dagster_run_of_request(request_id: int) -> dict[str, Any] | None:
    from orchestration.runs import run_of_request

    return run_of_request(request_id)


def _dagster_recent_runs(limit: int) -> list[dict[str, Any]]:
    from orchestration.runs import recent_runs

    return recent_runs(limit=limit)


def _system_view(system: System) -> dict[str, Any]:
    """A system as the operator sees it: its triggers, and never its connection (which may name secrets)."""
    hook = system.webhook
    return {
        "id": system.id, "name": system.name, "description": system.description, "type": system.type,
        "schedule": system.schedule.model_dump() if system.schedule else None,
        "webhook": None if hook is None else {
            "path": f"/hooks/{system.id}",
            "auth": "bearer token" if hook.token else f"HMAC-SHA256 signature in {hook.signature_header}",
            "delivery_id_header": hook.delivery_id_header,
            "min_interval_seconds": hook.min_interval_seconds,
        },
    }


def create_app(catalog: Catalog, *, url: str, secrets: SecretStore | None = None,
               run_of_request: RunsOfRequests = _dagster_run_of_request,
               recent_runs: RecentRuns = _dagster_recent_runs) -> FastAPI:
    """The service for the systems of `catalog`, recording into the warehouse at `url`. `run_of_request` and
    `recent_runs` read the Dagster instance (DAGSTER_HOME) by default."""
    app = FastAPI(
        title="dataplatform",
        description="Webhooks that start a system's run, and the operator's API. Every run is started by Dagster's"
        " `run_requests` sensor from the request recorded here, and shows in the Dagster UI.",
        version="1",
    )

    def secret(key: str) -> str:
        store = secrets or platform_secret_store()
        try:
            value = store.get(key)
        except MissingSecretError:
            raise HTTPException(503, f"the secret {key!r} is not set: {store.describe(key)}") from None
        remember_secret(value)
        return value

    def operator(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_OPERATOR_BEARER)]) -> None:
        store = secrets or platform_secret_store()
        if not store.has(API_TOKEN_KEY):
            raise HTTPException(503, f"the operator's API is off: {store.describe(API_TOKEN_KEY)}")
        try:
            check_token(credentials.credentials if credentials else None, secret(API_TOKEN_KEY))
        except CredentialsMissing as err:
            raise HTTPException(401, str(err), headers={"WWW-Authenticate": "Bearer"}) from None
        except CredentialsInvalid as err:
            raise HTTPException(403, str(err)) from None

    def known_system(system_id: str) -> System:
        system = catalog.systems.get(system_id)
        if system is None:
            raise HTTPException(404, f"unknown system {system_id!r}; declared: {', '.join(catalog.systems)}")
        return system

    def accept(system: System, *, trigger: str, delivery_id: str | None, body: bytes) -> JSONResponse:
        """Record the request (or find the delivery's first one) and answer 202 (new) or 200 (known)."""
        if delivery_id is not None and not DELIVERY_ID_PATTERN.match(delivery_id):
            raise HTTPException(400, "a delivery id is 1 to 200 printable ASCII characters without spaces")
        interval = system.webhook.min_interval_seconds if trigger == "webhook" and system.webhook else 0
        try:
            with connect(url, autocommit=True) as conn:
                recorded = run_requests.record(
                    conn, system_id=system.id, trigger=trigger, delivery_id=delivery_id or f"generated-{uuid.uuid4()}",
                    min_interval_seconds=interval, body_sha256=hashlib.sha256(body).hexdigest(), body_bytes=len(body))
        except run_requests.TooSoon as err:
            raise HTTPException(429, str(err), headers={"Retry-After": str(err.retry_after)}) from None
        request = recorded.request
        run = run_of_request(request.request_id) if recorded.repeated else None
        log.info(redact(f"{trigger} {system.id}: request {request.request_id} delivery {request.delivery_id}"
                        f" {'repeated' if recorded.repeated else 'recorded'}"))
        return JSONResponse(
            status_code=200 if recorded.repeated else 202,
            headers={"Location": f"/requests/{request.request_id}"},
            content={"request": request.public(), "repeated": recorded.repeated, "run": run,
                     "status_url": f"/requests/{request.request_id}"},
        )

    @app.post("/hooks/{system_id}", status_code=202, tags=["webhooks"], responses={
        200: {"description": "this delivery id came before: nothing new is started; the first call's request"
                             " and its run (once started)"},
        202: {"description": "recorded: the `run_requests` sensor starts one run of the system's job for it"},
        401: {"description": "no credential"}, 403: {"description": "a wrong token or signature"},
        404: {"description": "unknown system, or one that declares no webhook"},
        413: {"description": "a body larger than 1 MiB"},
        429: {"description": "called before the system's min_interval_seconds; see Retry-After"},
    })
    async def webhook(system_id: str, request: Request) -> JSONResponse:
        """A source says it has new data: start a run of the system's job (land its next delivery, check it,
        build every layer). Authenticated as the system's `webhook` declares: a bearer token or an HMAC-SHA256
        signature of the body. The body is not landed (the run reads the source as the system's connector does)."""
        system = known_system(system_id)
        hook = system.webhook
        if hook is None:
            raise HTTPException(404, f"system {system_id} takes no webhook calls: declare 'webhook' on it in"
                                     " systems.json")
        body = bytearray()
        async for chunk in request.stream():  # read no further than the limit, whatever Content-Length says
            body += chunk
            if len(body) > MAX_BODY_BYTES:
                raise HTTPException(413, f"the body is larger than {MAX_BODY_BYTES} bytes; a webhook call says that"
                                         " data is ready, it does not carry it")
        try:
            if hook.token is not None:
                check_token(bearer_of(request.headers.get("authorization")), secret(hook.token.key))
            else:
                assert hook.hmac_secret is not None
                check_signature(bytes(body), request.headers.get(hook.signature_header), secret(hook.hmac_secret.key),
                                header=hook.signature_header)
        except CredentialsMissing as err:
            scheme = "Bearer" if hook.token is not None else "Signature"
            raise HTTPException(401, str(err), headers={"WWW-Authenticate": scheme}) from None
        except CredentialsInvalid as err:
            log.warning(f"webhook {system_id}: refused a call with invalid credentials")
            raise HTTPException(403, str(err)) from None
        return await run_in_threadpool(accept, system, trigger="webhook",
                                       delivery_id=request.headers.get(hook.delivery_id_header), body=bytes(body))

    @app.get("/systems", tags=["operator"], dependencies=[Depends(operator)])
    def systems() -> list[dict[str, Any]]:
        """Every declared system: its schedule and webhook (never a credential), and its last batches from the
        audit tables (newest first)."""
        with connect(url) as conn:
            return [{**_system_view(s), "last_batches": recent_batches(conn, limit=LAST_BATCHES, system_id=s.id)}
                    for s in catalog.systems.values()]

    @app.get("/runs", tags=["operator"], dependencies=[Depends(operator)])
    def runs(limit: Annotated[int, Query(ge=1, le=200)] = 20) -> list[dict[str, Any]]:
        """The newest Dagster runs (queued and running ones too), each with what started it and the audit summary
        of the batches it worked on."""
        found = recent_runs(limit)
        with connect(url) as conn:
            batches = recent_batches(conn, dagster_run_ids=[r["run_id"] for r in found])
        for run in found:
            run["batches"] = [b for b in batches if b["dagster_run_id"] == run["run_id"]]
        return found

    @app.post("/systems/{system_id}/runs", status_code=202, tags=["operator"], dependencies=[Depends(operator)])
    def start_run(system_id: str, request: Request) -> JSONResponse:
        """Start a run of the system's job, the way a webhook call does (no minimum interval). An
        `X-Delivery-Id` header makes the call idempotent: sent again, it starts nothing new."""
        system = known_system(system_id)
        return accept(system, trigger="api", delivery_id=request.headers.get("x-delivery-id"), body=b"")

    @app.get("/requests/{request_id}", tags=["operator"], dependencies=[Depends(operator)])
    def request_status(request_id: int) -> dict[str, Any]:
        """A recorded request and the run the sensor started for it (null until it has)."""
        with connect(url) as conn:
            found = run_requests.get(conn, request_id)
        if found is None:
            raise HTTPException(404, f"no request {request_id}")
        return {"request": found.public(), "run": run_of_request(request_id)}

    return app
