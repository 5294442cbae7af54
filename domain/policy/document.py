"""Policy documents: RAM's policy language, parsed and checked once, when a document arrives.

``parse_policy_document`` is the only way in. It accepts JSON text or an already-decoded
mapping, and either returns a frozen ``PolicyDocument`` whose conditions are already compiled,
or raises ``InvalidInput`` naming the JSON path (zero-based: ``Statement[1].Condition.IpAddress``)
and the reason of every fault it finds, so that a client fixes a document in one round trip.

pydantic checks the shapes (types, unknown keys, empty lists, the form of each pattern); the
rules that span fields (exactly one of ``Action`` and ``NotAction``; ``Resource`` in identity
documents, ``Principal`` in trust documents) and the condition values are checked by hand on
the raw statement, so that they are reported even when the same statement has a shape fault.

A document is stored in events as ``canonical_json()``: the document as written (a single
string stays a string) with sorted keys and no whitespace, so equal documents hash equally
and parsing the canonical text gives back an equal document.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from enum import StrEnum
from typing import Annotated, Any, Final, Literal, TypeAlias

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    StrictStr,
    ValidationError,
)
from pydantic_core import PydanticCustomError

from mandate.domain.common.errors import FieldError, InvalidInput
from mandate.domain.policy.conditions import ConditionSet, compile_conditions
from mandate.domain.policy.document_errors import field_errors, join_path

__all__ = [
    "MAX_POLICY_DOCUMENT_CHARS",
    "DocumentKind",
    "Effect",
    "PolicyDocument",
    "Principal",
    "Statement",
    "parse_policy_document",
]

MAX_POLICY_DOCUMENT_CHARS: Final = 6144
"""RAM's limit on a policy document, in characters."""


class Effect(StrEnum):
    ALLOW = "Allow"
    DENY = "Deny"


class DocumentKind(StrEnum):
    """Identity documents name a ``Resource``; trust documents name a ``Principal``."""

    IDENTITY = "identity"
    TRUST = "trust"


# --- element rules ---------------------------------------------------------------------------

_ACTION_RE: Final = re.compile(r"\*|[A-Za-z0-9_.*?-]+:[A-Za-z0-9_.*?-]+")
_ACCOUNT_ID_RE: Final = re.compile(r"[0-9]{16}")


def _one_or_many(value: object) -> object:
    """RAM's shorthand: a single string stands for a one-element list."""
    return [value] if isinstance(value, str) else value


def _check_action(pattern: str) -> str:
    if not _ACTION_RE.fullmatch(pattern):
        raise PydanticCustomError(
            "action_form",
            'must be "*" or a "service:Action" pattern such as "oss:GetObject" or "ecs:Describe*"',
        )
    return pattern


def _check_resource(pattern: str) -> str:
    if pattern != "*" and not pattern.startswith("acs:"):
        raise PydanticCustomError(
            "resource_form",
            'must be "*" or a resource pattern acs:<service>:<region>:<account_id>:<relative_id>',
        )
    return pattern


def _check_ram_principal(name: str) -> str:
    if not (_ACCOUNT_ID_RE.fullmatch(name) or name.startswith("acs:ram::")):
        raise PydanticCustomError(
            "ram_principal_form",
            "must be a 16-digit account id or a RAM ARN (acs:ram::<account_id>:...)",
        )
    return name


def _check_federated_principal(name: str) -> str:
    """An identity provider: ``acs:ram::<account_id>:oidc-provider/<name>`` (RAM's form)."""
    if not re.fullmatch(r"acs:ram::\d{16}:oidc-provider/[^/]+", name):
        raise PydanticCustomError(
            "federated_principal_form",
            "must be an OIDC provider ARN acs:ram::<account_id>:oidc-provider/<name>",
        )
    return name


def _check_service_principal(name: str) -> str:
    if not name.strip():
        raise PydanticCustomError("service_principal_form", "must name a service")
    return name


# Each is one string or a non-empty list of strings, each passing its check.
_Actions: TypeAlias = Annotated[
    tuple[Annotated[StrictStr, AfterValidator(_check_action)], ...],
    BeforeValidator(_one_or_many),
    Field(min_length=1),
]
_Resources: TypeAlias = Annotated[
    tuple[Annotated[StrictStr, AfterValidator(_check_resource)], ...],
    BeforeValidator(_one_or_many),
    Field(min_length=1),
]
_RamPrincipals: TypeAlias = Annotated[
    tuple[Annotated[StrictStr, AfterValidator(_check_ram_principal)], ...],
    BeforeValidator(_one_or_many),
    Field(min_length=1),
]
_FederatedPrincipals: TypeAlias = Annotated[
    tuple[Annotated[StrictStr, AfterValidator(_check_federated_principal)], ...],
    BeforeValidator(_one_or_many),
    Field(min_length=1),
]
_ServicePrincipals: TypeAlias = Annotated[
    tuple[Annotated[StrictStr, AfterValidator(_check_service_principal)], ...],
    BeforeValidator(_one_or_many),
    Field(min_length=1),
]


