"""Accounts, RAM users and groups, their credentials, and the claims that keep names unique."""
