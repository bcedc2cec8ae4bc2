"""Area rasters: OSM features burned once into an N-band GeoTIFF that tiles are cut from."""
