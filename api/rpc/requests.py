"""Reading an OpenAPI RPC call: its parameters, action and version, as the SDKs send them.

The SDKs put every parameter in the query string (tea-openapi, aliyun-python-sdk-core's typed
requests, alibabacloud-credentials), or some in an ``application/x-www-form-urlencoded`` body
(sdk-core ``CommonRequest.add_body_params``). Both are read with form semantics: ``+`` is a
space, percent-escapes are decoded, and blank values are kept (sdk-core signs an empty
``SignatureType=``). The action and version come from the ``Action``/``Version`` parameters
(V1) or the ``x-acs-action``/``x-acs-version`` headers (V3 sends only those).

A parameter given twice is refused: RAM names one value per parameter, and a second copy
could make the value checked differ from the one acted on.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qsl

from starlette.requests import Request

from mandate.api.rpc.errors import RpcError, missing_parameter

__all__ = ["FORM_TYPE", "RpcCall", "call_from_parts", "read_call"]

FORM_TYPE = "application/x-www-form-urlencoded"


@dataclass(frozen=True, slots=True)
class RpcCall:
    """One RPC request as read: what the signature checks and the dispatcher use."""

    method: str
    path: str
    """The path as sent, still percent-encoded (V3 signs it so)."""
    action: str
    version: str
    query: tuple[tuple[str, str], ...]
    """The query string's parameters, decoded, in order (V3 signs only these)."""
    form: tuple[tuple[str, str], ...]
    """The form body's parameters, decoded, in order (V1 signs them with the query's)."""
    params: dict[str, str]
    """Every parameter of query and body by name (each name once)."""
    headers: tuple[tuple[str, str], ...]
    body: bytes
    host: str


def _form_pairs(text: str) -> list[tuple[str, str]]:
    return parse_qsl(text, keep_blank_values=True, errors="strict")


def call_from_parts(
    method: str,
    path: str,
    query_string: str,
    headers: list[tuple[str, str]],
    body: bytes,
) -> RpcCall:
    """Read a call from its raw parts (separated from Starlette for the unit tests)."""
    try:
        query = _form_pairs(query_string)
    except UnicodeDecodeError:
        raise RpcError(400, "InvalidParameter", "The query string is not UTF-8.") from None
    lower = {name.lower(): value for name, value in headers}
    content_type = lower.get("content-type", "").split(";")[0].strip().lower()
    form: list[tuple[str, str]] = []
    if body and content_type == FORM_TYPE:
        try:
            form = _form_pairs(body.decode("utf-8"))
        except UnicodeDecodeError:
            raise RpcError(400, "InvalidParameter", "The form body is not UTF-8.") from None
    params: dict[str, str] = {}
    for name, value in (*query, *form):
        if name in params:
            raise RpcError(
                400,
                f"InvalidParameter.{name}" if name.isidentifier() else "InvalidParameter",
                f"The parameter {name!r} is given more than once.",
            )
        params[name] = value
    action = _named(params, lower, "Action", "x-acs-action")
    version = _named(params, lower, "Version", "x-acs-version")
    return RpcCall(
        method=method.upper(),
        path=path,
        action=action,
        version=version,
        query=tuple(query),
        form=tuple(form),
        params=params,
        headers=tuple(headers),
        body=body,
        host=lower.get("host", ""),
    )


def _named(params: dict[str, str], headers: dict[str, str], name: str, header: str) -> str:
    """``Action``/``Version`` from the parameter or the header; both must agree if both."""
    from_param = params.get(name)
    from_header = headers.get(header)
    if from_param and from_header and from_param != from_header:
        raise RpcError(
            400,
            f"InvalidParameter.{name}",
            f"The {name} parameter and the {header} header differ.",
        )
    value = from_param or from_header
    if not value:
        raise missing_parameter(name)
    return value


async def read_call(request: Request) -> RpcCall:
    """Read ``request`` (its body whole: bounded before by ``BodyLimitMiddleware``)."""
    body = await request.body()
    raw_path: bytes = request.scope.get("raw_path") or request.url.path.encode()
    path = raw_path.decode("latin-1").split("?", 1)[0]
    try:
        query_string = request.scope.get("query_string", b"").decode("utf-8")
    except UnicodeDecodeError:
        raise RpcError(400, "InvalidParameter", "The query string is not UTF-8.") from None
    headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw]
    return call_from_parts(request.method, path, query_string, headers, body)
