"""Similar-place query latency: exact numpy search vs the self-tuned faiss IVF index, same vectors, one run.

    .venv/bin/python benchmarks/search.py [--sizes 100000 1000000] [--threads 1] [--queries 100]

For each size and kind of 128-D unit vectors it prints: per-query latency (median over ``--queries``
single queries, as a click sends them) of exact numpy search and of ``VectorIndex``, the index's
build time and chosen nprobe, and recall@10 against exact search on queries not used for tuning.

- "mixture": a Gaussian mixture on the sphere (2,000 components in a 16-D latent space, mapped to
  128-D with noise): the clustered, low-dimensional structure of real embeddings (the shipped model's
  Porto embeddings have 95 % of their variance in 3 components), yet harder than them;
- "random": independent Gaussian vectors, the worst case for any index (no neighbourhoods).

Then the QGIS click-to-highlight path over 100k cells: nearest cell, cosine of every cell (the heat
map), top 10 with ground distances (``PlaceSearch.highlight``). BLAS and faiss use ``--threads``.
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

K = 10


def unit(x: np.ndarray) -> np.ndarray:
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32, copy=False)


def mixture(n: int, d: int, rng, components: int = 2000, latent: int = 16) -> np.ndarray:
    centres = rng.standard_normal((components, latent)).astype(np.float32)
    spread = rng.uniform(0.1, 0.5, components).astype(np.float32)
    label = rng.integers(0, components, n)
    z = centres[label] + rng.standard_normal((n, latent), dtype=np.float32) * spread[label, None]
    lift = rng.standard_normal((latent, d)).astype(np.float32) / np.sqrt(latent)
    x = z @ lift + 0.05 * rng.standard_normal((n, d), dtype=np.float32)
    x += rng.standard_normal(d).astype(np.float32)  # a shared direction: real embeddings sit in a cone
    return unit(x)


def random_vectors(n: int, d: int, rng) -> np.ndarray:
    return unit(rng.standard_normal((n, d), dtype=np.float32))


def median_ms(fn, queries) -> float:
    times = []
    for q in queries:
        t = time.perf_counter()
        fn(q)
        times.append(time.perf_counter() - t)
    return 1000 * float(np.median(times))


def bench_size(name, vectors, n_queries, rng) -> dict:
    from loc2vec_engine.search.index import VectorIndex, exact_search, recall_at_k, train_ivf

    queries = vectors[rng.choice(len(vectors), n_queries, replace=False)]  # cells, as a click picks them
    exact_ms = median_ms(lambda q: exact_search(vectors, q[None], K), queries)
    exact, exact_idx = exact_search(vectors, queries, K)
    t = time.perf_counter()
    index = VectorIndex.build(vectors, exact_below=0, seed=0)
    build_s = time.perf_counter() - t
    index_ms = median_ms(lambda q: index.search(q[None], K), queries)
    found, idx = index.search(queries, K)
    row = {"data": name, "n": len(vectors), "exact_ms": exact_ms, "index": repr(index), "build_s": build_s,
           "index_ms": index_ms, "recall": recall_at_k(exact, found),
           "id_recall": float(np.mean([len(set(a) & set(b)) / K for a, b in zip(idx, exact_idx)]))}
    if index.kind == "exact":  # show what IVF would have given at the largest nprobe the tuner tries
        ivf = train_ivf(vectors, 0)
        ivf.nprobe = ivf.nlist // 4
        row["forced_ivf"] = (ivf.nprobe, ivf.nlist, median_ms(lambda q: ivf.search(q[None], K), queries),
                             recall_at_k(exact, ivf.search(queries, K)[0]))
    return row


def bench_click(n: int, rng) -> float:
    """Median ms of PlaceSearch.highlight over n cells on a 25 m grid in Porto's UTM zone."""
    from pyproj import CRS

    from loc2vec_engine.embeddings.store import EmbeddingSet
    from loc2vec_engine.geo.crs import transformer_to_wgs84
    from loc2vec_engine.search.similar import PlaceSearch

    side = int(np.ceil(np.sqrt(n)))
    gx, gy = np.meshgrid(530_000 + 25.0 * np.arange(side), 4_550_000 + 25.0 * np.arange(side))
    xy = np.stack([gx.ravel(), gy.ravel()], axis=1)[:n]
    crs = CRS.from_epsg(32629).to_wkt()
    es = EmbeddingSet(xy=xy, vectors=mixture(n, 128, rng), cell=np.arange(n), crs_wkt=crs,
                      meta={"stride_m": 25.0})
    clicks = xy[rng.choice(n, 100, replace=False)] + rng.uniform(-10, 10, (100, 2))
    lon, lat = transformer_to_wgs84(crs).transform(clicks[:, 0], clicks[:, 1])
    search = PlaceSearch(es)
    search.highlight([(lon[0], lat[0])])  # warm-up: pyproj transformers, first allocation
    return median_ms(lambda p: search.highlight([p], k=K), list(zip(lon, lat)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--queries", type=int, default=100)
    ap.add_argument("--threads", type=int, default=1, help="BLAS and faiss threads (default 1)")
    ap.add_argument("--data", nargs="+", default=["mixture", "random"], choices=["mixture", "random"])
    args = ap.parse_args()

    import faiss

    faiss.omp_set_num_threads(args.threads)
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, {args.threads} thread(s); "
          f"numpy {np.__version__}, faiss {faiss.__version__}; {args.dim}-D float32; k={K}; "
          f"median over {args.queries} single queries")
    print("| data | cells | exact numpy ms/query | index | build s | index ms/query | recall@10 | "
          "recall@10 by id |")
    print("|---|---:|---:|---|---:|---:|---:|---:|")
    for n in args.sizes:
        for name in args.data:
            rng = np.random.default_rng(n)
            vectors = (mixture if name == "mixture" else random_vectors)(n, args.dim, rng)
            r = bench_size(name, vectors, args.queries, np.random.default_rng(n + 1))
            print(f"| {r['data']} | {r['n']:,} | {r['exact_ms']:.1f} | {r['index']} | {r['build_s']:.1f} | "
                  f"{r['index_ms']:.2f} | {r['recall']:.3f} | {r['id_recall']:.3f} |", flush=True)
            if "forced_ivf" in r:
                nprobe, nlist, ms, rec = r["forced_ivf"]
                print(f"|   (IVF forced, nprobe {nprobe} of {nlist}) | | | | | {ms:.2f} | {rec:.3f} | |",
                      flush=True)
            del vectors
    n_click = 100_000
    print(f"\nclick-to-highlight over {n_click:,} cells (nearest cell + cosine of every cell + top {K} "
          f"with distances): {bench_click(n_click, np.random.default_rng(7)):.1f} ms median")


if __name__ == "__main__":
    main()