# --- the models ------------------------------------------------------------------------------


class Principal(BaseModel):
    """Who a trust statement speaks of: RAM principals (accounts, users, roles) or services."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    ram: _RamPrincipals | None = Field(default=None, alias="RAM")
    service: _ServicePrincipals | None = Field(default=None, alias="Service")
    federated: _FederatedPrincipals | None = Field(default=None, alias="Federated")
    """OIDC providers (AssumeRoleWithOIDC, ``domain.sts.oidc_trust``)."""


class Statement(BaseModel):
    """One statement; ``actions`` with ``negated`` is ``Action`` or ``NotAction``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    sid: StrictStr | None = Field(default=None, alias="Sid")
    """A statement's own label (RAM and the KMS key policies it documents use one): kept in
    the document as written, never read by a decision."""
    effect: Effect = Field(alias="Effect")
    action: _Actions | None = Field(default=None, alias="Action")
    not_action: _Actions | None = Field(default=None, alias="NotAction")
    resource: _Resources | None = Field(default=None, alias="Resource")
    principal: Principal | None = Field(default=None, alias="Principal")
    condition: dict[str, Any] | None = Field(default=None, alias="Condition")

    _conditions: ConditionSet | None = PrivateAttr(default=None)

    @property
    def actions(self) -> tuple[str, ...]:
        """The ``Action`` patterns, or the ``NotAction`` ones when ``negated``."""
        patterns: tuple[str, ...] | None = self.action or self.not_action
        return patterns or ()

    @property
    def negated(self) -> bool:
        """Whether the statement names ``NotAction`` (it applies to every *other* action)."""
        return self.not_action is not None

    @property
    def conditions(self) -> ConditionSet | None:
        """The compiled ``Condition`` block, or ``None`` when the statement has none."""
        return self._conditions


class _DocumentShape(BaseModel):
    """The top level, checked apart so that each statement's faults can be collected."""

    model_config = ConfigDict(extra="forbid")

    version: Literal["1"] = Field(alias="Version")
    statement: list[Any] = Field(alias="Statement", min_length=1)


class PolicyDocument(BaseModel):
    """A checked document: its statements in order, and its canonical text."""

    model_config = ConfigDict(frozen=True)

    kind: DocumentKind
    version: str
    statements: tuple[Statement, ...]

    _canonical: str = PrivateAttr(default="")

    def canonical_json(self) -> str:
        """Sorted keys, no whitespace, non-ASCII kept: the form stored in events and hashed."""
        return self._canonical

    def as_dict(self) -> dict[str, object]:
        """A fresh plain-JSON copy of the document, in RAM's own keys."""
        document: dict[str, object] = json.loads(self._canonical)
        return document

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PolicyDocument):
            return NotImplemented
        return (self.kind, self._canonical) == (other.kind, other._canonical)

    def __hash__(self) -> int:
        return hash((self.kind, self._canonical))


# --- parsing ---------------------------------------------------------------------------------


def parse_policy_document(
    raw: str | Mapping[str, object],
    *,
    kind: DocumentKind = DocumentKind.IDENTITY,
    max_chars: int = MAX_POLICY_DOCUMENT_CHARS,
) -> PolicyDocument:
    """Check and compile a document, or raise ``InvalidInput`` naming each fault's path.

    The size limit is measured on ``raw`` when it is text, else on its canonical JSON.
    """
    data, canonical = _decode(raw)
    size = len(raw) if isinstance(raw, str) else len(canonical)
    if size > max_chars:
        raise InvalidInput(
            FieldError("", f"must be at most {max_chars} characters; this one has {size}")
        )
    if not isinstance(data, Mapping):
        raise InvalidInput(FieldError("", "must be a JSON object"))

    errors: list[FieldError] = []
    try:
        _DocumentShape.model_validate(data)
    except ValidationError as invalid:
        errors.extend(field_errors(invalid, data, ""))
    raw_statements = data.get("Statement")
    statements: list[Statement] = []
    if isinstance(raw_statements, list):
        for index, raw_statement in enumerate(raw_statements):
            statement = _parse_statement(raw_statement, f"Statement[{index}]", kind, errors)
            if statement is not None:
                statements.append(statement)
    if errors:
        raise InvalidInput(errors)

    document = PolicyDocument.model_construct(kind=kind, version="1", statements=tuple(statements))
    document._canonical = canonical
    return document


