"""`dataplatform`: the operator's command line.

Exit codes scripts can rely on: 0 success, 1 a run or step failed, 2 invalid metadata or usage,
3 the warehouse could not be reached or started, 4 skipped: another run of the system is in progress,
5 the environment failed (disk full, a folder not writable, Dagster's storage failing), 6 a service the
platform reads its secrets or metadata from (Vault, the MongoDB metadata registry) is not configured, cannot
be reached, or refused access.

Everything it prints passes through the one redaction rule (secret_store.redact): no secret value the
process resolved, nor the warehouse password, ever reaches the terminal.
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import os
import signal
import subprocess
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path

import psycopg

from cli.environment import environment_failure
from cli.processes import run_process_group
from metadata.catalog import Catalog, MetadataError
from metadata.models import System
from metadata.registry import RegistryError
from metadata.source import load_platform_catalog
from observability.logs import configure_logging, json_line, json_logs
from secret_store.base import SecretStoreUnavailableError
from secret_store.redact import redact
from warehouse.embedded import WarehouseError, open_warehouse, redact_url, state_dir
from warehouse.files import private_folder, private_umask, secure_state_dir
from warehouse.session import connect

EXIT_OK, EXIT_FAILED, EXIT_INVALID, EXIT_WAREHOUSE, EXIT_BUSY, EXIT_ENVIRONMENT, EXIT_SERVICE = 0, 1, 2, 3, 4, 5, 6


def echo(message: str) -> None:
    """One line for the operator: text, or with DATAPLATFORM_LOG_FORMAT=json a JSON line (run and batch ids)."""
    if json_logs():
        print(json_line(level="INFO", logger="dataplatform.cli", message=message), flush=True)
    else:
        print(redact(message), flush=True)


def warn(message: str) -> None:
    if json_logs():
        print(json_line(level="WARNING", logger="dataplatform.cli", message=message), file=sys.stderr, flush=True)
    else:
        print(f"warning: {redact(message)}", file=sys.stderr, flush=True)


def error(message: str) -> None:
    if json_logs():
        print(json_line(level="ERROR", logger="dataplatform.cli", message=message), file=sys.stderr, flush=True)
    else:
        print(f"error: {redact(message)}", file=sys.stderr, flush=True)


def _catalog() -> Catalog:
    """The validated metadata (from the source DATAPLATFORM_METADATA_SOURCE names), or exit 2 with every
    problem listed, or 6 when Vault or the registry cannot be asked (before anything is written)."""
    try:
        return load_platform_catalog()
    except MetadataError as err:
        error(str(err))
        raise SystemExit(EXIT_INVALID) from err


@contextlib.contextmanager
def _warehouse() -> Iterator[str]:
    """The migrated warehouse, exported to this process's environment for dlt, dbt and Dagster; yields the
    URL of the owner role, which every connection of the platform uses."""
    from warehouse.connection import export_warehouse_env, platform_url
    from warehouse.migrations import MigrationError, migrate
    from warehouse.roles import RoleSetupError

    secure_state_dir(state_dir())
    try:
        with open_warehouse(echo=echo) as url:
            applied = migrate(url)
            if applied:
                echo(f"applied migrations: {', '.join(applied)}")
            export_warehouse_env(url)
            owner_url = platform_url(url)
            _warn_if_superuser(owner_url)
            yield owner_url
    except (WarehouseError, MigrationError, RoleSetupError, psycopg.OperationalError) as err:
        error(f"warehouse: {err}")
        raise SystemExit(EXIT_WAREHOUSE) from err


def _warn_if_superuser(url: str) -> None:
    """An external warehouse given as a superuser works, but everything then runs as that superuser."""
    from warehouse.roles import current_role_powers

    with psycopg.connect(url, connect_timeout=10) as conn:
        role, superuser, _ = current_role_powers(conn)
    if superuser:
        warn(f"the platform connects to the warehouse as the superuser {role!r}: run `dataplatform setup-roles`"
             " once, then set DATAPLATFORM_DATABASE_URL to the owner's URL it prints")


def _declared_system(catalog: Catalog, system_id: str) -> System | None:
    """The system the command names, or None after saying which systems are declared."""
    system = catalog.systems.get(system_id)
    if system is None:
        error(f"unknown system {system_id!r}; declared: {', '.join(catalog.systems)}")
    return system


def cmd_validate(args: argparse.Namespace) -> int:
    catalog = _catalog()
    echo(f"metadata in {catalog.origin} is valid: {len(catalog.systems)} system(s), "
         f"{len(catalog.entities)} entity(ies), {len(catalog.actions)} action(s)")
    return EXIT_OK


def cmd_deploy_metadata(args: argparse.Namespace) -> int:
    """Validate the declaration files and write them to the MongoDB registry as its next version."""
    from metadata.source import deploy_metadata

    try:
        deployed = deploy_metadata(Path(args.folder) if args.folder else None)
    except MetadataError as err:
        error(f"nothing was deployed: {err}")
        return EXIT_INVALID
    catalog = deployed.catalog
    echo(f"deployed metadata from {catalog.origin} to {deployed.where} as version {deployed.version}: "
         f"{len(catalog.systems)} system(s), {len(catalog.entities)} entity(ies), {len(catalog.actions)} action(s)"
         "; `dataplatform rollback-metadata` restores the previous version")
    return EXIT_OK


def cmd_rollback_metadata(args: argparse.Namespace) -> int:
    """Deploy an earlier version of the registry's metadata again (default: the one before the current)."""
    from metadata.source import rollback_metadata

    try:
        deployed = rollback_metadata(to=args.to)
    except LookupError as err:
        error(str(err.args[0]))
        return EXIT_INVALID
    except MetadataError as err:
        error(f"nothing was restored: the metadata of that version is no longer valid: {err}")
        return EXIT_INVALID
    echo(f"restored version {deployed.restored_from} of the metadata in {deployed.where} as version "
         f"{deployed.version}")
    return EXIT_OK
