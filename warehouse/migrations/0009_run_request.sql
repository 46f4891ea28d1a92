-- Runs asked for from outside Dagster: a source's webhook call (`POST /hooks/{system_id}`) or the operator's
-- API (`POST /systems/{system_id}/runs`), both served by `dataplatform serve`. Each accepted request is one row;
-- the Dagster sensor `run_requests` turns each into one run of the system's job (run key `run_request:<id>`),
-- so a request starts exactly one run, also after a restart of the service or of Dagster.
create table audit.run_request (
    request_id  bigint generated always as identity primary key,
    system_id   text not null,
    trigger     text not null check (trigger in ('webhook', 'api')),
    -- The sender's delivery id (a webhook's X-Delivery-Id, or generated when it sends none): the same delivery
    -- sent again finds its row here and starts no second run.
    delivery_id text not null,
    received_at timestamptz not null default clock_timestamp(),
    -- What the call carried, without keeping it: the body may hold data (it is not landed from here).
    body_sha256 text,
    body_bytes  integer,
    unique (system_id, delivery_id)
);

-- The minimum interval is measured from a system's latest accepted webhook call.
create index run_request_latest on audit.run_request (system_id, trigger, received_at desc);
