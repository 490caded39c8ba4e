"""Audio encoders, looked up by name from the config (`encoder.name`)."""

from lalm.encoders.base import SAMPLE_RATE, AudioEncoder
from lalm.registry import Registry

ENCODERS: Registry[AudioEncoder] = Registry("encoder")

# Importing the modules fills the registry.
from lalm.encoders import fbank_encoder, whisper, zipformer  # noqa: F401

__all__ = ["ENCODERS", "SAMPLE_RATE", "AudioEncoder"]
