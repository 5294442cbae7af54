"""One settings object for every Mandate process (pydantic-settings, ``MANDATE_*`` variables).

Outside development, default secrets are refused: production must be given its hash key,
admin token and the other keys explicitly instead of generating them beside the database.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qs, unquote, urlsplit

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from mandate.projections.store.idempotency import recorder_topic
from mandate.projections.store.outages import FACTORY_TOPIC

__all__ = ["Settings", "StoreConfig", "store_config"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MANDATE_", extra="ignore")

    env: Literal["development", "production"] = "development"
    database_url: str = "sqlite:///./mandate.db"
    read_database_url: str | None = Field(
        default=None,
        description="a PostgreSQL streaming replica of database_url: as-of decisions, "
        "effective permissions, access review and audit reads are served from it, checked "
        "against its own replicated projection tracking (503 with Retry-After when behind)",
    )
    state_dir: Path | None = Field(
        default=None,
        description="where generated keys live; default: beside the SQLite file, or '.'",
    )
    admin_token: str | None = None
    hash_key: str | None = Field(
        default=None, description="the key for hashing secrets (at least 32 characters)"
    )
    hash_key_id: str = "k1"
    token_signing_key: str | None = Field(
        default=None,
        description="the key that signs STS security tokens (at least 32 characters); never "
        "in the database. Development generates one in the state directory; production must "
        "set it",
    )
    token_signing_key_id: str = "t1"  # noqa: S105 (a key id, not a key)
    secret_key: str | None = Field(
        default=None,
        description="the key-encryption key (at least 32 characters) that wraps the data keys "
        "sealing AccessKey and session secrets; never in the database. Development generates "
        "one in the state directory; production must set it",
    )
    secret_key_id: str = Field(
        default="s1", pattern=r"^[A-Za-z0-9_-]{1,32}$", description="MANDATE_SECRET_KEY's id"
    )
    secret_keys_previous: dict[str, str] = Field(
        default_factory=dict,
        description="JSON object of key id to key: earlier key-encryption keys, still accepted "
        "to unwrap data keys until `mandate keys rotate` has re-wrapped them all",
    )
    secret_cache_size: int = Field(
        default=10_000,
        ge=0,
        description="how many opened AccessKey/session secrets are kept in memory to verify "
        "request signatures without unsealing each time (an LRU; 0: none)",
    )
    trusted_proxies: list[str] = Field(default_factory=list)
    max_body_bytes: int = Field(
        default=64 * 1024,
        ge=1,
        description="the largest request body accepted; a larger one is answered 413",
    )
    decision_memo_bytes: int = Field(
        default=64 * 1024 * 1024,
        ge=0,
        description="the memory the memo of live decisions may hold (estimated; 0: none)",
    )
    min_position_timeout: float = 2.0
    write_timeout: float = 5.0
    idempotency_ttl_seconds: float = Field(
        default=24 * 3600,
        gt=0,
        le=30 * 24 * 3600,
        description="how long an Idempotency-Key is remembered: a retry within it is answered "
        "the original response, after it the key may be used again",
    )
    shared_nonces: Literal["writes", "all"] = Field(
        default="writes",
        description="on PostgreSQL, which signed requests' nonces are also claimed in the "
        "store's table shared by every API process (a replay to another process refused): "
        "'writes' (not GET/HEAD on /v1 nor /v1/authorize, not RPC Get*/List*) or 'all'",
    )
    poll_interval: float = 0.05
    postgres_pool_size: int = 5
    store_timeout: float = Field(
        default=0.75,
        gt=0,
        le=30,
        description="seconds a request waits for a PostgreSQL connection before it answers "
        "503 (the store is unreachable); bounds every store call, with at most one retry",
    )
    store_reconnect_window: float = Field(
        default=2.0,
        gt=0,
        description="seconds the pool keeps retrying a lost connection before it gives the "
        "slot up; the next request opens a new one at once (quick resumption after an outage)",
    )
    store_conn_max_age: float = Field(
        default=600.0, gt=0, description="seconds before a pooled connection is replaced"
    )
    store_retry_after: int = Field(
        default=2, ge=1, description="the Retry-After (s) of a 503 while the store is down"
    )
    registry_watch_interval: float = Field(
        default=1.0, gt=0, description="seconds between checks for a rebuilt projection copy"
    )
    max_projection_lag_seconds: float = Field(
        default=30.0, gt=0, description="/readyz fails when a projection lags longer than this"
    )
    audit_signing_key_file: Path | None = Field(
        default=None,
        description="PEM (PKCS#8) Ed25519 key that signs audit checkpoints; kept outside the "
        "database. Development generates one in the state directory; production must set it",
    )
    term_watch_interval: float = Field(
        default=1.0, gt=0, description="seconds between checks for contracts whose term ended"
    )
    audit_checkpoint_every_events: int = Field(default=1000, ge=1)
    index_snapshot_every: int = Field(
        default=100_000,
        ge=0,
        description="write a decision index snapshot once the index is this many events past "
        "the newest one, so a start replays only the tail (0: never write, never load)",
    )
    index_snapshot_interval: float = Field(
        default=60.0, gt=0, description="seconds between checks for a due index snapshot"
    )
    audit_checkpoint_every_seconds: float = Field(default=300.0, gt=0)
    run_projections: bool = Field(
        default=True,
        description="follow the log into the SQL projections (temporal index, audit trail) "
        "in this process; off where a dedicated `mandate projections run` worker does it",
    )
    listen: bool = Field(
        default=True,
        description="PostgreSQL: LISTEN for the log's NOTIFY so every commit wakes this "
        "process's followers at once; off, they only poll (MANDATE_POLL_INTERVAL), e.g. "
        "behind a pooler in transaction mode, which cannot LISTEN",
    )

    auth_failure_burst_per_ip: int = Field(
        default=60, ge=1, description="failed authentications a source IP may make at once"
    )
    auth_failures_per_minute_per_ip: float = Field(
        default=60.0,
        gt=0,
        description="failed authentications a source IP regains per minute; beyond, every "
        "request from it is 429 with Retry-After (api/abuse.py)",
    )
    auth_failure_burst_per_key: int = Field(
        default=20, ge=1, description="failed authentications one AccessKeyId may take at once"
    )
    auth_failures_per_minute_per_key: float = Field(
        default=10.0,
        gt=0,
        description="failed authentications an AccessKeyId regains per minute; beyond, its "
        "failed attempts are 429 (a right secret still passes: no lock-out)",
    )
    expensive_read_burst: int = Field(
        default=30,
        ge=1,
        description="expensive reads (access review, exports, trail verification, effective "
        "permissions) a caller may make at once",
    )
    expensive_reads_per_minute: float = Field(
        default=60.0, gt=0, description="expensive reads a caller regains per minute"
    )
    rate_limit_buckets: int = Field(
        default=100_000, ge=1, description="rate-limit buckets kept per limit (LRU)"
    )
    security_log_retention_days: float = Field(
        default=90.0, gt=0, description="days a security-log row is kept before it is purged"
    )
    security_log_queue: int = Field(
        default=10_000,
        ge=1,
        description="security-log rows waiting for the background writer; beyond, dropped "
        "(counted in mandate_security_events_dropped_total)",
    )
    security_log_purge_interval: float = Field(
        default=3600.0, gt=0, description="seconds between purges of expired security-log rows"
    )

    log_format: Literal["json", "text"] = Field(
        default="json",
        description="how mandate.* logs are written on stderr: one JSON object a line, or text",
    )
    log_requests: bool = Field(
        default=True, description="one log line per HTTP request (id, caller, route, status)"
    )

    @model_validator(mode="after")
    def _production_needs_explicit_secrets(self) -> Settings:
        if self.env == "production":
            missing = [
                name
                for name, value in (
                    ("MANDATE_HASH_KEY", self.hash_key),
                    ("MANDATE_ADMIN_TOKEN", self.admin_token),
                    ("MANDATE_AUDIT_SIGNING_KEY_FILE", self.audit_signing_key_file),
                    ("MANDATE_TOKEN_SIGNING_KEY", self.token_signing_key),
                    ("MANDATE_SECRET_KEY", self.secret_key),
                )
                if not value
            ]
            if missing:
                raise ValueError(f"production needs {', '.join(missing)} set explicitly")
        _check_key_length("MANDATE_HASH_KEY", self.hash_key)
        _check_key_length("MANDATE_TOKEN_SIGNING_KEY", self.token_signing_key)
        self._check_secret_keys()
        if self.read_database_url is not None and not (
            store_config(self.read_database_url).is_postgres
            and store_config(self.database_url).is_postgres
        ):
            raise ValueError(
                "MANDATE_READ_DATABASE_URL must be a postgresql:// replica of a PostgreSQL "
                "MANDATE_DATABASE_URL"
            )
        return self

    def _check_secret_keys(self) -> None:
        """The key-encryption keys' rules; the messages name settings and ids, never a key."""
        _check_key_length("MANDATE_SECRET_KEY", self.secret_key)
        if self.secret_keys_previous and self.secret_key is None:
            raise ValueError("MANDATE_SECRET_KEYS_PREVIOUS needs MANDATE_SECRET_KEY (the current)")
        for key_id, key in self.secret_keys_previous.items():
            if not re.fullmatch(r"[A-Za-z0-9_-]{1,32}", key_id) or key_id == self.secret_key_id:
                raise ValueError(
                    "MANDATE_SECRET_KEYS_PREVIOUS: each id is 1-32 letters, digits, '_' or '-', "
                    "other than MANDATE_SECRET_KEY_ID"
                )
            _check_key_length(f"MANDATE_SECRET_KEYS_PREVIOUS: key {key_id}", key)

    @property
    def resolved_state_dir(self) -> Path:
        if self.state_dir is not None:
            return self.state_dir
        config = store_config(self.database_url)
        if config.sqlite_path is not None and config.sqlite_path != ":memory:":
            return Path(config.sqlite_path).resolve().parent
        return Path(".").resolve()


