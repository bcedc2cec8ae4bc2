"""An explanation in words: a few short clauses from the cosine drops and pixel shares, nothing guessed.

The rules, in order (each clause only when its numbers say so):

1. "alike mostly for A (−0.021 when blanked) and B (−0.006)": the (at most two) groups whose blanking
   lowers the cosine by at least ``MIN_DROP``; none: "no single group carries the likeness".
2. "both: water 42/51 %, residential buildings 25/23 %": the (at most two) channels drawn
   on at least ``SHARED_MIN`` of both tiles, largest first (query / result).
3. "the result has no transit (query 3 %)": a channel on at least ``CLEAR_MIN`` of one tile and at
   most ``LACK_MAX`` of the other; else "the result has less green space (4 % vs 13 %)" when one has
   ``MORE_RATIO`` times the other's share and ``MORE_DIFF`` more of its pixels. At most one.
4. "closer without buildings (+0.012)": the group whose blanking raises the cosine the
   most, by at least ``MIN_DROP`` (blanking a channel both have a lot of can do that: what is left of
   the two tiles is more alike than what was blanked).

Channels of no group (administrative boundaries) are left out of the words (the shares still list them).
Land use is named by its most common class when that class is most of it and the channel spec is the default
one ("residential land use").
"""

from __future__ import annotations

from functools import lru_cache

MIN_DROP = 0.005  # cosine: a group whose blanking moves it less is not named
SHARED_MIN = 0.05  # of a tile's valid pixels, in both tiles: a shared channel
CLEAR_MIN = 0.02  # in one tile ...
LACK_MAX = 0.002  # ... and at most this in the other: one has it, the other lacks it
MORE_RATIO, MORE_DIFF = 2.5, 0.05  # "more": this many times the other's share, and this much more of the pixels
CLASS_MIN = 2 / 3  # a class channel is named by its class when that class is this much of its drawn pixels
MAX_GROUPS, MAX_SHARED, MAX_CONTRASTS = 2, 2, 1

GROUP_WORDS = {"roads": "roads", "buildings": "buildings", "nature": "nature + land use",
               "transit+poi": "transit + POIs"}
CHANNEL_WORDS = {"roads_major": "major roads", "roads_minor": "minor roads", "paths": "paths",
                 "buildings_residential": "residential buildings", "buildings_commercial": "commercial buildings",
                 "buildings_industrial": "industrial buildings", "water": "water", "green": "green space",
                 "transit": "transit", "poi": "shops and amenities", "admin": "boundaries",
                 "landuse": "mapped land use"}


def group_word(group: str) -> str:
    return GROUP_WORDS.get(group, group.replace("+", " + ").replace("_", " "))


def channel_word(name: str, level=None, names=None) -> str:
    """A channel in words; ``level`` (value, share) of a class channel names its class ("industrial land use")."""
    if level is not None and names is not None and level[1] >= CLASS_MIN * level[2]:
        label = class_labels(tuple(names)).get(name, {}).get(level[0])
        if label:
            return f"{label} land use" if name.startswith("landuse") else f"{label} {CHANNEL_WORDS.get(name, name)}"
    return CHANNEL_WORDS.get(name, name.replace("_", " "))


def pct(share: float) -> str:
    """A share as a short percentage: '42 %', '0.4 %', '0 %'."""
    p = 100.0 * float(share)
    if p == 0:
        return "0 %"
    return f"{p:.1f} %" if p < 1 else f"{p:.0f} %"


def describe(e) -> str:
    """The words for an ``Explanation``: clauses joined by '; '."""
    grouped = {c for g in e.groups for c in g.channels}
    clauses = [_alike(e.groups)]
    shared = _shared(e, grouped)
    if shared:
        clauses.append("both: " + ", ".join(shared))
    clauses += _contrasts(e, grouped)[:MAX_CONTRASTS]
    apart = [g for g in e.groups if g.drop <= -MIN_DROP]
    if apart:
        g = min(apart, key=lambda g: g.drop)
        clauses.append(f"closer without {group_word(g.group)} (+{-g.drop:.3f})")
    return "; ".join(clauses)


