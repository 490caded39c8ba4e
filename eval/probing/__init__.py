"""Encoder validation by probing: frozen features of any registered encoder, pooled per clip, then a
linear probe, a shallow MLP probe and kNN per task (see docs/encoders.md)."""
