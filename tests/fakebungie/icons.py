"""Real-looking PNG icons, drawn on request with Pillow and cached in memory.

Icon paths keep Bungie's shape, ``/common/destiny2_content/icons/<32 hex>.png``; the fake's
own names *encode* what to draw (``icon_path``): a one-digit kind (weapon, armour, ghost,
plug, emblem, wide emblem), the tier, the damage type and a sub-kind (weapon type, armour
slot, plug style), then hex from the key, then a two-digit checksum so real Bungie names
(the 2017 rows' icons) are not misread. Those real names are *mapped* instead, from the
rows that use them (``_real_icons``); anything else gets a grey round glyph seeded from
its path. Every image is a pure function of its path.
"""

from __future__ import annotations

import functools
import hashlib
import io
import math
import zlib

import orjson
from PIL import Image, ImageDraw

ICON_SIZE = 96
WIDE_SIZE = (474, 96)
KINDS = ("generic", "weapon", "armor", "ghost", "plug", "emblem", "emblem_wide")
PLUG_STYLES = (
    "generic",
    "barrel",
    "magazine",
    "trait",
    "intrinsic",
    "origin",
    "mod",
    "masterwork",
    "shader",
    "ornament",
    "armor_mod",
    "crafted",
    "ghost_mod",
)
# Bungie's tier colours (tierType -> RGB).
TIER_COLORS = {
    6: (0xCE, 0xAE, 0x33),  # exotic gold
    5: (0x52, 0x2F, 0x65),  # legendary purple
    4: (0x50, 0x76, 0xA3),  # rare blue
    3: (0x36, 0x6F, 0x42),  # uncommon green
    2: (0xC3, 0xBC, 0xB4),  # common grey
}
# DamageType enum -> mark colour: kinetic, arc, solar, void.
DAMAGE_COLORS = {1: (0xF0, 0xF0, 0xF0), 2: (0x7A, 0xEC, 0xF3), 3: (0xF0, 0x63, 0x1E), 4: (0xB1, 0x85, 0xDF)}
PLUG_COLORS = {
    "generic": (0x4A, 0x4F, 0x55),
    "barrel": (0x3E, 0x6A, 0x8A),
    "magazine": (0x5E, 0x7A, 0x3A),
    "trait": (0x2F, 0x5F, 0x9E),
    "intrinsic": (0x8A, 0x6D, 0x2B),
    "origin": (0x9E, 0x4F, 0x2F),
    "mod": (0x3B, 0x3B, 0x6E),
    "masterwork": (0xC8, 0x9B, 0x2C),
    "shader": (0x6E, 0x3B, 0x6E),
    "ornament": (0x55, 0x55, 0x55),
    "armor_mod": (0x2E, 0x6E, 0x6E),
    "crafted": (0xB0, 0x30, 0x30),
    "ghost_mod": (0x5A, 0x8F, 0x9E),
}
PREFIX = "/common/destiny2_content/icons/"


def _checksum(text: str) -> str:
    return f"{zlib.crc32(text.encode()) & 0xFF:02x}"


def icon_path(kind: str, *, key: str, tier: int = 2, damage: int = 0, sub: int = 0, ext: str = "png") -> str:
    """An icon path in Bungie's shape that says what to draw."""
    body = f"{KINDS.index(kind):x}{tier & 0xF:x}{damage & 0xF:x}{sub & 0xFF:02x}"
    body += hashlib.md5(key.encode()).hexdigest()[: 30 - len(body)]
    return f"{PREFIX}{body}{_checksum(body)}.{ext}"


def decode(name: str) -> dict[str, int | str] | None:
    """What an encoded file name asks for, or None for any other name."""
    stem = name.rsplit("/", 1)[-1].split(".", 1)[0]
    if len(stem) != 32 or any(c not in "0123456789abcdef" for c in stem):
        return None
    body, check = stem[:30], stem[30:]
    if _checksum(body) != check or int(body[0], 16) >= len(KINDS):
        return None
    return {
        "kind": KINDS[int(body[0], 16)],
        "tier": int(body[1], 16),
        "damage": int(body[2], 16),
        "sub": int(body[3:5], 16),
        "seed": body[5:],
    }