def _decode(raw: str | Mapping[str, object]) -> tuple[object, str]:
    """The decoded document and its canonical text; faults are the whole document's."""
    if isinstance(raw, str):
        try:
            data: object = json.loads(
                raw, object_pairs_hook=_refuse_duplicate_keys, parse_constant=_refuse_constant
            )
        except json.JSONDecodeError as bad:
            reason = f"is not valid JSON: {bad.msg} at line {bad.lineno} column {bad.colno}"
            raise InvalidInput(FieldError("", reason)) from None
        except ValueError as bad:
            raise InvalidInput(FieldError("", f"is not valid JSON: {bad}")) from None
        except RecursionError:  # a few thousand brackets fit in the size limit
            raise InvalidInput(FieldError("", _TOO_DEEP)) from None
    else:
        data = raw
    try:
        canonical = json.dumps(
            data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )
    except (TypeError, ValueError) as bad:
        raise InvalidInput(FieldError("", f"is not a JSON document: {bad}")) from None
    except RecursionError:
        raise InvalidInput(FieldError("", _TOO_DEEP)) from None
    # Stored as text by every read model: PostgreSQL's text holds no NUL, UTF-8 no surrogate.
    if "\x00" in canonical:
        raise InvalidInput(FieldError("", "must not contain NUL characters"))
    try:
        canonical.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput(FieldError("", "must be valid Unicode (no lone surrogate)")) from None
    return data, canonical


_TOO_DEEP = "is nested too deeply to be a policy document"


def _refuse_duplicate_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    decoded: dict[str, object] = {}
    for key, value in pairs:
        if key in decoded:
            raise ValueError(f"the key {key!r} appears twice in one object")
        decoded[key] = value
    return decoded


def _refuse_constant(name: str) -> object:
    raise ValueError(f"{name} is not a JSON number")


def _parse_statement(
    raw: object, path: str, kind: DocumentKind, errors: list[FieldError]
) -> Statement | None:
    """Validate one statement; append its faults to ``errors``; ``None`` if it has any."""
    count = len(errors)
    statement: Statement | None = None
    try:
        statement = Statement.model_validate(raw)
    except ValidationError as invalid:
        errors.extend(field_errors(invalid, raw, path))
    conditions: ConditionSet | None = None
    if isinstance(raw, Mapping):
        errors.extend(_cross_field_faults(raw, path, kind))
        block = raw.get("Condition")
        if isinstance(block, Mapping):
            try:
                conditions = compile_conditions(block)
            except InvalidInput as invalid:
                errors.extend(
                    FieldError(join_path(f"{path}.Condition", e.field), e.reason)
                    for e in invalid.errors
                )
    if statement is None or len(errors) > count:
        return None
    statement._conditions = conditions
    return statement


def _cross_field_faults(
    raw: Mapping[str, object], path: str, kind: DocumentKind
) -> list[FieldError]:
    """The rules that span a statement's keys (an explicit ``null`` counts as absent)."""

    def has(key: str) -> bool:
        return raw.get(key) is not None

    faults: list[FieldError] = []
    if has("Action") and has("NotAction"):
        faults.append(FieldError(path, "must have either Action or NotAction, not both"))
    elif not has("Action") and not has("NotAction"):
        faults.append(FieldError(path, "must have Action or NotAction"))
    if kind is DocumentKind.IDENTITY:
        if not has("Resource"):
            faults.append(FieldError(f"{path}.Resource", "is required in an identity policy"))
        if has("Principal"):
            faults.append(
                FieldError(f"{path}.Principal", "belongs in a trust policy, not an identity one")
            )
    else:
        if not has("Principal"):
            faults.append(FieldError(f"{path}.Principal", "is required in a trust policy"))
        if has("Resource"):
            faults.append(
                FieldError(f"{path}.Resource", "does not belong in a trust policy (use Principal)")
            )
        principal = raw.get("Principal")
        if isinstance(principal, Mapping) and not any(
            principal.get(key) is not None for key in ("RAM", "Service", "Federated")
        ):
            faults.append(
                FieldError(
                    f"{path}.Principal",
                    "must name RAM or Service principals (or Federated OIDC providers)",
                )
            )
    return faults
