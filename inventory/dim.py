"""DIM interop: bring a DIM user's tags and notes in, and take the vault out as DIM's
spreadsheets.

* **DIM's spreadsheet CSV** (Settings → Spreadsheets: ``destinyWeapons.csv``,
  ``destinyArmor.csv``, or any CSV with DIM's ``Id``, ``Tag`` and ``Notes`` columns; DIM
  writes the id quoted, ``"6917…"``): each row sets that item's tag and notes, as DIM's
  own import does (an empty Tag and Notes clear them).
* **DIM's backup** (Settings → "Export data": the JSON of the DIM API's
  ``ExportResponse``): its ``tags`` array of ``{platformMembershipId, destinyVersion,
  annotation: {id, tag, notes}}`` (a bare ``{id, tag, notes}`` too, as older backups
  have). Only Destiny 2 annotations of the player's own Destiny memberships are taken;
  their loadouts are kept aside as DIM wrote them (`inventory.models.DimLoadout`) and
  reported as not imported yet.
* **Export**: the player's weapons or armor as CSV with DIM's column names (Name, Hash, Id,
  Tag, Tier, Type, …, Notes, Perks 0…), so a spreadsheet built on DIM's keeps working.

An import is all or nothing: the whole file is read and checked first (size, UTF-8,
columns, every row), and a bad file changes nothing and says what is wrong and where; the
writes then run in one transaction.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from django.conf import settings
from django.db import transaction

from dvr.accounts.models import BungieAccount
from inventory.annotations import TAGS, AnnotationRefused, Note, annotations_replace, clean_notes
from inventory.fetch import profile_fetch
from inventory.models import DimLoadout
from inventory.page import ItemView, attach_rolls, page_of
from inventory.search import ARMOR_STATS
from inventory.snapshots import snapshot_load
from manifest.lookup import active_seq

ExportKind = Literal["weapons", "armor"]


class ImportRefused(ValueError):
    """A file DIM's format does not describe, or one bad row in it: nothing was changed."""


@dataclass(frozen=True)
class ImportReport:
    items: int  # tags and notes written (an empty one clears the item's)
    skipped: int = 0  # annotations of other accounts or of Destiny 1 in a backup
    loadouts: int = 0  # the player's loadouts in a backup, kept aside: DVR does not import them yet

    @property
    def message(self) -> str:
        said = f"Imported the tags and notes of {self.items} item{'s' if self.items != 1 else ''}."
        if self.skipped:
            said += f" Skipped {self.skipped} of another account or of Destiny 1."
        if self.loadouts:
            said += f" {self.loadouts} loadout{'s' if self.loadouts != 1 else ''} kept aside: not imported yet."
        return said


# --- reading the file ---------------------------------------------------------------------------------
def _text(data: bytes) -> str:
    if len(data) > settings.DIM_IMPORT_MAX_BYTES:
        raise ImportRefused(f"The file is too big: at most {settings.DIM_IMPORT_MAX_BYTES // 1_000_000} MB.")
    if not data.strip():
        raise ImportRefused("The file is empty.")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ImportRefused("The file is not UTF-8 text: export it from DIM again and upload it unchanged.") from None


def _instance_id(value: object, where: str) -> str:
    text = str(value if value is not None else "").strip().strip('"').strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 20:
        raise ImportRefused(f"{where}: {text[:30]!r} is not an item id (DIM's Id column holds Bungie's item ids).")
    return text


def _note(tag: object, notes: object, where: str) -> Note:
    tag_text = str(tag or "").strip().lower()
    if tag_text and tag_text not in TAGS:
        raise ImportRefused(f"{where}: {tag_text[:20]!r} is not one of DIM's tags ({', '.join(TAGS)}).")
    try:
        return Note(tag_text, clean_notes(str(notes or "")))
    except AnnotationRefused as refused:
        raise ImportRefused(f"{where}: {refused}") from None


