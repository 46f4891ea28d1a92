"""Example declarations a newcomer can copy (not part of the bundled ones: the demo does not load them).

`rest_api/` declares a REST API system, `sql_database/` a PostgreSQL database (SQL01, created by its
`setup.sql`), `files/` one `files` system, SHP01, over the small folder of drops beside it (its entity models
in `shop_models.py`), and `mongodb/` one MongoDB system, MDB01 (its entity models in
metadata/entity_models/example_mongodb.py); the README walks through each."""
