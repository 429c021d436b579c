"""One definition's timeline: every version in which it appeared, changed or went away,
with the fields that changed.

A definition's rows, ordered by ``valid_from``, are its whole history: each row is the
entry as one version introduced it, and ``valid_to`` is the version that replaced or
removed it. Rows of a sync still in progress (above the active sequence number) are not
history yet and are left out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from manifest.history import version_names
from manifest.lookup import active_seq
from manifest.models import Definition

# A definition rewritten whole (Bungie has) would list thousands of fields: the first ones.
MAX_FIELDS = 200
_ABSENT = object()


@dataclass(frozen=True)
class FieldChange:
    path: str
    old: Any  # None with ``added``: the field was absent
    new: Any  # None with ``removed``
    kind: str  # "added", "changed" or "removed"

    def as_dict(self) -> dict[str, Any]:
        return {"path": self.path, "kind": self.kind, "old": self.old, "new": self.new}


@dataclass
class Event:
    seq: int
    version: str | None  # None: a sequence number whose version was synced again since
    change: str  # "added", "changed" or "removed"
    name: str
    fields: list[FieldChange] = field(default_factory=list)
    more_fields: int = 0  # changed fields beyond MAX_FIELDS, not listed

    def as_dict(self) -> dict[str, Any]:
        return {"version": self.version, "seq": self.seq, "change": self.change, "name": self.name,
                "fields": [f.as_dict() for f in self.fields], "more_fields": self.more_fields}


def field_changes(old: Any, new: Any, path: str = "") -> list[FieldChange]:
    """Every leaf that differs between two JSON values, by dotted path (``a.b[2].c``).
    Objects are compared key by key, lists of the same length item by item; anything else
    that differs is one change."""
    if old == new:
        return []
    if isinstance(old, dict) and isinstance(new, dict):
        found: list[FieldChange] = []
        for key in sorted(set(old) | set(new), key=str):
            sub = f"{path}.{key}" if path else str(key)
            a, b = old.get(key, _ABSENT), new.get(key, _ABSENT)
            if a is _ABSENT:
                found.append(FieldChange(sub, None, b, "added"))
            elif b is _ABSENT:
                found.append(FieldChange(sub, a, None, "removed"))
            else:
                found.extend(field_changes(a, b, sub))
        return found
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        found = []
        for index, (a, b) in enumerate(zip(old, new, strict=True)):
            found.extend(field_changes(a, b, f"{path}[{index}]"))
        return found
    return [FieldChange(path or "(whole)", old, new, "changed")]


def timeline(entity_type: str, entry_hash: int, *, language: str) -> list[Event] | None:
    """The definition's events, oldest first; None when no served version ever had it."""
    seq = active_seq()
    if seq is None:
        return None
    rows = list(Definition.objects.filter(entity_type=entity_type, language=language, hash=entry_hash,
                                          valid_from__lte=seq).order_by("valid_from")
                .values_list("valid_from", "valid_to", "data", "name"))
    if not rows:
        return None
    names = version_names()
    events: list[Event] = []
    previous: tuple[int, int | None, Any, str] | None = None
    for valid_from, valid_to, data, name in rows:
        if previous is not None and previous[1] == valid_from:
            changes = field_changes(previous[2], data)
            events.append(Event(valid_from, names.get(valid_from), "changed", name, changes[:MAX_FIELDS],
                                max(0, len(changes) - MAX_FIELDS)))
        else:
            if previous is not None and previous[1] is not None and previous[1] <= seq:
                events.append(Event(previous[1], names.get(previous[1]), "removed", previous[3]))
            events.append(Event(valid_from, names.get(valid_from), "added", name))
        previous = (valid_from, valid_to, data, name)
    assert previous is not None
    if previous[1] is not None and previous[1] <= seq:
        events.append(Event(previous[1], names.get(previous[1]), "removed", previous[3]))
    return events
