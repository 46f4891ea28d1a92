{#- At most one open version (valid_to is null) per key. -#}
{% test one_current_version(model, primary_key) %}
select {{ quote_identifiers(primary_key) }}, count(*) as open_versions
from {{ model }}
where valid_to is null
group by {{ quote_identifiers(primary_key) }}
having count(*) > 1
{% endtest %}

{#- A key's versions follow each other: each closes after it opens and before the next opens. -#}
{% test versions_do_not_overlap(model, primary_key) %}
select *
from (
    select
        {{ quote_identifiers(primary_key) }}, valid_from, valid_to,
        lead(valid_from) over (partition by {{ quote_identifiers(primary_key) }} order by valid_from) as next_valid_from
    from {{ model }}
) as versions
where (valid_to is not null and valid_to <= valid_from)
   or (next_valid_from is not null and (valid_to is null or valid_to > next_valid_from))
{% endtest %}
