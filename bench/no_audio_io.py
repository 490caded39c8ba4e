"""Import this before the kit where soundfile or soxr may be missing (a bare GPU machine).

`lalm.audio` (imported by `lalm.model`) and `bench.common` read and write files with soundfile and
resample with soxr. The benchmarks that import this module make their audio in memory and never touch
a file, so where either package is absent those two modules are imported with a stand-in in its place,
which fails, naming the package, only if used. The stand-ins are removed again at once, so everything
else (transformers' checks of what is installed included) still sees the package as missing.
"""

from __future__ import annotations

import importlib
import sys
import types

import transformers  # noqa: F401  (its checks of installed packages run now, before any stand-in exists)


class _Missing(types.ModuleType):
    def __getattr__(self, attr: str):
        if attr.startswith("__"):  # introspection (inspect, hasattr) must see a plain module
            raise AttributeError(attr)
        raise ImportError(f"{self.__name__} is not installed ({self.__name__}.{attr} was used); "
                          f"the in-memory benchmarks never read audio files")


def _missing(name: str) -> bool:
    try:
        importlib.import_module(name)
    except (ImportError, OSError):  # soundfile raises OSError when its libsndfile is missing
        return True
    return False


_stand_ins = [name for name in ("soundfile", "soxr") if _missing(name)]
sys.modules.update({name: _Missing(name) for name in _stand_ins})
try:
    importlib.import_module("lalm.audio")
    importlib.import_module("lalm.bench.common")
finally:
    for _name in _stand_ins:
        del sys.modules[_name]
