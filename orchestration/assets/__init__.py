"""Dagster assets and checks, one module per step of the flow."""
