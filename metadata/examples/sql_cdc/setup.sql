-- The example source of metadata/examples/sql_cdc, on a server with wal_level = logical (the embedded one has it;
-- elsewhere: ALTER SYSTEM SET wal_level = logical, then restart). Run as a superuser, e.g.
--   createdb -h 127.0.0.1 -U postgres stockdb && psql -h 127.0.0.1 -U postgres -d stockdb -f setup.sql
-- and give the reader its password: ALTER ROLE stock_cdc PASSWORD '...'; (the secret sql02/password). pg_hba.conf
-- must let it open a replication connection (initdb's default allows it from 127.0.0.1).
create table stock (
    sku text primary key,
    name text not null,
    quantity integer not null,
    price numeric(10, 2) not null,
    updated_at timestamptz not null default now()
);
insert into stock values ('SKU-1', 'Bolt', 100, 0.15, '2026-01-02T08:00:00Z'),
                         ('SKU-2', 'Nut', 250, 0.05, '2026-01-02T08:00:00Z');
do $$ begin
    if not exists (select from pg_roles where rolname = 'stock_cdc') then
        create role stock_cdc login replication;  -- REPLICATION: it reads a logical replication slot
    end if;
end $$;
grant select on stock to stock_cdc;
-- Only the table's owner may publish it; the platform uses this publication (its name: dp_<system>_<endpoint>).
create publication dp_sql02_stock for table stock;