def cmd_check(args: argparse.Namespace) -> int:
    """Per endpoint of a system: whether its source answers and accepts the credentials, landing nothing."""
    catalog = _catalog()
    from ingestion.connectors import connector_for
    from metadata.models import parse_connection
    from secret_store.base import MissingSecretError, resolve_secrets
    from secret_store.choice import platform_secret_store

    system = _declared_system(catalog, args.system)
    if system is None:
        return EXIT_INVALID
    check = getattr(connector_for(system.type), "check", None)
    if check is None:
        error(f"system {system.id}: its type {system.type!r} has no connectivity check")
        return EXIT_FAILED
    try:
        connection = parse_connection(system.type, resolve_secrets(system.connection, platform_secret_store()),
                                      resolved=True)
    except MissingSecretError as err:
        error(f"system {system.id}: {err}")
        return EXIT_FAILED
    from cli.cdc import cdc_endpoints

    # A check that judges the source by where its endpoints stand (a CDC slot that is gone) is given audit.cursor.
    if "cursors" in inspect.signature(check).parameters and cdc_endpoints(system):
        from audit.batches import cursors

        with _warehouse() as url, connect(url) as conn:
            stored = cursors(conn, system.id)
        results = check(connection, base_dir=state_dir(), system_id=system.id, cursors=stored)
    else:
        results = check(connection, base_dir=state_dir())
    for result in results:
        echo(f"{system.id}.{result.endpoint}: {'ok' if result.ok else 'FAILED'}: {result.message}")
    return EXIT_OK if all(r.ok for r in results) else EXIT_FAILED


