"""Store fixtures shared by the integration and end-to-end tests.

Every test that touches a store asks for one of these:

- ``sqlite_url``: a fresh SQLite file in the test's ``tmp_path``.
- ``postgres_url``: a fresh PostgreSQL *schema* (``mandate_t_<hex>``) in a shared test database,
  handed over as ``postgresql://…?schema=<name>``. The settings code reads ``?schema=`` and passes
  it to eventsourcing's ``POSTGRES_SCHEMA``; libpq itself does not know that parameter, so strip it
  before handing the URL to psycopg. Only that schema is dropped afterwards.
- ``store_url``: both of the above in turn (ids ``sqlite`` and ``postgres``), so one test body runs
  on both stores. The ``postgres`` case carries ``pytest.mark.postgres``.

Where the PostgreSQL server comes from (``postgres_dsn``, once per session), first match wins:

1. ``MANDATE_TEST_POSTGRES_DSN`` — an existing server. This is what CI uses (a Debian cluster on
   the runner) and what a developer with a local server sets; nothing is started or stopped.
2. A ``postgres:15`` container via testcontainers, when a Docker daemon answers. The ``docker``
   CLI can be installed with no daemon behind it, so the daemon is pinged, not the binary found.
3. A throwaway cluster from local server binaries (``initdb``/``pg_ctl`` on ``PATH`` or in
   ``/usr/lib/postgresql/<version>/bin``, where Debian keeps them off ``PATH``): a temporary data
   directory, a free port on 127.0.0.1, trust authentication; stopped and deleted at session end.
   PostgreSQL refuses to run as root, so as root it runs as the ``postgres`` user (or ``nobody``).

With none of them the PostgreSQL tests are skipped with a loud reason — unless
``MANDATE_REQUIRE_POSTGRES=1`` (set by CI), where a missing PostgreSQL is a failure: a skipped
PostgreSQL suite must never pass as green.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import secrets
import shlex
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import sql

DSN_ENV = "MANDATE_TEST_POSTGRES_DSN"
REQUIRE_ENV = "MANDATE_REQUIRE_POSTGRES"
POSTGRES_IMAGE = "postgres:15"
SCHEMA_PREFIX = "mandate_t_"


class _Unavailable(Exception):
    """This way of getting a PostgreSQL server is not available here; the message says why."""


# --- where the server comes from ------------------------------------------------------------


@contextlib.contextmanager
def _docker_postgres() -> Iterator[str]:
    try:
        from docker.errors import DockerException  # type: ignore[import-untyped]

        import docker  # type: ignore[import-untyped]  # imported here: only this fallback needs it
    except ImportError as exc:
        raise _Unavailable(f"the docker package is not installed ({exc})") from exc
    try:
        client = docker.from_env(timeout=5)
        try:
            client.ping()
        finally:
            client.close()
    except (DockerException, OSError) as exc:
        raise _Unavailable(f"no Docker daemon answers ({exc})") from exc

    try:
        from testcontainers.community.postgres import PostgresContainer
    except ImportError:  # testcontainers before the community/ split
        from testcontainers.postgres import PostgresContainer

    container = PostgresContainer(POSTGRES_IMAGE, driver=None)
    try:
        container.start()
    except Exception as exc:
        with contextlib.suppress(Exception):
            container.stop()
        raise _Unavailable(f"Docker answers, but {POSTGRES_IMAGE} did not start ({exc})") from exc
    try:
        yield container.get_connection_url(driver=None)
    finally:
        container.stop()


def _server_bin_dirs() -> Iterator[Path]:
    for entry in os.environ.get("PATH", "").split(os.pathsep):
        if entry:
            yield Path(entry)

    def version(path: Path) -> tuple[int, ...]:
        return tuple(int(part) for part in re.findall(r"\d+", path.parent.name))

    yield from sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=version, reverse=True)


def _find_server_binaries() -> tuple[str, str] | None:
    """Return ``initdb`` and ``pg_ctl`` from the same directory, so their versions match."""
    for directory in _server_bin_dirs():
        initdb, pg_ctl = directory / "initdb", directory / "pg_ctl"
        if all(p.is_file() and os.access(p, os.X_OK) for p in (initdb, pg_ctl)):
            return str(initdb), str(pg_ctl)
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _run(command: list[str], cwd: str) -> subprocess.CompletedProcess[str]:
    # The commands are built here from absolute paths found above, never from test input.
    return subprocess.run(  # noqa: S603
        command, cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


@contextlib.contextmanager
def _local_cluster() -> Iterator[str]:
    binaries = _find_server_binaries()
    if binaries is None:
        raise _Unavailable("no initdb/pg_ctl on PATH or in /usr/lib/postgresql/*/bin")
    initdb, pg_ctl = binaries

    # initdb and postgres refuse to run as root: as root, run them as an unprivileged user who
    # owns the temporary directory. The server's files never leave that directory.
    as_user: list[str] = []
    owner: pwd.struct_passwd | None = None
    if os.geteuid() == 0:
        runuser = shutil.which("runuser") or shutil.which("runuser", path="/usr/sbin:/sbin")
        if runuser is None:
            raise _Unavailable("running as root, and no runuser to drop privileges with")
        for name in ("postgres", "nobody"):
            with contextlib.suppress(KeyError):
                owner = pwd.getpwnam(name)
                break
        if owner is None:
            raise _Unavailable("running as root, and neither a postgres nor a nobody user exists")
        as_user = [runuser, "-u", owner.pw_name, "--"]

    base = tempfile.mkdtemp(prefix="mandate-pg-")
    if owner is not None:
        os.chown(base, owner.pw_uid, owner.pw_gid)
    data, log = os.path.join(base, "data"), os.path.join(base, "server.log")
    port = _free_port()
    started = False
    try:
        init = _run(
            [
                *as_user,
                initdb,
                *("-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8"),
                *("--no-locale", "--no-sync"),
            ],
            cwd=base,
        )
        if init.returncode != 0:
            raise _Unavailable(f"initdb failed: {init.stderr.strip() or init.stdout.strip()}")
        # Speed over durability (a throwaway cluster); the socket lives in our own directory so
        # that it never collides with a system cluster's /var/run/postgresql.
        server_options = (
            f"-c listen_addresses=127.0.0.1 -c port={port} "
            f"-c unix_socket_directories={shlex.quote(base)} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
            "-c max_connections=200"
        )
        start = _run(
            [
                *as_user,
                pg_ctl,
                "-D",
                data,
                "-l",
                log,
                "-w",
                "-t",
                "60",
                "-o",
                server_options,
                "start",
            ],
            cwd=base,
        )
        started = True
        if start.returncode != 0:
            server_log = Path(log).read_text(errors="replace")[-2000:] if Path(log).exists() else ""
            raise _Unavailable(f"pg_ctl start failed: {start.stderr.strip()}\n{server_log}")
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        if started:
            _run([*as_user, pg_ctl, "-D", data, "-m", "immediate", "-w", "stop"], cwd=base)
        shutil.rmtree(base, ignore_errors=True)


def _no_postgres(tried: list[str]) -> None:
    reason = (
        "\n\n*** NO POSTGRESQL: the PostgreSQL tests cannot run. ***\n"
        "Provide any one of:\n"
        f"  1. {DSN_ENV}=postgresql://user@host:port/db  (an existing database; each test works\n"
        "     in its own schema and drops only that);\n"
        f"  2. a running Docker daemon (testcontainers starts {POSTGRES_IMAGE});\n"
        "  3. PostgreSQL server binaries: initdb and pg_ctl on PATH or in\n"
        "     /usr/lib/postgresql/<version>/bin (a throwaway cluster is started).\n"
        "Tried:\n" + "".join(f"  - {attempt}\n" for attempt in tried)
    )
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{REQUIRE_ENV}=1 and{reason}", pytrace=False)
    pytest.skip(reason)


# --- fixtures --------------------------------------------------------------------------------


@pytest.fixture(scope="session", autouse=True)
def _state_dir_outside_the_checkout(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Generated keys (hashing, audit signing) go to a temporary directory, never the repo.

    On PostgreSQL the state directory defaults to the working directory; a test that does
    not name one must not leave key files in the checkout.
    """
    previous = os.environ.get("MANDATE_STATE_DIR")
    os.environ["MANDATE_STATE_DIR"] = str(tmp_path_factory.mktemp("state"))
    yield
    if previous is None:
        os.environ.pop("MANDATE_STATE_DIR", None)
    else:
        os.environ["MANDATE_STATE_DIR"] = previous


