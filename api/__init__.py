"""Mandate's api layer."""