def cmd_generate(args: argparse.Namespace) -> int:
    from codegen.dbt_files import generate

    files = generate(_catalog())
    echo(f"generated {len(files)} dbt file(s) from metadata")
    return EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    catalog = _catalog()  # before importing Dagster: bad metadata fails fast and writes nothing
    from cli.summary import print_summary
    from orchestration.execute import run_job

    if args.system and _declared_system(catalog, args.system) is None:
        return EXIT_INVALID
    if args.batch is not None and not args.force:
        error("--batch names the batch to land again: use it with --force")
        return EXIT_INVALID
    _check_executor()
    with _warehouse() as url:
        if args.batch is not None:
            from audit.batches import system_of_batch

            with connect(url) as conn:
                batch_system = system_of_batch(conn, args.batch)
            if batch_system is None or args.system not in (None, batch_system):
                error(f"batch {args.batch} is not a batch of {args.system or 'any system'}"
                      " (see `dataplatform status`)")
                return EXIT_INVALID
            args.system = batch_system
        outcome = run_job(system_id=args.system, force=args.force, batch=args.batch, echo=echo)
        if outcome.busy:
            return EXIT_BUSY
        print_summary(url, catalog, outcome, echo=echo)
    return EXIT_OK if outcome.success else EXIT_FAILED


def cmd_replay(args: argparse.Namespace) -> int:
    catalog = _catalog()
    unknown = [name for name in args.entity if name not in catalog.entities]
    if unknown:
        error(f"unknown entity {unknown[0]!r}; declared: {', '.join(catalog.entities)}")
        return EXIT_INVALID
    entities = [catalog.entities[name] for name in args.entity]
    systems = {e.system_id for e in entities}
    if len(systems) > 1:
        error(f"replay entities of one system at a time (got {', '.join(sorted(systems))})")
        return EXIT_INVALID
    system_id = systems.pop()
    from audit.batches import system_of_batch
    from orchestration.execute import replay

    _check_executor()
    with _warehouse() as url:
        with connect(url) as conn:
            batch_system = system_of_batch(conn, args.from_batch)
        if batch_system != system_id:
            error(f"batch {args.from_batch} is not a batch of system {system_id} (see `dataplatform status`)")
            return EXIT_INVALID
        outcome = replay(system_id=system_id, entities={e.name: catalog.table(e) for e in entities},
                         from_batch=args.from_batch, echo=echo)
    if outcome.busy:
        return EXIT_BUSY
    return EXIT_OK if outcome.success else EXIT_FAILED


def cmd_skip(args: argparse.Namespace) -> int:
    """The operator's explicit way past a batch that failed in bronze or silver for an entity (audited)."""
    catalog = _catalog()
    if args.entity not in catalog.entities:
        error(f"unknown entity {args.entity!r}; declared: {', '.join(catalog.entities)}")
        return EXIT_INVALID
    system_id = catalog.entities[args.entity].system_id
    import getpass

    from audit.batches import landed_refs, system_of_batch
    from audit.entities import blocked_entities, skip_batch
    from audit.locks import SystemBusyError, run_locks

    with _warehouse() as url, connect(url, autocommit=True) as conn:
        if system_of_batch(conn, args.batch) != system_id:
            error(f"batch {args.batch} is not a batch of system {system_id}, which entity {args.entity} belongs to"
                  " (see `dataplatform status`)")
            return EXIT_INVALID
        source_ref = conn.execute("select min(source_ref) from audit.system_run where batch_id = %s",
                                  (args.batch,)).fetchone()[0]
        if source_ref not in landed_refs(conn, system_id):
            error(f"batch {args.batch} of {system_id} never landed: there is nothing to skip")
            return EXIT_INVALID
        try:
            with run_locks(url, [system_id]):  # not while a run of the system is building
                skip_batch(conn, system_id=system_id, entity=args.entity, batch_id=args.batch,
                           skipped_by=getpass.getuser(), reason=args.reason)
                still = [b for e, b, _ in blocked_entities(conn, system_id) if e == args.entity]
        except SystemBusyError:
            echo(f"skipped nothing: a run of {system_id} is in progress; try again when it has finished")
            return EXIT_BUSY
    echo(f"batch {args.batch} is skipped for {args.entity}: it is never built for it; the batches behind it are"
         " applied by the next `dataplatform run`")
    if still:
        echo(f"note: {args.entity} is still held back by batch {still[0]}")
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    """Generate the test system's deliveries and load each of them, one batch per run."""
    catalog = _catalog()  # before importing Dagster: bad metadata fails fast and writes nothing
    from cli.summary import print_summary
    from ingestion.test_system.generator import generate
    from orchestration.execute import run_job

    folder = state_dir() / "sources" / "TST01"
    private_folder(secure_state_dir(state_dir()) / "sources")  # generated people and addresses: owner-only
    generate(folder, days=args.days, seed=args.seed)
    echo(f"test system TST01: {args.days} daily deliveries in {folder}")
    _check_executor()
    with _warehouse() as url:
        outcome = None
        for _ in range(args.days):
            outcome = run_job(system_id="TST01", echo=echo)
            if not outcome.success or not outcome.system_runs:
                break
        assert outcome is not None
        print_summary(url, catalog, outcome, echo=echo)
    return EXIT_OK if outcome.success else EXIT_FAILED