def _check_key_length(name: str, key: str | None) -> None:
    """Every key Mandate is given must be long enough to resist guessing; the message names
    the setting (or the previous key's id), never the key."""
    if key is not None and len(key) < 32:
        raise ValueError(f"{name} must be at least 32 characters")


class StoreConfig:
    """The eventsourcing environment for a database URL."""

    def __init__(self, env: dict[str, str], *, sqlite_path: str | None, display: str) -> None:
        self.env = env
        self.sqlite_path = sqlite_path
        self.display = display

    @property
    def is_postgres(self) -> bool:
        return self.sqlite_path is None


def store_config(
    url: str,
    *,
    create_table: bool = False,
    pool_size: int = 5,
    store_timeout: float = 0.75,
    reconnect_window: float = 2.0,
    conn_max_age: float = 600.0,
) -> StoreConfig:
    """Translate ``sqlite:///path`` or ``postgresql://user:pw@host:port/db?schema=s``.

    On PostgreSQL every recorder comes from ``projections.store.outages``' factory, which
    bounds its waits by the two ``MANDATE_STORE_*`` keys: an outage answers 503 in seconds.
    """
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        path = unquote(parts.path)
        if parts.netloc:
            raise ValueError("write SQLite URLs as sqlite:///relative.db or sqlite:////abs.db")
        path = path[1:] if path.startswith("/") else path
        if not path:
            raise ValueError("the SQLite URL names no file")
        env = {
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            # the ledger's recorder writes idempotency keys with the events
            "APPLICATION_RECORDER_TOPIC": recorder_topic(postgres=False),
            "SQLITE_DBNAME": path,
            "SQLITE_LOCK_TIMEOUT": "10",
            "CREATE_TABLE": "y",
        }
        return StoreConfig(env, sqlite_path=path, display=f"sqlite:///{path}")
    if parts.scheme in ("postgresql", "postgres"):
        query = parse_qs(parts.query)
        env = {
            "PERSISTENCE_MODULE": FACTORY_TOPIC,  # eventsourcing's, with bounded waits
            "APPLICATION_RECORDER_TOPIC": recorder_topic(postgres=True),
            "POSTGRES_DBNAME": unquote(parts.path.lstrip("/")) or "postgres",
            "POSTGRES_HOST": parts.hostname or "127.0.0.1",
            "POSTGRES_PORT": str(parts.port or 5432),
            "POSTGRES_USER": unquote(parts.username or "postgres"),
            "POSTGRES_PASSWORD": unquote(parts.password or ""),
            # A store outage must answer 503 within seconds, not hang for minutes:
            # eventsourcing's pool wait (whole seconds; refined by MANDATE_STORE_TIMEOUT).
            "POSTGRES_CONNECT_TIMEOUT": str(max(1, math.ceil(store_timeout))),
            "POSTGRES_CONN_MAX_AGE": str(conn_max_age),
            "POSTGRES_PRE_PING": "y",
            "MANDATE_STORE_TIMEOUT": str(store_timeout),
            "MANDATE_STORE_RECONNECT_WINDOW": str(reconnect_window),
            "POSTGRES_POOL_SIZE": str(pool_size),
            "POSTGRES_MAX_OVERFLOW": "5",
            "CREATE_TABLE": "y" if create_table else "n",
        }
        if "schema" in query:
            env["POSTGRES_SCHEMA"] = query["schema"][0]
        shown = f"postgresql://{parts.hostname}:{parts.port or 5432}{parts.path}"
        return StoreConfig(env, sqlite_path=None, display=shown)
    raise ValueError(f"unsupported database URL scheme {parts.scheme!r}")
