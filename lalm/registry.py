"""A name -> class table filled by a decorator, used for encoders and projectors."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps config names to classes. `@REG.register("name")` adds one; `REG.get(name)` finds it.

    An unknown name raises a KeyError that lists every valid name, so a typo in a yaml file
    tells the user what they could have written.
    """

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, type[T]] = {}

    def register(self, name: str) -> Callable[[type[T]], type[T]]:
        def add(cls: type[T]) -> type[T]:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = cls
            return cls

        return add

    def get(self, name: str) -> type[T]:
        if name not in self._entries:
            raise KeyError(f"unknown {self.kind} {name!r}; valid: {', '.join(self.names())}")
        return self._entries[name]

    def option_problems(self, name: str, options: dict, reserved: tuple[str, ...], where: str) -> list[str]:
        """Problems with keyword ``options`` for the class registered as ``name``, read from its
        ``__init__`` signature: unknown names (a typo in a yaml file) and required ones missing.
        ``reserved`` parameters are set by the kit (``in_dim``, or the config's own fields such as
        ``path``) and may not be given as options. Checked at config time, before any weights load."""
        if name not in self._entries:
            return []  # the unknown name itself is reported by the caller
        params = dict(inspect.signature(self._entries[name].__init__).parameters)
        params.pop("self", None)
        if any(p.kind is p.VAR_KEYWORD for p in params.values()):
            return []
        valid = [p for p in params if p not in reserved]
        problems = []
        unknown = sorted(set(options) - set(valid))
        if unknown:
            taken = [u for u in unknown if u in reserved]
            hint = f" ({', '.join(taken)} is set by the config, not as an option)" if taken else ""
            problems.append(
                f"{where}: {self.kind} {name!r} has no option(s) {', '.join(unknown)}{hint}; "
                f"valid options: {', '.join(valid) or 'none'}"
            )
        required = [p for p in valid if params[p].default is inspect.Parameter.empty and p not in options]
        if required:
            problems.append(f"{where}: {self.kind} {name!r} needs option(s) {', '.join(required)}")
        for key, value in options.items():
            # An option declared `X | None` takes None whatever its default (phoneme_ctc's `wordnet`).
            optional = value is None and key in valid and "None" in str(params[key].annotation)
            wrong = key in valid and not optional and _type_problem(params[key].default, value)
            if wrong:
                problems.append(f"{where}.{key}: {self.kind} {name!r} takes {wrong}, got {value!r}")
        return problems

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: str) -> bool:
        return name in self._entries


def _type_problem(default: object, value: object) -> str | None:
    """What an option of this ``default`` takes, when ``value`` is not of that kind (the default's
    type is the option's: ``num_mel_bins=80`` takes a whole number); None when it fits or the
    default tells nothing (None, a list, ...)."""
    if isinstance(default, bool):
        return None if isinstance(value, bool) else "true or false"
    if isinstance(default, int):
        return None if isinstance(value, int) and not isinstance(value, bool) else "a whole number"
    if isinstance(default, float):
        return None if isinstance(value, (int, float)) and not isinstance(value, bool) else "a number"
    if isinstance(default, str):
        return None if isinstance(value, str) else "a string"
    return None