def cmd_status(args: argparse.Namespace) -> int:
    from audit.batches import cursors
    from audit.run_failures import recent_run_failures
    from audit.status import recent_runs
    from cli.cdc import lag_threshold, slot_report

    try:
        lag_threshold()
    except ValueError as err:
        error(str(err))
        return EXIT_INVALID
    try:
        catalog: Catalog | None = load_platform_catalog()
    except (MetadataError, RegistryError, SecretStoreUnavailableError) as err:  # the runs are still worth showing
        warn(f"CDC replication slots not shown: the metadata could not be read: {err}")
        catalog = None
    with _warehouse() as url, connect(url) as conn:
        runs = recent_runs(conn, limit=args.limit)
        failures = recent_run_failures(conn, limit=args.limit)
        if not runs and not failures:
            echo("no runs yet: try `dataplatform demo` or `dataplatform run`")
        for r in runs:
            ended = r["ended_at"].strftime("%Y-%m-%d %H:%M:%S") if r["ended_at"] else "-"
            echo(f"{r['system_id']} batch {r['batch_id']} ({r['source_ref']}) {r['status']:<9} ended {ended}  "
                 f"entities ok/failed/skipped {r['entities_succeeded']}/{r['entities_failed']}/"
                 f"{r['entities_skipped']}  {r['layers']}" + (f"  -- {r['message']}" if r["message"] else ""))
        if failures:
            echo("runs that failed where no batch says so (audit.run_failure):")
        for f in failures:
            message = " | ".join(f["message"].splitlines())
            echo(f"{','.join(f['systems']) or '-'} run {f['dagster_run_id']} ({f['job_name']}) failed"
                 f" {f['recorded_at']:%Y-%m-%d %H:%M:%S} in {','.join(f['steps']) or 'the run'}  -- {message}")
        # Change data capture: a slot nobody reads keeps the source's WAL on its disk (see cli/cdc.py).
        if catalog is not None:
            slot_report(catalog, lambda system_id: cursors(conn, system_id), echo=echo, warn=warn)
    return EXIT_OK


def cmd_cdc_drop_slot(args: argparse.Namespace) -> int:
    """Drop a CDC endpoint's replication slot and forget its position: its next batch is a new snapshot."""
    catalog = _catalog()
    from audit.batches import forget_cursor
    from audit.locks import SystemBusyError, run_locks
    from cli.cdc import cdc_endpoints, resolved_connection
    from ingestion.connectors import connector_for

    system = _declared_system(catalog, args.system)
    if system is None:
        return EXIT_INVALID
    if args.endpoint not in (endpoints := cdc_endpoints(system)):
        error(f"system {system.id}: {args.endpoint!r} is not one of its endpoints with load 'cdc' "
              f"({', '.join(endpoints) or 'it has none'})")
        return EXIT_INVALID
    with _warehouse() as url, connect(url, autocommit=True) as conn:
        try:
            with run_locks(url, [system.id]):  # not while a run of the system reads the slot
                try:
                    dropped = connector_for(system.type).drop_replication_slot(  # type: ignore[attr-defined]
                        system.id, resolved_connection(system), args.endpoint)
                except Exception as err:  # noqa: BLE001 - the source's refusal, in words; the position is kept
                    error(f"{system.id}.{args.endpoint}: the slot was not dropped and the position is kept: {err}")
                    return EXIT_FAILED
                forgotten = forget_cursor(conn, system.id, args.endpoint)
        except SystemBusyError:
            echo(f"dropped nothing: a run of {system.id} is in progress; try again when it has finished")
            return EXIT_BUSY
    echo(f"{system.id}.{args.endpoint}: " + ("replication slot dropped" if dropped else "no replication slot was there")
         + (f"; position {forgotten} forgotten" if forgotten else "") + f"; the next run of {system.id} takes a new "
         "snapshot of the table (keys deleted meanwhile stay open in silver: the entity is a delta one)")
    return EXIT_OK


