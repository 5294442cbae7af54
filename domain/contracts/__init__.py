"""Entrusted contracts between accounts and the delegations made under them."""
