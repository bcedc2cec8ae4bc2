"""Processing algorithm ``loc2vec:evaluate``: a model measured on an area beside its baselines -> a report folder."""

from __future__ import annotations

import html
import re
from pathlib import Path

from qgis.core import (
    QgsProcessingAlgorithm,
    QgsProcessingException,
    QgsProcessingOutputFile,
    QgsProcessingOutputString,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFile,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterLayer,
)

from loc2vec_engine import ATTRIBUTION

from .defaults import preselect_area
from .engine import DEVICES, FeedbackProgress, add_advanced, engine_errors, user_message

OSM_FILTER = "OpenStreetMap data (*.osm.pbf *.pbf *.osm *.gpkg);;All files (*.*)"


class EvaluateAlgorithm(QgsProcessingAlgorithm):
    """Evaluate a loc2vec model: re-identification, retrieval, structure, venue probe, baselines, ablation."""

    MODEL = "MODEL"
    AREA = "AREA"
    OSM = "OSM"
    STRIDE = "STRIDE"
    MAX_CELLS = "MAX_CELLS"
    MAX_QUERIES = "MAX_QUERIES"
    SEED = "SEED"
    DEVICE = "DEVICE"
    OUTPUT = "OUTPUT"

    def name(self):
        return "evaluate"

    def displayName(self):  # noqa: N802
        return "Evaluate model"

    def group(self):
        return "Embeddings"

    def groupId(self):  # noqa: N802
        return "embeddings"

    def tags(self):
        return ["evaluate", "evaluation", "metrics", "report", "baseline", "probe", "recall", "loc2vec"]

    def shortDescription(self):  # noqa: N802
        return "Measures a loc2vec model on an area beside no-learning baselines and writes a report."

    def shortHelpString(self):  # noqa: N802
        return (
            "<p>Embeds a seeded sample of cells of the <b>area raster</b> (every <b>stride</b> metres, at most "
            "<b>max cells</b>) with the <b>model</b> (empty = the shipped model) and measures: triplet accuracy by "
            "distance band, re-identification of shifted and turned views (recall@k, MRR), how well the "
            "embeddings keep the map's neighbourhoods, a venue-type probe (the dominant kind of POI near "
            "each cell, read from the <b>OSM source</b>, cross-validated over spatial blocks), similar places "
            "more than 1 km away (venue type and land use, precision@10) and urban-form probes (building size, "
            "street intersections). The same metrics are computed for five baselines (channel fractions, "
            "multi-scale fractions, random convolutions, a randomly initialised network, the coordinates), for "
            "each part of a hybrid model alone, and with each channel group zeroed (ablation).</p>"
            "<p>Writes the <b>report folder</b>: <code>report.md</code> and <code>report.html</code> (every "
            "metric with its spread, verdicts against each baseline, where the model does not win), "
            "<code>metrics.json</code> and <code>plots/</code>. The folder is written whole at the end: Cancel or "
            "an error leave none. An earlier report in that folder is replaced.</p>"
            "<p>Evaluate on an area the model was <i>not</i> trained on for held-out scores; more cells give "
            "tighter spreads but take longer (about 10 s per 500 cells on a CPU).</p>"
            f"<p><b>Attribution</b>: {ATTRIBUTION}</p>"
        )

    def createInstance(self):  # noqa: N802
        return EvaluateAlgorithm()

    def initAlgorithm(self, config=None):  # noqa: N802
        self.addParameter(QgsProcessingParameterFile(
            self.MODEL, "Model (.onnx; empty = the shipped default model)", behavior=QgsProcessingParameterFile.File,
            extension="onnx", optional=True))
        area = QgsProcessingParameterRasterLayer(self.AREA, "Area raster (from Rasterize)")
        self.addParameter(preselect_area(area))  # the dialog opens on the project's area raster
        self.addParameter(QgsProcessingParameterFile(
            self.OSM, "OSM source for venue types (usually the file the area was rasterized from)",
            behavior=QgsProcessingParameterFile.File, fileFilter=OSM_FILTER))
        self.addParameter(QgsProcessingParameterNumber(
            self.STRIDE, "Stride between cells (metres)", type=QgsProcessingParameterNumber.Double, defaultValue=50.0,
            minValue=1.0, maxValue=100000.0))
        advanced = [
            QgsProcessingParameterNumber(self.MAX_CELLS, "At most this many cells (a seeded sample)",
                                         type=QgsProcessingParameterNumber.Integer, defaultValue=600, minValue=50),
            QgsProcessingParameterNumber(self.MAX_QUERIES, "Re-identification queries and triplet anchors",
                                         type=QgsProcessingParameterNumber.Integer, defaultValue=300, minValue=50),
            QgsProcessingParameterNumber(self.SEED, "Random seed", type=QgsProcessingParameterNumber.Integer,
                                         defaultValue=0, minValue=0),
            QgsProcessingParameterEnum(self.DEVICE, "Device", options=DEVICES, defaultValue="auto",
                                       usesStaticStrings=True),
        ]
        add_advanced(self, advanced)
        self.addParameter(QgsProcessingParameterFolderDestination(self.OUTPUT, "Report folder"))
        self.addOutput(QgsProcessingOutputFile("REPORT", "Report (Markdown)"))
        self.addOutput(QgsProcessingOutputFile("REPORT_HTML", "Report (HTML)"))
        self.addOutput(QgsProcessingOutputFile("METRICS", "Metrics (JSON)"))
        self.addOutput(QgsProcessingOutputString("HEADLINE", "Headline"))

    def _area_path(self, parameters, context) -> str:
        layer = self.parameterAsRasterLayer(parameters, self.AREA, context)
        path = layer.source() if layer is not None else ""
        if not path or not Path(path).is_file():
            raise QgsProcessingException(user_message(
                f"the area raster {path or parameters.get(self.AREA)!r} is not a file",
                "give a GeoTIFF made by 'Rasterize OpenStreetMap to an area raster'"))
        return path

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        area = self._area_path(parameters, context)
        out = Path(self.parameterAsFileOutput(parameters, self.OUTPUT, context))
        with engine_errors(self.displayName()):
            from loc2vec_engine.evaluation.evaluate import evaluate_model  # torch, onnxruntime, sklearn: only now

            result = evaluate_model(
                self.parameterAsFile(parameters, self.MODEL, context) or "default", area,
                self.parameterAsFile(parameters, self.OSM, context), out,
                stride_m=self.parameterAsDouble(parameters, self.STRIDE, context),
                seed=self.parameterAsInt(parameters, self.SEED, context),
                max_cells=self.parameterAsInt(parameters, self.MAX_CELLS, context),
                max_queries=self.parameterAsInt(parameters, self.MAX_QUERIES, context),
                device=self.parameterAsEnumString(parameters, self.DEVICE, context) or "auto",
                progress=FeedbackProgress(feedback))
            page = write_html(out / "report.md", out / "report.html")
        feedback.setProgress(100)
        feedback.pushInfo(f"Wrote {out}: report.md, report.html, metrics.json, plots/ "
                          f"({result['cells']['evaluated']} cells, {result['elapsed_s']:.0f} s)")
        feedback.pushInfo(result["headline"])
        for v in result["verdicts"]:
            if v["verdict"] != "beats":
                feedback.pushInfo(f"  {v['text']}")
        feedback.pushInfo(ATTRIBUTION)
        return {self.OUTPUT: str(out), "REPORT": str(out / "report.md"), "REPORT_HTML": str(page),
                "METRICS": str(out / "metrics.json"), "HEADLINE": result["headline"]}


