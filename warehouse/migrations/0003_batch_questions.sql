-- The questions about batches that Python and dbt both ask, each defined once, here.

-- Batches of a system that landed (a landing layer run of the batch succeeded, in any run of it).
create view audit.landed_batch as
select r.system_id, r.batch_id, min(r.source_ref) as source_ref, min(r.batch_timestamp) as batch_timestamp,
       max(l.ended_at) as landed_at
from audit.system_run as r
join audit.system_layer_run as l using (system_run_id)
where l.layer = 'landing' and l.status = 'succeeded'
group by r.system_id, r.batch_id;

-- The quality gate's latest word on each entity of each batch: bronze and silver follow it.
create view audit.latest_gate_result as
select distinct on (system_id, batch_id, entity)
       system_id, batch_id, entity, batch_timestamp, status, records_in, message, entity_layer_run_id
from audit.entity_layer_run
where layer = 'quality'
order by system_id, batch_id, entity, entity_layer_run_id desc;

-- Batches each entity's silver history holds (a replay turns them 'rolled_back' until applied again).
create view audit.silver_applied_batch as
select system_id, entity, batch_id, batch_timestamp, entity_layer_run_id
from audit.entity_layer_run
where layer = 'silver' and status = 'succeeded';