def cmd_setup_roles(args: argparse.Namespace) -> int:
    """Create the owner and analyst roles (external warehouse) or show them (embedded); see cli/roles.py."""
    from cli import roles as role_setup
    from warehouse.connection import embedded_server
    from warehouse.embedded import DATABASE_URL_ENV
    from warehouse.roles import ANALYST_ROLE, OWNER_ROLE, RoleSetupError

    owner, analyst = args.owner or OWNER_ROLE, args.analyst or ANALYST_ROLE
    unknown = set(args.new_password) - {owner, analyst}
    if unknown:
        print(f"error: --new-password {sorted(unknown)[0]!r}: not one of the platform's roles ({owner}, {analyst})",
              file=sys.stderr)
        return EXIT_INVALID
    external = os.environ.get(DATABASE_URL_ENV)
    if not external:
        if (owner, analyst) != (OWNER_ROLE, ANALYST_ROLE):
            print(f"error: --owner/--analyst name the roles of an external warehouse ({DATABASE_URL_ENV}); the "
                  f"embedded warehouse's are {OWNER_ROLE} and {ANALYST_ROLE}", file=sys.stderr)
            return EXIT_INVALID
        with _warehouse():  # starts the server, creates the roles, bootstraps and migrates the database
            server = embedded_server()
            for role in args.new_password:
                server.set_role_password(role)
                echo(f"new password for {role} in {server.role_password_file(role)}")
            role_setup.show_embedded(server.role_url, server.role_password_file, echo=echo)
        return EXIT_OK
    folder = Path(args.password_dir) if args.password_dir else state_dir() / "roles"
    try:
        report = role_setup.setup_external(external, owner=owner, analyst=analyst, renew=set(args.new_password),
                                           password_dir=folder, echo=echo)
    except RoleSetupError as err:
        print(f"error: setup-roles: {err}", file=sys.stderr)
        return EXIT_INVALID
    except psycopg.OperationalError as err:
        print(f"error: warehouse: {err}", file=sys.stderr)
        return EXIT_WAREHOUSE
    if report.reassigned:
        echo(f"handed {len(report.reassigned)} existing object(s) of the platform's schemas over to {owner}")
    return EXIT_OK


def cmd_dbt(args: argparse.Namespace) -> int:
    """Run dbt on the platform's project and warehouse, e.g. `dataplatform dbt build`."""
    from codegen.dbt_files import DBT_PROJECT_DIR
    from codegen.dbt_parse import prepare

    catalog = _catalog()
    prepare(catalog)
    with _warehouse():
        dbt = str(Path(sys.executable).parent / "dbt")
        return subprocess.call([dbt, *args.dbt_args, "--project-dir", str(DBT_PROJECT_DIR),
                                "--profiles-dir", str(DBT_PROJECT_DIR)])


SQL_LINT_GLOBS = ("models/gold/*.sql", "models/*/generated/*.sql")  # hand-written marts and generated models


def cmd_lint_sql(args: argparse.Namespace) -> int:
    """sqlfluff (dbt templater) on the dbt models. The templater compiles each model through dbt, which
    connects to the warehouse even for a model that reads nothing (it fills its relation cache first),
    so this starts the warehouse as every command does."""
    from codegen.dbt_files import DBT_PROJECT_DIR, generate

    generate(_catalog())
    paths = [str(p.relative_to(DBT_PROJECT_DIR)) for pattern in SQL_LINT_GLOBS
             for p in sorted(DBT_PROJECT_DIR.glob(pattern))]
    with _warehouse():
        sqlfluff = str(Path(sys.executable).parent / "sqlfluff")
        return subprocess.call([sqlfluff, "lint", *args.sqlfluff_args, *paths], cwd=DBT_PROJECT_DIR)


