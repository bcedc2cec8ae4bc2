"""Channel-group ablation: zero one group of channels in every tile at inference and re-measure.

Groups are found by channel name, so a custom spec with the same naming works; a group none of whose
channels the model has is left out. ``admin`` belongs to no group.
"""

from __future__ import annotations

import numpy as np

CHANNEL_GROUPS = {
    "roads": ("roads_major", "roads_minor", "paths"),
    "buildings": ("buildings_residential", "buildings_commercial", "buildings_industrial"),
    "nature": ("water", "green", "landuse"),
    "transit+poi": ("transit", "poi"),
}


def channel_groups(channel_names) -> dict[str, list[int]]:
    """Group name -> indexes of its channels among ``channel_names`` (prefix match: ``roads*``, ...)."""
    names = list(channel_names)
    out = {}
    for group, members in CHANNEL_GROUPS.items():
        idx = [i for i, n in enumerate(names) if any(n == m or n.startswith(m + "_") for m in members)]
        if group in ("roads", "buildings"):
            idx = sorted(set(idx) | {i for i, n in enumerate(names) if n.startswith(group)})
        if idx:
            out[group] = idx
    return out


def zero_channels(tiles, channels) -> np.ndarray:
    """A copy of uint8 ``tiles`` (N, C, S, S) with ``channels`` set to 0 (a map without those layers)."""
    out = np.array(tiles, dtype=np.uint8, copy=True, order="C")
    out[:, list(channels)] = 0
    return out
