{#- Bronze, by pattern. One macro serves every entity: the generated model passes the pattern and
    the columns derived from the entity's Pydantic model (metadata/columns.py).
      copy:    top-level attributes as they are (a nested object stays JSONB);
      flatten: nested objects become columns named by their path joined with underscores;
      explode: one row per item of a nested list, keyed by the parent key and the item key (or position).
    Batches the quality gate stopped for the entity are left out.
    Append-only and batch-idempotent: the model is incremental with delete+insert on _batch_id, and
    only picks up landing rows newer than what it holds, so a re-landed batch replaces itself. -#}

{% macro bronze_column(column) -%}
    {%- if column.source == 'position' -%}
        cast(item.position as integer)
    {%- else -%}
        {%- set root = 'item.value' if column.source == 'item' else 'landing.payload' -%}
        {%- if column.type == 'jsonb' -%}
            {{ json_extract(root, column.path, as_json=true) }}
        {%- else -%}
            cast({{ json_extract(root, column.path) }} as {{ column.type }})
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}

{% macro bronze_entity(landing_relation, pattern, columns, system_id, entity, list_path=none) %}
select
    landing._batch_id,
    landing._batch_timestamp,
    landing._run_id,
    landing._loaded_at,
    landing._record_no,
    {%- for column in columns %}
    {{ bronze_column(column) }} as {{ adapter.quote(column.name) }}{{ "," if not loop.last }}
    {%- endfor %}
from {{ landing_relation }} as landing
{%- if pattern == 'explode' %}
{{ json_list_items('landing.payload', list_path.split('.'), 'item') }}
{%- endif %}
where landing._batch_id not in ({{ quality_failed_batches(system_id, entity) }})
{%- if is_incremental() %}
  and landing._loaded_at > (select coalesce(max(_loaded_at), '-infinity'::timestamptz) from {{ this }})
{%- endif %}
{% endmacro %}


{#- Batches the quality gate stopped for this entity: its latest quality row for the batch failed. -#}
{% macro quality_failed_batches(system_id, entity) -%}
    select gate.batch_id from (
        select distinct on (batch_id) batch_id, status from audit.entity_layer_run
        where system_id = '{{ system_id }}' and entity = '{{ entity }}' and layer = 'quality'
        order by batch_id, entity_layer_run_id desc
    ) as gate
    where gate.status = 'failed'
{%- endmacro %}
