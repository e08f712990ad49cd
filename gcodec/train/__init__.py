"""Training of gcz models (never imported by compress/decompress)."""
