"""Enrich stored calls: token estimates where the log has no usage, and prices."""
