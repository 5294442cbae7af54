"""Mandate's projections layer."""
