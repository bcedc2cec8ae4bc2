"""Legend texts for loc2vec's layers, the same in the .qgz projects and in the QGIS plugin.

A legend entry must tell its class apart: a cluster says how many cells it holds ("cluster 0 (1243
cells)"), a score class shows as many decimals as it takes for its two ends and its neighbours to
differ. A model's cosines can crowd so closely (the top 10 within 0.0001) that fixed decimals would
print "cosine 1.0000 – 1.0000" for several classes; when even ``MAX_DECIMALS`` cannot tell them apart,
the classes are ranks instead ("ranks 1–2").
"""

from __future__ import annotations

MIN_DECIMALS = 3
MAX_DECIMALS = 6  # float32 cosines carry about 7 significant digits: finer differences are noise


def cluster_label(value: int, cells: int | None = None, description: str | None = None) -> str:
    """'cluster 3 (1243 cells)', 'noise (12 cells)', with ``description`` after a colon when given."""
    text = "noise" if int(value) < 0 else f"cluster {int(value)}"
    if cells is not None:
        text += f" ({int(cells)} cell{'' if int(cells) == 1 else 's'})"
    return f"{text}: {description}" if description else text


def decimals_to_tell_apart(edges, lowest: int = MIN_DECIMALS, highest: int = MAX_DECIMALS) -> int | None:
    """The fewest decimals (>= ``lowest``) at which the class edges all print differently; None beyond ``highest``."""
    edges = [float(e) for e in edges]
    for d in range(lowest, highest + 1):
        texts = [f"{e:.{d}f}" for e in edges]
        if len(set(texts)) == len(texts):
            return d
    return None


def range_labels(edges, prefix: str = "", lowest: int = MIN_DECIMALS) -> list[str] | None:
    """'<prefix>lo – hi' for each class between consecutive ``edges``, every one different and none 'x – x';
    None when the edges crowd closer than ``MAX_DECIMALS`` decimals (then show ranks: ``rank_classes``)."""
    d = decimals_to_tell_apart(edges, lowest)
    if d is None:
        return None
    texts = [f"{float(e):.{d}f}" for e in edges]
    return [f"{prefix}{lo} – {hi}" for lo, hi in zip(texts, texts[1:])]


def rank_classes(n: int, classes: int) -> list[tuple[int, int, str]]:
    """Ranks 1..n in up to ``classes`` consecutive groups, best first: (first, last, 'ranks 1–2' or 'rank 3')."""
    n, classes = int(n), max(1, min(int(classes), int(n)))
    out, start = [], 1
    for i in range(classes):
        size = n // classes + (1 if i < n % classes else 0)
        last = start + size - 1
        out.append((start, last, f"rank {start}" if size == 1 else f"ranks {start}–{last}"))
        start = last + 1
    return out
