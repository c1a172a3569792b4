"""gptoss-doctor: can this machine run gpt-oss, on which engine, with what settings, how fast.

The import package gathers the repository's layers as subpackages:
``probe`` (facts) -> ``install`` (decisions, downloads) -> ``bench`` (measurements) ->
``reports`` (presentation: terminal, HTML, CLI). A lower layer never imports a higher one.
"""

from __future__ import annotations

__version__ = "0.1.0"
