{#- Bronze, by pattern. One macro serves every entity: the generated model passes the pattern and
    the columns derived from the entity's Pydantic model (metadata/columns.py), each with its JSON path
    as SQL (`path_sql`; `list_path_sql` for explode's list), so every path is read as the quality gate reads it.
      copy:    top-level attributes as they are (a nested object stays JSONB);
      flatten: nested objects become columns named by their path joined with underscores;
      explode: one row per item of a nested list, keyed by the parent key and the item key (or position).
    Batches the quality gate stopped for the entity are left out, and so are the batches held back for it
    (audit.entity_batch_held: a batch that failed in bronze or silver, the batches behind it, and the
    batches the operator skipped), so one bad batch fails alone instead of failing every later build.
    Append-only and batch-idempotent: the model is incremental with batch_replace on _batch_id (below), and
    only picks up landing rows newer than what it holds, so a re-landed batch replaces itself.
    An entity that declares how a record says its key was deleted (`deleted_when`) gets a `_deleted` column:
    `deleted_sql` is that test over `{record}` (metadata/deletes.py, the definition the quality gate uses too).
    Delete records are records of the batch: they reach bronze like any other, flagged. -#}

{% macro bronze_column(column) -%}
    {%- if column.source == 'position' -%}
        cast(item.position as integer)
    {%- else -%}
        {%- set root = 'item.value' if column.source == 'item' else 'landing.payload' -%}
        {%- if column.type == 'jsonb' -%}
            {{ json_extract(root, column.path_sql, as_json=true) }}
        {%- else -%}
            {#- cast_sql (and untag_sql, for a value that may be a MongoDB Extended JSON tagged object) come from
                metadata/value_types.py, the definition the quality gate checks by. -#}
            {%- if column.untag_sql -%}
                {%- set text = '(' ~ (column.untag_sql | replace('{json}', json_extract(root, column.path_sql, as_json=true))) ~ " #>> '{}')" -%}
            {%- else -%}
                {%- set text = json_extract(root, column.path_sql) -%}
            {%- endif -%}
            {{ column.cast_sql | replace('{value}', text) }}
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}

{% macro bronze_entity(landing_relation, pattern, columns, system_id, entity, list_path_sql=none, deleted_sql=none) %}
select
    landing._batch_id,
    landing._batch_timestamp,
    landing._run_id,
    landing._loaded_at,
    landing._record_no,
    {%- for column in columns %}
    {{ bronze_column(column) }} as {{ quote_identifier(column.name) }}{{ "," if not loop.last }}
    {%- endfor %}
    {%- if deleted_sql is not none %},
    {{ deleted_sql | replace('{record}', 'landing.payload') }} as _deleted
    {%- endif %}
from {{ landing_relation }} as landing
{%- if pattern == 'explode' %}
{{ json_list_items('landing.payload', list_path_sql, 'item') }}
{%- endif %}
where landing._batch_id not in ({{ quality_failed_batches(system_id, entity) }})
  and landing._batch_id not in ({{ held_batches(system_id, entity) }})
{%- if is_incremental() %}
  and landing._loaded_at > (select coalesce(max(_loaded_at), '-infinity'::timestamptz) from {{ this }})
{%- endif %}
{% endmacro %}


{#- Batches the quality gate stopped for this entity (audit.latest_gate_result: its latest word). -#}
{% macro quality_failed_batches(system_id, entity) -%}
    select gate.batch_id from audit.latest_gate_result as gate
    where gate.system_id = {{ sql_literal(system_id) }} and gate.entity = {{ sql_literal(entity) }}
      and gate.status = 'failed'
{%- endmacro %}


{#- Batches held back for this entity (audit.entity_batch_held): the one that failed in bronze or silver and
    every later one (they wait: history stays in order), and those the operator skipped. A replay from a batch
    (`replay_from`, a batch id) releases the failures at or after that batch: the replay applies them again. -#}
{% macro held_batches(system_id, entity, replay_from=none) -%}
    select held.batch_id from audit.entity_batch_held as held
    where held.system_id = {{ sql_literal(system_id) }} and held.entity = {{ sql_literal(entity) }}
    {%- if replay_from is not none %}
      and (held.reason = 'skipped' or held.blocking_batch_timestamp
           < (select min(r.batch_timestamp) from audit.system_run as r where r.batch_id = {{ replay_from }}))
    {%- endif %}
{%- endmacro %}


{#- The bronze models' incremental strategy (`incremental_strategy='batch_replace'`): dbt's delete+insert, with
    the delete scoped by the batch ids of the new rows as an array, so PostgreSQL finds the rows to replace by
    the _batch_id index. dbt's own `where _batch_id in (select distinct ...)` is planned as a hash join over a
    scan of the whole bronze table, which makes every batch slower than the last as history grows. -#}
{% macro get_incremental_batch_replace_sql(arg_dict) %}
    {%- set unique_key = arg_dict['unique_key'] -%}
    {%- if unique_key is not string -%}
        {{ exceptions.raise_compiler_error("batch_replace needs one unique_key column (the batch id), got "
                                           ~ (unique_key | tojson)) }}
    {%- endif -%}
    {%- set columns = get_quoted_csv(arg_dict['dest_columns'] | map(attribute='name')) -%}
    delete from {{ arg_dict['target_relation'] }}
    where {{ unique_key }} = any(array(select distinct {{ unique_key }} from {{ arg_dict['temp_relation'] }}));
    insert into {{ arg_dict['target_relation'] }} ({{ columns }})
    select {{ columns }} from {{ arg_dict['temp_relation'] }}
{% endmacro %}
