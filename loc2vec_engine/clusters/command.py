"""``loc2vec cluster``: cluster an embeddings GeoPackage, add its UMAP, draw the cluster map and scatter."""

from __future__ import annotations

from .. import ATTRIBUTION


def cmd_cluster(args) -> None:
    from ..atomic import check_output_folder
    from .cluster import cluster_file

    if args.out_dir is not None:
        check_output_folder(args.out_dir, create=False)  # the PNGs go there; it may be a file, or read-only
    if args.method == "hdbscan" and args.k is not None:
        print("note: --k is ignored by hdbscan, which finds the number of clusters itself "
              "(tune it with --min-cluster-size)")
    result = cluster_file(args.embeddings, k=args.k, method=args.method, out_dir=args.out_dir, area=args.area,
                          seed=args.seed, min_cluster_size=args.min_cluster_size)
    print(f"{result.path}: {sum(result.sizes.values())} cells in {result.n_clusters} clusters ({result.method})")
    for label, n in result.sizes.items():
        print(f"  {'noise' if label < 0 else f'cluster {label}'}: {n} cells")
    if result.n_clusters == 0:
        print("warning: hdbscan found no clusters (all cells are noise); try a smaller --min-cluster-size")
    if result.silhouette is not None:
        print(f"silhouette score: {result.silhouette:.3f} (-1..1, higher = better separated)")
    for note in result.notes:
        print(f"note: {note}")
    print(f"wrote cluster, umap_x, umap_y into {result.path}")
    print(f"wrote {result.map_png}")
    print(f"wrote {result.umap_png}")
    print(ATTRIBUTION)


def add_parsers(sub) -> None:
    c = sub.add_parser("cluster", help="cluster embeddings (k-means or HDBSCAN), add a 2-D UMAP, draw PNGs")
    c.add_argument("embeddings", help="embeddings GeoPackage (from loc2vec embed); updated in place, atomically")
    c.add_argument("--k", type=int, help="number of clusters (k-means; 2 .. number of cells)")
    c.add_argument("--method", default="kmeans", choices=["kmeans", "hdbscan"],
                   help="kmeans (default) or hdbscan (finds the number of clusters, noise = -1; minutes "
                        "above ~10k cells, refused above 50k)")
    c.add_argument("--min-cluster-size", type=int, help="hdbscan: smallest cluster (default 1%% of the cells, >= 5)")
    c.add_argument("--area", help="area raster for the road background (default: the one the embeddings came from)")
    c.add_argument("--out-dir", help="folder for the PNGs (default: next to the GeoPackage)")
    c.add_argument("--seed", type=int, default=0, help="random seed for k-means and UMAP (default 0)")
    c.set_defaults(func=cmd_cluster)
