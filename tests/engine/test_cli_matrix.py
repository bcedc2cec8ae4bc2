"""Every sub-command against every bad input and output it can meet: one clear error, never a traceback.

A table row per command (and per extra output option) says which inputs it reads, what it writes, and
which function is its long work; the matrix expands it into the cases that apply:

* missing-INPUT / wrong-kind-INPUT: the input does not exist, or is a text file named like the real thing;
* out-folder-missing: the output's folder does not exist and cannot be made (under /proc, even for root);
* out-not-writable: the folder exists but takes no new files (/proc: real, and refused to root too,
  where ``os.access`` and chmod 555 would say "writable");
* out-is-a-folder (file outputs) / out-is-a-file (folder outputs) / out-existing-not-writable (a folder
  output that exists but takes no files: /proc itself).

Each case must exit 2 with an ``error:`` and a ``  fix:`` line naming the path, print no traceback and leave
nothing in the output folder; output cases must fail before the long work (the work function is replaced
by one that fails the test if called).

Not in the table: ``presets`` (no input, no output); ``info`` and ``spec`` have no output, so only input cases;
``demo`` reads only bundled data, so only output cases; ``cluster`` updates its input GeoPackage in place,
whose folder cannot be made unwritable as root, so its output cases are on ``--out-dir`` (the PNGs).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest

from loc2vec_engine.cli import main

from ..conftest import REPO

MODEL = REPO / "resources" / "models" / "loc2vec-default.onnx"
CHECKPOINT = REPO / "resources" / "models" / "loc2vec-default.pt"
AT = "-8.6100,41.1450"  # central Porto, inside the test area
NOPE = Path("/proc/loc2vec-nope")  # a folder that does not exist and that nobody, root included, can create


# ---- real inputs, made once ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def inputs(porto_pbf, porto_area, tmp_path_factory) -> dict:
    """Valid inputs by kind: small real files (a 200 m grid keeps the embeddings to a few dozen cells)."""
    from loc2vec_engine.embeddings.embed import embed_area

    d = tmp_path_factory.mktemp("matrix_inputs")
    emb = embed_area(MODEL, porto_area, d / "porto.gpkg", stride_m=200, device="cpu", progress=_quiet).path
    parts = [embed_area(MODEL, porto_area, d / f"part{i}.gpkg", stride_m=200, shard=f"{i}/2", device="cpu",
                        progress=_quiet).path for i in range(2)]
    return {"pbf": porto_pbf, "area": porto_area, "model": MODEL, "emb": emb, "parts": parts,
            "checkpoint": CHECKPOINT, "spec": "default", "url": f"file://{porto_pbf}"}


def _quiet(fraction, message):
    return False


# What a wrong-kind input is: a text file named like the real thing (so the extension lies), and for the
# spec, which is text, a binary file.
WRONG_KIND = {"pbf": "not_osm.osm.pbf", "area": "not_a_raster.tif", "model": "not_a_model.onnx",
              "emb": "not_embeddings.gpkg", "parts": "not_a_part.gpkg", "checkpoint": "not_a_checkpoint.pt",
              "spec": "not_a_spec.toml", "url": "not_osm.osm.pbf"}


# ---- the table ---------------------------------------------------------------------------------------

@dataclass
class Command:
    name: str
    argv: Callable[[dict, object], list]  # (inputs by kind, output argument) -> argv
    inputs: tuple[str, ...] = ()  # kinds read, each gets missing-/wrong-kind- cases
    output: str | None = None  # "file", "folder" (made by the command, mkdir -p) or "into" (must exist)
    out_name: str = "out"  # what the command would write inside the output folder
    work: str = ""  # module.attr of the long work: output problems must be found before it
    always_guard: bool = False  # guard the work in input cases too (training: never run in tests)
    extra: dict = field(default_factory=dict)


COMMANDS = [
    Command("rasterize", lambda i, o: ["rasterize", i["pbf"], "--bbox=-8.6160,41.1385,-8.6017,41.1490", "--out", o],
            ("pbf",), "file", "area.tif", "loc2vec_engine.raster.rasterize._prepare"),
    Command("preview", lambda i, o: ["preview", i["area"], "--at", AT, "--out", o],
            ("area",), "file", "tile.png", "loc2vec_engine.tiles.preview._composite_figure"),
    # The second PNG: the bug of writing tile.png and then failing on the panels left tile.png behind.
    Command("preview --panels", lambda i, o: ["preview", i["area"], "--at", AT, "--out", i["out_dir"] / "tile.png",
                                              "--panels", o],
            (), "file", "panels.png", "loc2vec_engine.tiles.preview._composite_figure"),
    Command("info", lambda i, o: ["info", i["area"]], ("area",)),  # no output
    Command("spec", lambda i, o: ["spec", i["spec"]], ("spec",)),  # no output
    Command("spec --dump", lambda i, o: ["spec", i["spec"], "--dump"], ("spec",)),  # no output
    Command("fetch-osm", lambda i, o: ["fetch-osm", "--url", i["url"], "--out", o],
            ("url",), "file", "extract.osm.pbf", "loc2vec_engine.sources.fetch._download"),
    Command("train", lambda i, o: ["train", i["area"], "--out", o, "--steps", "1", "--tile-size", "32",
                                   "--batch-size", "2", "--device", "cpu"],
            ("area",), "folder", "run", "loc2vec_engine.training.loop.train", always_guard=True),
    Command("export", lambda i, o: ["export", i["checkpoint"], "--out", o],
            ("checkpoint",), "file", "model.onnx", "loc2vec_engine.training.export.load_checkpoint"),
    Command("demo", lambda i, o: ["demo", "--out", o], (), "folder", "demo", "loc2vec_engine.demo.run_demo",
            always_guard=True),
    Command("embed", lambda i, o: ["embed", i["model"], i["area"], "--out", o, "--stride", "200", "--device", "cpu"],
            ("model", "area"), "file", "emb.gpkg", "loc2vec_engine.embeddings.embed.load_encoder_and_area"),
    Command("embed --at", lambda i, o: ["embed", i["model"], i["area"], "--at", AT, "--out", o, "--device", "cpu"],
            (), "file", "points.gpkg", "loc2vec_engine.embeddings.embed.load_encoder_and_area"),
    Command("merge", lambda i, o: ["merge", *i["parts"], "--out", o],
            ("parts",), "file", "merged.gpkg", "loc2vec_engine.embeddings.merge.read_embeddings"),
    Command("cluster", lambda i, o: ["cluster", i["emb"], "--k", "3", "--out-dir", o],
            ("emb",), "into", "", "loc2vec_engine.clusters.cluster.cluster_labels"),
    Command("similar", lambda i, o: ["similar", i["emb"], "--at", AT, "--out", o],
            ("emb",), "file", "similar.gpkg", "loc2vec_engine.search.index_file.index_for"),
    Command("score", lambda i, o: ["score", i["emb"], "--positive", AT, "--out", o],
            ("emb",), "file", "score.gpkg", "loc2vec_engine.scoring.places.score_embeddings"),
    # The raster and the histogram: a bad one of them leaves no GeoPackage behind either.
    Command("score --raster", lambda i, o: ["score", i["emb"], "--positive", AT, "--out", i["out_dir"] / "s.gpkg",
                                            "--raster", o],
            (), "file", "score.tif", "loc2vec_engine.scoring.places.score_embeddings"),
    Command("score --histogram", lambda i, o: ["score", i["emb"], "--positive", AT, "--out",
                                               i["out_dir"] / "s.gpkg", "--histogram", o],
            (), "file", "score.png", "loc2vec_engine.scoring.places.score_embeddings"),
    # The same raster as BEFORE and AFTER: the cases are about reading and writing, not about the change.
    Command("compare", lambda i, o: ["compare", i["area"], i["area"], "--model", i["model"], "--out", o,
                                     "--stride", "200", "--device", "cpu"],
            ("area", "model"), "file", "change.gpkg", "loc2vec_engine.change.compare.embed_both"),
    # The map: a bad one leaves no GeoPackage behind either.
    Command("compare --map", lambda i, o: ["compare", i["area"], i["area"], "--model", i["model"], "--out",
                                           i["out_dir"] / "c.gpkg", "--map", o, "--stride", "200", "--device", "cpu"],
            (), "file", "change_map.png", "loc2vec_engine.change.compare.embed_both"),
    Command("evaluate", lambda i, o: ["evaluate", i["model"], i["area"], "--osm", i["pbf"], "--out", o,
                                      "--device", "cpu"],
            ("model", "area", "pbf"), "folder", "report", "loc2vec_engine.evaluation.evaluate.evaluate_model"),
]

OUTPUT_CASES = {
    "file": ("out-folder-missing", "out-not-writable", "out-is-a-folder"),
    "folder": ("out-folder-missing", "out-not-writable", "out-is-a-file", "out-existing-not-writable"),
    "into": ("out-folder-missing", "out-not-writable", "out-is-a-file"),
}


def _cases():
    for cmd in COMMANDS:
        for kind in cmd.inputs:
            for case in ("missing", "wrong-kind"):
                yield pytest.param(cmd, f"{case}-{kind}", id=f"{cmd.name}:{case}-{kind}")
        for case in OUTPUT_CASES.get(cmd.output, ()):
            yield pytest.param(cmd, case, id=f"{cmd.name}:{case}")


# ---- the test ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("cmd, case", list(_cases()))
def test_bad_input_or_output(cmd, case, inputs, tmp_path, capsys, monkeypatch):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    values = {**inputs, "out_dir": out_dir}
    # Input cases write where writing works, so only the input can be what fails.
    out = out_dir / cmd.out_name if cmd.output != "into" else out_dir
    expect = None  # a path the error line must name

    if case.startswith(("missing-", "wrong-kind-")):
        kind = case.split("-")[-1]
        if case.startswith("missing-"):
            bad = tmp_path / "nowhere" / Path(WRONG_KIND[kind]).name
        else:
            bad = tmp_path / WRONG_KIND[kind]
            if kind == "spec":
                bad.write_bytes(bytes(range(256)) * 4)
            else:
                bad.write_text(f"this text file is not a {kind} file\n")
        expect = bad.name
        value = f"file://{bad}" if kind == "url" else bad
        values[kind] = [value, *inputs[kind][1:]] if kind == "parts" else value
    else:
        out, expect = _bad_output(cmd, case, out_dir)
    if case.startswith("out-") or cmd.always_guard:
        module, attr = cmd.work.rsplit(".", 1)
        monkeypatch.setattr(f"{module}.{attr}", _long_work_started(cmd.name))

    rc = main([str(a) for a in cmd.argv(values, out)])
    err = capsys.readouterr().err

    assert "Traceback" not in err, err
    assert rc == 2, err
    lines = err.splitlines()
    errors = [ln for ln in lines if ln.startswith("error: ")]
    assert len(errors) == 1 and any(ln.startswith("  fix: ") for ln in lines), err
    assert expect in errors[0], f"the error should name {expect}: {err}"
    left = sorted(p.name for p in out_dir.iterdir() if p.name != "a_file")
    assert left == [], f"left behind in the output folder: {left}"
    assert not NOPE.exists()


def _bad_output(cmd: Command, case: str, out_dir: Path):
    """(output argument, the path the error must name) for an output case."""
    name = cmd.out_name
    if case == "out-folder-missing":
        return (NOPE / name if name else NOPE), str(NOPE)
    if case == "out-not-writable":
        return (Path("/proc") / name if name else Path("/proc")), "/proc"
    if case == "out-existing-not-writable":
        return Path("/proc"), "/proc"
    if case == "out-is-a-folder":
        return out_dir, str(out_dir)
    if case == "out-is-a-file":
        blocker = out_dir / "a_file"
        blocker.write_text("keep me")
        return blocker, str(blocker)
    raise AssertionError(case)


def _long_work_started(name: str):
    def guard(*args, **kwargs):
        raise AssertionError(f"loc2vec {name} started its work before finding that its output cannot be written")

    return guard
