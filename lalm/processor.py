"""Turning a conversation with audio into token ids, audio slots and labels.

Each audio part of a conversation becomes the prompt layout (e.g. `<audio>{audio}</audio>`), and
each `{branch}` in the layout becomes exactly as many positions as that branch's projector emits
for the clip. Those positions hold the pad token id and a slot number (branch index + 1); the
model overwrites their embeddings with audio features. No token is added to the LLM's vocabulary.

How many positions a clip gets is known before encoding for most projectors (a rule on its
length), but not for content-dependent ones (CTC compression keeps one position per recognised
token): for those the caller projects first and passes the counts.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from lalm.adapters import PROJECTORS
from lalm.config import TRANSCRIPT
from lalm.encoders import ENCODERS
from lalm.llm import load_tokenizer

if TYPE_CHECKING:
    from lalm.config import ModelConfig

AUDIO_SENTINEL = "\ue000"  # private-use characters: never in real text, survive any chat template
TARGET_SENTINEL = "\ue001"
IGNORE = -100

Conversation = list[dict]


@dataclass
class Encoded:
    """One example: ids and slots have equal length; labels are IGNORE outside the target."""

    input_ids: list[int]
    slots: list[int]
    labels: list[int] | None = None


#: A clip as the processor sees it: its length in samples, or its positions per branch after projection.
ClipPositions = int | dict[str, int]


@dataclass(frozen=True)
class BranchLength:
    """Prompt positions of one branch for a clip of n samples: the encoder's length rule, then the
    projector's, both read from the config (`length_rule`), so no model is needed."""

    encoder: Callable[[torch.Tensor], torch.Tensor]
    projector: Callable[[torch.Tensor], torch.Tensor]

    def __call__(self, samples: int) -> int:
        return int(self.projector(self.encoder(torch.tensor([samples])))[0])


