-- Runs that failed for a reason no event reports: a platform run (a system's job, run_all, a materialization
-- from the UI) whose failing step wrote no failed layer or entity event, because it failed before any layer row
-- existed (the landing lock busy, a missing delivery folder, a source refusing the credentials, a missing
-- secret) or outside the layers (an error of the step itself). One row per Dagster run, written by whichever
-- sees it first: the CLI when its run ends, or the `platform_run_failures` sensor; the sensor notifies it.
create table audit.run_failure (
    run_failure_id bigint generated always as identity primary key,
    dagster_run_id text not null unique,
    job_name       text not null,
    systems        text[] not null,          -- the systems the run was for (empty: not known)
    steps          text[] not null,          -- its failed steps that no event reports (empty: the run itself)
    message        text not null,            -- each such step's error, masked
    recorded_at    timestamptz not null default clock_timestamp()
);

-- A notification is of an event (its failure, or an action that failed on it) or of a run failure; either way
-- one row per (what, subject, channel), so a re-evaluation or a retry finds it and sends nothing again.
alter table audit.notification
    alter column event_id drop not null,
    add column run_failure_id bigint references audit.run_failure,
    add constraint notification_of_one check (num_nonnulls(event_id, run_failure_id) = 1),
    add constraint notification_run_failure_once unique (run_failure_id, subject, channel);
