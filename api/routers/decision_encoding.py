"""How ``/v1/authorize`` writes an answer: its constant part encoded once and kept (bounded in
bytes), then the time and position appended — a memo hit costs one lookup and a join.

Also the body of a refusal to authenticate the credentials an enforcement point passed on.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from fastapi.responses import Response

from mandate.api.presenters import answer_json, refusal_json, rfc3339
from mandate.domain.policy.decisions import Answer

__all__ = ["ENCODED_ANSWERS_BYTES", "answer_response", "refused"]

_encode_json = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode
ENCODED_ANSWERS_BYTES = 16 * 1024 * 1024
"""The budget of the answers' encodings (estimated: ``_ENCODED_ENTRY_BYTES`` plus the bytes)."""
_ENCODED_ENTRY_BYTES = 500
"""What one kept encoding costs beyond its bytes: its dict slot, its tuple, and the ``Answer``
it keeps alive (its decision, matched statements, chain); about 450 measured with tracemalloc
in tests/unit/test_encoded_answers.py."""


class _Encodings:
    """The constant part of each memoised answer's JSON, keyed by the ``Answer`` object (its
    id, with the object kept beside it so that a recycled id never matches): a memo hit then
    costs one lookup and a join instead of rebuilding and encoding the whole answer.

    Bounded in bytes, not entries, since it keeps each answer alive after the memo dropped
    it: when full it starts again empty, and a memoised answer asked again is encoded again.
    Answers that depend on the request context are never memoised, so never kept.
    """

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.filled = 0
        self.entries: dict[int, tuple[Answer, bytes]] = {}

    def keep(self, answer: Answer, prefix: bytes) -> None:
        cost = _ENCODED_ENTRY_BYTES + len(prefix)
        if cost > self.budget:
            return
        self.filled += cost
        if self.filled > self.budget:
            self.entries, self.filled = {}, cost
        self.entries[id(answer)] = (answer, prefix)


_encodings = _Encodings(ENCODED_ANSWERS_BYTES)


def _answer_prefix(answer: Answer, *, cache: bool = True) -> bytes:
    cached = _encodings.entries.get(id(answer))
    if cached is not None and cached[0] is answer:
        return cached[1]
    prefix = _encode_json(answer_json(answer))[:-1].encode()
    if cache and not answer.decision.context_dependent:
        _encodings.keep(answer, prefix)
    return prefix


def answer_response(answer: Answer, position: int, *, cache: bool = True) -> Response:
    """The answer as JSON: its constant part (encoded once) plus the time and position.

    ``position``: the index's position read with the decision (``DecisionIndex.steady``),
    never after it. ``cache``: False for an answer the memo never holds (a new object each
    time), so that encoding it once cannot help.
    """
    tail = f',"evaluated_at":"{rfc3339(datetime.now(UTC))}","position":{position}}}'
    return Response(
        _answer_prefix(answer, cache=cache) + tail.encode(), media_type="application/json"
    )


def refused(reason: str, position: int) -> dict[str, Any]:
    return {
        **refusal_json(reason),
        "evaluated_at": rfc3339(datetime.now(UTC)),
        "position": position,
        "authenticated": False,
    }
