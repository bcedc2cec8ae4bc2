"""The channel spec: a declarative table of channels and the OSM tag rules that feed them.

The spec is TOML (see ``default.toml``). It is validated once on load, so a typo names its
channel and rule instead of silently producing an empty band.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from ..errors import Loc2VecError

DRAW_KINDS = ("line", "fill", "outline", "point")
# Which OSM geometry each drawing takes: "way" = a way as a line, "area" = closed way or multipolygon.
_GEOMETRY_OF_DRAW = {"line": ("way",), "fill": ("area",), "outline": ("area",), "point": ("node", "area")}
_RULE_KEYS = {"match", "except", "draw", "width_m", "radius_m", "value"}
_CHANNEL_KEYS = {"name", "description", "color", "rules"}


def _value_set(v, where: str):
    """Normalise a tag condition: "*" (any value), one value, or a list of values."""
    if v == "*":
        return None  # any value
    if isinstance(v, str):
        return frozenset([v])
    if isinstance(v, list) and v and all(isinstance(x, str) for x in v):
        return frozenset(v)
    raise Loc2VecError(f"{where}: a tag condition must be \"*\", a string or a list of strings, not {v!r}",
                       'write e.g. match = { highway = ["primary", "secondary"] }')


@dataclass(frozen=True)
class Rule:
    """One way of turning OSM objects into pixels of one channel."""

    match: Mapping[str, frozenset | None]
    draw: str
    value: int = 255
    width_m: float = 0.0
    radius_m: float = 0.0
    exclude: Mapping[str, frozenset | None] = field(default_factory=dict)

    @property
    def geometries(self) -> tuple[str, ...]:
        return _GEOMETRY_OF_DRAW[self.draw]

    def matches(self, tags: Mapping[str, str]) -> bool:
        for key, values in self.match.items():
            v = tags.get(key)
            if v is None or (values is not None and v not in values):
                return False
        for key, values in self.exclude.items():
            v = tags.get(key)
            if v is not None and (values is None or v in values):
                return False
        return True


@dataclass(frozen=True)
class Channel:
    name: str
    description: str
    color: str
    rules: tuple[Rule, ...]


@dataclass(frozen=True)
class ChannelSpec:
    """An ordered list of channels; channel i is band i+1 of an area raster."""

    name: str
    channels: tuple[Channel, ...]
    pixel_size_m: float = 500.0 / 256
    tile_size_px: int = 256
    description: str = ""
    source: str = ""

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.channels]

    def __len__(self) -> int:
        return len(self.channels)

    def index(self, channel_name: str) -> int:
        """Band index (0-based) of a channel, with a clear error for unknown names."""
        try:
            return self.names.index(channel_name)
        except ValueError:
            raise Loc2VecError(f"unknown channel {channel_name!r} in spec {self.name!r}",
                               f"use one of: {', '.join(self.names)}") from None

    @property
    def keys(self) -> frozenset[str]:
        """Every OSM tag key any rule looks at: objects without one of these are skipped early."""
        return frozenset(k for c in self.channels for r in c.rules for k in r.match)

    def matches(self, tags: Mapping[str, str], geometry: str):
        """Yield ``(channel_index, rule)`` for each channel that takes an object; first rule per channel wins."""
        for i, ch in enumerate(self.channels):
            for rule in ch.rules:
                if geometry in rule.geometries and rule.matches(tags):
                    yield i, rule
                    break

    def check_band_names(self, band_names: list[str], what: str) -> None:
        """Refuse a raster whose bands are not this spec's channels."""
        if len(band_names) != len(self.channels):
            raise Loc2VecError(
                f"{what} has {len(band_names)} bands but channel spec {self.name!r} has {len(self.channels)} channels",
                "rasterize the area again with this spec (loc2vec rasterize), or pass the spec it was made with (--spec)")
        if any(b and b != n for b, n in zip(band_names, self.names)):
            raise Loc2VecError(f"{what} bands are {band_names}, but spec {self.name!r} expects {self.names}",
                               "rasterize the area again with this spec, or pass the spec it was made with (--spec)")


