-- Where each batch read from and got to, per source endpoint (delta loads). Written in the transaction that
-- finishes the batch's landing layer, together with audit.cursor: a failed or killed landing writes neither.
-- A forced re-land of a batch reads again from its start_value (null: from the beginning).
create table audit.batch_cursor (
    system_id   text not null,
    batch_id    bigint not null,
    endpoint    text not null,
    start_value text,
    end_value   text not null,
    primary key (system_id, batch_id, endpoint)
);
