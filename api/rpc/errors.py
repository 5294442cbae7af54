"""RPC refusals: RAM's and STS's error codes, and the one place other errors become them.

Every refusal on ``/`` leaves as an ``RpcError`` (HTTP status, ``Code``, ``Message``); the
endpoint renders it (``answers.error_response``). The engine's own errors are translated here
only, by class and code: domain errors already carry RAM's codes (``EntityNotExist.User``,
``EntityAlreadyExists.Group``…), signature refusals theirs (``SignatureDoesNotMatch``…), and
the /v1 refusals (``Forbidden``, ``Unauthenticated``, outages) map to the gateway's. Where RAM
documents a fixed message for a code, that message is sent; otherwise the engine's detail.
No message ever holds a secret: the engine's details never do, and signing errors say only
what the server computed.
"""

from __future__ import annotations

from typing import Final

from eventsourcing.persistence import InterfaceError, OperationalError
from pydantic.alias_generators import to_pascal

from mandate.api.abuse import Throttled
from mandate.api.outages import StoreUnavailable, WriteNotApplied
from mandate.api.problems import Busy, Forbidden, PositionNotReached, Unauthenticated
from mandate.api.signing import SigningError
from mandate.domain.common.errors import (
    Conflict,
    DomainError,
    InvalidInput,
    NotFound,
    NotPermitted,
)

__all__ = [
    "RAM_MESSAGES",
    "RpcError",
    "as_rpc_error",
    "invalid_parameter",
    "missing_parameter",
    "no_permission",
]


class RpcError(Exception):
    """A refusal in the RPC dialect: ``http_status``, RAM's ``code`` and a ``message``."""

    def __init__(
        self,
        http_status: int,
        code: str,
        message: str | None = None,
        *,
        retry_after: int | None = None,
    ) -> None:
        text = message if message is not None else RAM_MESSAGES.get(code, code)
        super().__init__(f"{http_status} {code}: {text}")
        self.http_status = http_status
        self.code = code
        self.message = text
        self.retry_after = retry_after  # seconds, sent as Retry-After (a throttled call)


RAM_MESSAGES: Final[dict[str, str]] = {
    "NoPermission": "You are not authorized to do this action.",
    "EntityNotExist.User": "The user does not exist.",
    "EntityNotExist.Group": "The group does not exist.",
    "EntityNotExist.Policy": "The policy does not exist.",
    "EntityNotExist.Role": "The role does not exist.",
    "EntityNotExist.User.AccessKey": "The user access key does not exist.",
    "EntityNotExist.User.Group": "The user has not joined the group.",
    "EntityNotExist.Policy.Version": "The policy version does not exist.",
    "EntityAlreadyExists.User": "The user does already EXIST.",
    "EntityAlreadyExists.Group": "The group does already EXIST.",
    "EntityAlreadyExists.Role": "The role does already EXIST.",
    "EntityAlreadyExists.Policy": "The policy does already EXIST.",
    "EntityAlreadyExists.User.Group": "The user has already joined the group.",
    "DeleteConflict.User.AccessKey": "The user CAN NOT has any access key while deleting the user.",
    "DeleteConflict.User.Group": "The user CAN NOT be in any group while deleting the user.",
    "DeleteConflict.User.Policy": (
        "The user CAN NOT has any attached policy while deleting the user."
    ),
    "DeleteConflict.Group.User": (
        "The group CAN NOT has any user member while deleting the group."
    ),
    "DeleteConflict.Group.Policy": (
        "The entity CAN NOT has any attached policy while deleting the group."
    ),
    "DeleteConflict.Role.Policy": (
        "The role CAN NOT has any attached policy while deleting the role."
    ),
    "DeleteConflict.Policy.User": (
        "The policy CAN NOT been attached to any user while deleting the policy."
    ),
    "DeleteConflict.Policy.Group": (
        "The policy CAN NOT been attached to any group while deleting the policy."
    ),
    # RAM documents no code for a role holding the policy: Mandate names it as the others
    "DeleteConflict.Policy.Role": (
        "The policy CAN NOT been attached to any role while deleting the policy."
    ),
    "DeleteConflict.Policy.Version": (
        "The policy CAN NOT has any version except the default version."
    ),
    "InvalidAccessKeyId.NotFound": "Specified access key is not found.",
    "InvalidAccessKeyId.Inactive": "Specified access key is disabled.",
    "InvalidAction.NotFound": "Specified api is not found, please check your url and method.",
    "InvalidVersion": "Specified parameter Version is not valid.",
    "InvalidSecurityToken.Expired": "Specified SecurityToken is expired.",
    "InvalidSecurityToken.MismatchWithAccessKey": (
        "Specified SecurityToken mismatch with the AccessKey."
    ),
    "InvalidSecurityToken.Malformed": "Specified SecurityToken is malformed.",
    "Throttling.User": "Request was denied due to user flow control.",
    "ServiceUnavailable": "The request has failed due to a temporary failure of the server.",
    "InternalError": "An internal error occurred.",
}
"""RAM's documented messages, sent whenever a refusal carries one of these codes."""