def dim_csv_read(data: bytes) -> dict[str, Note]:
    """The tags and notes of a DIM spreadsheet CSV, by item id (`ImportRefused` if bad)."""
    text = _text(data)
    try:
        reader = csv.DictReader(io.StringIO(text, newline=""))
        columns = set(reader.fieldnames or ())
        missing = [c for c in ("Id", "Tag", "Notes") if c not in columns]
        if missing:
            raise ImportRefused(f"This is not one of DIM's spreadsheets: it has no {', '.join(missing)} column"
                                f"{'s' if len(missing) > 1 else ''}. DIM's need Id, Tag and Notes.")
        rows = {_instance_id(row.get("Id"), f"Row {n}"): _note(row.get("Tag"), row.get("Notes"), f"Row {n}")
                for n, row in enumerate(reader, start=2)}
    except csv.Error as error:
        raise ImportRefused(f"The CSV can't be read: {error}.") from None
    if not rows:
        raise ImportRefused("The spreadsheet has no rows.")
    return rows


@dataclass(frozen=True)
class Backup:
    notes: dict[str, Note]
    skipped: int
    loadouts: list[dict[str, Any]]  # DIM's Loadout objects of the player's Destiny 2 memberships


def dim_backup_read(data: bytes, *, membership_ids: Iterable[str]) -> Backup:
    """The Destiny 2 tags and notes of the player's memberships in a DIM backup."""
    text = _text(data)
    try:
        backup = json.loads(text)
    except ValueError as error:
        raise ImportRefused(f"The backup is not valid JSON ({error}).") from None
    if not isinstance(backup, dict) or not isinstance(backup.get("tags", []), list) or (
            "tags" not in backup and "loadouts" not in backup):
        raise ImportRefused("This is not a DIM backup: it has no \"tags\" list (export it from DIM's Settings → "
                            "Export data).")
    mine = set(membership_ids)
    if not isinstance(backup.get("loadouts") or [], list):
        raise ImportRefused("The backup's \"loadouts\" is not a list.")
    loadouts: list[dict[str, Any]] = []
    for entry in backup.get("loadouts") or []:
        loadout = entry.get("loadout") if isinstance(entry, dict) else None
        platform = entry.get("platformMembershipId") if isinstance(entry, dict) else None
        if isinstance(loadout, dict) and isinstance(entry, dict) and entry.get("destinyVersion", 2) == 2 \
                and (platform is None or str(platform) in mine):
            loadouts.append(loadout)
    notes: dict[str, Note] = {}
    skipped = 0
    for n, entry in enumerate(backup.get("tags") or [], start=1):
        if not isinstance(entry, dict):
            raise ImportRefused(f"Tag {n} in the backup is not an object.")
        annotation = entry.get("annotation", entry)
        if not isinstance(annotation, dict):
            raise ImportRefused(f"Tag {n} in the backup has no annotation object.")
        platform = entry.get("platformMembershipId")
        if entry.get("destinyVersion", 2) != 2 or (platform is not None and str(platform) not in mine):
            skipped += 1
            continue
        where = f"Tag {n} in the backup"
        notes[_instance_id(annotation.get("id"), where)] = _note(annotation.get("tag"), annotation.get("notes"), where)
    return Backup(notes=notes, skipped=skipped, loadouts=loadouts)


# --- importing ----------------------------------------------------------------------------------------
def _without_nul(value: Any) -> Any:
    """``value`` with every NUL removed from its strings (Postgres's JSON refuses them)."""
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, list):
        return [_without_nul(v) for v in value]
    if isinstance(value, dict):
        return {_without_nul(k): _without_nul(v) for k, v in value.items()}
    return value


def _write(account: BungieAccount, notes: Mapping[str, Note], loadouts: Iterable[dict[str, Any]] = ()) -> int:
    with transaction.atomic():  # all or nothing
        for n, loadout in enumerate(loadouts):
            dim_id = str(_without_nul(loadout.get("id")) or f"unnamed-{n}")[:100]
            DimLoadout.objects.update_or_create(account=account, dim_id=dim_id, defaults={
                "name": "".join(ch for ch in str(loadout.get("name") or "") if ch.isprintable())[:200],
                "data": _without_nul(loadout)})
        return annotations_replace(account=account, notes=notes.items())


def dim_import_csv(*, account: BungieAccount, data: bytes) -> ImportReport:
    """Import a DIM spreadsheet's tags and notes (`ImportRefused`: nothing changed)."""
    return ImportReport(items=_write(account, dim_csv_read(data)))


