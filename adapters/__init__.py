"""Projectors, looked up by name from the config (`projector.name`), built by `build_projector`."""

from __future__ import annotations

from lalm.adapters.base import Projector
from lalm.config import PROJECTOR_RESERVED
from lalm.registry import Registry

PROJECTORS: Registry[Projector] = Registry("projector")

# Importing the modules fills the registry.
from lalm.adapters import conv, ctc, pool, qformer, stack_mlp, ultravox  # noqa: F401


def build_projector(name: str, in_dim: int, out_dim: int, **options: object) -> Projector:
    """Build a registered projector from config options.

    Options are checked against the class signature up front so a typo in a yaml file fails with
    the projector's name and its valid options, not with a bare TypeError from deep inside.
    """
    cls = PROJECTORS.get(name)
    problems = PROJECTORS.option_problems(name, options, PROJECTOR_RESERVED, "options")
    if problems:
        raise ValueError("; ".join(problems))
    try:
        return cls(in_dim, out_dim, **options)
    except ValueError as error:
        raise ValueError(f"projector {name!r}: {error}") from error


__all__ = ["PROJECTORS", "Projector", "build_projector"]