def describe_tile(shares, channel_names, levels=None, top: int = 4) -> str:
    """A tile's largest channels: 'water 42 %, residential buildings 25 %, paths 15 %'."""
    levels = levels or {}
    order = sorted(range(len(channel_names)), key=lambda c: -shares[c])
    parts = [f"{channel_word(channel_names[c], levels.get(channel_names[c]), channel_names)} {pct(shares[c])}"
             for c in order[:top] if shares[c] > 0]
    return ", ".join(parts) if parts else "nothing drawn"


def _alike(groups) -> str:
    carrying = sorted((g for g in groups if g.drop >= MIN_DROP), key=lambda g: -g.drop)[:MAX_GROUPS]
    if not carrying:
        return f"no single group carries the likeness (each blanked: < {MIN_DROP:g})"
    first, *rest = carrying
    text = f"alike mostly for {group_word(first.group)} (−{first.drop:.3f} when blanked)"
    return text + "".join(f" and {group_word(g.group)} (−{g.drop:.3f})" for g in rest)


def _shared(e, grouped) -> list[str]:
    names = e.channel_names
    both = [c for c, n in enumerate(names) if n in grouped and min(e.query_shares[c], e.result_shares[c]) >= SHARED_MIN]
    both.sort(key=lambda c: -min(e.query_shares[c], e.result_shares[c]))
    out = []
    for c in both[:MAX_SHARED]:
        n = names[c]
        q, r = e.query_levels.get(n), e.result_levels.get(n)
        level = q if q is not None and r is not None and q[0] == r[0] else None  # one class in both: name it
        out.append(f"{channel_word(n, level, names)} {_pair(e.query_shares[c], e.result_shares[c])}")
    return out


def _contrasts(e, grouped) -> list[str]:
    names = e.channel_names
    lacks, more = [], []
    for c, n in enumerate(names):
        if n not in grouped:
            continue
        q, r = float(e.query_shares[c]), float(e.result_shares[c])
        hi, lo = max(q, r), min(q, r)
        who, other = ("query", "result") if q > r else ("result", "query")
        levels = e.query_levels if q > r else e.result_levels
        word = channel_word(n, levels.get(n), names)
        if hi >= CLEAR_MIN and lo <= LACK_MAX:
            lacks.append((hi, f"the {other} has no {word} ({who} {pct(hi)})"))
        elif hi >= MORE_RATIO * lo and hi - lo >= MORE_DIFF:
            more.append((hi - lo, f"the {other} has less {channel_word(n)} ({pct(lo)} vs {pct(hi)})"))
    return [t for _, t in sorted(lacks, key=lambda x: -x[0])] + [t for _, t in sorted(more, key=lambda x: -x[0])]


@lru_cache(maxsize=4)
def class_labels(channel_names: tuple) -> dict[str, dict[int, str]]:
    """channel -> {value: class} for the class channels of the default spec, when the model's channels are its.

    A class is the first value its rule matches, as written in the spec ("residential", "farmland", ...).
    """
    import tomllib

    from ..channels import get_spec
    from .explain import level_channels

    spec = get_spec("default")
    if list(channel_names) != spec.names:
        return {}
    raw = {c.get("name"): c for c in tomllib.loads(open(spec.source, encoding="utf-8").read()).get("channel", [])}
    out: dict[str, dict[int, str]] = {}
    for name in level_channels(channel_names):
        labels: dict[int, str] = {}
        for rule in raw.get(name, {}).get("rules", []):
            values = next(iter(rule.get("match", {}).values()), None)
            first = values[0] if isinstance(values, list) and values else values
            if isinstance(first, str) and first != "*":
                labels.setdefault(int(rule.get("value", 255)), first.replace("_", " "))
        out[name] = labels
    return out


def groups_line(e) -> str:
    """Each group side by side: 'roads 30/28 % −0.001, buildings 25/23 % +0.001, ...' (query/result pixel
    shares, then the change in cosine when it is blanked in both)."""
    return ", ".join(group_items(e))


def group_items(e) -> list[str]:
    """``groups_line``'s items, one per group."""
    return [f"{group_word(g.group)} {_pair(g.query_share, g.result_share)} {_signed(-g.drop)}" for g in e.groups]


def _pair(q: float, r: float) -> str:
    """'42/51 %' (query/result)."""
    return f"{pct(q)[:-2]}/{pct(r)}"


def _signed(x: float) -> str:
    return f"+{x:.3f}" if x >= 0.0005 else (f"−{-x:.3f}" if x <= -0.0005 else "±0.000")