def cmd_dev(args: argparse.Namespace) -> int:
    """The Dagster UI on the same warehouse; the embedded server runs as long as the UI does."""
    _catalog()
    with _warehouse() as url:
        from orchestration.instance import prepare_dagster_home

        prepare_dagster_home()
        echo(f"Dagster UI on http://127.0.0.1:{args.port} with warehouse {redact_url(url)}"
             " (Ctrl-C or SIGTERM stops both)")
        dagster = str(Path(sys.executable).parent / "dagster")
        # Its webserver, daemon and code servers are stopped (and waited for) before the warehouse is released.
        code, stopped_by = run_process_group([dagster, "dev", "-m", "orchestration.definitions", "-p", str(args.port)])
        if stopped_by is not None:
            echo(f"Dagster UI stopped ({signal.Signals(stopped_by).name})")
            return EXIT_OK  # asked to stop, and stopped: not a failure
        if code != 0:
            error(f"`dagster dev` ended with exit status {code}; its output above says why"
                  f" (is port {args.port} in use? choose another with --port)")
            return EXIT_FAILED
        return EXIT_OK


def cmd_serve(args: argparse.Namespace) -> int:
    """Webhooks and the operator's API over HTTP; their runs are started by the Dagster daemon's `run_requests`
    sensor (`dataplatform dev` runs one)."""
    catalog = _catalog()
    import uvicorn

    from api.app import API_TOKEN_KEY, create_app
    from secret_store.choice import platform_secret_store

    with _warehouse() as url:
        from orchestration.instance import prepare_dagster_home

        prepare_dagster_home()  # the run ids it answers with are read from the instance the daemon writes
        store = platform_secret_store()
        hooks = [s.id for s in catalog.systems.values() if s.webhook]
        echo(f"serving on http://{args.host}:{args.port} (OpenAPI page: /docs); webhooks: "
             f"{', '.join(f'/hooks/{h}' for h in hooks) or 'none declared'}; runs start once the Dagster daemon"
             " runs (`dataplatform dev`)")
        if not store.has(API_TOKEN_KEY):
            echo(f"note: the operator's API answers 503 until its token is set: {store.describe(API_TOKEN_KEY)}")
        try:
            uvicorn.run(create_app(catalog, url=url), host=args.host, port=args.port, log_level="info")
        except KeyboardInterrupt:  # uvicorn stops on SIGINT, then passes it on
            echo("service stopped (SIGINT)")
        except SystemExit as stop:  # ... and on SIGTERM (see _exit_on_sigterm)
            if stop.code != 128 + signal.SIGTERM:
                raise
            echo("service stopped (SIGTERM)")
    return EXIT_OK


def _check_executor(*, worker: bool = False) -> None:
    """With DATAPLATFORM_EXECUTOR=celery (or for a worker, always): the Celery settings and the broker, checked
    before anything runs, so a typo or a broker that is down is one message, not a run that waits or a traceback."""
    from orchestration.executor import CELERY, ExecutorSettingError, broker_problem, celery_config, executor_kind

    try:
        if executor_kind() != CELERY and not worker:
            return
        broker = celery_config()["broker"]["env"]
    except ExecutorSettingError as err:
        error(str(err))
        raise SystemExit(EXIT_INVALID) from err
    problem = broker_problem(os.environ[broker])
    if problem:
        error(f"{problem}: start it, or fix {broker}")
        raise SystemExit(EXIT_WAREHOUSE)


