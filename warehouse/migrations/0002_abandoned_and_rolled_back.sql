-- 'abandoned': a run whose process died before it finished (found by the next run of the system).
-- 'rolled_back': a silver batch backed out by `dataplatform replay` (it is then applied again).
alter table audit.system_run drop constraint system_run_status_check,
    add constraint system_run_status_check
    check (status in ('running', 'succeeded', 'failed', 'skipped', 'abandoned'));
alter table audit.system_layer_run drop constraint system_layer_run_status_check,
    add constraint system_layer_run_status_check
    check (status in ('running', 'succeeded', 'failed', 'skipped', 'abandoned'));
alter table audit.entity_layer_run drop constraint entity_layer_run_status_check,
    add constraint entity_layer_run_status_check
    check (status in ('running', 'succeeded', 'failed', 'skipped', 'abandoned', 'rolled_back'));
