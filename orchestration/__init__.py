"""Orchestration: Dagster definitions and the services they need (e.g. the warehouse)."""