def missing_parameter(name: str) -> RpcError:
    """The gateway's refusal of a request without a mandatory parameter: ``Missing<Name>``."""
    return RpcError(400, f"Missing{name}", f"{name} is mandatory for this action.")


def invalid_parameter(name: str, reason: str) -> RpcError:
    """``InvalidParameter.<Name>``: the parameter is there but not acceptable."""
    return RpcError(
        400, f"InvalidParameter.{name}", f'The parameter - "{name}" is incorrect: {reason}.'
    )


def unsupported_parameter(name: str, value: object, why: str) -> None:
    """Refuse ``name`` when it is given (``InvalidParameter.<Name>``): Mandate keeps no such
    thing, and silently dropping it would answer a lie; ``why`` says what it does not keep."""
    if value is not None:
        raise RpcError(
            400, f"InvalidParameter.{name}", f'The parameter - "{name}" is not supported: {why}.'
        )


def no_permission(detail: str | None = None) -> RpcError:
    """403 ``NoPermission``, with the engine's reason after RAM's sentence when there is one."""
    base = RAM_MESSAGES["NoPermission"]
    return RpcError(403, "NoPermission", f"{base} {detail}" if detail else base)


_STATUS_BY_CLASS: Final[tuple[tuple[type[DomainError], int, str], ...]] = (
    (NotFound, 404, "EntityNotExist"),
    (NotPermitted, 403, "NoPermission"),
    (Conflict, 409, "Conflict"),  # PreconditionFailed and LimitExceeded included
    (InvalidInput, 400, "InvalidParameter"),
)


def as_rpc_error(exc: Exception) -> RpcError | None:
    """The RPC form of an engine error, or None for an unexpected one (a 500, logged)."""
    if isinstance(exc, RpcError):
        return exc
    if isinstance(exc, SigningError):
        return RpcError(exc.http_status, exc.code, exc.message)
    if isinstance(exc, InvalidInput) and exc.errors:
        fault = exc.errors[0]
        name = to_pascal(fault.field.split(".")[0]) if fault.field else "Parameter"
        return RpcError(
            400,
            exc.code or f"InvalidParameter.{name}",
            f'The parameter - "{name}" is incorrect: {fault.reason}.',
        )
    if isinstance(exc, DomainError):
        status, fallback = next(
            ((s, c) for cls, s, c in _STATUS_BY_CLASS if isinstance(exc, cls)),
            (400, "InvalidParameter"),
        )
        code = exc.code or fallback
        return RpcError(status, code, RAM_MESSAGES.get(code, exc.detail))
    if isinstance(exc, Forbidden):
        return no_permission(exc.reason)
    if isinstance(exc, Throttled):
        return RpcError(429, "Throttling.User", retry_after=exc.retry_after)
    if isinstance(exc, Unauthenticated):
        return RpcError(404, "InvalidAccessKeyId.NotFound")
    if isinstance(exc, PositionNotReached | WriteNotApplied | Busy):
        return RpcError(503, "ServiceUnavailable", str(exc))
    if isinstance(exc, StoreUnavailable | OperationalError | InterfaceError):
        return RpcError(503, "ServiceUnavailable")
    return None
