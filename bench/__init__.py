"""The benchmark: our pipeline against PostgreSQL's COPY (the floor) and a plain dlt pipeline (the peer).

`python -m bench.run --sizes 10000,100000,1000000` (or `make bench SIZE=...`); see bench/run.py.
"""