# ---- report.md -> report.html: the few Markdown forms the engine's report uses ----------------------------

def write_html(markdown_path: Path, html_path: Path) -> Path:
    """Write ``html_path`` (a whole page) from the Markdown report; written to a temporary file, then renamed."""
    from loc2vec_engine.atomic import atomic_output

    text = markdown_path.read_text(encoding="utf-8")
    title = text.splitlines()[0].lstrip("# ").strip() if text else "loc2vec evaluation"
    page = (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto;line-height:1.4}"
            "table{border-collapse:collapse}td,th{border:1px solid #bbb;padding:.2em .5em}"
            "img{max-width:100%}</style></head><body>\n" + markdown_to_html(text) + "\n</body></html>\n")
    with atomic_output(html_path) as tmp:
        tmp.write_text(page, encoding="utf-8")
    return html_path


def markdown_to_html(text: str) -> str:
    """Headings, paragraphs, bullet lists, pipe tables, code fences, inline code and images."""
    out, lines, i = [], text.splitlines(), 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("```"):
            end = next((j for j in range(i + 1, len(lines)) if lines[j].startswith("```")), len(lines))
            out.append("<pre><code>" + html.escape("\n".join(lines[i + 1:end])) + "</code></pre>")
            i = end + 1
            continue
        block = _block_of(lines, i, line)
        out.append(_render_block(block))
        i += max(len(block), 1)
    return "\n".join(s for s in out if s)


def _block_of(lines, i, first) -> list[str]:
    """The run of lines from ``i`` that forms one block (a table, a list, a paragraph, a heading)."""
    if not first.strip() or first.startswith("#"):
        return [first]
    kind = _kind(first)
    j = i + 1
    while j < len(lines) and lines[j].strip() and not lines[j].startswith(("#", "```")) and _kind(lines[j]) == kind:
        j += 1
    return lines[i:j]


def _kind(line: str) -> str:
    return "table" if line.startswith("|") else "list" if line.startswith("- ") else "text"


def _render_block(block: list[str]) -> str:
    first = block[0]
    if not first.strip():
        return ""
    if first.startswith("#"):
        level = min(len(first) - len(first.lstrip("#")), 6)
        return f"<h{level}>{_inline(first[level:].strip())}</h{level}>"
    kind = _kind(first)
    if kind == "list":
        return "<ul>\n" + "\n".join(f"<li>{_inline(x[2:])}</li>" for x in block) + "\n</ul>"
    if kind == "table":
        return _table(block)
    return "<p>" + "\n".join(_inline(x) for x in block) + "</p>"


def _table(block: list[str]) -> str:
    rows = [[c.strip() for c in r.strip().strip("|").split("|")] for r in block
            if not re.fullmatch(r"\|?[\s|:-]+\|?", r.strip())]
    head, body = rows[0], rows[1:]
    lines = ["<table>", "<tr>" + "".join(f"<th>{_inline(c)}</th>" for c in head) + "</tr>"]
    lines += ["<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in r) + "</tr>" for r in body]
    return "\n".join(lines + ["</table>"])


def _inline(text: str) -> str:
    """Escape, then `code` and ![alt](src)."""
    parts = re.split(r"(`[^`]*`)", text)
    out = []
    for part in parts:
        if part.startswith("`") and part.endswith("`") and len(part) >= 2:
            out.append(f"<code>{html.escape(part[1:-1])}</code>")
        else:
            esc = html.escape(part)
            out.append(re.sub(r"!\[([^\]]*)\]\(([^)\s]+)\)", r'<img alt="\1" src="\2">', esc))
    return "".join(out)
