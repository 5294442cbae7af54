"""Mandate, installed under one name: ``mandate.domain``, ``mandate.projections``, ``mandate.api``.

The three layers live at the repository's top level (``domain/``, ``projections/``, ``api/``) so
that the folders show the architecture; this package's entries are symbolic links to them, so
code, tests, mypy and the built wheel all see one module tree named ``mandate.*`` and nothing
generic (``api``, ``domain``) lands in a user's site-packages. README "How it works" explains.
"""
