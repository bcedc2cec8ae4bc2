"""Small pieces of QGIS project XML shared by the project's layer builders (``qgz``, ``rasters``)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from .. import ATTRIBUTION


def text(parent: ET.Element, tag: str, value: str) -> ET.Element:
    """``<tag>value</tag>`` appended to ``parent``."""
    el = ET.SubElement(parent, tag)
    el.text = value
    return el


def copy(el: ET.Element) -> ET.Element:
    return ET.fromstring(ET.tostring(el))


def num(value) -> str:
    """A number as QGIS writes it: 1 rather than 1.0."""
    return repr(float(value)).removesuffix(".0")


def maplayer(kind: str, layer_id: str, source: str, name: str, srs, provider: str, **attrs) -> ET.Element:
    """The head of a ``<maplayer>``: id, data source, name, CRS, the attribution and the provider."""
    ml = ET.Element("maplayer", type=kind, hasScaleBasedVisibilityFlag="0", minScale="100000000", maxScale="0",
                    styleCategories="AllStyleCategories", **attrs)
    text(ml, "id", layer_id)
    text(ml, "datasource", source)
    text(ml, "layername", name)
    ET.SubElement(ml, "srs").append(copy(srs))
    md = ET.SubElement(ml, "resourceMetadata")  # shown in the layer's properties, kept with exported styles
    text(md, "rights", ATTRIBUTION)
    text(ml, "provider", provider)
    return ml
