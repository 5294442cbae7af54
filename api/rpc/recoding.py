"""RAM's own codes for refusals the engine names generically, on the RPC surface only.

The engine answers /v1 with codes that do not depend on who holds what
(``EntityAlreadyExists.Policy.Attachment``, ``DeleteConflict.Policy.DefaultVersion``); RAM
names the principal kind or spells the code its own way (``EntityAlreadyExists.User.Policy``,
``DeleteConflict.Policy.Version.Default``). An action runs its write inside ``recoded({...})``
with the mapping for its call; the refusal is the engine's — same check, same moment, nothing
written — only its code and message change. /v1's answers stay as they are.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Final

from mandate.api.rpc.errors import RAM_MESSAGES, RpcError, as_rpc_error
from mandate.domain.common.arns import PrincipalKind
from mandate.domain.common.errors import DomainError, InvalidInput

__all__ = ["attachment_codes", "malformed_document", "ram_error", "recoded"]

MESSAGES: Final[dict[str, str]] = {
    "EntityAlreadyExists.User.Policy": "The user has already been attached this policy.",
    "EntityAlreadyExists.Group.Policy": "The group has already been attached this policy.",
    "EntityAlreadyExists.Role.Policy": "The role has already been attached this policy.",
    "EntityNotExist.User.Policy": "The indicate policy of the user does not exist.",
    "EntityNotExist.Group.Policy": "The policy attached to the group does not exist.",
    "EntityNotExist.Role.Policy": "The policy attached to the role does not exist.",
    "DeleteConflict.Policy.Version.Default": (
        "The default policy version CAN NOT been deleted directly."
    ),
    "LimitExceeded.Policy.Version": "The count of policy versions beyond the current limits.",
    "LimitExceeded.User.Policy": "The count of policies attached to the user beyond the limits.",
    "LimitExceeded.Group.Policy": "The count of policies attached to the group beyond the limits.",
    "LimitExceeded.Role.Policy": "The count of policies attached to the role beyond the limits.",
}
"""RAM's messages for the codes this module produces (``errors.RAM_MESSAGES`` has the rest)."""


def ram_error(status: int, code: str) -> RpcError:
    """A refusal with RAM's ``code`` and RAM's message for it."""
    return RpcError(status, code, MESSAGES.get(code) or RAM_MESSAGES.get(code))


def attachment_codes(kind: PrincipalKind) -> dict[str, str]:
    """The engine's attachment codes → RAM's for ``kind`` (``EntityNotExist.User.Policy``)."""
    noun = kind.noun
    return {
        "EntityAlreadyExists.Policy.Attachment": f"EntityAlreadyExists.{noun}.Policy",
        "EntityNotExist.Policy.Attachment": f"EntityNotExist.{noun}.Policy",
        "LimitExceeded.Policy.Attachment": f"LimitExceeded.{noun}.Policy",
    }


def malformed_document(error: InvalidInput, field: str) -> RpcError | None:
    """RAM's ``MalformedPolicyDocument`` when ``error`` is about the document ``field``."""
    if error.code is None and any(e.field.startswith(field) for e in error.errors):
        return RpcError(400, "MalformedPolicyDocument", error.detail)
    return None


@contextlib.contextmanager
def recoded(codes: Mapping[str, str], *, document: str | None = None) -> Iterator[None]:
    """Run the block; a domain refusal whose code is in ``codes`` leaves with RAM's code (and
    RAM's message), a fault in the policy document ``document`` (the engine's field name) as
    ``MalformedPolicyDocument``; any other error passes unchanged."""
    try:
        yield
    except InvalidInput as error:
        malformed = malformed_document(error, document) if document else None
        if malformed is not None:
            raise malformed from None
        _raise_recoded(error, codes)
        raise
    except DomainError as error:
        _raise_recoded(error, codes)
        raise


def _raise_recoded(error: DomainError, codes: Mapping[str, str]) -> None:
    code = codes.get(error.code or "")
    if code is None:
        return
    generic = as_rpc_error(error)
    status = generic.http_status if generic is not None else 400
    message = MESSAGES.get(code) or RAM_MESSAGES.get(code) or error.detail
    raise RpcError(status, code, message) from error
