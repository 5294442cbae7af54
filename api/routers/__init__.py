"""The HTTP routers, one module per group of docs/design.md §5 rows."""
