"""Audio encoders, looked up by name from the config (`encoder.name`)."""

from lalm.encoders.base import SAMPLE_RATE, AudioEncoder
from lalm.registry import Registry

ENCODERS: Registry[AudioEncoder] = Registry("encoder")

# Importing the modules fills the registry.
from lalm.encoders import fbank_encoder, hf_encoder, prosody, whisper, zipformer  # noqa: F401


def weightless() -> list[str]:
    """Names of the registered encoders with nothing to load: a config sets neither `path` nor
    `random_config` for them."""
    return [name for name in ENCODERS.names() if not ENCODERS.get(name).has_weights]


__all__ = ["ENCODERS", "SAMPLE_RATE", "AudioEncoder", "weightless"]
