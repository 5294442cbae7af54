"""The HTTP routers, one module per group of DESIGN §5 rows."""
