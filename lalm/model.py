"""The LALM: frozen audio encoders -> trainable projectors -> a frozen chat LLM.

The LLM is wrapped, never edited: its vocabulary is not resized, and audio reaches it as input
embeddings spliced into placeholder positions with one masked_scatter per branch. A recognizer
(optional) writes each clip's transcript, which the prompt holds as text at the layout's `{transcript}`.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from lalm.adapters import build_projector
from lalm.checkpoint import load_trained, read_config, resolve_checkpoint, save_checkpoint
from lalm.clips import AudioInput, EncodedClip, as_waveform, batch_clips, encode_clips, pad_waveforms  # noqa: F401 (public: lalm.model is where users look)
from lalm.config import ModelConfig
from lalm.encoders import ENCODERS, AudioEncoder
from lalm.llm import load_llm
from lalm.processor import IGNORE, Conversation, Encoded, LALMProcessor, collate
from lalm.recognizers import FrozenLM, build_recognizer


class Branch(nn.Module):
    """A frozen encoder and its projector (None: the encoder only feeds the trained recognizer)."""

    def __init__(self, encoder: AudioEncoder, projector: nn.Module | None):
        super().__init__()
        self.encoder = encoder
        self.projector = projector



class LALM(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.llm, self.tokenizer = load_llm(config.llm)
        width = self.llm.get_input_embeddings().embedding_dim
        self.branches = nn.ModuleDict()
        for b in config.branches:
            enc_cfg = b.encoder
            encoder = ENCODERS.get(enc_cfg.name)(
                path=enc_cfg.path, random_config=enc_cfg.random_config, seed=enc_cfg.seed, **enc_cfg.options
            )
            encoder.eval().requires_grad_(False)
            projector = None
            if b.projector is not None:
                projector = build_projector(b.projector.name, encoder.dim, width, **b.projector.options)
                if hasattr(projector, "bind_llm"):  # the `ctc` projector scores against the LLM's own embeddings
                    projector.bind_llm(self.llm.get_input_embeddings(), self.tokenizer.all_special_ids)
                    projector.bind_language_model(self.llm, self.tokenizer)
                projector.requires_grad_(b.trainable)
            self.branches[b.name] = Branch(encoder, projector)
        # A frozen recognizer moves with the model but is no trained weight (trained_state_dict skips it);
        # a trained one reads its branch's encoder frames and decodes with the model's frozen LLM.
        self.recognizer = None
        if (r := config.recognizer) is not None:
            self.recognizer = build_recognizer(r.name, r.path, r.options, head=r.head,
                                               in_dim=self.branches[r.branch].encoder.dim if r.branch else None,
                                               lm=FrozenLM(self.llm, self.tokenizer))
        if config.llm.lora.enabled:
            add_lora(self.llm, config.llm.lora)
        self.processor = LALMProcessor.from_config(config, self.tokenizer)

    # ----------------------------------------------------------------------------- modes and weights

    def train(self, mode: bool = True):
        """Only projectors, a trained recognizer (and LoRA) switch to train mode; frozen parts always run
        in eval mode."""
        super().train(False)
        for branch in self.branches.values():
            if branch.projector is not None:
                branch.projector.train(mode)
        if self.recognizer is not None and self.recognizer.trainable:
            self.recognizer.train(mode)
        if self.config.llm.lora.enabled:
            for name, module in self.llm.named_modules():
                if "lora_" in name:
                    module.train(mode)
        return self

    def trained_state_dict(self) -> dict[str, torch.Tensor]:
        """Everything that is not a frozen base weight: all projectors (frozen or not, with their
        persistent buffers, e.g. running statistics), a trained recognizer's head, and LoRA. A frozen
        recognizer's weights come from its path, never from here."""
        trained_recognizer = self.recognizer is not None and self.recognizer.trainable
        return {
            name: p.detach() for name, p in self.state_dict(keep_vars=True).items()
            if ".projector." in name or "lora_" in name or (trained_recognizer and name.startswith("recognizer."))
        }

    def parameter_report(self) -> str:
        trainable = sum(p.numel() for p in self.parameters() if p.requires_grad)
        total = sum(p.numel() for p in self.parameters())
        return f"parameters: {trainable:,} trainable, {total - trainable:,} frozen ({100 * trainable / total:.3f}% trainable)"

    @property
    def device(self) -> torch.device:
        return self.llm.get_input_embeddings().weight.device

    # ----------------------------------------------------------------------------- audio

    def encode_audio(self, waveforms: torch.Tensor, lengths: torch.Tensor) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """Frozen encoder outputs per branch: {name: (features [N, T, D], lengths [N])}."""
        with torch.no_grad():
            return {name: branch.encoder(waveforms, lengths) for name, branch in self.branches.items()}

    def audio_features(self, waveforms: torch.Tensor | None = None, wave_lengths: torch.Tensor | None = None,
                       encoder_features: dict | None = None) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """A training batch's encoder outputs: the cached ones it carries, else its waveforms encoded now."""
        return encoder_features if encoder_features is not None else self.encode_audio(waveforms, wave_lengths)

    @property
    def projected(self) -> list[str]:
        """The branches with a projector, in slot order: the ones with positions in the prompt."""
        return [name for name, branch in self.branches.items() if branch.projector is not None]

    def project(self, encoded: dict[str, tuple[torch.Tensor, torch.Tensor]]) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """Projector outputs per branch with a projector: {name: (features [N, T', H], lengths [N])}."""
        return {name: self.branches[name].projector(*encoded[name]) for name in self.projected}

    def embed(self, input_ids: torch.Tensor, slots: torch.Tensor,
              audio: dict[str, tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
        """Text embeddings from the LLM's own table, with audio features scattered into their slots."""
        embeds = self.llm.get_input_embeddings()(input_ids)
        for index, name in enumerate(self.projected, start=1):
            mask = slots == index
            if name not in audio:  # a text-only batch
                valid = embeds.new_zeros(0, embeds.shape[-1])
            else:
                feats, lengths = audio[name]
                valid = feats[torch.arange(feats.shape[1], device=feats.device)[None, :] < lengths[:, None]]
            n_slots, n_frames = int(mask.sum()), valid.shape[0]
            if n_slots != n_frames:
                raise ValueError(
                    f"branch {name!r}: the prompt has {n_slots} audio positions but the projector produced "
                    f"{n_frames} frames; build prompts with this model's processor"
                )
            embeds = embeds.masked_scatter(mask[..., None], valid.to(embeds.dtype))
        return embeds

    @property
    def hears_words(self) -> bool:
        """Whether the model has a transcript of its own (a recognizer, or a `ctc` projector): `transcribe` works."""
        return self.recognizer is not None or any(hasattr(b.projector, "heard_ids") for b in self.branches.values())

    def recognize(self, waveforms: torch.Tensor, lengths: torch.Tensor,
                  encoded: dict[str, tuple[torch.Tensor, torch.Tensor]]) -> list[str]:
        """The recognizer's transcripts of a batch: a frozen one reads the waveforms, a trained one the
        frozen encoder frames of its branch (already in `encoded`: nothing is encoded twice)."""
        if self.recognizer.trainable:
            return self.recognizer.transcribe(*encoded[self.config.recognizer.branch])
        return self.recognizer.transcribe(waveforms, lengths)

    def transcribe_features(self, encoder_features: dict[str, tuple[torch.Tensor, torch.Tensor]],
                            fused: bool = True) -> list[str]:
        """Transcripts per clip from encoder outputs: the trained recognizer's, else the first `ctc`
        projector's. `fused=False` leaves the frozen LLM out of decoding (what a ctc stage measures)."""
        if self.recognizer is not None and self.recognizer.trainable:
            return self.recognizer.transcribe(*encoder_features[self.config.recognizer.branch], fused=fused)
        for name, branch in self.branches.items():
            if hasattr(branch.projector, "heard_ids"):
                projector = branch.projector
                ids = (projector.heard_ids if fused else projector.greedy_ids)(*encoder_features[name])
                return [self.tokenizer.decode(i).strip() for i in ids]
        raise ValueError("this model has no trained recognizer or ctc projector, so encoder outputs alone give "
                         "it no transcripts")

    @torch.no_grad()
    def transcribe(self, audio: list[AudioInput]) -> list[str]:
        """What the model heard in each clip, as text: its recognizer's transcript, or its CTC projector's."""
        clips = self.encode_clips(audio)
        if self.recognizer is not None:
            return [c.transcript or "" for c in clips]
        return self.transcribe_features(self.batch_clips(clips))

    def encode_clips(self, audio: list[AudioInput], transcribe: bool = True) -> list[EncodedClip]:
        """The one encode path (`lalm.clips.encode_clips`): the clips not encoded yet go through the
        frozen encoders (and the recognizer, unless `transcribe` is False) as one padded batch; chat,
        server, eval, training and the feature cache use it."""
        recognize = self.recognize if self.recognizer is not None and transcribe else None
        return encode_clips(self.encode_audio, audio, self.device, recognize)

    @property
    def reads_content(self) -> bool:
        """Whether a prompt depends on what its clips say (a transcript in the layout, or a projector whose
        length depends on content): such clips are encoded before the prompt can be measured."""
        return self.processor.needs_transcripts or bool(self.processor.dynamic)

    def encode_prompt(self, conversation: Conversation, audio: list[AudioInput]) -> tuple[Encoded, list[AudioInput]]:
        """The prompt's ids and slots, and the clips, encoded where the prompt needed it (pass them on
        to `generate_batch` so nothing is encoded twice). The exact length the LLM will see: the
        server's and the chat's context checks use it."""
        if self.reads_content:
            audio = self.encode_clips(audio)
        clips = [a for a in audio if isinstance(a, EncodedClip)]
        if self.processor.dynamic:
            positions = self.clip_counts(self.project(self.batch_clips(clips)), len(clips)) if clips else []
        else:
            positions = [a.samples if isinstance(a, EncodedClip) else as_waveform(a).numel() for a in audio]
        return self.processor.encode(conversation, positions, transcripts=self.transcripts_for(clips)), audio

    def transcripts_for(self, clips: list[EncodedClip]) -> list[str] | None:
        """What the layout's `{transcript}` gets for each clip; None when the layout has no transcript."""
        return [c.transcript or "" for c in clips] if self.processor.needs_transcripts else None

    def encode_clip(self, audio: AudioInput) -> EncodedClip:
        """One clip through the frozen encoders; pass the result to `generate` in later turns."""
        return self.encode_clips([audio])[0]

    def batch_clips(self, clips: list[EncodedClip]) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """Encoded clips padded into one batch per branch, on the model's device (`lalm.clips.batch_clips`)."""
        return batch_clips(clips, list(self.branches), self.device)

    # ----------------------------------------------------------------------------- training

    def forward(self, input_ids=None, attention_mask=None, slots=None, labels=None, waveforms=None,
                wave_lengths=None, encoder_features=None, prompts=None) -> dict[str, torch.Tensor]:
        """Summed cross-entropy over target tokens, their count, the logits at those tokens and the tokens
        (`targets`, in the same order), and each branch's projected positions and counts (`audio`, for
        objectives that read them).

        Audio comes as waveforms, or as precomputed `encoder_features` (the feature cache). Token
        tensors come ready, or as `prompts` (one dict of `conversation`, `target`, `supervise_end`
        per clip) when a projector's output length depends on the audio (the compressing `ctc`
        projector): the prompts are then built after projection, from the counts it returns. The
        caller normalises the loss, so gradient accumulation can divide by a whole step's tokens.
        """
        encoder_features = self.audio_features(waveforms, wave_lengths, encoder_features)
        audio = self.project(encoder_features)
        if prompts is not None:
            encoded = [self.processor.encode(p["conversation"], [counts], p["target"], p["supervise_end"])
                       for p, counts in zip(prompts, self.clip_counts(audio, len(prompts)))]
            tensors = collate(encoded, self.tokenizer.pad_token_id)
            input_ids, attention_mask, slots, labels = (tensors[k].to(self.device) for k in
                                                        ("input_ids", "attention_mask", "slots", "labels"))
        embeds = self.embed(input_ids, slots, audio)
        logits = self.target_logits(embeds, attention_mask, labels)
        targets = labels[:, 1:][labels[:, 1:] != IGNORE]
        loss = F.cross_entropy(logits.float(), targets, reduction="sum")
        return {"loss_sum": loss, "num_tokens": targets.new_tensor(targets.numel()), "logits": logits,
                "targets": targets, "audio": audio}

    def clip_counts(self, audio: dict[str, tuple[torch.Tensor, torch.Tensor]], clips: int) -> list[dict[str, int]]:
        """Per clip (of `clips`), the positions each branch's projector produced: what the prompt must
        make room for."""
        lengths = {name: audio[name][1].tolist() for name in self.projected} if clips else {}
        return [{name: int(lengths[name][i]) for name in self.projected} for i in range(clips)]

    def ctc_loss(self, encoder_features: dict[str, tuple[torch.Tensor, torch.Tensor]], targets: list[list[int]],
                 transcripts: list[str]) -> tuple[torch.Tensor, int]:
        """(summed CTC loss, target units) of what objective ctc trains: every trainable `ctc` projector,
        on the transcripts' LLM token ids (`targets`), and a trained recognizer, on their text.

        No LLM forward: the `ctc` projector scores frames against the LLM's embedding table directly,
        the phoneme recognizer against its own labels.
        """
        losses = []
        for name, branch in self.branches.items():
            if hasattr(branch.projector, "ctc_loss") and any(p.requires_grad for p in branch.projector.parameters()):
                losses.append(branch.projector.ctc_loss(*encoder_features[name], targets))
        if self.recognizer is not None and self.recognizer.trainable:
            losses.append(self.recognizer.loss(*encoder_features[self.config.recognizer.branch], transcripts))
        if not losses:
            raise ValueError("train.objective=ctc needs a trained recognizer (model.recognizer.name: phoneme_ctc) "
                             "or a trainable branch with a ctc projector")
        return sum(loss for loss, _ in losses), sum(n for _, n in losses)

    def target_logits(self, embeds: torch.Tensor, attention_mask: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """LLM logits [N, vocab] at the positions predicting the N labelled tokens, in order.

        The LM head runs only there: over the whole vocabulary at every prompt and audio position
        it would cost more than the rest of the step for long audio.
        """
        hidden = self.llm.base_model(inputs_embeds=embeds, attention_mask=attention_mask, use_cache=False).last_hidden_state
        select = labels[:, 1:] != IGNORE
        return self.llm.get_output_embeddings()(hidden[:, :-1][select])

    # ----------------------------------------------------------------------------- inference

    def prepare(self, conversations: list[Conversation], audio: list[list[AudioInput]]) -> dict:
        """Left-padded generation batch: token ids, slots, and projected audio features per branch.

        The audio is projected first and the prompts are built from the counts the projectors
        return, so content-dependent projectors (CTC compression) get exactly their positions.
        """
        flat = self.encode_clips([a for row in audio for a in row])  # every clip of the batch at once
        projected = self.project(self.batch_clips(flat)) if flat else {}
        counts, clips = iter(self.clip_counts(projected, len(flat))), iter(flat)
        encoded = []
        for conv, row in zip(conversations, audio):
            transcripts = self.transcripts_for([next(clips) for _ in row])
            encoded.append(self.processor.encode(conv, [next(counts) for _ in row], transcripts=transcripts))
        batch = {k: v.to(self.device) for k, v in collate(encoded, self.tokenizer.pad_token_id, left_pad=True).items()}
        batch["audio"] = projected
        return batch

    @torch.no_grad()
    def generate(self, audio: list[AudioInput], conversation: Conversation | str, **generation) -> str:
        """Answer one conversation. `conversation` may be a plain user text sent with the clips."""
        if isinstance(conversation, str):
            parts = [{"type": "audio"} for _ in audio] + ([{"type": "text", "text": conversation}] if conversation else [])
            conversation = [{"role": "user", "content": parts}]
        return self.generate_batch([conversation], [audio], **generation)[0]

    @torch.no_grad()
    def generate_batch(self, conversations: list[Conversation], audio: list[list[AudioInput]],
                       max_new_tokens: int = 128, **generation) -> list[str]:
        """Greedy (by default) answers; audio enters once, at prefill, as input embeddings."""
        batch = self.prepare(conversations, audio)
        embeds = self.embed(batch["input_ids"], batch["slots"], batch["audio"])
        generation.setdefault("do_sample", False)
        out = self.llm.generate(
            inputs_embeds=embeds, attention_mask=batch["attention_mask"], max_new_tokens=max_new_tokens,
            pad_token_id=self.tokenizer.pad_token_id, **generation,
        )
        return self.tokenizer.batch_decode(out, skip_special_tokens=True)

    # ----------------------------------------------------------------------------- checkpoints

    def save_pretrained(self, directory: str | Path) -> None:
        save_checkpoint(self, directory)

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | Path,
        *,
        revision: str | None = None,
        dtype: str | torch.dtype | None = None,
        device: str | torch.device | None = None,
        cache_dir: str | Path | None = None,
        token: str | None = None,
        overrides: list[str] = (),
    ) -> LALM:
        """A trained LALM from a checkpoint folder or a Hugging Face hub repo holding one.

        ``name_or_path``: a local folder written by ``save_pretrained``, or a hub id ("org/name",
        at ``revision``; only the checkpoint's small files are fetched, since the frozen bases are
        referenced, not stored). ``dtype`` ("bfloat16", ``torch.float16``, ...) loads the frozen LLM
        in that dtype instead of the one its config names; ``device`` moves the model there.
        ``overrides`` change how its recognizer decodes (``model.recognizer.options.lm_beam=8``), the only
        settings a checkpoint takes at load time; a saved checkpoint records the ones it ran with.
        """
        folder = resolve_checkpoint(name_or_path, revision=revision, cache_dir=cache_dir, token=token)
        model = cls(read_config(folder, llm_dtype=dtype, overrides=list(overrides)).model)
        load_trained(model, folder)
        return model.to(device) if device is not None else model


def add_lora(llm: nn.Module, cfg) -> None:
    """Inject peft LoRA adapters into the LLM's target modules; only they become trainable."""
    from peft import LoraConfig, inject_adapter_in_model

    inject_adapter_in_model(
        LoraConfig(r=cfg.r, lora_alpha=cfg.alpha, lora_dropout=cfg.dropout, target_modules=list(cfg.target_modules)),
        llm,
    )
    for name, p in llm.named_parameters():
        p.requires_grad_("lora_" in name)
