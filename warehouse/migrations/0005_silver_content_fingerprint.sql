-- What silver applied of each batch, as a fingerprint of its staged values (count and an order-independent
-- sum of row hashes, by the value rule of scd2_hash): a batch landed again with other content is re-applied
-- (a replay from it), one landed again with the same content changes nothing. Null: applied before this.
alter table audit.entity_layer_run add column content_fingerprint text;
