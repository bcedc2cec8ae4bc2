"""Processing algorithm ``loc2vec:train``: area rasters -> a trained encoder (run folder + ONNX model).

Processing runs it in a background task, so QGIS stays usable; Cancel stops after the current step,
writes a checkpoint (``last.pt``) and returns it, so the run can be resumed or exported.
"""

from __future__ import annotations

from pathlib import Path

from qgis.core import (
    QgsProcessing,
    QgsProcessingAlgorithm,
    QgsProcessingException,
    QgsProcessingOutputFile,
    QgsProcessingOutputNumber,
    QgsProcessingOutputString,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFile,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterMultipleLayers,
    QgsProcessingParameterNumber,
)

from loc2vec_engine import ATTRIBUTION

from loc2vec_engine.training.recipes import DEFAULT_EXPORT, DEFAULT_RECIPE, RECIPES

from .engine import DEVICES, FeedbackProgress, add_advanced, engine_errors, user_message

# The report's encoders, tested first-class (any timm name works from the command line).
ENCODERS = ["loc2vec", "resnet18", "resnet34", "efficientnet_b0", "mobilenetv3_small_100"]

# Called with the run folder when a training starts (from the Processing worker thread): the
# training dock listens here to plot metrics.csv live. Plain Python, so headless runs need no Qt.
RUN_STARTED_LISTENERS: list = []


