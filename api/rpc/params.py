"""Typed parameters of an RPC action: a pydantic model per action, read from the call's strings.

Declare fields in snake_case; each is read from its PascalCase name (``user_name`` from
``UserName``, ``max_items`` from ``MaxItems``). Parameters the model does not declare are
ignored (the SDKs add ``Format``, ``RegionId``, the signing parameters…), and a blank value
counts as absent. ``RpcBool`` takes ``true``/``false`` in any case (tea and sdk-core send
Python's ``True``/``False``), ``RpcInt`` plain decimal digits, ``JsonDocument`` a JSON text
(policy documents arrive percent-encoded and are decoded by then). A failure is RAM's:
``Missing<Name>`` for an absent mandatory parameter, ``InvalidParameter.<Name>`` otherwise.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from typing import Annotated, Any, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
)
from pydantic.alias_generators import to_pascal

from mandate.api.rpc.answers import paged
from mandate.api.rpc.errors import invalid_parameter, missing_parameter

__all__ = [
    "JsonDocument",
    "MaxItems",
    "PagedParams",
    "RpcBool",
    "RpcInt",
    "RpcParams",
    "parse_params",
]

P = TypeVar("P", bound="RpcParams")
T = TypeVar("T")

_DIGITS = re.compile(r"[+-]?[0-9]{1,18}")


def _bool(value: Any) -> Any:
    if isinstance(value, str):
        lowered = value.lower()
        if lowered in ("true", "false"):
            return lowered == "true"
        raise ValueError("must be true or false")
    return value


def _int(value: Any) -> Any:
    if isinstance(value, str):
        if not _DIGITS.fullmatch(value):
            raise ValueError("must be an integer")
        return int(value)
    return value


def _json(value: str) -> str:
    try:
        json.loads(value)
    except ValueError:
        raise ValueError("must be a JSON document") from None
    return value


RpcBool = Annotated[bool, BeforeValidator(_bool)]
"""A boolean parameter: ``true``/``false`` in any case."""

RpcInt = Annotated[int, BeforeValidator(_int)]
"""An integer parameter: decimal digits."""

JsonDocument = Annotated[str, AfterValidator(_json)]
"""A JSON document parameter (kept as the text sent: the engine parses it)."""

MaxItems = Annotated[RpcInt, Field(ge=1, le=1000)]
"""RAM's page size: 1 to 1000 (100 when absent)."""


class RpcParams(BaseModel):
    """The base of every action's parameter model (see the module docstring)."""

    model_config = ConfigDict(
        alias_generator=to_pascal,
        populate_by_name=True,
        extra="ignore",
        frozen=True,
    )


class PagedParams(RpcParams):
    """A listing's page: RAM's ``Marker`` (where the previous page stopped) and ``MaxItems``."""

    marker: str | None = None
    max_items: MaxItems = 100

    def page(
        self,
        items: Sequence[T],
        sort_key: Callable[[T], str],
        render: Callable[[T], dict[str, Any]],
        wrapper: str,
        member: str,
    ) -> dict[str, Any]:
        """This page of ``items`` in RAM's listing shape (``answers.paged``): each listing
        differs only in what it lists and how RAM names the wrapper and its members."""
        return paged(
            items,
            sort_key,
            render,
            marker=self.marker,
            max_items=self.max_items,
            wrapper=wrapper,
            member=member,
        )


class NoParams(RpcParams):
    """An action without parameters (e.g. STS GetCallerIdentity)."""


def parse_params(model: type[P], params: dict[str, str]) -> P:
    """``params`` read into ``model``, or RAM's refusal naming the first faulty parameter."""
    given = {name: value for name, value in params.items() if value != ""}
    try:
        return model.model_validate(given)
    except ValidationError as invalid:
        error = invalid.errors()[0]
        location = error.get("loc", ())
        name = str(location[0]) if location else "Parameter"
        if error.get("type") == "missing":
            raise missing_parameter(name) from None
        reason = str(error.get("msg", "invalid")).removeprefix("Value error, ")
        raise invalid_parameter(name, reason) from None
