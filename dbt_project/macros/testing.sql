{#- Test-only fault injection, the dbt side of testing/fault_points.py: with
    DATAPLATFORM_FAULT_PAUSE=<point>:<seconds>, pause at that point (inside the open transaction) so a
    test can kill the run there. Renders nothing otherwise. -#}
{% macro fault_pause(point) %}
    {%- set setting = env_var('DATAPLATFORM_FAULT_PAUSE', '') -%}
    {%- if setting.split(':')[0] == point %}
        {% call statement('fault_pause_' ~ point) %}
            select pg_sleep({{ setting.split(':')[1] | float }}) /* dataplatform_fault:{{ point }} */
        {% endcall %}
    {%- endif %}
{% endmacro %}