class TrainAlgorithm(QgsProcessingAlgorithm):
    """Train an encoder by a named recipe (``training.recipes``) and export it, by default as the hybrid."""

    AREAS = "AREAS"
    ENCODER = "ENCODER"
    RECIPE = "RECIPE"
    HYBRID = "HYBRID_SHARE"
    MINUTES = "MINUTES"
    STEPS = "STEPS"
    TILE_SIZE = "TILE_SIZE"
    BATCH = "BATCH_SIZE"
    EMBEDDING = "EMBEDDING_SIZE"
    PRETRAINED = "PRETRAINED"
    VAL_EVERY = "VAL_EVERY"
    NEG_MIN = "NEGATIVE_MIN_M"
    DEVICE = "DEVICE"
    SEED = "SEED"
    RUN = "RUN_DIR"
    MODEL = "MODEL"

    def name(self):
        return "train"

    def displayName(self):  # noqa: N802
        return "Train encoder"

    def group(self):
        return "Embeddings"

    def groupId(self):  # noqa: N802
        return "embeddings"

    def tags(self):
        return ["train", "triplet", "contrastive", "infonce", "hybrid", "cnn", "encoder", "timm", "torch", "onnx", "loc2vec"]

    def shortDescription(self):  # noqa: N802
        return "Trains a tile encoder on area rasters (contrastive or triplet) and exports it to ONNX."

    def shortHelpString(self):  # noqa: N802
        return (
            "<p>Learns an <b>encoder</b> that maps a map tile to a vector so that nearby places sit closer than "
            "distant ones (≥ the negative distance). <b>Recipe</b> <i>contrastive</i> (the shipped model's: "
            "InfoNCE over two views ≤ 100 m apart, plus a composition head) or <i>triplet</i> (the report's: "
            "positives 100–200 m away). The exported model joins the learned vector with the tile's multi-scale "
            "composition (<b>composition share</b>, 0.5 as shipped; 0 exports the learned vector alone). "
            "Training runs for at most the <b>time budget</b> "
            "(or the number of steps), validating on spatially held-out blocks; the best model is exported as the "
            "<b>model</b> (.onnx), ready for <i>Embed area</i>. Open <i>loc2vec: training</i> (Plugins menu) to "
            "watch loss and validation accuracy live.</p>"
            "<p><b>Cancel</b> stops after the current step, saves <code>last.pt</code> in the run folder and "
            "returns it; resume from the command line with <code>loc2vec train … --resume</code>.</p>"
            "<p>Needs torch (and timm for the timm encoders). Small areas (under about 3 km) cannot hold out "
            "validation blocks: train with a larger area next to them.</p>"
            f"<p><b>Attribution</b>: {ATTRIBUTION}</p>"
        )

    def createInstance(self):  # noqa: N802
        return TrainAlgorithm()

    def initAlgorithm(self, config=None):  # noqa: N802
        self.addParameter(QgsProcessingParameterMultipleLayers(
            self.AREAS, "Area rasters (from Rasterize)", layerType=QgsProcessing.TypeRaster))
        self.addParameter(QgsProcessingParameterEnum(self.ENCODER, "Encoder", options=ENCODERS,
                                                     defaultValue="loc2vec", usesStaticStrings=True))
        self.addParameter(QgsProcessingParameterEnum(self.RECIPE, "Recipe", options=list(RECIPES),
                                                     defaultValue=DEFAULT_RECIPE, usesStaticStrings=True))
        self.addParameter(QgsProcessingParameterNumber(
            self.MINUTES, "Time budget (minutes)", type=QgsProcessingParameterNumber.Double, defaultValue=10.0,
            minValue=0.01))
        advanced = [
            QgsProcessingParameterNumber(self.STEPS, "Maximum steps", type=QgsProcessingParameterNumber.Integer,
                                         defaultValue=100000, minValue=1),
            QgsProcessingParameterNumber(self.TILE_SIZE, "Tile size (pixels)", type=QgsProcessingParameterNumber.Integer,
                                         defaultValue=64, minValue=32, maxValue=512),
            QgsProcessingParameterNumber(self.BATCH, "Triplets per batch", type=QgsProcessingParameterNumber.Integer,
                                         defaultValue=32, minValue=2, maxValue=4096),
            QgsProcessingParameterNumber(self.EMBEDDING, "Embedding size", type=QgsProcessingParameterNumber.Integer,
                                         defaultValue=128, minValue=16, maxValue=512),
            QgsProcessingParameterFile(self.PRETRAINED, "Start from (a loc2vec checkpoint .pt; empty = random)",
                                       behavior=QgsProcessingParameterFile.File, extension="pt", optional=True),
            QgsProcessingParameterNumber(self.VAL_EVERY, "Validate every N steps",
                                         type=QgsProcessingParameterNumber.Integer, defaultValue=100, minValue=1),
            QgsProcessingParameterNumber(self.NEG_MIN, "Negatives at least this far (metres)",
                                         type=QgsProcessingParameterNumber.Double, defaultValue=2000.0, minValue=100.0),
            QgsProcessingParameterNumber(self.HYBRID, "Composition share of the exported model (0 = learned vector "
                                         "alone)", type=QgsProcessingParameterNumber.Double,
                                         defaultValue=DEFAULT_EXPORT["hybrid_share"], minValue=0.0, maxValue=0.95),
            QgsProcessingParameterEnum(self.DEVICE, "Device", options=DEVICES, defaultValue="auto",
                                       usesStaticStrings=True),
            QgsProcessingParameterNumber(self.SEED, "Random seed", type=QgsProcessingParameterNumber.Integer,
                                         defaultValue=0, minValue=0),
        ]
        add_advanced(self, advanced)
        self.addParameter(QgsProcessingParameterFolderDestination(self.RUN, "Run folder"))
        self.addParameter(QgsProcessingParameterFileDestination(self.MODEL, "Model (ONNX)", "ONNX model (*.onnx)"))
        self.addOutput(QgsProcessingOutputFile("CHECKPOINT", "Checkpoint (best.pt, or last.pt when cancelled)"))
        self.addOutput(QgsProcessingOutputNumber("STEPS_DONE", "Steps trained"))
        self.addOutput(QgsProcessingOutputNumber("BEST_VAL_ACC", "Best validation triplet accuracy"))
        self.addOutput(QgsProcessingOutputNumber("BASELINE_VAL_ACC", "Channel-fractions baseline, same triplets"))
        self.addOutput(QgsProcessingOutputString("STOPPED", "Why training stopped"))

    def _areas(self, parameters, context) -> list[str]:
        layers = self.parameterAsLayerList(parameters, self.AREAS, context)
        paths = [lyr.source() for lyr in layers]
        bad = [p for p in paths if not Path(p).is_file()]
        if not paths or bad:
            raise QgsProcessingException(user_message(
                f"area rasters must be files: {', '.join(bad) or '(none given)'}",
                "give GeoTIFFs made by 'Rasterize OpenStreetMap to an area raster'"))
        return paths

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        areas = self._areas(parameters, context)
        run = Path(self.parameterAsString(parameters, self.RUN, context))
        model_out = self.parameterAsFileOutput(parameters, self.MODEL, context)
        with engine_errors(self.displayName()):
            from loc2vec_engine.training.config import TrainConfig
            from loc2vec_engine.training.export import export_run
            from loc2vec_engine.training.loop import train  # torch: only now
            from loc2vec_engine.training.recipes import recipe

            settings = recipe(self.parameterAsEnumString(parameters, self.RECIPE, context) or DEFAULT_RECIPE)
            settings["neg_min_m"] = self.parameterAsDouble(parameters, self.NEG_MIN, context)
            cfg = TrainConfig(
                **settings, areas=areas, out=str(run), encoder=self.parameterAsEnumString(parameters, self.ENCODER, context),
                max_minutes=self.parameterAsDouble(parameters, self.MINUTES, context),
                steps=self.parameterAsInt(parameters, self.STEPS, context),
                tile_size_px=self.parameterAsInt(parameters, self.TILE_SIZE, context),
                batch_size=self.parameterAsInt(parameters, self.BATCH, context),
                embedding_dim=self.parameterAsInt(parameters, self.EMBEDDING, context),
                pretrained=self.parameterAsFile(parameters, self.PRETRAINED, context) or None,
                val_every=self.parameterAsInt(parameters, self.VAL_EVERY, context),
                device=self.parameterAsEnumString(parameters, self.DEVICE, context) or "auto",
                seed=self.parameterAsInt(parameters, self.SEED, context))
            for listener in list(RUN_STARTED_LISTENERS):
                listener(str(run))
            result = train(cfg, progress=FeedbackProgress(feedback))
            checkpoint = run / ("last.pt" if result.stopped == "cancelled" or not (run / "best.pt").is_file()
                                else "best.pt")
            if checkpoint.is_file() and result.step > 0:
                share = self.parameterAsDouble(parameters, self.HYBRID, context)
                export_run(run, model_out, which=checkpoint.stem, hybrid_share=share,
                           composition_transform=DEFAULT_EXPORT["composition_transform"] if share else None)
        feedback.pushInfo(f"{result.stopped}: step {result.step}, best validation triplet accuracy "
                          f"{result.best_val_acc:.4f} (channel-fractions baseline on the same triplets: "
                          f"{result.baseline_val_acc:.4f})")
        if result.best_val_acc <= result.baseline_val_acc:
            feedback.pushWarning("The model does not beat the no-learning channel-fractions baseline yet: "
                                 "train longer, on more area, or with larger tiles.")
        return {self.RUN: str(run), self.MODEL: model_out if Path(model_out).is_file() else None,
                "CHECKPOINT": str(checkpoint) if checkpoint.is_file() else None, "STEPS_DONE": result.step,
                "BEST_VAL_ACC": result.best_val_acc, "BASELINE_VAL_ACC": result.baseline_val_acc,
                "STOPPED": result.stopped}
