"""Coordinate reference systems and areas of interest (bbox, clip polygon, presets)."""
