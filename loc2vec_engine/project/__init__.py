"""QGIS projects for loc2vec outputs, written as XML without QGIS or Qt (see ``qgz.write_qgz``)."""

from .qgz import (ClusterPointsLayer, LabelPointsLayer, LayerSpec, RasterLayer, RgbRasterLayer, ScorePointsLayer,
                  write_qgz)

__all__ = ["ClusterPointsLayer", "LabelPointsLayer", "LayerSpec", "RasterLayer", "RgbRasterLayer", "ScorePointsLayer",
           "write_qgz"]
