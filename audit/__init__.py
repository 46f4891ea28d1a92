"""What happened to each batch: the audit tables, written and read only through this package.

`batches` owns a batch's life (open, resume, abandon, close; the only writer of `system_run` and
`system_layer_run`); `entities` writes and reads the per-entity rows; `status` is what the operator reads.
The questions dbt also asks ("landed batches", "the gate's latest word", "applied to silver") are
views created by a migration (warehouse/migrations), read by this package and by the dbt macros.
"""
