"""Loadouts against the player's profile: save a character's equipment as a loadout, say
where each of a loadout's items is, and apply a loadout to a character.

Applying runs on the task cluster (`inventory.tasks.apply_loadout` → `loadout_apply_run`),
so closing the browser does not stop it. It records each step in a `LoadoutApply` that the
progress page polls. Every Bungie write goes through `inventory.actions` (`item_move`,
`item_equip`): through the vault where Bungie requires it, an equipped item replaced before
it moves, each call journaled and paced, throttling waited out. Bungie's rules, in order:

1. The loadout's class must be the character's (or any class).
2. Every item is moved to the character. Before an item goes into a bucket of the
   character holding ``BUCKET_CAPACITY`` unequipped items already, an item of that bucket
   that is neither equipped nor in the loadout is sent to the vault.
3. The items to equip are equipped, the non-exotic ones first; before an exotic is equipped,
   an exotic of the same kind (weapon or armor) the character wears in a slot the loadout
   does not fill is replaced by a non-exotic from that slot. A loadout with two exotic
   weapons (or armor pieces) to equip equips the first and says why not the second.

Items already in place are "already there": applying twice is harmless. Bungie throttling or
in maintenance past the retries (`ActionResult.stop`) stops the run early, saying so.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.utils import timezone

from dvr.accounts.models import BungieAccount
from dvr.lib import bungie
from dvr.lib.bungie import PlatformErrorCode as Code
from inventory.actions import REFUSALS, ActionResult, Outcome, item_equip, item_move
from inventory.fetch import ProfileUnavailable, profile_fetch
from inventory.loadouts import MAX_ITEMS, Chosen, LoadoutRefused, loadout_create, loadout_get
from inventory.models import ApplyStatus, DestinyClass, Loadout, LoadoutApply
from inventory.page import ANY_CLASS, CLASSES, ITEMS, ItemView, display_name, item_views
from inventory.profile import OwnedItem, Profile
from inventory.snapshots import snapshot_load
from manifest.lookup import Definitions, lookup

logger = logging.getLogger(__name__)

BUCKET_CAPACITY = 9  # unequipped items per weapon or armor bucket on a character
EXOTIC = 6  # TierType
WEAPON, ARMOR = 3, 2  # DestinyItemType
TASK_PATH = "inventory.tasks.apply_loadout"
STALE_AFTER = timedelta(minutes=35)  # past django-q2's task timeout (Q_TIMEOUT, 30 min)

# Step outcomes beyond `actions.Outcome`: an item no longer in the account, one not tried.
MISSING, NOT_TRIED = "missing", "not tried"


# --- the profile ---------------------------------------------------------------------------------------
def _profile(account: BungieAccount, *, fresh: bool) -> Profile:
    """The saved profile (``fresh``: Bungie's, one call); `ProfileUnavailable` with neither."""
    saved = snapshot_load(account=account)
    if saved is not None and not fresh:
        return saved.profile
    return profile_fetch(account=account, saved=saved)[0]


def _character_names(profile: Profile) -> dict[str, str]:
    classes = lookup({CLASSES: [c.get("classHash") or 0 for c in profile.characters.values()]},
                     view="summary")[CLASSES]
    return {cid: display_name(classes.get(c.get("classHash") or 0), "Guardian")
            for cid, c in profile.characters.items()}


# --- saving a character's equipment ----------------------------------------------------------------------
@dataclass(frozen=True)
class CharacterItems:
    """A character's items, for the "save as a loadout" form."""

    character_id: str
    class_name: str
    class_type: int
    equipped: list[ItemView]
    carried: list[ItemView]  # unequipped, on the character: chosen with checkboxes


def character_items(*, account: BungieAccount, character_id: str) -> CharacterItems | None:
    """The character's equipped and carried items (a fresh profile); None: not the player's character."""
    profile = _profile(account, fresh=True)
    character = profile.characters.get(character_id)
    if character is None:
        return None
    mine = [o for o in profile.items if o.owner == character_id and o.location == "character" and o.instance_id]
    views = item_views(profile=profile, owned=mine)
    class_type = character.get("classType")
    return CharacterItems(character_id, _character_names(profile)[character_id],
                          class_type if isinstance(class_type, int) else DestinyClass.ANY,
                          [v for v in views if v.equipped], [v for v in views if not v.equipped])


def loadout_save(*, account: BungieAccount, character_id: str, name: str, chosen: Iterable[str] = ()
                 ) -> Loadout | None:
    """Save the character's equipment, and the carried items ``chosen`` (instance ids), as
    a loadout named ``name`` for the character's class. None: not the player's character."""
    found = character_items(account=account, character_id=character_id)
    if found is None:
        return None
    carried = {v.instance_id: v for v in found.carried if v.instance_id}
    wanted = list(dict.fromkeys(chosen))
    if unknown := [i for i in wanted if i not in carried]:
        raise LoadoutRefused(f"{len(unknown)} of the chosen items are not on your {found.class_name}: "
                             "reload the page and choose again.")
    items = [Chosen(v.instance_id, v.item_hash, v.name, True) for v in found.equipped if v.instance_id]
    items += [Chosen(i, carried[i].item_hash, carried[i].name, False) for i in wanted]
    if len(items) > MAX_ITEMS:
        raise LoadoutRefused(f"A loadout can hold at most {MAX_ITEMS} items.")
    return loadout_create(account=account, name=name, class_type=found.class_type, items=items)


# --- where a loadout's items are ------------------------------------------------------------------------
@dataclass(frozen=True)
class LoadoutRow:
    item_id: int  # the LoadoutItem's id (to remove it)
    instance_id: str
    name: str
    equip: bool
    where: str  # "your Hunter (equipped)", "the vault", "" when unknown
    missing: bool  # no longer in the account


@dataclass(frozen=True)
class LoadoutDetail:
    loadout: Loadout
    rows: list[LoadoutRow]
    characters: list[tuple[str, str]]  # (character id, class name) it can be applied to
    profile_problem: str = ""  # why DVR can't say where the items are


def loadout_detail(*, account: BungieAccount, loadout_id: int) -> LoadoutDetail | None:
    """The loadout with where each item is now (the saved profile: no Bungie call when DVR
    has one); None: not the player's loadout."""
    loadout = loadout_get(account=account, loadout_id=loadout_id)
    if loadout is None:
        return None
    items = list(loadout.items.all())
    try:
        profile: Profile | None = _profile(account, fresh=False)
    except ProfileUnavailable as unavailable:
        profile, problem = None, unavailable.reason
    else:
        problem = ""
    names = _character_names(profile) if profile is not None else {}
    rows = []
    for item in items:
        owned = profile.find(item.instance_id) if profile is not None else None
        if owned is None:
            where = ""
        elif owned.location == "vault":
            where = "the vault"
        else:
            where = f"your {names.get(owned.owner or '', 'character')}" + (
                " (equipped)" if owned.equipped else " (postmaster)" if owned.location == "postmaster" else "")
        rows.append(LoadoutRow(item.pk, item.instance_id, item.name, item.equip, where,
                               missing=profile is not None and owned is None))
    characters = [] if profile is None else [
        (cid, names[cid]) for cid, c in profile.characters.items()
        if loadout.class_type == ANY_CLASS or c.get("classType") == loadout.class_type]
    return LoadoutDetail(loadout, rows, characters, problem)


# --- applying ----------------------------------------------------------------------------------------
def apply_get(*, account: BungieAccount, apply_id: int) -> LoadoutApply | None:
    """One of the player's runs; None for anyone else's (the view's 404). A run still
    unfinished past ``STALE_AFTER`` (the cluster's task timeout: its worker died, or the
    queue lost it) is finished as failed, so its page stops waiting."""
    run = LoadoutApply.objects.filter(account=account, pk=apply_id).first()
    if run is not None and not run.finished and run.created_at < timezone.now() - STALE_AFTER:
        _finish(run, ApplyStatus.FAILED, "This run did not finish: DVR's task cluster stopped or lost it. The steps "
                                         "above are what was done; apply the loadout again to finish.")
    return run


def _class_problem(loadout: Loadout, profile: Profile, character_id: str, names: dict[str, str]) -> str:
    class_type = profile.characters.get(character_id, {}).get("classType")
    if loadout.class_type != ANY_CLASS and class_type != loadout.class_type:
        return (f"“{loadout.name}” is a {DestinyClass(loadout.class_type).label} loadout: "
                f"your {names.get(character_id, 'character')} can't use it.")
    return ""


def apply_start(*, account: BungieAccount, loadout_id: int, character_id: str) -> LoadoutApply | None:
    """Record a run and queue it on the cluster; None: not the player's loadout or character.
    The class is checked before anything is queued (`LoadoutRefused`)."""
    from django_q.tasks import async_task

    loadout = loadout_get(account=account, loadout_id=loadout_id)
    if loadout is None:
        return None
    profile = _profile(account, fresh=False)
    if character_id not in profile.characters:
        return None
    names = _character_names(profile)
    if problem := _class_problem(loadout, profile, character_id, names):
        raise LoadoutRefused(problem)
    run = LoadoutApply.objects.create(account=account, loadout=loadout, loadout_name=loadout.name,
                                      character_id=character_id, character_name=f"your {names[character_id]}",
                                      total=loadout.items.count())
    try:
        async_task(TASK_PATH, run.pk, group="loadouts", task_name=f"apply loadout {run.pk}")
    except Exception as exc:  # the broker (Redis) is down: say so on the run's page, never a 500
        logger.warning("loadout apply not queued: broker unavailable (%s: %s)", type(exc).__name__, exc)
        _finish(run, ApplyStatus.FAILED, "The task queue is unavailable, so nothing was done: try again in a minute.")
    return run


def _finish(run: LoadoutApply, status: str, summary: str) -> None:
    run.status, run.summary, run.finished_at = status, summary, timezone.now()
    run.save(update_fields=["status", "summary", "finished_at"])


class _Run:
    """One run's state: the record, the profile as it is after each step, the definitions."""

    def __init__(self, run: LoadoutApply, loadout: Loadout, profile: Profile) -> None:
        self.record = run
        self.account = run.account
        self.character = run.character_id
        self.profile = profile
        self.items = list(loadout.items.all())
        self.wanted = {i.instance_id for i in self.items}
        self.failed: list[str] = []
        self.stopped = ""
        self.summaries: Definitions = {}
        self._describe([o.item_hash for o in profile.items if o.owner == self.character] +
                       [i.item_hash for i in self.items])

    def _describe(self, hashes: list[int]) -> None:
        missing = [h for h in set(hashes) if h not in self.summaries]
        if missing:
            self.summaries.update(lookup({ITEMS: missing}, view="summary")[ITEMS])

    def summary(self, item_hash: int) -> dict[str, Any]:
        return self.summaries.get(item_hash) or {}

    def home_bucket(self, owned: OwnedItem) -> int:
        return int((self.summary(owned.item_hash).get("inventory") or {}).get("bucketTypeHash") or owned.bucket_hash)

    def exotic_kind(self, item_hash: int) -> int | None:
        summary = self.summary(item_hash)
        if (summary.get("inventory") or {}).get("tierType") != EXOTIC or summary.get("itemType") not in (WEAPON, ARMOR):
            return None
        return int(summary["itemType"])

    def fits_class(self, item_hash: int) -> bool:
        item_class = self.summary(item_hash).get("classType")
        character_class = self.profile.characters.get(self.character, {}).get("classType")
        return not isinstance(item_class, int) or item_class in (ANY_CLASS, character_class)

    def refresh(self) -> None:
        """The profile after an action (`inventory.actions` saves it after each move)."""
        saved = snapshot_load(account=self.account)
        if saved is not None:
            self.profile = saved.profile

    def step(self, item: str, action: str, outcome: str, message: str) -> None:
        self.record.steps = [*self.record.steps, {"item": item, "action": action, "outcome": outcome,
                                                  "message": message}]
        self.record.save(update_fields=["steps"])

    def act(self, item: str, action: str, result: ActionResult) -> bool:
        """Record an action's result; False when the run must stop (Bungie throttling or down)."""
        self.step(item, action, result.outcome.value, result.message)
        self.refresh()
        if not result.ok and action != "make room":
            self.failed.append(f"{item}: {result.message}")
        if result.stop:
            self.stopped = result.message
            return False
        return True

    def bucket_of_character(self, bucket: int) -> list[OwnedItem]:
        return [o for o in self.profile.items if o.owner == self.character and o.location == "character"
                and not o.equipped and o.bucket_hash == bucket]

    def make_room(self, owned: OwnedItem, name: str) -> bool:
        """Before ``owned`` moves in: a full bucket sends one non-loadout item to the vault.
        False when there is no room and none can be made (said), or the run must stop."""
        bucket = self.home_bucket(owned)
        there = self.bucket_of_character(bucket)
        if len(there) < BUCKET_CAPACITY:
            return True
        spare = [o for o in there if o.instance_id and o.instance_id not in self.wanted]
        if not spare:
            message = "There is no room for it: that slot on the character is full of this loadout's items."
            self.step(name, "move", Outcome.REFUSED.value, message)
            self.failed.append(f"{name}: {message}")
            return False
        result = item_move(account=self.account, item_id=spare[-1].instance_id or "", destination="vault")
        self._describe([spare[-1].item_hash])
        spare_name = display_name(self.summary(spare[-1].item_hash), "an item")
        if not self.act(spare_name, "make room", result):
            return False
        if not result.ok:
            message = f"There is no room for it, and {spare_name} could not go to the vault to make some."
            self.step(name, "move", Outcome.REFUSED.value, message)
            self.failed.append(f"{name}: {message}")
        return result.ok

    def move_all(self) -> bool:
        for item in self.items:
            owned = self.profile.find(item.instance_id)
            if owned is None:
                message = "It is no longer in your account (deleted, or dismantled): nothing to move."
                self.step(item.name, "move", MISSING, message)
                self.failed.append(f"{item.name}: {message}")
                continue
            if owned.location == "postmaster":
                message = "It is in the postmaster: pull it from the postmaster first."
                self.step(item.name, "move", Outcome.REFUSED.value, message)
                self.failed.append(f"{item.name}: {message}")
                continue
            if owned.owner == self.character:
                if not item.equip:
                    self.step(item.name, "move", Outcome.DONE.value, f"{item.name} is already there.")
                continue
            if not self.make_room(owned, item.name):
                if self.stopped:
                    return False
                continue
            if not self.act(item.name, "move", item_move(account=self.account, item_id=item.instance_id,
                                                         destination=self.character)):
                return False
        return True

    def equip_all(self) -> bool:
        to_equip = [i for i in self.items if i.equip and self.profile.find(i.instance_id) is not None
                    and not any(f.startswith(f"{i.name}: ") for f in self.failed)]
        to_equip.sort(key=lambda i: self.exotic_kind(i.item_hash) is not None)  # non-exotics first
        filled = {self.home_bucket(o) for i in to_equip if (o := self.profile.find(i.instance_id))}
        exotic_done: dict[int, str] = {}
        for item in to_equip:
            kind = self.exotic_kind(item.item_hash)
            if kind is not None:
                if kind in exotic_done:
                    message = (f"Not equipped: {REFUSALS[Code.DestinyItemUniqueEquipRestricted]} "
                               f"{exotic_done[kind]} is this loadout's. {item.name} is on the character.")
                    self.step(item.name, "equip", Outcome.REFUSED.value, message)
                    self.failed.append(f"{item.name}: {message}")
                    continue
                exotic_done[kind] = item.name
                if not self.clear_exotic(item, kind, filled):
                    return False
            if not self.act(item.name, "equip", item_equip(account=self.account, item_id=item.instance_id,
                                                           character_id=self.character)):
                return False
        return True

    def clear_exotic(self, item: Any, kind: int, filled: set[int]) -> bool:
        """The character wears an exotic of this kind in a slot the loadout does not fill:
        equip a non-exotic there first (from the character, else from the vault)."""
        owned = self.profile.find(item.instance_id)
        bucket = self.home_bucket(owned) if owned else 0
        worn = [o for o in self.profile.items if o.owner == self.character and o.equipped
                and o.bucket_hash != bucket and o.bucket_hash not in filled]
        self._describe([o.item_hash for o in worn])
        for exotic in (o for o in worn if self.exotic_kind(o.item_hash) == kind):
            candidates = [o for o in self.profile.items if o.instance_id and not o.equipped
                          and o.location in ("character", "vault")
                          and (o.owner == self.character or o.location == "vault")
                          and self.home_bucket(o) == exotic.bucket_hash]
            self._describe([o.item_hash for o in candidates])
            fitting = [o for o in candidates if self.exotic_kind(o.item_hash) is None and self.fits_class(o.item_hash)]
            fitting.sort(key=lambda o: o.location != "character")  # one already on the character first
            exotic_name = display_name(self.summary(exotic.item_hash), "an exotic")
            if not fitting:
                message = (f"{exotic_name} is equipped and nothing that is not exotic can take its place: "
                           f"{REFUSALS[Code.DestinyItemUniqueEquipRestricted]}")
                self.step(item.name, "equip", Outcome.REFUSED.value, message)
                self.failed.append(f"{item.name}: {message}")
                return True
            result = item_equip(account=self.account, item_id=fitting[0].instance_id or "",
                                character_id=self.character)
            if not self.act(exotic_name, "make room", result):
                return False
        return True


def loadout_apply_run(apply_id: int) -> str:
    """Apply a recorded run (the cluster's task; tests call it directly): its final status."""
    run = LoadoutApply.objects.select_related("account", "loadout").filter(pk=apply_id).first()
    if run is None or run.finished:
        return run.status if run else "missing"
    if LoadoutApply.objects.filter(pk=run.pk, status=ApplyStatus.QUEUED).update(status=ApplyStatus.RUNNING) != 1:
        return "running elsewhere"
    run.status = ApplyStatus.RUNNING
    try:
        return _apply(run)
    except Exception:  # a bug or an outage of ours: the page says so, the record never stays "running"
        logger.exception("loadout apply %s failed", run.pk)
        _finish(run, ApplyStatus.FAILED, "Something went wrong on DVR's side: the steps above are what was done.")
        return ApplyStatus.FAILED


def _apply(run: LoadoutApply) -> str:
    loadout = run.loadout
    if loadout is None:
        _finish(run, ApplyStatus.FAILED, "The loadout was deleted before it could be applied.")
        return ApplyStatus.FAILED
    try:
        profile = _profile(run.account, fresh=True)
    except ProfileUnavailable as unavailable:
        _finish(run, ApplyStatus.FAILED, f"Nothing was done: {unavailable.reason}")
        return ApplyStatus.FAILED
    except bungie.BungieError:
        _finish(run, ApplyStatus.FAILED, "Nothing was done: Bungie could not be reached. Try again in a moment.")
        return ApplyStatus.FAILED
    if run.character_id not in profile.characters:
        _finish(run, ApplyStatus.FAILED, "Nothing was done: that character is no longer in your account.")
        return ApplyStatus.FAILED
    if problem := _class_problem(loadout, profile, run.character_id, _character_names(profile)):
        _finish(run, ApplyStatus.FAILED, f"Nothing was done: {problem}")
        return ApplyStatus.FAILED
    state = _Run(run, loadout, profile)
    finished = state.move_all() and state.equip_all()
    if not finished:
        done = {s["item"] for s in run.steps}
        untried = [i.name for i in state.items if i.name not in done]
        _finish(run, ApplyStatus.STOPPED, f"Stopped early: {state.stopped}"
                + (f" Not tried: {', '.join(untried)}." if untried else "") + " Apply it again later to finish.")
        return ApplyStatus.STOPPED
    if state.failed:
        count = len(state.failed)
        _finish(run, ApplyStatus.PARTIAL, f"Applied, except {count} item{'s' if count != 1 else ''}: "
                + " ".join(f"{f}" for f in state.failed))
        return ApplyStatus.PARTIAL
    _finish(run, ApplyStatus.DONE, f"“{loadout.name}” is on {run.character_name}: every item is in place.")
    return ApplyStatus.DONE
