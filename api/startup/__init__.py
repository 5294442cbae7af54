"""Checks made when a process starts: key fingerprints, store connection and DDL lock."""
