"""Evaluation against engineered codecs (``gcz eval``) and benchmarks (``gcz bench``).

Modules, one concern each:

* :mod:`.metrics` -- PSNR, MS-SSIM, SSIMULACRA2, patch features and KID/FID;
* :mod:`.peers` -- peer codec wrappers and the per-image search for a byte target;
* :mod:`.runner` -- the evaluation pipeline writing resumable JSON lines;
* :mod:`.report` -- summary JSON (CompressAI shape), plots, crops grid, index.html, README section;
* :mod:`.bench` -- speed / memory / entropy-coding benchmarks;
* :mod:`.cli` -- the thin click commands.
"""
