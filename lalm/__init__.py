"""The LALM assembly kit: frozen audio encoders -> trainable projectors -> a frozen chat LLM.

Names are imported on first use, so that `lalm.registry` or `lalm.config` can be imported (by the
projector registry, say) without building the whole model module first.
"""

from __future__ import annotations

import importlib

_WHERE = {"LALM": "lalm.model", "Config": "lalm.config", "ConfigError": "lalm.config",
          "ModelConfig": "lalm.config", "load_config": "lalm.config"}
__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'lalm' has no attribute {name!r}")
