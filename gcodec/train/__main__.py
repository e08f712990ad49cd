"""``torchrun --nproc-per-node N -m gcodec.train ...``: data-parallel ``gcz train`` (same options)."""
from .cli import main

main()