def dim_import_backup(*, account: BungieAccount, data: bytes) -> ImportReport:
    """Import a DIM backup's tags and notes of the player's memberships; loadouts are reported."""
    memberships = account.memberships.values_list("membership_id", flat=True)
    backup = dim_backup_read(data, membership_ids=memberships)
    return ImportReport(items=_write(account, backup.notes, backup.loadouts), skipped=backup.skipped,
                        loadouts=len(backup.loadouts))


# --- exporting ------------------------------------------------------------------------------------------
# DIM's weapon stat columns → the stat names Bungie's definitions display (lower case).
WEAPON_STATS = {
    "Recoil": "recoil direction", "AA": "aim assistance", "Impact": "impact", "Range": "range",
    "Blast Radius": "blast radius", "Velocity": "velocity", "Stability": "stability", "ROF": "rounds per minute",
    "Reload": "reload speed", "Mag": "magazine", "Equip": "handling", "Charge Time": "charge time",
    "Draw Time": "draw time", "Accuracy": "accuracy",
}
DIM_ARMOR_STATS = ("Mobility", "Resilience", "Recovery", "Discipline", "Intellect", "Strength")


def _bool(value: bool) -> str:
    return "true" if value else "false"  # as DIM writes them (JavaScript's)


def _perks(item: ItemView) -> list[str]:
    return [f"{p.name}*" if p.inserted else p.name for p in item.perks]


def _row(item: ItemView, kind: ExportKind, owner: str, note: Note) -> dict[str, Any]:
    row: dict[str, Any] = {
        "Name": item.name, "Hash": item.item_hash, "Id": f'"{item.instance_id}"', "Tag": note.tag,
        "Tier": item.tier_name, "Type": item.type_name,
    }
    if kind == "weapons":
        row.update({"Power": item.power or "", "Category": item.slot.title(), "Element": item.damage.title()})
    else:
        row.update({"Equippable": item.class_name.title() or "Any", "Power": item.power or ""})
    row.update({"Owner": owner, "Locked": _bool(item.locked), "Equipped": _bool(item.equipped)})
    if kind == "weapons":
        row.update({column: item.stats.get(name, 0) for column, name in WEAPON_STATS.items()})
    else:
        for stats, suffix in ((item.stats, ""), (item.base_stats, " (Base)")):
            row.update({f"{name}{suffix}": stats.get(name.lower(), 0) for name in DIM_ARMOR_STATS})
            row[f"Total{suffix}"] = sum(n for s, n in stats.items() if s in ARMOR_STATS)
    row["Notes"] = note.notes
    return row


def dim_export_csv(*, account: BungieAccount, kind: ExportKind) -> str:
    """The player's weapons or armor as DIM's spreadsheet (``destinyWeapons.csv`` /
    ``destinyArmor.csv``): DIM's columns that DVR can fill, then ``Perks 0``… (each plug
    the item's visible sockets hold or offer, ``*`` after the one in it)."""
    saved = snapshot_load(account=account)
    profile = saved.profile if saved is not None else profile_fetch(account=account)[0]
    page = page_of(account=account, profile=profile)
    wanted = "weapon" if kind == "weapons" else "armor"
    items = [i for i in page.items.values() if i.kind == wanted and i.instance_id]
    attach_rolls(items, profile=profile, seq=active_seq())
    owners = {c.character_id: f"{c.class_name}({c.power})" for c in page.characters}
    rows, perks = [], []
    for item in sorted(items, key=lambda i: (i.location != "vault", i.owner or "", i.name.casefold())):
        owner = "Vault" if item.location == "vault" else owners.get(item.owner or "", "")
        rows.append(_row(item, kind, owner, page.notes.get(item.instance_id or "", Note())))
        perks.append(_perks(item))
    width = max((len(p) for p in perks), default=0)
    for row, names in zip(rows, perks, strict=True):
        row.update({f"Perks {n}": names[n] if n < len(names) else "" for n in range(width)})
    out = io.StringIO()
    header = list(rows[0]) if rows else [*_row(ItemView("", None, 0, 1, 0, "vault", None, False), kind, "", Note())]
    writer = csv.DictWriter(out, fieldnames=header, lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()
