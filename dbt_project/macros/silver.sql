{#- Silver: SCD2 history per entity, applied batch by batch.

    The model's SELECT (silver_stage) is the bronze rows of every batch, one row per key and batch
    (the last record of the batch wins), with a hash of the SCD2 attributes. The scd2_history
    materialization then applies the batches that landed but are not yet in silver, in batch order.

    Why not a dbt snapshot: a snapshot sees only the current state of its query, so it cannot apply
    several pending batches in order with each batch's own timestamp, cannot overwrite SCD1 attributes
    in earlier versions, and cannot tell a re-sent batch from a new one. This materialization can:
      - valid_from / valid_to are batch timestamps;
      - SCD1 attributes are overwritten in every version of the key;
      - for `full` loads, a key missing from a batch closes its current version;
      - a delete record (the entity's `deleted_when`, bronze's `_deleted`) closes its key's current version,
        in a `delta` or a `full` load; its other values open no version and overwrite no SCD1 attribute,
        and a delete for a key with no current version changes nothing;
      - each applied batch is recorded in audit.entity_layer_run, so applying it again changes nothing;
      - a batch older than one already applied is refused (it would rewrite history).
    Everything runs in the model's one transaction: a crash leaves silver as it was. -#}

{% macro silver_stage(bronze_relation, primary_key, columns, scd2_columns, deletes=false) -%}
    {{ return(adapter.dispatch('silver_stage', 'dataplatform')(bronze_relation, primary_key, columns, scd2_columns,
                                                                 deletes)) }}
{%- endmacro %}

{#- scd2_columns: [{"name": ..., "type": ...}], the SCD2 attributes with their declared types (see scd2_hash).
    deletes: the entity declares delete records; the stage carries bronze's `_deleted` (null in bronze rows built
    before the marker was declared: not a delete). -#}
{% macro postgres__silver_stage(bronze_relation, primary_key, columns, scd2_columns, deletes) %}
select distinct on (_batch_id, {{ quote_identifiers(primary_key) }})
    _batch_id,
    _batch_timestamp,
    {%- for column in columns %}
    {{ quote_identifier(column) }},
    {%- endfor %}
    {{ scd2_hash(scd2_columns) }} as _scd2_hash
    {%- if deletes %},
    coalesce(_deleted, false) as _deleted
    {%- endif %}
from {{ bronze_relation }}
order by _batch_id, {{ quote_identifiers(primary_key) }}, _record_no desc
{% endmacro %}


{#- The value rule: a version's SCD2 hash depends on the values of its SCD2 attributes as their declared
    types, never on how a value was written or on a session setting, so a new version opens only when
    a value changed:
      numeric            as a number: 1 = 1.0 = 1.00 (trailing fraction zeros dropped, trim_scale);
      double precision   by its exact binary value (float8send; -0 counts as 0), not its printed form,
                         which extra_float_digits changes;
      timestamptz        as an instant: its UTC time to the microsecond (to_char at time zone 'UTC'), which
                         TimeZone and DateStyle do not change;
      date               its ISO text (to_char), which DateStyle does not change;
      jsonb              jsonb's own text: key order, whitespace and duplicate keys do not count (numbers
                         inside keep their written form: 1.0 and 1 in a JSON attribute differ);
      text, bigint, integer, boolean: their text, which no setting changes.
    null (SQL NULL, which bronze gives for an absent key too) is one value: absent and null are the same
    for history. `relation` prefixes the column names (for re-hashing a table's stored versions). -#}
{% macro scd2_hash(columns, relation=none) -%}
    {{ return(adapter.dispatch('scd2_hash', 'dataplatform')(columns, relation)) }}
{%- endmacro %}

{% macro postgres__scd2_hash(columns, relation) -%}
    md5(cast(row({% for column in columns %}{{ postgres__scd2_value(column, relation) }}{{ ", " if not loop.last }}{% else %}''{% endfor %}) as text))
{%- endmacro %}

{% macro postgres__scd2_value(column, relation) -%}
    {%- set x = (relation ~ '.' if relation else '') ~ quote_identifier(column.name) -%}
    {#- Types as the generator names them, or as format_type names the stored columns (re-hash). -#}
    {%- set type = (column.type | lower).split('(')[0] | trim | replace('timestamp with time zone', 'timestamptz') -%}
    {%- if type == 'numeric' -%}
        trim_scale({{ x }})
    {%- elif type == 'double precision' -%}
        encode(float8send({{ x }} + cast(0 as double precision)), 'hex')
    {%- elif type == 'timestamptz' -%}
        case when isfinite({{ x }}) then to_char({{ x }} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US') else cast({{ x }} as text) end
    {%- elif type == 'date' -%}
        case when isfinite({{ x }}) then to_char({{ x }}, 'YYYY-MM-DD') else cast({{ x }} as text) end
    {%- else -%}
        {{ x }}
    {%- endif -%}
{%- endmacro %}

{#- A batch's staged content as silver applied it: row count and an order-independent sum of each row's
    hash over every column by the value rule above (no sort, one pass). Compared when a batch is landed
    again (`run --force`), to re-apply it only when its values changed. -#}
{% macro _content_fingerprint(columns, relation) -%}
    cast(count(*) as text) || ':' || cast(coalesce(sum(cast(hashtextextended(cast(row(
        {%- for column in columns %}{{ postgres__scd2_value(column, relation) }}{{ ", " if not loop.last }}{% endfor -%}
    ) as text), 0) as numeric)), 0) as text)
{%- endmacro %}

{#- Marks a silver table whose stored _scd2_hash values follow the value rule above (a column comment):
    a table built by an earlier rule is re-hashed once, so changing the rule opens no version. -#}
{% macro _scd2_hash_rule() -%}dataplatform scd2_hash: values v1{%- endmacro %}


{% macro _key_match(left, right, primary_key) -%}
    {%- for key in primary_key -%}
        {{ left }}.{{ quote_identifier(key) }} = {{ right }}.{{ quote_identifier(key) }}{{ " and " if not loop.last }}
    {%- endfor -%}
{%- endmacro %}


{% macro _rows_affected(name) -%}
    {{ return(load_result(name)['response'].rows_affected) }}
{%- endmacro %}


{% materialization scd2_history, adapter='postgres' %}
    {%- set target = this.incorporate(type='table') -%}
    {%- set primary_key = config.require('primary_key') -%}
    {%- set scd1_columns = config.get('scd1_columns', []) -%}
    {%- set load_type = config.require('load_type') -%}
    {%- set system_id = config.require('system_id') -%}
    {%- set entity = config.require('entity') -%}
    {%- set run_id = env_var('DATAPLATFORM_RUN_ID', invocation_id) -%}

    {{ run_hooks(pre_hooks, inside_transaction=False) }}
    {{ run_hooks(pre_hooks, inside_transaction=True) }}

    {#- The stage's columns and their exact types, from an empty probe of the model's query; `_deleted` (the
        record is a delete) is the stage's, not a column of the table. -#}
    {% call statement('probe', fetch_result=True) %}
        create temporary table __dp_probe on commit drop as select * from ({{ sql }}) as stage with no data;
        select attname, format_type(atttypid, atttypmod) from pg_attribute
        where attrelid = '__dp_probe'::regclass and attnum > 0 and not attisdropped
          and attname not in ('_batch_id', '_batch_timestamp')
        order by attnum;
    {% endcall %}
    {%- set data_columns = [] -%}
    {%- set deletes = namespace(on=false) -%}
    {%- for column in load_result('probe')['table'].rows -%}
        {%- if column[0] == '_deleted' -%}{%- set deletes.on = true -%}{%- else -%}{%- do data_columns.append(column) -%}{%- endif -%}
    {%- endfor -%}
    {%- set quoted_columns = [] -%}
    {%- for column in data_columns -%}{%- do quoted_columns.append(quote_identifier(column[0])) -%}{%- endfor -%}

    {%- if load_cached_relation(this) is none %}
        {% call statement('create_target') %}
            create table {{ target }} (
                {%- for column in data_columns %}
                {{ quote_identifier(column[0]) }} {{ column[1] }},
                {%- endfor %}
                valid_from timestamptz not null,
                valid_to timestamptz,
                _opened_by_batch_id bigint not null,
                _closed_by_batch_id bigint,
                _modified_by_batch_id bigint not null,
                _modified_by_run_id text not null
            );
            create unique index on {{ target }} ({{ quote_identifiers(primary_key) }}) where valid_to is null;
            create index on {{ target }} ({{ quote_identifiers(primary_key) }}, valid_from);
        {% endcall %}
    {%- else %}
        {#- A new attribute in the entity model becomes a new column; old versions hold null. -#}
        {%- set existing_names = adapter.get_columns_in_relation(target) | map(attribute='name') | list -%}
        {%- for column in data_columns if column[0] not in existing_names %}
            {% call statement('add_column_' ~ column[0]) %}
                alter table {{ target }} add column {{ quote_identifier(column[0]) }} {{ column[1] }};
            {% endcall %}
        {%- endfor %}
    {%- endif %}

    {#- Stored versions hashed by an earlier rule are re-hashed by this one (see _scd2_hash_rule). -#}
    {%- set scd2_typed = [] -%}
    {%- for column in data_columns if column[0] not in primary_key + scd1_columns + ['_scd2_hash'] -%}
        {%- do scd2_typed.append({'name': column[0], 'type': column[1]}) -%}
    {%- endfor -%}
    {% call statement('hash_rule', fetch_result=True) %}
        select col_description(attrelid, attnum) from pg_attribute
        where attrelid = '{{ target }}'::regclass and attname = '_scd2_hash'
    {% endcall %}
    {%- if load_result('hash_rule')['table'].rows[0][0] != _scd2_hash_rule() %}
        {% call statement('rehash') %}
            update {{ target }} as t set _scd2_hash = {{ scd2_hash(scd2_typed, 't') }}
            where t._scd2_hash is distinct from {{ scd2_hash(scd2_typed, 't') }};
            comment on column {{ target }}._scd2_hash is '{{ _scd2_hash_rule() }}';
        {% endcall %}
    {%- endif %}

    {%- set entity_filter -%}
        system_id = {{ sql_literal(system_id) }} and entity = {{ sql_literal(entity) }}
    {%- endset -%}

    {#- Replay (dataplatform replay): back silver out to its state before the batch, inside this same
        transaction, so the pending batches below are that batch and every later one, re-applied in order. -#}
    {%- set replay_from = fromjson(env_var('DATAPLATFORM_REPLAY', '{}')).get(system_id ~ '.' ~ entity) -%}
    {%- set content_columns = [] -%}
    {%- for column in data_columns if column[0] != '_scd2_hash' -%}
        {%- do content_columns.append({'name': column[0], 'type': column[1]}) -%}
    {%- endfor -%}
    {%- if deletes.on -%}{%- do content_columns.append({'name': '_deleted', 'type': 'boolean'}) -%}{%- endif -%}

    {#- A batch silver applied that was landed again since (`run --force`): if its values changed, silver is
        backed out to before it and it is applied again with every later batch (as a replay from it would);
        the same values change nothing. -#}
    {%- set relanded = namespace(batch=none) -%}
    {%- if replay_from is none %}
        {% call statement('relanded', fetch_result=True) %}
            select a.batch_id, e.content_fingerprint from audit.silver_applied_batch as a
            join audit.entity_layer_run as e using (entity_layer_run_id)
            join audit.landed_batch as l on l.system_id = a.system_id and l.batch_id = a.batch_id
            where a.system_id = {{ sql_literal(system_id) }} and a.entity = {{ sql_literal(entity) }}
              and l.landed_at > (select max(x.ended_at) from audit.entity_layer_run as x
                                 where x.system_id = a.system_id and x.entity = a.entity and x.batch_id = a.batch_id
                                   and x.layer = 'silver' and x.status in ('succeeded', 'skipped'))
            order by a.batch_timestamp, a.batch_id
        {% endcall %}
        {%- for row in load_result('relanded')['table'].rows if relanded.batch is none %}
            {% call statement('relanded_' ~ row[0], fetch_result=True) %}
                select {{ _content_fingerprint(content_columns, 's') }}
                from ({{ sql }}) as s where s._batch_id = {{ row[0] }}
            {% endcall %}
            {%- if load_result('relanded_' ~ row[0])['table'].rows[0][0] != row[1] -%}
                {%- set relanded.batch = row[0] -%}
            {%- endif -%}
        {%- endfor %}
    {%- endif %}
    {%- if replay_from is not none %}
        {{ _silver_rewind(target, sql, replay_from, primary_key, scd1_columns, entity_filter, deletes.on) }}
    {%- elif relanded.batch is not none %}
        {{ _silver_rewind(target, sql, relanded.batch, primary_key, scd1_columns, entity_filter, deletes.on) }}
    {%- endif %}

    {#- Batches to apply: landed, not yet in silver, not stopped by the quality gate for this entity
        (the gate's latest word on a batch counts), and not held back (a batch that failed in bronze or
        silver and those behind it, or a batch the operator skipped). Ordered by batch timestamp. -#}
    {%- call statement('pending', fetch_result=True) %}
        with applied as (
            select batch_id, batch_timestamp from audit.silver_applied_batch where {{ entity_filter }}
        ),
        last_applied as (
            select batch_id, cast(batch_timestamp as text) as batch_timestamp from applied
            order by batch_timestamp desc, batch_id desc limit 1
        )
        select landed.batch_id, cast(landed.batch_timestamp as text) as batch_timestamp,
               (select batch_timestamp from last_applied) as last_applied_timestamp,
               (select batch_id from last_applied) as last_applied_batch
        from audit.landed_batch as landed
        where landed.system_id = {{ sql_literal(system_id) }}
          and not exists (select 1 from applied where applied.batch_id = landed.batch_id)
          and landed.batch_id not in ({{ quality_failed_batches(system_id, entity) }})
          and landed.batch_id not in ({{ held_batches(system_id, entity, replay_from) }})
        order by landed.batch_timestamp, landed.batch_id
    {%- endcall %}
    {%- set pending = load_result('pending')['table'] -%}

    {%- for batch in pending.rows %}
        {%- set batch_id = batch[0] -%}
        {%- set batch_ts = "cast(" ~ sql_literal(batch[1]) ~ " as timestamptz)" -%}
        {%- if batch[2] is not none and (batch[2] | string) >= (batch[1] | string) -%}
            {{ exceptions.raise_compiler_error(
                "silver." ~ this.identifier ~ ": batch " ~ batch_id ~ " (" ~ batch[1] ~ ") is older than batch "
                ~ batch[3] ~ " (" ~ batch[2] ~ "), which is already applied; applying it now would rewrite history. "
                ~ "Apply it in order with: dataplatform replay --entity " ~ entity ~ " --from-batch " ~ batch_id) }}
        {%- endif -%}

        {#- Not analyzed: the stage is only read whole (the fingerprint, the one join that finds the changes), and
            for that the planner's row count from its size is enough; ANALYZE cost a quarter of a day-2 batch. -#}
        {% call statement('stage_' ~ batch_id) %}
            create temporary table __dp_stage on commit drop as
            select * from ({{ sql }}) as stage where stage._batch_id = {{ batch_id }};
        {% endcall %}
        {% call statement('records_in_' ~ batch_id, fetch_result=True) %}
            select count(*), {{ _content_fingerprint(content_columns, 's') }},
                   not exists (select 1 from {{ target }}) from __dp_stage as s
        {% endcall %}
        {%- set staged = load_result('records_in_' ~ batch_id)['table'].rows[0] -%}

        {%- if staged[2] %}
            {#- An empty table (the first batch): every staged key opens its first version (a delete: none). -#}
            {%- set updated, deleted = 0, 0 -%}
            {{ fault_pause('silver') }}
            {% call statement('insert_' ~ batch_id) %}
                insert into {{ target }} ({{ quoted_columns | join(', ') }}, valid_from, valid_to,
                    _opened_by_batch_id, _modified_by_batch_id, _modified_by_run_id)
                select {% for name in quoted_columns %}s.{{ name }}, {% endfor %}{{ batch_ts }}, null,
                    {{ batch_id }}, {{ batch_id }}, {{ sql_literal(run_id) }}
                from __dp_stage as s
                {%- if deletes.on %}
                where not s._deleted
                {%- endif %}
            {% endcall %}
        {%- else %}
        {#- One pass over the batch and the current versions finds every key that changes: new (no current
            version), changed (SCD2 hash differs), SCD1 attributes changed, for full loads missing (a current
            version whose key is not in the batch), and deleted (a delete record for a key with a current version;
            one for a key with none is left out: nothing to close). Only those keys are written, each by its
            key's index. -#}
        {% call statement('delta_' ~ batch_id) %}
            create temporary table __dp_delta on commit drop as
            select
                {%- for column in data_columns %}
                {%- set name = quote_identifier(column[0]) %}
                {% if column[0] in primary_key %}coalesce(s.{{ name }}, c.{{ name }}){% else %}s.{{ name }}{% endif %} as {{ name }},
                {%- endfor %}
                case when s._batch_id is null then 'missing'{% if deletes.on %} when s._deleted then 'deleted'{% endif %}
                     when c._dp_current is null then 'new'
                     when c._scd2_hash <> s._scd2_hash then 'changed' else 'scd1' end as _dp_change
            from __dp_stage as s
            {{ 'full' if load_type == 'full' else 'left' }} join (
                select {{ quote_identifiers(primary_key) }}, _scd2_hash,
                       {%- for column in scd1_columns %} {{ quote_identifier(column) }},{% endfor %} true as _dp_current
                from {{ target }} where valid_to is null
            ) as c on {{ _key_match('c', 's', primary_key) }}
            where s._batch_id is null
            {%- if deletes.on %}
               or (s._deleted and c._dp_current)
            {%- endif %}
               or ({{ 'not s._deleted and ' if deletes.on else '' }}(c._dp_current is null or c._scd2_hash <> s._scd2_hash
            {%- if scd1_columns %}
               or (
                {%- for column in scd1_columns -%}c.{{ quote_identifier(column) }}{{ ", " if not loop.last }}{%- endfor -%}
               ) is distinct from (
                {%- for column in scd1_columns -%}s.{{ quote_identifier(column) }}{{ ", " if not loop.last }}{%- endfor -%}
               )
            {%- endif %}));
            analyze __dp_delta;
        {% endcall %}

        {#- One UPDATE per batch: closes current versions whose SCD2 hash changed and overwrites SCD1
            attributes in every version of the key, so each touched row is counted once. -#}
        {% call statement('update_' ~ batch_id) %}
            update {{ target }} as t set
                {%- for column in scd1_columns %}
                {{ quote_identifier(column) }} = s.{{ quote_identifier(column) }},
                {%- endfor %}
                valid_to = case when t.valid_to is null and s._dp_change = 'changed' then {{ batch_ts }} else t.valid_to end,
                _closed_by_batch_id = case when t.valid_to is null and s._dp_change = 'changed'
                    then {{ batch_id }} else t._closed_by_batch_id end,
                _modified_by_batch_id = {{ batch_id }},
                _modified_by_run_id = {{ sql_literal(run_id) }}
            from __dp_delta as s
            where {{ _key_match('t', 's', primary_key) }} and s._dp_change not in ('missing', 'deleted')
              and ((t.valid_to is null and s._dp_change = 'changed')
              {%- if scd1_columns %}
                   or (
                    {%- for column in scd1_columns -%}t.{{ quote_identifier(column) }}{{ ", " if not loop.last }}{%- endfor -%}
                   ) is distinct from (
                    {%- for column in scd1_columns -%}s.{{ quote_identifier(column) }}{{ ", " if not loop.last }}{%- endfor -%}
                   )
              {%- endif %})
        {% endcall %}
        {%- set updated = _rows_affected('update_' ~ batch_id) -%}
        {{ fault_pause('silver') }}

        {%- set deleted = 0 -%}
        {%- if load_type == 'full' or deletes.on %}
            {#- Keys missing from a full batch, and keys of delete records, are closed at the batch's timestamp. -#}
            {% call statement('delete_' ~ batch_id) %}
                update {{ target }} as t set
                    valid_to = {{ batch_ts }},
                    _closed_by_batch_id = {{ batch_id }},
                    _modified_by_batch_id = {{ batch_id }},
                    _modified_by_run_id = {{ sql_literal(run_id) }}
                from __dp_delta as s
                where {{ _key_match('t', 's', primary_key) }} and s._dp_change in ('missing', 'deleted')
                  and t.valid_to is null
            {% endcall %}
            {%- set deleted = _rows_affected('delete_' ~ batch_id) -%}
        {%- endif %}

        {% call statement('insert_' ~ batch_id) %}
            insert into {{ target }} ({{ quoted_columns | join(', ') }}, valid_from, valid_to,
                _opened_by_batch_id, _modified_by_batch_id, _modified_by_run_id)
            select {% for name in quoted_columns %}s.{{ name }}, {% endfor %}{{ batch_ts }}, null,
                {{ batch_id }}, {{ batch_id }}, {{ sql_literal(run_id) }}
            from __dp_delta as s
            where s._dp_change in ('new', 'changed')
        {% endcall %}
        {%- endif %}
        {%- set inserted = _rows_affected('insert_' ~ batch_id) -%}

        {% call statement('audit_' ~ batch_id) %}
            insert into audit.entity_layer_run
                (batch_id, system_id, entity, layer, status, started_at, ended_at, batch_timestamp,
                 records_in, inserted, updated, deleted, dagster_run_id, content_fingerprint, message)
            values ({{ batch_id }}, {{ sql_literal(system_id) }}, {{ sql_literal(entity) }}, 'silver', 'succeeded', now(), clock_timestamp(),
                    {{ batch_ts }}, {{ staged[0] }},
                    {{ inserted }}, {{ updated }}, {{ deleted }}, {{ sql_literal(run_id) }},
                    {{ sql_literal(staged[1]) }},
                    {%- if (relanded.batch | string) == (batch_id | string) %}
                    {{ sql_literal('batch ' ~ batch_id ~ ' was landed again with other values: silver re-applied it'
                                   ~ ' and every later batch, in order') }}
                    {%- else %} null{% endif %});
            drop table __dp_stage;
            drop table if exists __dp_delta;
        {% endcall %}
    {%- endfor %}

    {% call statement('main') %}
        select {{ pending.rows | length }} as batches_applied
    {% endcall %}

    {{ run_hooks(post_hooks, inside_transaction=True) }}
    {{ adapter.commit() }}
    {{ run_hooks(post_hooks, inside_transaction=False) }}
    {{ return({'relations': [target]}) }}
{% endmaterialization %}


{#- Back silver out to its state before `from_batch` (by that batch's timestamp, so a late batch works):
    versions opened at or after it are removed, versions closed at or after it are reopened, SCD1
    attributes get the values of the latest batch before it (a delete record's values never count: a delete
    overwrites no SCD1 attribute), and the audit rows of the backed-out batches become 'rolled_back' so those
    batches are pending again. A version a delete closed at or after the batch is reopened like any other. -#}
{% macro _silver_rewind(target, stage_sql, from_batch, primary_key, scd1_columns, entity_filter, deletes=false) %}
    {%- if not (from_batch | string).isdigit() -%}
        {{ exceptions.raise_compiler_error("replay: the batch to replay from must be a batch id (a whole number), got "
                                           ~ (from_batch | tojson)) }}
    {%- endif -%}
    {%- call statement('replay_from', fetch_result=True) -%}
        select cast(min(batch_timestamp) as text) from audit.system_run where batch_id = {{ from_batch }}
    {%- endcall -%}
    {%- set from_ts = load_result('replay_from')['table'].rows[0][0] -%}
    {%- if from_ts is none -%}
        {{ exceptions.raise_compiler_error("replay: there is no batch " ~ from_batch ~ " in audit.system_run") }}
    {%- endif -%}
    {%- set ts = "cast(" ~ sql_literal(from_ts) ~ " as timestamptz)" -%}
    {% call statement('rewind') %}
        delete from {{ target }} where valid_from >= {{ ts }};
        update {{ target }} set valid_to = null, _closed_by_batch_id = null where valid_to >= {{ ts }};
        {%- if scd1_columns %}
        update {{ target }} as t set
            {%- for column in scd1_columns %}
            {{ quote_identifier(column) }} = p.{{ quote_identifier(column) }}{{ "," if not loop.last }}
            {%- endfor %}
        from (
            select distinct on ({{ quote_identifiers(primary_key) }}) *
            from ({{ stage_sql }}) as s
            where s._batch_id in (
                select batch_id from audit.silver_applied_batch where {{ entity_filter }} and batch_timestamp < {{ ts }})
            {%- if deletes %}
              and not s._deleted
            {%- endif %}
            order by {{ quote_identifiers(primary_key) }}, s._batch_timestamp desc, s._batch_id desc
        ) as p
        where {{ _key_match('t', 'p', primary_key) }};
        {%- endif %}
        update audit.entity_layer_run set status = 'rolled_back', message = 'backed out by a replay from batch {{ from_batch }}'
        where {{ entity_filter }} and layer = 'silver' and status = 'succeeded' and batch_timestamp >= {{ ts }};
    {% endcall %}
{% endmacro %}
