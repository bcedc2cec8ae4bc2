"""The plugin's desktop parts: message bar for missing packages, map tool, docks."""
