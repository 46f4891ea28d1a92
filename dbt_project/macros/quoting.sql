{#- Every value that comes from metadata (or from anywhere but the macro's own text) reaches SQL through
    one of these two: an identifier quoted, a value as a string literal. `validate` already restricts
    names and paths to plain ASCII; these make a value that slipped through harmless instead of code.
    (adapter.quote does not escape a double quote inside the name, so it is not enough on its own.) -#}

{% macro quote_identifier(name) -%}
    {{ return(adapter.dispatch('quote_identifier', 'dataplatform')(name)) }}
{%- endmacro %}

{% macro default__quote_identifier(name) -%}
    {%- if '"' in (name | string) or '`' in (name | string) -%}
        {{ exceptions.raise_compiler_error("identifier " ~ (name | tojson) ~ " holds a quote character") }}
    {%- endif -%}
    {{ return(adapter.quote(name | string)) }}
{%- endmacro %}

{% macro postgres__quote_identifier(name) -%}
    {{ return('"' ~ (name | string).replace('"', '""') ~ '"') }}
{%- endmacro %}

{#- `a, b, c` of quoted identifiers (a primary key, a column list). -#}
{% macro quote_identifiers(names) -%}
    {%- set quoted = [] -%}
    {%- for name in names -%}{%- do quoted.append(quote_identifier(name)) -%}{%- endfor -%}
    {{ return(quoted | join(', ')) }}
{%- endmacro %}

{#- A string literal: quotes doubled; with a backslash, an E'' string with backslashes doubled too, so it
    reads the same whatever `standard_conforming_strings` says (as metadata/columns.py's json_path_literal). -#}
{% macro sql_literal(value) -%}
    {%- set text = (value | string).replace("'", "''") -%}
    {%- if '\\' in text -%}
        {{ return("E'" ~ text.replace('\\', '\\\\') ~ "'") }}
    {%- endif -%}
    {{ return("'" ~ text ~ "'") }}
{%- endmacro %}