def cmd_worker(args: argparse.Namespace) -> int:
    """A Celery worker that runs the platform's steps (DATAPLATFORM_EXECUTOR=celery), on this machine, against the
    same warehouse, metadata and Dagster storage as the runs that submit them; it runs until stopped."""
    _catalog()
    _check_executor(worker=True)
    from orchestration.executor import celery_queue

    with _warehouse() as url:
        from orchestration.instance import prepare_dagster_home

        home = prepare_dagster_home()
        name = args.name or f"dataplatform-{os.getpid()}"
        command = [str(Path(sys.executable).parent / "celery"), "-A", "orchestration.celery_worker", "worker",
                   "--queues", celery_queue(), "--hostname", f"{name}@%h", "--loglevel", args.loglevel,
                   "--prefetch-multiplier=1", *(["--concurrency", str(args.concurrency)] if args.concurrency else [])]
        echo(f"Celery worker {name} on queue {celery_queue()!r}: warehouse {redact_url(url)}, Dagster storage"
             f" {home} (Ctrl-C or SIGTERM stops it)")
        code, stopped_by = run_process_group(command)
        if stopped_by is not None:
            echo(f"Celery worker {name} stopped ({signal.Signals(stopped_by).name})")
            return EXIT_OK
        if code != 0:
            error(f"the Celery worker ended with exit status {code}; its output above says why")
            return EXIT_FAILED
        return EXIT_OK