@functools.cache
def _real_icons() -> dict[str, dict[str, int | str]]:
    """Real icon paths of the 2017 rows -> what they show (plugs as round glyphs)."""
    from .items import _source_rows  # late: items imports this module's icon_path
    from .plugs import plug_style

    out: dict[str, dict[str, int | str]] = {}
    for raw in _source_rows():
        row = orjson.loads(raw)
        icon = row.get("displayProperties", {}).get("icon")
        if not icon or icon in out:
            continue
        tier = row.get("inventory", {}).get("tierType") or 2
        plug = row.get("plug")
        if plug:
            style = plug_style(plug.get("plugCategoryIdentifier", ""))
            out[icon] = {"kind": "plug", "tier": tier, "damage": 0, "sub": PLUG_STYLES.index(style), "seed": icon}
        else:
            out[icon] = {"kind": "generic", "tier": tier, "damage": 0, "sub": 0, "seed": icon}
    return out


def spec_for(path: str) -> dict[str, int | str]:
    spec = decode(path)
    if spec is not None:
        return spec
    real = _real_icons().get(path)
    if real is not None:
        return real
    return {"kind": "generic", "tier": 2, "damage": 0, "sub": 0, "seed": hashlib.md5(path.encode()).hexdigest()}


@functools.lru_cache(maxsize=4096)
def png_for(path: str) -> bytes:
    """The PNG bytes served at ``path`` (a few KB, cached)."""
    spec = spec_for(path)
    kind = str(spec["kind"])
    if kind == "emblem_wide":
        image = _emblem(spec, WIDE_SIZE)
    elif kind == "emblem":
        image = _emblem(spec, (ICON_SIZE, ICON_SIZE))
    elif kind in ("plug", "generic"):
        image = _round_glyph(spec)
    else:
        image = _gear(spec)
    buf = io.BytesIO()
    image.save(buf, "PNG", optimize=True)
    return buf.getvalue()


def _seed_bytes(spec: dict[str, int | str]) -> bytes:
    return hashlib.md5(str(spec["seed"]).encode()).digest()


def _darker(rgb: tuple[int, int, int], f: float) -> tuple[int, int, int]:
    return (int(rgb[0] * f), int(rgb[1] * f), int(rgb[2] * f))


def _gear(spec: dict[str, int | str]) -> Image.Image:
    """Weapons, armour, ghosts: tier-coloured square with a silhouette and an element mark."""
    tier = TIER_COLORS.get(int(spec["tier"]), TIER_COLORS[2])
    image = Image.new("RGB", (ICON_SIZE, ICON_SIZE), _darker(tier, 0.45))
    draw = ImageDraw.Draw(image)
    # a soft top-lit gradient, then the tier border
    for y in range(ICON_SIZE):
        draw.line([(0, y), (ICON_SIZE, y)], fill=_darker(tier, 0.55 - 0.25 * y / ICON_SIZE))
    draw.rectangle([0, 0, ICON_SIZE - 1, ICON_SIZE - 1], outline=tier, width=4)
    fg = (235, 235, 230)
    kind, sub = spec["kind"], int(spec["sub"])
    if kind == "weapon":
        _weapon_silhouette(draw, sub, fg)
    elif kind == "armor":
        _armor_silhouette(draw, sub, fg)
    else:  # ghost shell: a faceted diamond with an eye
        c = ICON_SIZE // 2
        draw.polygon([(c, 16), (c + 28, c), (c, ICON_SIZE - 16), (c - 28, c)], fill=fg)
        draw.polygon([(c, 28), (c + 16, c), (c, ICON_SIZE - 28), (c - 16, c)], fill=_darker(tier, 0.5))
        draw.ellipse([c - 6, c - 6, c + 6, c + 6], fill=(120, 220, 255))
    damage = int(spec["damage"])
    if damage in DAMAGE_COLORS:
        draw.ellipse([ICON_SIZE - 26, 8, ICON_SIZE - 8, 26], fill=DAMAGE_COLORS[damage], outline=(20, 20, 20), width=2)
    return image