class LALMProcessor:
    """Renders conversations with the LLM's own chat template and expands audio placeholders.

    Built from a model config alone (`from_config`), like Hugging Face's audio processors: it holds
    the tokenizer and per-branch length rules, never the model's modules, so it can go to DataLoader
    workers and data tools without the encoders or the LLM.

    Args:
        tokenizer: the frozen LLM's tokenizer (with a chat template).
        layout: text with one `{name}` per branch, e.g. `<audio><meta>{para}</meta><text>{sem}</text></audio>`.
        branch_lengths: per branch with a projector (in slot order), a function from clip samples to
            projector frames.
        system_prompt: a system message added where a conversation has none.
        dynamic: branches whose position counts depend on the audio's content; their clips must be
            given as counts (project first), never as sample lengths.
    """

    def __init__(self, tokenizer, layout: str, branch_lengths: dict[str, Callable[[int], int]],
                 system_prompt: str | None = None, dynamic: frozenset[str] = frozenset()):
        self.tokenizer = tokenizer
        self.branch_lengths = branch_lengths
        self.system_prompt = system_prompt
        self.dynamic = frozenset(dynamic)
        slot_of = {name: i + 1 for i, name in enumerate(branch_lengths)}
        # The layout as pieces: token ids of literal text, a branch's slot number, or TRANSCRIPT (the
        # recognizer's text for the clip, tokenized when the clip's transcript is known).
        self.layout: list[list[int] | int | str] = []
        for piece in re.split(r"(\{\w+\})", layout):
            if piece == "{" + TRANSCRIPT + "}":
                self.layout.append(TRANSCRIPT)
            elif re.fullmatch(r"\{\w+\}", piece):
                self.layout.append(slot_of[piece[1:-1]])
            elif piece:
                self.layout.append(self._ids(piece))
        self.needs_transcripts = TRANSCRIPT in self.layout
        self.filler_id = tokenizer.pad_token_id

    @classmethod
    def from_config(cls, config: ModelConfig, tokenizer=None) -> LALMProcessor:
        """The processor of the model `config` describes; `tokenizer` defaults to the LLM's own
        (loaded without the LLM's weights)."""
        lengths, dynamic = {}, set()
        for b in config.branches:
            if b.projector is None:  # read by the recognizer only: no positions in the prompt
                continue
            encoder = ENCODERS.get(b.encoder.name).length_rule(b.encoder.path, b.encoder.random_config)
            projector = PROJECTORS.get(b.projector.name)
            lengths[b.name] = BranchLength(encoder, projector.length_rule(b.projector.options))
            if projector.content_dependent(b.projector.options):
                dynamic.add(b.name)
        return cls(tokenizer if tokenizer is not None else load_tokenizer(config.llm), config.prompt.layout,
                   lengths, config.prompt.system_prompt, dynamic=frozenset(dynamic))

    def encode(self, conversation: Conversation, audio_samples: list[ClipPositions], target: str | None = None,
               supervise_end: bool = True, transcripts: list[str] | None = None) -> Encoded:
        """Token ids and slots for `conversation`, whose audio parts are the clips of `audio_samples`.

        A clip is its length in samples (positions follow the projectors' length rules) or a dict of
        positions per branch (after projection; required where a branch is content-dependent).
        With `target`, it is appended as the assistant's answer and labelled; `supervise_end=False`
        leaves the end-of-turn tokens unlabelled (for answers cut off at a token limit).
        `transcripts`, one per clip, fill the layout's `{transcript}` (models with a recognizer).
        """
        messages = self._render_messages(conversation)
        n_audio = sum(m["content"].count(AUDIO_SENTINEL) for m in messages)
        if n_audio != len(audio_samples):
            raise ValueError(f"the conversation has {n_audio} audio parts but {len(audio_samples)} clips were given")
        if self.needs_transcripts and (transcripts is None or len(transcripts) != n_audio):
            raise ValueError(f"the layout has {{{TRANSCRIPT}}}: give one transcript per clip ({n_audio}), "
                             f"got {'none' if transcripts is None else len(transcripts)}")
        prompt = self._template(messages, add_generation_prompt=True)
        ids, slots = self._expand(prompt, audio_samples, transcripts)
        if target is None:
            return Encoded(ids, slots)
        full = self._template(messages + [{"role": "assistant", "content": TARGET_SENTINEL}])
        if not full.startswith(prompt) or full.count(TARGET_SENTINEL) != 1:
            raise ValueError("the chat template does not render the assistant turn after the generation prompt; "
                             "use a standard chat template")
        before, after = full[len(prompt):].split(TARGET_SENTINEL)
        lead = self._ids(before) if before else []
        answer = self._ids(target)
        end = self._ids(after.rstrip("\n")) if supervise_end else []
        labels = [IGNORE] * (len(ids) + len(lead)) + answer + end
        return Encoded(ids + lead + answer + end, slots + [0] * (len(lead) + len(answer) + len(end)), labels)

    def audio_positions(self, samples: ClipPositions) -> dict[str, int]:
        """How many prompt positions each branch gets for a clip (samples, or counts after projection)."""
        if isinstance(samples, dict):
            if set(samples) != set(self.branch_lengths):
                raise ValueError(f"positions are given for branches {sorted(samples)}, "
                                 f"but the model has {sorted(self.branch_lengths)}")
            return {name: int(samples[name]) for name in self.branch_lengths}
        if self.dynamic:
            raise ValueError(f"branch(es) {', '.join(sorted(self.dynamic))} emit a content-dependent number of "
                             "positions: project the audio first and pass the counts, not the sample length")
        return {name: int(fn(samples)) for name, fn in self.branch_lengths.items()}

    def _render_messages(self, conversation: Conversation) -> list[dict]:
        messages = []
        for i, message in enumerate(conversation):
            if "role" not in message or "content" not in message:
                raise ValueError(f"message {i} needs 'role' and 'content', got keys {sorted(message)}")
            content = message["content"]
            if isinstance(content, list):
                content = "".join(_render_part(part, i) for part in content)
            messages.append({"role": message["role"], "content": content})
        if self.system_prompt and not (messages and messages[0]["role"] == "system"):
            messages.insert(0, {"role": "system", "content": self.system_prompt})
        return messages

    def _template(self, messages: list[dict], add_generation_prompt: bool = False) -> str:
        return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt)

    def _expand(self, text: str, audio_samples: list[ClipPositions],
                transcripts: list[str] | None = None) -> tuple[list[int], list[int]]:
        ids: list[int] = []
        slots: list[int] = []
        chunks = text.split(AUDIO_SENTINEL)
        for k, chunk in enumerate(chunks):
            if chunk:
                piece = self._ids(chunk)
                ids += piece
                slots += [0] * len(piece)
            if k == len(chunks) - 1:
                break
            counts = list(self.audio_positions(audio_samples[k]).values())
            for piece in self.layout:
                if piece == TRANSCRIPT:
                    piece = self._ids(transcripts[k]) if transcripts[k] else []
                if isinstance(piece, int):
                    ids += [self.filler_id] * counts[piece - 1]
                    slots += [piece] * counts[piece - 1]
                else:
                    ids += piece
                    slots += [0] * len(piece)
        return ids, slots

    def _ids(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]


def _render_part(part: dict, message_index: int) -> str:
    kind = part.get("type")
    if kind == "text":
        return part["text"]
    if kind in ("audio", "input_audio"):
        return AUDIO_SENTINEL
    raise ValueError(f"message {message_index}: content part type {kind!r} is not 'text' or 'audio'")


def collate(examples: list[Encoded], pad_id: int, left_pad: bool = False) -> dict[str, torch.Tensor]:
    """Pad examples into a batch: right padding for training, left padding for generation."""
    width = max(len(e.input_ids) for e in examples)
    batch = {"input_ids": [], "attention_mask": [], "slots": [], "labels": []}

    def place(seq: list[int], fill: int) -> list[int]:
        pad = [fill] * (width - len(seq))
        return pad + seq if left_pad else seq + pad

    for e in examples:
        batch["input_ids"].append(place(e.input_ids, pad_id))
        batch["attention_mask"].append(place([1] * len(e.input_ids), 0))
        batch["slots"].append(place(e.slots, 0))
        batch["labels"].append(place(e.labels if e.labels is not None else [IGNORE] * len(e.input_ids), IGNORE))
    out = {k: torch.tensor(v) for k, v in batch.items()}
    if all(e.labels is None for e in examples):
        del out["labels"]
    return out