def cmd_metrics(args: argparse.Namespace) -> int:
    """Serve the audit tables as Prometheus metrics on their own port until stopped."""
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    from observability.metrics import metrics_wsgi_app

    class _Quiet(WSGIRequestHandler):
        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
            pass

    with _warehouse() as url:
        with make_server(args.host, args.port, metrics_wsgi_app(url), handler_class=_Quiet) as server:
            echo(f"metrics of the audit tables on http://{args.host}:{args.port}/metrics (Ctrl-C stops)")
            try:
                server.serve_forever()
            except KeyboardInterrupt:
                echo("metrics server stopped")
    return EXIT_OK


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="dataplatform", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="land new data and build every layer (one batch per system)")
    run.add_argument("--system", help="only this system (and what is built from it)")
    run.add_argument("--force", action="store_true", help="re-run the last batch even if it already succeeded")
    run.add_argument("--batch", type=int, help="with --force: the batch to land again (default: the last one)")
    run.set_defaults(func=cmd_run)
    demo = sub.add_parser("demo", help="generate the test system's data and run the pipeline over it, end to end")
    demo.add_argument("--days", type=int, default=3)
    demo.add_argument("--seed", type=int, default=42)
    demo.set_defaults(func=cmd_demo)
    replay_cmd = sub.add_parser("replay", help="rebuild an entity's silver history from a batch on, in batch order")
    replay_cmd.add_argument("--entity", required=True, action="append",
                            help="entity name, as in entities.json (repeat it for several entities)")
    replay_cmd.add_argument("--from-batch", type=int, required=True, help="first batch to apply again")
    replay_cmd.set_defaults(func=cmd_replay)
    skip = sub.add_parser("skip", help="skip a batch that failed in bronze or silver for an entity, so the"
                                       " batches behind it go on (recorded in the audit tables)")
    skip.add_argument("--entity", required=True, help="entity name, as in entities.json")
    skip.add_argument("--batch", type=int, required=True, help="the batch to skip (named by the run that failed)")
    skip.add_argument("--reason", help="why (kept in audit.entity_batch_skip)")
    skip.set_defaults(func=cmd_skip)
    sub.add_parser("validate", help="check all metadata and list every problem").set_defaults(func=cmd_validate)
    sub.add_parser("generate", help="write the dbt files generated from metadata").set_defaults(func=cmd_generate)
    deploy = sub.add_parser("deploy-metadata", help="validate the declaration files and write them to the MongoDB "
                                                    "registry (DATAPLATFORM_MONGODB_URL) as a new version")
    deploy.add_argument("--folder", help="the declarations folder (default: DATAPLATFORM_METADATA_DIR, or the bundled)")
    deploy.set_defaults(func=cmd_deploy_metadata)
    rollback = sub.add_parser("rollback-metadata", help="restore an earlier version of the registry's metadata")
    rollback.add_argument("--to", type=int, metavar="VERSION", help="the version to restore (default: the previous)")
    rollback.set_defaults(func=cmd_rollback_metadata)
    check = sub.add_parser("check", help="per endpoint of a system: does the source answer and accept the"
                                         " credentials (lands nothing, prints no secret)")
    check.add_argument("system", help="system id, as in systems.json")
    check.set_defaults(func=cmd_check)
    cdc = sub.add_parser("cdc", help="change data capture: the replication slots of 'cdc' endpoints")
    cdc_sub = cdc.add_subparsers(dest="cdc_command", required=True)
    drop_slot = cdc_sub.add_parser("drop-slot", help="drop an endpoint's replication slot on the source and forget "
                                                     "its position: the next run takes a new snapshot")
    drop_slot.add_argument("system", help="system id, as in systems.json")
    drop_slot.add_argument("endpoint", help="an endpoint of the system with load 'cdc'")
    drop_slot.set_defaults(func=cmd_cdc_drop_slot)
    status = sub.add_parser("status", help="recent runs from the audit tables, and the CDC slots' retained WAL")
    status.add_argument("--limit", type=int, default=10)
    status.set_defaults(func=cmd_status)
    roles = sub.add_parser("setup-roles", help="create the warehouse's owner and analyst roles; show how to connect")
    roles.add_argument("--new-password", action="append", default=[], metavar="ROLE",
                       help="generate a new password for this role (owner or analyst; repeatable)")
    roles.add_argument("--owner", help="owner role's name on an external warehouse (default dataplatform_owner)")
    roles.add_argument("--analyst", help="analyst role's name on an external warehouse (default analyst)")
    roles.add_argument("--password-dir", help="where generated passwords of an external warehouse's roles are "
                                              "written (default $DATAPLATFORM_HOME/roles)")
    roles.set_defaults(func=cmd_setup_roles)
    dbt = sub.add_parser("dbt", help="run a dbt command on the platform's project, e.g. `dataplatform dbt build`")
    dbt.add_argument("dbt_args", nargs=argparse.REMAINDER)
    dbt.set_defaults(func=cmd_dbt)
    lint_sql = sub.add_parser("lint-sql", help="sqlfluff (dbt templater) on the gold and generated dbt models")
    lint_sql.add_argument("sqlfluff_args", nargs=argparse.REMAINDER, help="passed to `sqlfluff lint`, e.g. -v")
    lint_sql.set_defaults(func=cmd_lint_sql)
    metrics = sub.add_parser("metrics", help="serve Prometheus metrics read from the audit tables")
    metrics.add_argument("--port", type=int, default=9108)
    metrics.add_argument("--host", default="127.0.0.1", help="address to listen on (default loopback only)")
    metrics.set_defaults(func=cmd_metrics)
    dev = sub.add_parser("dev", help="open the Dagster UI on the platform's warehouse")
    dev.add_argument("--port", type=int, default=3000)
    dev.set_defaults(func=cmd_dev)
    serve = sub.add_parser("serve", help="the HTTP service: webhooks and the operator's API (OpenAPI at /docs)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default: this machine only)")
    serve.add_argument("--port", type=int, default=8080)
    serve.set_defaults(func=cmd_serve)
    worker = sub.add_parser("worker", help="run the platform's steps as a Celery worker (DATAPLATFORM_EXECUTOR=celery)")
    worker.add_argument("--name", help="the worker's name (default dataplatform-<pid>; `@<host>` is added)")
    worker.add_argument("--concurrency", type=int, help="steps it runs at once (default: the machine's cores)")
    worker.add_argument("--loglevel", default="INFO", help="Celery's log level (default INFO)")
    worker.set_defaults(func=cmd_worker)
    return p


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # unwinds `finally` blocks: the embedded server is released cleanly


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    private_umask()  # before anything is written: state, logs and landed files are the owner's only
    args = parser().parse_args(argv)
    configure_logging()
    try:
        return int(args.func(args))
    except (SecretStoreUnavailableError, RegistryError) as err:
        error(str(err))
        return EXIT_SERVICE
    except Exception as err:  # noqa: BLE001 - the last stop: one clear message, no secret, no raw traceback
        failure = environment_failure(err)
        if failure is not None:
            error(f"environment: {failure}")
            return EXIT_ENVIRONMENT
        # A defect of the platform: the traceback helps fix it, masked like everything else printed.
        print(redact("".join(traceback.format_exception(err))), file=sys.stderr, flush=True)
        return EXIT_FAILED


if __name__ == "__main__":
    raise SystemExit(main())
