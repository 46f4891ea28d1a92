{#- A model's folder names its schema (bronze, silver, gold) as it is, without the target's prefix,
    so every environment has the same schema names the analyst queries. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}{{ target.schema }}{%- else -%}{{ custom_schema_name | trim }}{%- endif -%}
{%- endmacro %}