def _parse_rule(raw, where: str) -> Rule:
    if not isinstance(raw, dict):
        raise Loc2VecError(f"{where}: a rule must be a table", "see the comments at the top of default.toml")
    unknown = set(raw) - _RULE_KEYS
    if unknown:
        raise Loc2VecError(f"{where}: unknown rule field(s) {sorted(unknown)}",
                           f"allowed fields: {', '.join(sorted(_RULE_KEYS))}")
    match = raw.get("match")
    if not isinstance(match, dict) or not match:
        raise Loc2VecError(f"{where}: a rule needs a non-empty 'match' table",
                           'write e.g. match = { highway = "primary" }')
    draw = raw.get("draw")
    if draw not in DRAW_KINDS:
        raise Loc2VecError(f"{where}: unknown draw {draw!r}", f"use one of: {', '.join(DRAW_KINDS)}")
    value = raw.get("value", 255)
    if not isinstance(value, int) or not 1 <= value <= 255:
        raise Loc2VecError(f"{where}: value must be an integer 1..255, not {value!r}", "e.g. value = 128")
    width = float(raw.get("width_m", 0))
    radius = float(raw.get("radius_m", 0))
    if draw in ("line", "outline") and width <= 0:
        raise Loc2VecError(f"{where}: draw = \"{draw}\" needs width_m > 0", "add e.g. width_m = 8")
    if draw == "point" and radius <= 0:
        raise Loc2VecError(f"{where}: draw = \"point\" needs radius_m > 0", "add e.g. radius_m = 6")
    exclude = raw.get("except", {})
    if not isinstance(exclude, dict):
        raise Loc2VecError(f"{where}: 'except' must be a table", 'write e.g. except = { service = "yard" }')
    return Rule(match={k: _value_set(v, where) for k, v in match.items()}, draw=draw, value=value,
                width_m=width, radius_m=radius, exclude={k: _value_set(v, where) for k, v in exclude.items()})


def parse_spec(data: dict, source: str = "<memory>") -> ChannelSpec:
    """Validate a spec already parsed from TOML."""
    head = data.get("spec", {})
    raw_channels = data.get("channel")
    if not isinstance(raw_channels, list) or not raw_channels:
        raise Loc2VecError(f"{source}: the spec has no [[channel]] tables", "copy default.toml and edit it")
    channels, seen = [], set()
    for i, raw in enumerate(raw_channels):
        name = raw.get("name")
        where = f"{source}: channel {i + 1} ({name or 'unnamed'})"
        if not isinstance(name, str) or not name.isidentifier():
            raise Loc2VecError(f"{where}: a channel needs a 'name' made of letters, digits and _",
                               'e.g. name = "roads_major"')
        if name in seen:
            raise Loc2VecError(f"{where}: channel name {name!r} appears twice", "give each channel its own name")
        seen.add(name)
        unknown = set(raw) - _CHANNEL_KEYS
        if unknown:
            raise Loc2VecError(f"{where}: unknown channel field(s) {sorted(unknown)}",
                               f"allowed fields: {', '.join(sorted(_CHANNEL_KEYS))}")
        rules = raw.get("rules")
        if not isinstance(rules, list) or not rules:
            raise Loc2VecError(f"{where}: a channel needs at least one rule", "add rules = [ { match = ..., draw = ... } ]")
        channels.append(Channel(name=name, description=str(raw.get("description", "")),
                                color=str(raw.get("color", "#808080")),
                                rules=tuple(_parse_rule(r, f"{where} rule {j + 1}") for j, r in enumerate(rules))))
    pixel = float(head.get("pixel_size_m", 500.0 / 256))
    tile = int(head.get("tile_size_px", 256))
    if pixel <= 0 or tile <= 0:
        raise Loc2VecError(f"{source}: pixel_size_m and tile_size_px must be positive", "e.g. pixel_size_m = 1.953125")
    return ChannelSpec(name=str(head.get("name", Path(source).stem)), channels=tuple(channels),
                       pixel_size_m=pixel, tile_size_px=tile, description=str(head.get("description", "")),
                       source=source)


def load_spec_file(path: str | Path) -> ChannelSpec:
    path = Path(path)
    if not path.is_file():
        raise Loc2VecError(f"channel spec {path} not found", "give a TOML file, or a spec name such as 'default'")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise Loc2VecError(f"channel spec {path} is not valid TOML: {e}", "fix the line named above") from None
    except UnicodeDecodeError:
        raise Loc2VecError(f"channel spec {path} is not a text file (not UTF-8)",
                           "give a TOML channel spec, e.g. one written by loc2vec spec --dump") from None
    return parse_spec(data, str(path))