@pytest.fixture(scope="session")
def postgres_dsn() -> Iterator[str]:
    """Return a ``postgresql://`` DSN of a database the tests may create schemas in."""
    configured = os.environ.get(DSN_ENV)
    if configured:
        # Someone asked for this server explicitly: an unusable one is an error, not a skip.
        if urlsplit(configured).scheme not in ("postgresql", "postgres"):
            pytest.fail(f"{DSN_ENV} must be a postgresql:// URL", pytrace=False)
        try:
            psycopg.connect(configured, connect_timeout=10).close()
        except psycopg.Error as exc:
            pytest.fail(f"{DSN_ENV} is set, but PostgreSQL does not answer: {exc}", pytrace=False)
        yield configured
        return

    tried: list[str] = [f"{DSN_ENV}: not set"]
    with contextlib.ExitStack() as stack:
        for label, provider in (
            ("Docker/testcontainers", _docker_postgres),
            ("local initdb/pg_ctl", _local_cluster),
        ):
            try:
                dsn = stack.enter_context(provider())
            except _Unavailable as exc:
                tried.append(f"{label}: {exc}")
                continue
            yield dsn
            return
    _no_postgres(tried)


def _with_query_parameter(url: str, name: str, value: str) -> str:
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != name]
    return urlunsplit(parts._replace(query=urlencode([*query, (name, value)])))


@contextlib.contextmanager
def fresh_schema_url(postgres_dsn: str) -> Iterator[str]:
    """A DSN with ``?schema=`` naming a fresh schema; only that schema is dropped after."""
    name = SCHEMA_PREFIX + secrets.token_hex(6)
    schema = sql.Identifier(name)
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(schema))
    try:
        yield _with_query_parameter(postgres_dsn, "schema", name)
    finally:
        with psycopg.connect(postgres_dsn, autocommit=True) as conn:
            # A connection a test leaked inside a transaction would block the drop forever;
            # fail loudly instead. CASCADE reaches only objects inside this schema.
            conn.execute("SET lock_timeout = '30s'")
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(schema))


@pytest.fixture
def postgres_url(postgres_dsn: str) -> Iterator[str]:
    """Return a DSN with ``?schema=`` naming a fresh schema; only that schema is dropped after."""
    with fresh_schema_url(postgres_dsn) as url:
        yield url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """Return a URL of a not-yet-created SQLite file in the test's own directory."""
    return f"sqlite:///{tmp_path}/mandate.db"


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
    ]
)
def store_url(request: pytest.FixtureRequest) -> str:
    """Return a SQLite URL, then a PostgreSQL one: the same test runs on both stores."""
    url: str = request.getfixturevalue(f"{request.param}_url")
    return url
