-- A batch that fails in bronze or silver for an entity fails alone, and holds that entity's later batches
-- back (silver's history must stay in batch order) until the operator deals with it: by landing it again
-- (`dataplatform run --force`: the next build tries it again) or by skipping it (`dataplatform skip`).

-- Batches the operator chose to skip for an entity: never built for it, and no longer holding it back.
create table audit.entity_batch_skip (
    system_id  text not null,
    entity     text not null,
    batch_id   bigint not null,
    skipped_at timestamptz not null default clock_timestamp(),
    skipped_by text not null,
    reason     text,
    primary key (system_id, entity, batch_id)
);

-- Per entity, the batch that holds it back: the oldest batch whose latest bronze/silver word is a failure,
-- unless it was skipped or landed again since. Its later batches wait (see audit.entity_batch_waiting).
create view audit.entity_batch_blocked as
with latest as (
    select distinct on (e.system_id, e.entity, e.batch_id)
           e.system_id, e.entity, e.batch_id, e.batch_timestamp, e.layer, e.status, e.message, e.ended_at
    from audit.entity_layer_run as e
    where e.layer in ('bronze', 'silver') and e.status in ('succeeded', 'failed')
    order by e.system_id, e.entity, e.batch_id, e.entity_layer_run_id desc
)
select distinct on (f.system_id, f.entity)
       f.system_id, f.entity, f.batch_id, f.batch_timestamp, f.layer, f.message, f.ended_at as failed_at
from latest as f
where f.status = 'failed'
  and not exists (select 1 from audit.entity_batch_skip as s
                  where s.system_id = f.system_id and s.entity = f.entity and s.batch_id = f.batch_id)
  and not exists (select 1 from audit.landed_batch as l
                  where l.system_id = f.system_id and l.batch_id = f.batch_id and l.landed_at > f.ended_at)
order by f.system_id, f.entity, f.batch_timestamp, f.batch_id;

-- What bronze and silver leave out for an entity: the batches the operator skipped, and the blocking batch
-- with every batch landed at or after it (by batch timestamp, then id: the order silver applies them in).
create view audit.entity_batch_held as
select s.system_id, s.entity, s.batch_id, 'skipped' as reason, s.batch_id as blocking_batch_id,
       cast(null as timestamptz) as blocking_batch_timestamp
from audit.entity_batch_skip as s
union all
select b.system_id, b.entity, l.batch_id, case when l.batch_id = b.batch_id then 'failed' else 'waiting' end,
       b.batch_id, b.batch_timestamp
from audit.entity_batch_blocked as b
join audit.landed_batch as l
  on l.system_id = b.system_id and (l.batch_timestamp, l.batch_id) >= (b.batch_timestamp, b.batch_id);
