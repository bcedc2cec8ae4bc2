"""Processing algorithms, one module each; each imports the engine's heavy parts only when it runs."""
