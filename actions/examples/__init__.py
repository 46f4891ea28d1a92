"""Shipped examples of `python` actions (see actions/python.py for the interface)."""
