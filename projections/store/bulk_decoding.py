"""Decoding stored events in bulk: what eventsourcing's mapper builds, without its per-event costs.

A replaying projection (a process catching up before it serves, a rebuild draining the log)
decodes hundreds of thousands of events; ``BulkDecoder`` builds exactly the mapper's events with
the C JSON scanner, one ``UUID`` per hex id and topics resolved once, and hands anything unusual
to the mapper itself, so errors stay the mapper's. ``fewer_collections`` raises the cyclic
collector's threshold meanwhile (a replay makes millions of objects and no cycles).
"""

from __future__ import annotations

import contextlib
import gc
import json
import threading
from collections.abc import Callable, Hashable, Iterator
from datetime import datetime
from json.scanner import make_scanner
from typing import Any, cast
from uuid import UUID

from eventsourcing.persistence import (
    DatetimeAsISO,
    DecimalAsStr,
    JSONTranscoder,
    Mapper,
    UUIDAsHex,
    find_id_convertor,
)
from eventsourcing.utils import resolve_topic

__all__ = ["BulkDecoder", "fewer_collections"]

_STOCK_TRANSCODINGS: dict[str, type] = {
    "uuid_hex": UUIDAsHex,
    "decimal_str": DecimalAsStr,
    "datetime_iso": DatetimeAsISO,
}

_REPLAY_GC_THRESHOLD = 50_000
"""The cyclic collector's first threshold while replaying (700 by default): a replay makes
millions of objects and no cycles, and each full collection walks the whole growing index —
10-20% of a replay at 100k events here."""
_gc_lock = threading.Lock()
_gc_replays = 0
_gc_saved: tuple[int, ...] = ()


@contextlib.contextmanager
def fewer_collections() -> Iterator[None]:
    """Raise the collector's first threshold for the duration (process-wide, so counted)."""
    global _gc_replays, _gc_saved
    with _gc_lock:
        if _gc_replays == 0:
            _gc_saved = gc.get_threshold()
            gc.set_threshold(max(_gc_saved[0], _REPLAY_GC_THRESHOLD), *_gc_saved[1:])
        _gc_replays += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_replays -= 1
            if _gc_replays == 0:
                gc.set_threshold(*_gc_saved)


class BulkDecoder:
    """Builds domain events from stored ones exactly as eventsourcing's ``Mapper`` does, faster.

    The mapper costs ~28 µs an event here, more than applying it: a Python ``JSONDecoder``
    round (whitespace regexes), a transcoding lookup per JSON object, a new ``UUID`` for every
    id in every event, the topic and id-convertor lookups. This one scans the JSON with the C
    scanner and a single hook, keeps one ``UUID`` per hex string (equal ids are then the same
    object: dictionary lookups by them succeed on identity) and resolves each topic once.
    Only for the stock JSON transcoder without cipher or compression (``for_mapper`` says
    None otherwise); anything unusual in one event raises, and the caller then decodes that
    event with the mapper itself.
    """

    def __init__(self) -> None:
        self._uuids: dict[str, UUID] = {}
        self._classes: dict[str, tuple[type, type, Callable[[Any], Any], int]] = {}
        # the C scanner itself, without a hook: ``JSONDecoder.decode``'s whitespace regexes and
        # a Python call for every object cost more than scanning; ``_revive`` then applies
        # the transcoder's rule to the objects there are (bottom-up, as a hook would)
        decoder = json.JSONDecoder()
        self._scan: Callable[[str, int], tuple[Any, int]] = make_scanner(decoder)  # type: ignore[arg-type]
        self._decimal = DecimalAsStr().decode

    @classmethod
    def for_mapper(cls, mapper: Mapper[Any]) -> BulkDecoder | None:
        """A decoder equivalent to ``mapper``, or None when it is not the stock JSON one."""
        transcoder = mapper.transcoder
        if mapper.cipher is not None or mapper.compressor is not None:
            return None
        if type(transcoder) is not JSONTranscoder:
            return None
        for name, transcoding in transcoder.names.items():
            if type(transcoding) is not _STOCK_TRANSCODINGS.get(name):
                return None
        return cls()

    def _revive(self, value: Any) -> Any:
        """``value`` with every JSON object in it through ``_hook``, innermost first."""
        if type(value) is dict:
            for key, item in value.items():
                if type(item) is dict or type(item) is list:
                    value[key] = self._revive(item)
            return self._hook(value)
        if type(value) is list:
            for i, item in enumerate(value):
                if type(item) is dict or type(item) is list:
                    value[i] = self._revive(item)
        return value

    def _hook(self, d: dict[str, Any]) -> Any:
        # JSONTranscoder._decode_obj's rule: a two-key object with "_type_" and "_data_"
        if len(d) != 2 or "_type_" not in d or "_data_" not in d:
            return d
        kind, data = d["_type_"], d["_data_"]
        if type(data) is not str:
            raise TypeError(f"{kind} data is not a string")  # the mapper says why
        if kind == "datetime_iso":
            return datetime.fromisoformat(data)
        if kind == "uuid_hex":
            found = self._uuids.get(data)
            if found is None:
                found = self._uuids[data] = UUID(data)
            return found
        if kind == "decimal_str":
            return self._decimal(data)
        raise KeyError(kind)  # not registered: the mapper raises its own error

    def decode(self, originator_id: Any, originator_version: int, topic: str, state: bytes) -> Any:
        """The domain event ``Mapper.to_domain_event`` makes of this stored event."""
        known = self._classes.get(topic)
        if known is None or known[1] is not type(originator_id):
            cls = resolve_topic(topic)
            convertor = find_id_convertor(cls, cast(Hashable, type(originator_id)))
            known = (cls, type(originator_id), convertor, getattr(cls, "class_version", 1))
            self._classes[topic] = known
        cls, _, convertor, class_version = known
        text = state.decode("utf8")
        event_state, end = self._scan(text, 0)
        if end != len(text) or type(event_state) is not dict:
            raise ValueError("not one JSON object")  # the mapper says why
        for key, item in event_state.items():  # ``_revive`` inlined: most values are strings
            if type(item) is dict or type(item) is list:
                event_state[key] = self._revive(item)
        if len(event_state) == 2 and "_type_" in event_state and "_data_" in event_state:
            raise ValueError("a transcoded value, not an event")  # the mapper says why
        event_state["originator_id"] = convertor(originator_id)
        event_state["originator_version"] = originator_version
        from_version = event_state.pop("class_version", 1)
        while from_version < class_version:
            getattr(cls, f"upcast_v{from_version}_v{from_version + 1}")(event_state)
            from_version += 1
        event: Any = object.__new__(cls)
        object.__setattr__(event, "__dict__", event_state)
        return event
