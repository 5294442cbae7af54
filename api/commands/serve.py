"""``mandate serve`` (one process, or ``--workers N`` each on its own ``SO_REUSEPORT`` socket)
and ``mandate migrate`` (the PostgreSQL schema, created once before the workers start)."""

from __future__ import annotations

import argparse
import socket
import sys
from typing import cast

from mandate.api.runtime import Runtime, StoreUnavailable
from mandate.api.settings import Settings, store_config
from mandate.api.startup.store_checks import StoreUnreachable, migration_lock

__all__ = ["migrate", "serve"]


def serve(args: argparse.Namespace) -> int:
    import uvicorn

    from mandate.api.app import create_app

    settings = Settings()
    # SQLite is embedded: serve creates its schema. PostgreSQL's comes from `mandate migrate`,
    # so that many workers starting at once never race on DDL.
    # The runtime opens the keyring too: a KEK that does not open the store's data keys
    # refuses the start here, in one line.
    try:
        runtime = Runtime(settings, create_tables=None)
    except StoreUnavailable as error:  # one line naming what failed (api/startup/store_checks.py)
        print(f"mandate: {error}", file=sys.stderr)
        return 2
    print(f"mandate: store {runtime.store.display}", flush=True)
    if runtime.admin.issued is not None:
        state = settings.resolved_state_dir
        print(
            "mandate: generated the admin token (shown once; its hash is kept in "
            f"{state}):\n\n    {runtime.admin.issued}\n",
            flush=True,
        )
    if args.workers > 1:
        if not runtime.store.is_postgres:
            runtime.stop()
            print("mandate: --workers needs PostgreSQL (SQLite is embedded)", file=sys.stderr)
            return 2
        # Each worker process opens its own runtime (index, follower, LISTEN connection);
        # the projections run in whichever process holds each copy's lease.
        runtime.stop()
        print(
            f"mandate: listening on http://{args.host}:{args.port} ({args.workers} workers)",
            flush=True,
        )
        return _serve_workers(args)
    print(f"mandate: listening on http://{args.host}:{args.port}", flush=True)
    uvicorn.run(
        create_app(runtime=runtime),
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        access_log=False,
    )
    runtime.stop()
    return 0


def _serve_workers(args: argparse.Namespace) -> int:
    """``--workers N`` under uvicorn's supervisor, each worker on its own listening socket.

    uvicorn's parent binds one socket that every worker accepts from; whichever wakes first
    takes a whole burst of connections (wrk's 32 went 24/8), so one process does most of the
    work. On Linux each worker binds its own ``SO_REUSEPORT`` socket instead and the kernel
    spreads new connections over them; elsewhere (or ``--port 0``) the shared socket stays.
    """
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    config = uvicorn.Config(
        "mandate.api.app:create_app",
        factory=True,
        workers=args.workers,
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        access_log=False,
    )
    if sys.platform != "linux" or not hasattr(socket, "SO_REUSEPORT") or args.port == 0:
        Multiprocess(config, sockets=[config.bind_socket()]).run()
        return 0
    try:
        # Never listens, so it takes no connection: it fails fast when the port is taken and
        # keeps it for the workers (a restarted one binds again) while the parent lives.
        reserved = _reuse_port_socket(args.host, args.port)
    except OSError as error:
        print(f"mandate: cannot bind {args.host}:{args.port}: {error}", file=sys.stderr)
        return 2
    try:
        own = cast("socket.socket", _OwnListener(args.host, args.port))
        Multiprocess(config, sockets=[own]).run()
    finally:
        reserved.close()
    return 0


def _reuse_port_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` with ``SO_REUSEPORT`` (not yet listening)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


class _OwnListener:
    """Stands in for the socket uvicorn's supervisor pickles to each worker it (re)starts:
    unpickled there, it is that worker's own ``SO_REUSEPORT`` socket (uvicorn listens)."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port

    def __reduce__(self) -> tuple[object, tuple[str, int]]:
        return (_reuse_port_socket, (self.host, self.port))


def migrate(_: argparse.Namespace) -> int:
    """Create the schema; many at once are safe (an advisory lock serialises their DDL)."""
    settings = Settings()
    config = store_config(settings.database_url)
    try:
        with migration_lock(config):  # the data key table and d1 too (the runtime's keyring)
            runtime = Runtime(settings, create_tables=True)
    except (StoreUnavailable, StoreUnreachable) as error:
        print(f"mandate: {error}", file=sys.stderr)
        return 2
    runtime.stop()
    print(f"mandate: schema ready in {runtime.store.display}")
    return 0
