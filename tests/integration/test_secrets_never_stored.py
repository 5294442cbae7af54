"""No secret is ever stored in clear: only keyed hashes and sealed forms reach the store
(docs/design.md §3.4, "No event ever holds a secret in clear").

Every secret the ledger hands out in a run — root keys, a rotated root key, user keys — and
the admin token and hashing key are looked for in every stored event and in the store's raw
bytes: the SQLite files on disk, or every row of every table of the PostgreSQL test schema.
The keyed hashes and the sealed secrets (ciphertext bound to the AccessKeyId, which request
signatures are verified with), which must be stored, are looked for the same way, so a scan
that finds nothing is known to be able to find something.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import sql

from mandate.api.runtime import Runtime
from mandate.api.settings import Settings, store_config
from mandate.domain.common.arns import role_arn
from mandate.domain.common.audit import AuditContext
from mandate.domain.ledger.application import IssuedSession, Positioned
from mandate.projections.decisions.credentials import Credential

HASH_KEY = "test-hash-key-0123456789abcdefghijklmnop"
ADMIN_TOKEN = "test-admin-token-zyxwvutsrqponmlkjihgfe"
ADMIN = AuditContext(actor="mandate:admin", request_id="req-secrets")
ASSUME = "AliyunSTSAssumeRoleAccess"


@pytest.fixture
def runtime(store_url: str) -> Iterator[Runtime]:
    settings = Settings(database_url=store_url, admin_token=ADMIN_TOKEN, hash_key=HASH_KEY)
    started = Runtime(settings, create_tables=True)
    started.start()
    try:
        yield started
    finally:
        started.stop()


def forms(text: str) -> list[bytes]:
    """How ``text`` could appear in a dump: as UTF-8 bytes, or hex-encoded (PostgreSQL bytea)."""
    raw = text.encode()
    return [raw, raw.hex().encode(), raw.hex().upper().encode()]


def found(text: str, haystacks: list[bytes]) -> bool:
    return any(form in haystack for form in forms(text) for haystack in haystacks)


def issue_secrets(runtime: Runtime) -> tuple[list[str], list[str]]:
    """Issue every kind of secret the ledger knows; return (secrets, their stored hashes)."""
    ledger = runtime.ledger
    issued = []
    acme = runtime.write(ADMIN, lambda: ledger.open_account("Acme"))
    other = runtime.write(ADMIN, lambda: ledger.open_account("Other"))
    issued += [acme.root_key, other.root_key]
    account = acme.account_id
    issued.append(runtime.write(ADMIN, lambda: ledger.rotate_root_access_key(account)))
    for name in ("alice", "bob"):
        runtime.write(ADMIN, lambda name=name: ledger.create_user(account, name, None))
        for _ in range(2):
            issued.append(
                runtime.write(ADMIN, lambda name=name: ledger.create_access_key(account, name))
            )
    # Deleting a key or a user leaves its secret as absent as before.
    runtime.write(ADMIN, lambda: ledger.delete_access_key(account, "bob", issued[-1].access_key_id))
    runtime.write(ADMIN, lambda: ledger.delete_user(account, "bob"))

    secrets = [key.access_key_secret for key in issued]
    assert len(set(secrets)) == len(secrets) == 7
    # Each key authenticated once, so the secret is known to be the one its hash verifies.
    for key in issued[2:5]:
        runtime.index.authenticate(key.access_key_id, key.access_key_secret)
    hashes = [runtime.hasher.hash(secret) for secret in secrets]
    return secrets, hashes


def stored_event_states(runtime: Runtime) -> list[bytes]:
    notifications = runtime.ledger.recorder.select_notifications(1, 100_000)
    assert notifications, "the scan would have nothing to look at"
    return [bytes(n.state) for n in notifications]


def sqlite_files(url: str) -> list[bytes]:
    """The raw bytes of the database file and every sibling file the store keeps beside it."""
    path = store_config(url).sqlite_path
    assert path is not None
    database = Path(path)
    files = sorted(database.parent.glob(database.name + "*"))
    assert database in files
    return [path.read_bytes() for path in files]


def postgres_rows(url: str) -> list[bytes]:
    """Every row of every table in the test's schema, as PostgreSQL prints it."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query)
    schema = dict(query)["schema"]
    dsn = urlunsplit(parts._replace(query=urlencode([(k, v) for k, v in query if k != "schema"])))
    dump: list[bytes] = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        tables = [
            name
            for (name,) in conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
                (schema,),
            ).fetchall()
        ]
        assert tables, f"no tables in {schema}"
        for table in tables:
            rows = conn.execute(
                sql.SQL("SELECT t::text FROM {}.{} t").format(
                    sql.Identifier(schema), sql.Identifier(table)
                )
            ).fetchall()
            dump.extend(str(row).encode() for (row,) in rows)
    return dump


