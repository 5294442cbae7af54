"""The actions served at ``/``, by (Action, Version), each with its parameter model.

An action is a plain function ``(ctx, params) -> dict`` registered with ``rpc_action``; the
endpoint reads the call, finds the action (``InvalidVersion``, ``InvalidAction.NotFound``),
authenticates the signature, reads the parameters into the model, and runs the function in a
worker thread (ledger writes block). The function authorises and writes through ``ctx`` —
the same ``manage(...).write`` and ``authorize_read`` the /v1 routers use — and answers the
action's fields in RAM's PascalCase; ``RequestId`` is added for it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Generic, TypeVar

from mandate.api.deps import Caller, Management, manage
from mandate.api.reads import authorize_read
from mandate.api.rpc.errors import RpcError
from mandate.api.rpc.params import RpcParams, parse_params
from mandate.api.runtime import Runtime

__all__ = [
    "IMS",
    "RAM",
    "REGISTRY",
    "RESOURCE_MANAGER",
    "STS",
    "Action",
    "Handler",
    "Registry",
    "RpcContext",
    "rpc_action",
]

RAM: Final = "2015-05-01"
"""RAM's API version."""
STS: Final = "2015-04-01"
"""STS's API version."""
IMS: Final = "2019-08-15"
"""IMS's API version (RAM's identity management: OIDC providers)."""
RESOURCE_MANAGER: Final = "2020-03-31"
"""Resource Management's API version (Resource Directory, control policies)."""

P = TypeVar("P", bound=RpcParams)


@dataclass(frozen=True, slots=True)
class RpcContext:
    """What an action runs with: the engine, the verified caller, the caller's account."""

    runtime: Runtime
    caller: Caller
    request_id: str

    @property
    def account_id(self) -> str:
        """The account every RAM call acts in: the caller's own (RAM has no other)."""
        if self.caller.account_id is None:  # the platform admin never signs RPC calls
            raise RpcError(403, "NoPermission")
        return self.caller.account_id

    def manage(self, action: str, resource: str) -> Management:
        """Authorise the write ``action`` (``ram:CreateUser``…) on ``resource`` (an ARN), as
        /v1 does; then ``.write(lambda ledger: ledger.…)`` makes it."""
        return manage(self.runtime, self.caller, self.account_id, action, resource)

    def authorize_read(self, action: str, resource: str | None = None) -> None:
        """Authorise a Get/List ``action``; a listing (no ``resource``) asks about
        ``acs:ram::<account>:*``, as /v1 does."""
        authorize_read(self.runtime, self.caller, self.account_id, action, resource)


Handler = Callable[[RpcContext, P], dict[str, Any]]
"""An action: its context and parsed parameters in, the answer's fields (no RequestId) out."""


@dataclass(frozen=True, slots=True)
class Action(Generic[P]):
    """One registered action."""

    name: str
    version: str
    params: type[P]
    handler: Handler[P]
    anonymous: bool = False
    """Called without AccessKey or signature (STS's AssumeRoleWithOIDC: the token is the
    credential): the endpoint authenticates nothing and the caller is ``anonymous_caller``."""

    def run(self, ctx: RpcContext, params: dict[str, str]) -> dict[str, Any]:
        """Parse ``params`` (RAM's errors if they do not fit), then run the handler."""
        return self.handler(ctx, parse_params(self.params, params))


class Registry:
    """(Action, Version) → ``Action``; the versions known are those of some action."""

    def __init__(self) -> None:
        self._actions: dict[tuple[str, str], Action[Any]] = {}
        self._versions: set[str] = {RAM, STS, IMS, RESOURCE_MANAGER}

    def add(self, action: Action[Any]) -> None:
        key = (action.name, action.version)
        if key in self._actions:
            raise ValueError(f"{action.name} {action.version} is registered twice")
        self._actions[key] = action

    def find(self, name: str, version: str) -> Action[Any]:
        """The action, or ``InvalidVersion`` / ``InvalidAction.NotFound``."""
        if version not in self._versions:
            raise RpcError(400, "InvalidVersion")
        found = self._actions.get((name, version))
        if found is None:
            raise RpcError(404, "InvalidAction.NotFound")
        return found

    def names(self, version: str) -> list[str]:
        """The actions served for ``version``, sorted (for docs and tests)."""
        return sorted(name for name, v in self._actions if v == version)


REGISTRY: Final = Registry()
"""The process's actions: modules ``ram_*``, ``sts_*``, ``ims_*`` and ``rm_*`` of this package
fill it."""


def rpc_action(
    name: str,
    version: str,
    params: type[P],
    *,
    registry: Registry = REGISTRY,
    anonymous: bool = False,
) -> Callable[[Handler[P]], Handler[P]]:
    """Register the decorated function as ``name`` of ``version`` with ``params`` parsed
    (``anonymous``: called unsigned, see ``Action.anonymous``)."""

    def register(handler: Handler[P]) -> Handler[P]:
        registry.add(Action(name, version, params, handler, anonymous))
        return handler

    return register
