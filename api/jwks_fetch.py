"""Fetching an OIDC provider's JWKS by URL (``domain.sts.oidc_tokens.JwksSource``).

Only HTTPS, with certificate verification (the system's CAs, or the context given: tests
trust a throwaway certificate); no redirect is followed (the URL was checked to be on the
issuer's host, and a redirect could leave it); a short timeout and a size cap, since the
fetch happens while an anonymous caller waits; and a small cache, so a burst of exchanges
costs one fetch per URL per ``ttl`` seconds — except that a token naming a key the cached
JWKS lacks (the IdP rotated) reads it afresh, at most once per ``min_refresh`` seconds. A
failure is ``JwksUnavailable`` naming what went wrong (the status, the timeout), never the
body.
"""

from __future__ import annotations

import json
import ssl
import threading
import time
import urllib.error
import urllib.request
from typing import Final

from mandate.domain.sts.oidc_tokens import JwksUnavailable

__all__ = ["HttpJwksSource"]

_MAX_BYTES: Final = 65_536
_CACHED_URLS: Final = 256


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *_: object, **__: object) -> None:
        return None  # a 3xx is then an HTTPError: refused


class HttpJwksSource:
    """A JWKS per URL, fetched over HTTPS and kept ``ttl`` seconds."""

    def __init__(
        self,
        *,
        ssl_context: ssl.SSLContext | None = None,
        timeout: float = 3.0,
        ttl: float = 300.0,
        min_refresh: float = 30.0,
    ) -> None:
        context = ssl_context or ssl.create_default_context()
        self._open = urllib.request.build_opener(
            urllib.request.HTTPSHandler(context=context), _NoRedirects()
        ).open
        self.timeout = timeout
        self.ttl = ttl
        self.min_refresh = min_refresh
        self._cache: dict[str, tuple[float, str]] = {}
        self._lock = threading.Lock()

    def fetch(self, url: str, *, fresh: bool = False) -> str:
        """The JWKS at ``url``, from the cache within ``ttl``; ``fresh`` (a token named a key
        the cached JWKS lacks) reads it again — but not within ``min_refresh`` seconds of the
        last read, so unknown kids cannot make this server hammer the IdP."""
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(url)
        if cached is not None:
            age = now - cached[0]
            if age < (self.min_refresh if fresh else self.ttl):
                return cached[1]
        if not url.startswith("https://"):
            raise JwksUnavailable("only an https JWKS URL is fetched")
        text = self._get(url)
        with self._lock:
            if len(self._cache) >= _CACHED_URLS:
                self._cache.clear()
            self._cache[url] = (now, text)
        return text

    def _get(self, url: str) -> str:
        # ``fetch`` lets only https:// through (no file:, no custom scheme)
        request = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310
        try:
            with self._open(request, timeout=self.timeout) as response:
                body = response.read(_MAX_BYTES + 1)
        except urllib.error.HTTPError as error:
            raise JwksUnavailable(f"the JWKS URL answered {error.code}") from None
        except TimeoutError:
            raise JwksUnavailable(f"the JWKS URL did not answer within {self.timeout} s") from None
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise JwksUnavailable(
                f"the JWKS URL cannot be reached ({type(reason).__name__})"
            ) from None
        if len(body) > _MAX_BYTES:
            raise JwksUnavailable(f"the JWKS is larger than {_MAX_BYTES} bytes")
        try:
            document = json.loads(body)
        except ValueError:
            raise JwksUnavailable("the JWKS URL did not answer JSON") from None
        if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
            raise JwksUnavailable('the JWKS URL did not answer a JWKS ({"keys": [...]})')
        return json.dumps({"keys": document["keys"]}, sort_keys=True, separators=(",", ":"))
