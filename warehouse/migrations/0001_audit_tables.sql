-- The audit schema: what ran, when, on which batch, and what it did to every layer.
-- One ingestion run of a system is one batch (batch_id); a forced re-run of the same delivery
-- is a new system_run of the same batch.

create schema if not exists landing;
create schema if not exists bronze;
create schema if not exists silver;
create schema if not exists gold;

create sequence audit.batch_id_seq;

create table audit.system_run (
    system_run_id      bigint generated always as identity primary key,
    batch_id           bigint not null,
    system_id          text not null,
    source_ref         text not null,          -- what was loaded (a delivery folder, a cursor value)
    batch_timestamp    timestamptz not null,   -- when the source data was taken; drives valid_from/valid_to
    dagster_run_id     text not null,
    status             text not null check (status in ('running', 'succeeded', 'failed', 'skipped')),
    started_at         timestamptz not null default clock_timestamp(),
    ended_at           timestamptz,
    entities_succeeded integer not null default 0,
    entities_failed    integer not null default 0,
    entities_skipped   integer not null default 0,
    message            text
);
create index on audit.system_run (system_id, source_ref);
create index on audit.system_run (dagster_run_id);

create table audit.system_layer_run (
    system_layer_run_id bigint generated always as identity primary key,
    system_run_id       bigint not null references audit.system_run,
    batch_id            bigint not null,
    layer               text not null check (layer in ('landing', 'quality', 'bronze', 'silver', 'gold')),
    status              text not null check (status in ('running', 'succeeded', 'failed', 'skipped')),
    started_at          timestamptz not null default clock_timestamp(),
    ended_at            timestamptz,
    entities_succeeded  integer not null default 0,
    entities_failed     integer not null default 0,
    entities_skipped    integer not null default 0,
    message             text,
    unique (system_run_id, layer)
);

-- entity is the entity name, or the endpoint name for the landing layer.
create table audit.entity_layer_run (
    entity_layer_run_id bigint generated always as identity primary key,
    system_layer_run_id bigint references audit.system_layer_run,
    batch_id            bigint not null,
    batch_timestamp     timestamptz,
    system_id           text not null,
    entity              text not null,
    layer               text not null check (layer in ('landing', 'quality', 'bronze', 'silver', 'gold')),
    status              text not null check (status in ('running', 'succeeded', 'failed', 'skipped')),
    started_at          timestamptz not null default clock_timestamp(),
    ended_at            timestamptz,
    records_in          bigint not null default 0,
    inserted            bigint not null default 0,
    updated             bigint not null default 0,
    deleted             bigint not null default 0,
    dagster_run_id      text not null,
    message             text
);
create index on audit.entity_layer_run (system_id, entity, layer, batch_id);
create index on audit.entity_layer_run (dagster_run_id);

-- Where each source endpoint's extraction stands (for json_files: the last delivery loaded).
create table audit.cursor (
    system_id  text not null,
    endpoint   text not null,
    value      text not null,
    batch_id   bigint not null,
    updated_at timestamptz not null default clock_timestamp(),
    primary key (system_id, endpoint)
);
