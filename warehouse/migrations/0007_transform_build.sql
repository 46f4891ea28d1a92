-- Every dbt build the dbt step ran, with the hash of the dbt project it built (codegen/dbt_parse.py) and
-- whether it left nothing behind (every selected model built, every test passed). A run that lands
-- nothing, finds no batch waiting for any entity it builds, and whose project is the one the last clean
-- build built, skips dbt altogether (orchestration/assets/transform.py): there is nothing for it to do.
create table audit.transform_build (
    transform_build_id bigserial primary key,
    dagster_run_id text not null,
    project_hash text not null,
    clean boolean not null,
    built_at timestamptz not null default clock_timestamp()
);
