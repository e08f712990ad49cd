"""Network architectures of gcz (inference side; the discriminator is training-only)."""
from .config import CONFIGS, DOWNSAMPLING, ArchConfig, named_config
from .gc import GCModel, count_parameters

__all__ = ["ArchConfig", "CONFIGS", "DOWNSAMPLING", "GCModel", "count_parameters", "named_config"]
