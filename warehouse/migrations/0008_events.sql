-- Events, actions and notifications: what the platform says happened, and the work that followed.
--
-- An event is written by the one owner of a batch's life (audit/batches.py, audit/entities.py) in the same
-- statement that finishes the layer or entity row it reports, so an event exists exactly when its audit row
-- says the layer or entity finished. Work triggered by an event runs once per (event, action): the row in
-- audit.action_run is the guard. A notification is sent once per (event, subject, channel).

create table audit.event (
    event_id            bigint generated always as identity primary key,
    kind                text not null check (kind in ('system_layer_processed', 'entity_layer_processed')),
    status              text not null check (status in ('succeeded', 'failed')),
    system_id           text not null,
    entity              text,                    -- null for a system-layer event
    layer               text not null check (layer in ('landing', 'quality', 'bronze', 'silver', 'gold')),
    batch_id            bigint not null,
    system_run_id       bigint references audit.system_run,
    system_layer_run_id bigint references audit.system_layer_run,
    entity_layer_run_id bigint unique references audit.entity_layer_run,
    dagster_run_id      text not null,
    records_in          bigint not null default 0,
    inserted            bigint not null default 0,
    updated             bigint not null default 0,
    deleted             bigint not null default 0,
    entities_succeeded  integer not null default 0,
    entities_failed     integer not null default 0,
    entities_skipped    integer not null default 0,
    message             text,
    created_at          timestamptz not null default clock_timestamp()
);
create index on audit.event (system_id, layer, status);
create index on audit.event (dagster_run_id);

-- One row per action run for an event: the guard that makes an action run once per event.
create table audit.action_run (
    action_run_id  bigint generated always as identity primary key,
    event_id       bigint not null references audit.event,
    action         text not null,
    action_type    text not null,
    status         text not null check (status in ('running', 'succeeded', 'failed')),
    dagster_run_id text not null,
    started_at     timestamptz not null default clock_timestamp(),
    ended_at       timestamptz,
    message        text,
    unique (event_id, action)
);

-- One row per notification: subject 'failure' (the event's own failure) or 'action <name>' (an action that
-- failed on the event), per channel. A retry finds the row and sends nothing again.
create table audit.notification (
    notification_id bigint generated always as identity primary key,
    event_id        bigint not null references audit.event,
    subject         text not null,
    channel         text not null,
    status          text not null check (status in ('sending', 'sent', 'failed')),
    created_at      timestamptz not null default clock_timestamp(),
    sent_at         timestamptz,
    title           text not null,
    message         text,
    unique (event_id, subject, channel)
);

-- What a python action trained: the shipped example (actions/examples/owner_fleet_model.py) writes here.
create table audit.model_training (
    model_training_id bigint generated always as identity primary key,
    action            text not null,
    event_id          bigint not null references audit.event,
    batch_id          bigint not null,
    model             text not null,
    model_path        text not null,
    rows_trained      integer not null,
    metrics           jsonb not null,
    trained_at        timestamptz not null default clock_timestamp(),
    unique (action, event_id)
);
