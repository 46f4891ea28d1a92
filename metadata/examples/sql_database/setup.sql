-- The example source of metadata/examples/sql_database: run as a superuser, e.g.
--   createdb -h 127.0.0.1 -U postgres shop && psql -h 127.0.0.1 -U postgres -d shop -f setup.sql
-- and give the reader its password: ALTER ROLE shop_reader PASSWORD '...'; (the secret sql01/password)
create table customers (
    id bigint primary key,
    name text not null,
    email text,
    address jsonb,
    is_test boolean not null default false
);
create table orders (
    id bigint primary key,
    customer_id bigint not null references customers (id),
    amount numeric(12, 2) not null,
    placed_at timestamptz not null,
    receipt bytea,
    updated_at timestamptz not null default now()
);
create index on orders (updated_at);
create table order_lines (
    id bigint generated always as identity primary key,
    order_id bigint not null references orders (id),
    sku text not null,
    quantity integer not null
);
insert into customers values
    (1, 'Ada', 'ada@example.com', '{"city": "Utrecht", "geo": {"lat": 52.09, "lon": 5.12}}', false),
    (2, 'Test customer', null, null, true);
insert into orders values
    (100, 1, 1.50, '2026-01-02T09:30:00+01:00', '\x00ff', '2026-01-02T08:30:00Z');
insert into order_lines (order_id, sku, quantity) values (100, 'SKU-1', 2);
do $$ begin
    if not exists (select from pg_roles where rolname = 'shop_reader') then create role shop_reader login; end if;
end $$;
grant select on customers, orders, order_lines to shop_reader;
