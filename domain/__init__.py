"""Mandate's domain layer."""