def test_no_secret_or_admin_token_is_stored_only_their_hashes(
    store_url: str, runtime: Runtime
) -> None:
    """Stored events and the store's raw contents hold every key's hash and no secret at all."""
    secrets, hashes = issue_secrets(runtime)
    never_stored = [*secrets, ADMIN_TOKEN, HASH_KEY]
    live = [key for key in runtime.index.keys.values() if key.secret_sealed is not None]
    assert len(live) == 4  # the two live root keys (one rotated) and alice's two keys
    sealed = [key.secret_sealed for key in live if key.secret_sealed is not None]
    for key, form in zip(live, sealed, strict=True):  # each opens to an issued secret
        assert runtime.keyring.unseal(form, bound_to=key.access_key_id) in secrets

    events = stored_event_states(runtime)
    if store_url.startswith("sqlite"):
        raw = sqlite_files(store_url)  # the database file with its -wal (and -shm) beside it
        runtime.stop()  # checkpoints the WAL into the database file, which is scanned again
        raw += sqlite_files(store_url)
    else:
        raw = postgres_rows(store_url)

    for label, haystacks in (("stored events", events), ("raw store", raw)):
        for text_hash in hashes:
            assert found(text_hash, haystacks), f"a key's hash is missing from the {label}"
        for form in sealed:
            assert found(form, haystacks), f"a sealed secret is missing from the {label}"
        for secret in never_stored:
            assert not found(secret, haystacks), f"a secret is in clear in the {label}"


# --- STS sessions ----------------------------------------------------------------------------


def _trust(*principals: str) -> dict[str, object]:
    return {
        "Version": "1",
        "Statement": [
            {"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"RAM": list(principals)}}
        ],
    }


def issue_sessions(runtime: Runtime) -> list[IssuedSession]:
    """A user's sessions (one with a session policy, one revoked) and a chained session."""
    ledger = runtime.ledger

    def write(command: Callable[[], Positioned]) -> None:
        runtime.write(ADMIN, command)

    opened = runtime.write(ADMIN, lambda: ledger.open_account("Sessions"))
    account = opened.account_id
    write(lambda: ledger.create_user(account, "app", None))
    write(lambda: ledger.attach_policy(account, "user", "app", "System", ASSUME))
    key = runtime.write(ADMIN, lambda: ledger.create_access_key(account, "app"))
    app = runtime.index.authenticate(key.access_key_id, key.access_key_secret)
    write(lambda: ledger.create_role(account, "first", _trust(app.arn)))
    write(lambda: ledger.attach_policy(account, "role", "first", "System", ASSUME))
    first = role_arn(account, "first")
    write(lambda: ledger.create_role(account, "second", _trust(first)))

    def assume(caller: Credential, arn: str, name: str, **params: Any) -> IssuedSession:
        assuming = runtime.index.assuming_caller(caller)
        audit = AuditContext(actor=caller.arn, credential=caller.access_key_id)
        issued: IssuedSession = runtime.write(
            audit,
            lambda: ledger.assume_role(assuming, role_arn=arn, role_session_name=name, **params),
        )
        return issued

    narrowed = assume(
        app,
        first,
        "narrowed",
        policy={"Version": "1", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]},
    )
    parent = assume(app, first, "parent")
    parent_credential = runtime.index.authenticate_session(
        parent.access_key_id, parent.access_key_secret, parent.security_token
    )
    child = assume(parent_credential, role_arn(account, "second"), "child")
    write(lambda: ledger.revoke_session(narrowed.access_key_id))
    sessions = [narrowed, parent, child]
    # the live ones authenticate: each secret is the one its stored hash verifies
    for issued in (parent, child):
        runtime.index.authenticate_session(
            issued.access_key_id, issued.access_key_secret, issued.security_token
        )
    return sessions


def test_no_session_secret_or_security_token_is_stored(store_url: str, runtime: Runtime) -> None:
    """SessionIssued keeps a hash; neither the secret nor the token is in any table.

    The scan covers the event store and every projection table (the audit trail and the
    temporal index live in the same store): the projections are caught up first, and the
    sessions' key ids are found in the audit records, so the scan is known to reach them.
    """
    sessions = issue_sessions(runtime)
    secrets = [s.access_key_secret for s in sessions]
    tokens = [s.security_token for s in sessions]
    signatures = [token.rpartition(".")[2] for token in tokens]
    signing_keys = [key.decode() for key in runtime.token_signer.keys.values()]
    never_stored = [*secrets, *tokens, *signatures, *signing_keys]
    assert len(set(never_stored)) == len(never_stored)
    hashes = [runtime.hasher.hash(secret) for secret in secrets]
    sealed = []
    for issued in sessions:
        view = runtime.index.session(issued.access_key_id)
        assert view is not None
        assert view.secret_sealed is not None
        opened = runtime.keyring.unseal(view.secret_sealed, bound_to=issued.access_key_id)
        assert opened == issued.access_key_secret
        sealed.append(view.secret_sealed)

    head = runtime.head()
    for worker in runtime.projection_workers:
        assert worker.wait_for(head, timeout=10), f"{worker.projection.name} did not catch up"
    records = [row["record"] for row in runtime.audit.store.query("SELECT record FROM {p}_records")]
    for issued in sessions:
        assert any(issued.access_key_id in record for record in records), (
            "the audit trail does not mention a session: the scan would not reach it"
        )

    events = stored_event_states(runtime)
    if store_url.startswith("sqlite"):
        raw = sqlite_files(store_url)
        runtime.stop()
        raw += sqlite_files(store_url)
    else:
        raw = postgres_rows(store_url)
    for label, haystacks in (("stored events", events), ("raw store", raw)):
        for text_hash in hashes:
            assert found(text_hash, haystacks), f"a session's hash is missing from the {label}"
        for issued in sessions:
            assert found(issued.access_key_id, haystacks)
        for form in sealed:
            assert found(form, haystacks), f"a session's sealed secret is missing from the {label}"
        for secret in never_stored:
            assert not found(secret, haystacks), f"a session secret is in clear in the {label}"
