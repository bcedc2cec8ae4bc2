"""Scoring places from examples: 1M cells scored from 20 example cells, both methods, one run.

    .venv/bin/python benchmarks/score.py [--cells 1000000] [--dims 64 164] [--threads 1] [--repeats 3]

Synthetic unit vectors (a Gaussian mixture on the sphere, as benchmarks/search.py makes them) on a
1000 x 1000 grid of 100 m cells. Timed, per dimension and method (best and median of ``--repeats``
after a warm-up run, which also pays scikit-learn's import): ``score_cells`` from 20 example cells,
i.e. fitting (the logistic regression: 5-fold cross-validation, Platt calibration, final fit; the
prototype: means and the leave-one-out check) and a score for every cell with the default
threshold; then, apart, the cell layout (grid lookup) and the dissolved mask at that threshold.

- logistic: 10 positive + 10 negative cells (auto's choice with >= 5 of each);
- prototype: 20 positive cells; and 10 positive + 10 negative cells (--method prototype).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _threads_from_argv() -> str:
    """BLAS reads its thread count at import: set it before numpy loads."""
    argv = sys.argv[1:]
    return argv[argv.index("--threads") + 1] if "--threads" in argv else "1"


for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = _threads_from_argv()

import numpy as np  # noqa: E402


def mixture(n: int, d: int, rng, components: int = 500, latent: int = 16) -> np.ndarray:
    centres = rng.standard_normal((components, latent)).astype(np.float32)
    label = rng.integers(0, components, n)
    z = centres[label] + 0.3 * rng.standard_normal((n, latent), dtype=np.float32)
    x = z @ (rng.standard_normal((latent, d)).astype(np.float32) / np.sqrt(latent))
    x += 0.05 * rng.standard_normal((n, d), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x, label


class Grid:
    """What ``cell_layout`` needs of an EmbeddingSet: centres of a square grid, metadata, a name."""

    def __init__(self, n: int, stride: float = 100.0):
        side = int(np.ceil(np.sqrt(n)))
        r, c = np.divmod(np.arange(n), side)
        self.xy = np.stack([500_050.0 + c * stride, 5_000_050.0 - r * stride], axis=1)
        self.meta = {"stride_m": stride}
        self.path = None

    def __len__(self):
        return len(self.xy)


def timed(fn, repeats: int) -> tuple[float, float, object]:
    out = fn()  # warm-up (imports, caches)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), float(np.median(times)), out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cells", type=int, default=1_000_000)
    p.add_argument("--dims", type=int, nargs="+", default=[64, 164])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()

    from loc2vec_engine.scoring.layout import cell_layout
    from loc2vec_engine.scoring.mask import threshold_mask
    from loc2vec_engine.scoring.score import score_cells

    print(f"benchmarks/score.py --cells {args.cells} --dims {' '.join(map(str, args.dims))} "
          f"--threads {args.threads} --repeats {args.repeats}")
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"numpy {np.__version__}")
    rng = np.random.default_rng(0)
    grid = Grid(args.cells)
    t = time.perf_counter()
    layout = cell_layout(grid)
    layout_s = time.perf_counter() - t
    print(f"cell layout of {args.cells:,} cells ({layout.cols} x {layout.rows}): {layout_s:.3f} s")
    print(f"{'dim':>4}  {'method':<10} {'examples':<12} {'best s':>7} {'median s':>9}  {'AUC':>6}  "
          f"{'mask s':>7}  cells above")
    for dim in args.dims:
        vectors, label = mixture(args.cells, dim, rng)
        kind = int(np.bincount(label).argmax())
        pos_pool, neg_pool = np.flatnonzero(label == kind), np.flatnonzero(label != kind)
        pos10, pos20 = rng.choice(pos_pool, 10, replace=False), rng.choice(pos_pool, 20, replace=False)
        neg10 = rng.choice(neg_pool, 10, replace=False)
        cases = (("logistic", "10 + 10", pos10, neg10, "auto"),
                 ("prototype", "20 + 0", pos20, neg10[:0], "auto"),
                 ("prototype", "10 + 10", pos10, neg10, "prototype"))
        for name, text, pos, neg, method in cases:
            best, median, s = timed(lambda: score_cells(vectors, pos, neg, method=method), args.repeats)
            assert s.method == name
            t = time.perf_counter()
            mask = threshold_mask(layout, s.values, s.threshold)
            mask_s = time.perf_counter() - t
            auc = "" if s.heldout_auc is None else f"{s.heldout_auc:.3f}"
            print(f"{dim:4d}  {name:<10} {text:<12} {best:7.3f} {median:9.3f}  {auc:>6}  {mask_s:7.3f}  "
                  f"{mask.cells:,} ({mask.area_km2:,.1f} km²)")
        del vectors


if __name__ == "__main__":
    main()