def _weapon_silhouette(draw: ImageDraw.ImageDraw, sub: int, fg: tuple[int, int, int]) -> None:
    """A rifle, sidearm, launcher, sword or bow, by DestinyItemSubType."""
    if sub in (11, 17):  # hand cannon, sidearm
        draw.rectangle([22, 36, 72, 48], fill=fg)
        draw.polygon([(30, 48), (44, 48), (40, 72), (26, 72)], fill=fg)
        draw.rectangle([62, 32, 70, 36], fill=fg)
    elif sub in (8, 10, 23):  # rocket launcher, grenade launcher, heavy GL
        draw.rectangle([14, 34, 82, 54], fill=fg)
        draw.rectangle([30, 54, 40, 70], fill=fg)
        draw.ellipse([74, 30, 86, 58], fill=fg)
    elif sub == 18:  # sword
        draw.polygon([(20, 76), (70, 18), (78, 26), (28, 84)], fill=fg)
        draw.rectangle([18, 66, 36, 72], fill=fg)
    elif sub == 31:  # bow
        draw.arc([26, 14, 74, 82], start=270, end=90, fill=fg, width=6)
        draw.line([(50, 16), (50, 80)], fill=fg, width=2)
    else:  # auto, pulse, scout, sniper, fusion, SMG, shotgun...: a rifle, longer for long range
        length = 76 if sub in (12, 13, 14) else 66
        draw.rectangle([12, 40, 12 + length, 50], fill=fg)
        draw.polygon([(12, 40), (28, 40), (24, 62), (12, 62)], fill=fg)
        draw.rectangle([44, 50, 54, 68], fill=fg)
        draw.rectangle([40, 32, 60, 38], fill=fg)


def _armor_silhouette(draw: ImageDraw.ImageDraw, slot: int, fg: tuple[int, int, int]) -> None:
    c = ICON_SIZE // 2
    if slot == 0:  # helmet with visor
        draw.ellipse([22, 16, 74, 76], fill=fg)
        draw.rectangle([30, 40, 66, 52], fill=(40, 40, 48))
    elif slot == 1:  # gauntlet
        draw.rounded_rectangle([30, 20, 66, 60], radius=10, fill=fg)
        draw.rectangle([34, 60, 62, 80], fill=fg)
    elif slot == 2:  # chest
        draw.polygon([(20, 22), (76, 22), (70, 78), (26, 78)], fill=fg)
        draw.line([(c, 26), (c, 74)], fill=(40, 40, 48), width=3)
    elif slot == 3:  # legs
        draw.polygon([(26, 16), (70, 16), (66, 82), (52, 82), (c, 40), (44, 82), (30, 82)], fill=fg)
    else:  # class item: a cloak/mark/bond
        draw.polygon([(24, 18), (72, 18), (64, 80), (c, 70), (32, 80)], fill=fg)


def _round_glyph(spec: dict[str, int | str]) -> Image.Image:
    """Perks and plugs: Bungie draws them as round glyphs on transparent ground."""
    style = PLUG_STYLES[int(spec["sub"])] if int(spec["sub"]) < len(PLUG_STYLES) else "generic"
    colour = PLUG_COLORS[style] if spec["kind"] == "plug" else (0x6B, 0x6F, 0x74)
    image = Image.new("RGBA", (ICON_SIZE, ICON_SIZE), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    draw.ellipse([4, 4, ICON_SIZE - 5, ICON_SIZE - 5], fill=(*colour, 255), outline=(230, 230, 230, 255), width=3)
    seed = _seed_bytes(spec)
    c, fg = ICON_SIZE / 2, (240, 240, 240, 255)
    points = 3 + seed[0] % 5  # a star or polygon, from the seed
    inner = 10 + seed[1] % 12
    outer = 22 + seed[2] % 12
    turn = seed[3] / 255 * math.pi
    poly = []
    for k in range(points * 2):
        r = outer if k % 2 == 0 else inner
        a = turn + k * math.pi / points
        poly.append((c + r * math.cos(a), c + r * math.sin(a)))
    draw.polygon(poly, fill=fg)
    if style == "masterwork":
        draw.ellipse([8, 8, ICON_SIZE - 9, ICON_SIZE - 9], outline=(0xCE, 0xAE, 0x33, 255), width=4)
    return image


def _emblem(spec: dict[str, int | str], size: tuple[int, int]) -> Image.Image:
    """Emblems: a two-colour diagonal background, a seal on the left."""
    seed = _seed_bytes(spec)
    a = (40 + seed[0] % 140, 40 + seed[1] % 140, 40 + seed[2] % 140)
    b = _darker(a, 0.4)
    w, h = size
    image = Image.new("RGB", size, b)
    draw = ImageDraw.Draw(image)
    draw.polygon([(0, 0), (w * 0.7, 0), (w * 0.45, h), (0, h)], fill=a)
    draw.ellipse([12, 12, h - 12, h - 12], fill=(235, 235, 230), outline=_darker(a, 0.6), width=4)
    sides = 3 + seed[3] % 4
    c, r = h / 2, h / 2 - 26
    draw.polygon(
        [(c + r * math.cos(2 * math.pi * k / sides), c + r * math.sin(2 * math.pi * k / sides)) for k in range(sides)],
        fill=a,
    )
    return image
