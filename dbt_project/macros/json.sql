{#- Dialect-specific JSON access lives here, behind adapter.dispatch, so the patterns stay portable.
    A path comes as `path_sql`: the SQL literal of the path that metadata/columns.py's json_path_literal
    makes (the one definition, shared with the quality gate; it quotes any key), never built here. -#}

{% macro json_extract(expr, path_sql, as_json=false) -%}
    {{ return(adapter.dispatch('json_extract', 'dataplatform')(expr, path_sql, as_json)) }}
{%- endmacro %}

{% macro postgres__json_extract(expr, path_sql, as_json) -%}
    {%- if as_json -%}({{ expr }} #> {{ path_sql }}){%- else -%}({{ expr }} #>> {{ path_sql }}){%- endif -%}
{%- endmacro %}

{#- One row per element of the JSON list at `path_sql` (null or not-a-list gives no rows), with its
    1-based position: `<alias>.value` and `<alias>.position`. The quality gate reads a list the same way. -#}
{% macro json_list_items(expr, path_sql, alias) -%}
    {{ return(adapter.dispatch('json_list_items', 'dataplatform')(expr, path_sql, alias)) }}
{%- endmacro %}

{% macro postgres__json_list_items(expr, path_sql, alias) -%}
    {#- generate_series, not `with ordinality`: dbt's CTE injection (unit tests) mistakes that WITH for a CTE. -#}
    cross join lateral (
        select list.items -> (n - 1) as value, n as position
        from (
            select case when jsonb_typeof({{ json_extract(expr, path_sql, as_json=true) }}) = 'array'
                then {{ json_extract(expr, path_sql, as_json=true) }} else '[]'::jsonb end as items
        ) as list
        cross join generate_series(1, jsonb_array_length(list.items)) as n
    ) as {{ alias }}
{%- endmacro %}
