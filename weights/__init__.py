"""gcz's shipped weights and their manifest, installed with the wheel as package data (see gcodec.zoo)."""
