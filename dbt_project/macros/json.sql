{#- Dialect-specific JSON access lives here, behind adapter.dispatch, so the patterns stay portable. -#}

{% macro json_extract(expr, path, as_json=false) -%}
    {{ return(adapter.dispatch('json_extract', 'dataplatform')(expr, path, as_json)) }}
{%- endmacro %}

{% macro postgres__json_extract(expr, path, as_json) -%}
    {%- set literal = "'{" ~ (path | join(',')) ~ "}'" -%}
    {%- if as_json -%}({{ expr }} #> {{ literal }}){%- else -%}({{ expr }} #>> {{ literal }}){%- endif -%}
{%- endmacro %}

{#- One row per element of the JSON list at `path` (null or not-a-list gives no rows), with its
    1-based position: `<alias>.value` and `<alias>.position`. -#}
{% macro json_list_items(expr, path, alias) -%}
    {{ return(adapter.dispatch('json_list_items', 'dataplatform')(expr, path, alias)) }}
{%- endmacro %}

{% macro postgres__json_list_items(expr, path, alias) -%}
    {#- generate_series, not `with ordinality`: dbt's CTE injection (unit tests) mistakes that WITH for a CTE. -#}
    cross join lateral (
        select list.items -> (n - 1) as value, n as position
        from (
            select case when jsonb_typeof({{ json_extract(expr, path, as_json=true) }}) = 'array'
                then {{ json_extract(expr, path, as_json=true) }} else '[]'::jsonb end as items
        ) as list
        cross join generate_series(1, jsonb_array_length(list.items)) as n
    ) as {{ alias }}
{%- endmacro %}
