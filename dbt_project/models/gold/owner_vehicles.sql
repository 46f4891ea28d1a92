-- Vehicles per owner today, and how many of them came to the owner in the last 30 days.
-- "Today" is the newest batch applied to silver (the data's own clock), so the mart is reproducible.
with vehicle_history as (
    select * from {{ ref('silver__tst01_vehicle') }}
),

reference as (
    select max(greatest(valid_from, coalesce(valid_to, valid_from))) as as_of
    from vehicle_history
),

ownership_changes as (
    -- a version whose owner differs from the key's previous version: the vehicle changed owner then
    select
        vehicle_id,
        owner_owner_id,
        valid_from as changed_at
    from (
        select
            vehicle_id,
            owner_owner_id,
            valid_from,
            lag(owner_owner_id) over (
                partition by vehicle_id
                order by valid_from
            ) as previous_owner_id
        from vehicle_history
    ) as versions
    where previous_owner_id is not null and previous_owner_id <> owner_owner_id
),

recent_acquisitions as (
    -- computed once and joined (a correlated EXISTS re-ran the window over all history per vehicle)
    select distinct
        ownership_changes.vehicle_id,
        ownership_changes.owner_owner_id
    from ownership_changes
    cross join reference
    where ownership_changes.changed_at > reference.as_of - interval '30 days'
),

current_vehicles as (
    select
        vehicle_id,
        owner_owner_id
    from vehicle_history
    where valid_to is null
),

current_owners as (
    select
        owner_id,
        name,
        address_city
    from {{ ref('silver__tst01_owner') }}
    where valid_to is null
)

select
    current_owners.owner_id,
    current_owners.name as owner_name,
    current_owners.address_city as city,
    count(distinct current_vehicles.vehicle_id) as vehicles_owned,
    count(distinct current_vehicles.vehicle_id) filter (
        where recent_acquisitions.vehicle_id is not null
    ) as vehicles_acquired_last_30_days,
    reference.as_of
from current_owners
cross join reference
left join current_vehicles on current_owners.owner_id = current_vehicles.owner_owner_id
left join recent_acquisitions
    on current_vehicles.vehicle_id = recent_acquisitions.vehicle_id
    and current_owners.owner_id = recent_acquisitions.owner_owner_id
group by current_owners.owner_id, current_owners.name, current_owners.address_city, reference.as_of
