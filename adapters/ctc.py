"""CTC over the LLM's own vocabulary: the LLM receives vectors from its own embedding table.

The idea of LegoSLM (arXiv 2505.11352): a frame-level classifier over the LLM's tokens (plus a CTC
blank) is trained with CTC on the transcript's token ids, which needs no LLM forward pass, and its
posteriors turn each frame into a weighted sum of the LLM's input embeddings. Here the classifier
scores frames against the frozen embedding table itself (logit = scale * h . e_token + bias), so the
only trained weights are a small MLP, a blank vector and per-token biases.

With `compress` (the default), frames whose best label is the blank are dropped and runs of the same
best token are merged (their posteriors averaged): a clip becomes about one position per spoken
token, and the number of positions depends on what was said. The processor then builds the prompt
after projection, from the counts the projector returns.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lalm.adapters import PROJECTORS
from lalm.adapters.base import Projector, ceil_div, check_positive, ctc_collapse, group_frames, valid_mask


@PROJECTORS.register("ctc")
class CTCProjector(Projector):
    """Stack k frames -> MLP -> scores against the LLM's input embeddings and a blank.

    Options:
        k: frames stacked per output frame (Whisper's 50 Hz / 4 = 12.5 Hz, room for CTC's blanks).
        hidden: MLP width.
        compress: drop blank frames and merge repeats (content-dependent lengths); False keeps one
            position per stacked frame, blank frames carrying the learned blank vector.
        emit: "soft" gives the posterior-weighted embedding of each position, "hard" the embedding of
            its best token (what a cascade's transcript would give, for comparison).
        negatives: tokens drawn at random each training step as the softmax's competitors, besides
            every token of the batch's transcripts (sampled softmax); 0 scores the whole vocabulary.
            Inference always scores the whole vocabulary.
        token_bias: learn a bias per token (a prior over the vocabulary).
        lm_weight: at inference, choose each position's token with the frozen LLM as language model
            (`lalm.lm_fusion`): CTC log-prob + lm_weight x LLM log-prob; 0 keeps the CTC posteriors.
            Needs `compress`; the chosen tokens' own embeddings are emitted.
        lm_beam: hypotheses kept by that search.
        lm_candidates: tokens considered per position (the CTC head's best).
    """

    length_options = ("k",)

    def __init__(self, in_dim: int, out_dim: int, k: int = 4, hidden: int = 1536, compress: bool = True,
                 emit: str = "soft", negatives: int = 4096, token_bias: bool = True, lm_weight: float = 0.0,
                 lm_beam: int = 8, lm_candidates: int = 5):
        check_positive(k=k, hidden=hidden, lm_beam=lm_beam, lm_candidates=lm_candidates)
        if lm_weight < 0 or (lm_weight and not compress):
            raise ValueError(f"lm_weight must be >= 0 and needs compress: true, got {lm_weight!r}")
        if emit not in ("soft", "hard"):
            raise ValueError(f"emit must be 'soft' or 'hard', got {emit!r}")
        if not isinstance(negatives, int) or negatives < 0:
            raise ValueError(f"negatives must be a non-negative integer, got {negatives!r}")
        super().__init__(in_dim, out_dim)
        self.k, self.rate_divisor = k, k
        self.compress, self.emit, self.negatives, self.token_bias = compress, emit, negatives, token_bias
        self.lm_weight, self.lm_beam, self.lm_candidates = float(lm_weight), lm_beam, lm_candidates
        self._lm: list = []  # (llm, user-turn prefix ids, end ids) when bound; the LLM is never owned
        self.mlp = nn.Sequential(nn.Linear(in_dim * k, hidden), nn.GELU(), nn.Linear(hidden, out_dim))
        self.blank = nn.Parameter(torch.zeros(out_dim))  # scored like a token, and its output vector
        self.blank_bias = nn.Parameter(torch.zeros(()))
        # Embedding norms differ by model; a learned scale keeps the logits' range trainable.
        self.log_scale = nn.Parameter(torch.zeros(()))
        self.bias: nn.Parameter | None = None
        self._table: list[nn.Embedding] = []  # the LLM's, not registered: never trained, saved or moved here
        self.register_buffer("allowed", torch.zeros(0, dtype=torch.bool), persistent=False)

    # ------------------------------------------------------------------------------------------ binding

    def bind_llm(self, embedding: nn.Embedding, special_ids: list[int]) -> None:
        """Attach the frozen LLM's input embedding table; special tokens are never emitted."""
        vocab = embedding.weight.shape[0]
        self._table = [embedding]
        allowed = torch.ones(vocab, dtype=torch.bool)
        allowed[[i for i in special_ids if i < vocab]] = False
        self.allowed = allowed.to(embedding.weight.device)
        if self.token_bias and (self.bias is None or self.bias.shape[0] != vocab):
            self.bias = nn.Parameter(torch.zeros(vocab, device=embedding.weight.device))

    def bind_language_model(self, llm: nn.Module, tokenizer) -> None:
        """Attach the frozen LLM that `lm_weight` fusion asks; without it fusion is off."""
        from lalm.lm_fusion import user_turn_prefix

        self._lm = [(llm, *user_turn_prefix(tokenizer))]

    @property
    def fusing(self) -> bool:
        return bool(self.lm_weight and self._lm and not self.training)

    @property
    def table(self) -> torch.Tensor:
        if not self._table:
            raise RuntimeError("the CTC projector needs the LLM's embedding table: LALM binds it when built")
        return self._table[0].weight

    # ------------------------------------------------------------------------------------------ scoring

    @staticmethod
    def count(lengths: torch.Tensor, k: int) -> torch.Tensor:
        """Stacked frames; with `compress` an upper bound, the real count comes from `forward`."""
        return ceil_div(lengths, k)

    @classmethod
    def content_dependent(cls, options: dict) -> bool:
        return bool(cls.options_with_defaults(options)["compress"])

    def hidden(self, features: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per stacked frame, the vector scored against the embeddings: ([B, N, out_dim], lengths [B])."""
        return self.mlp(group_frames(features, lengths, self.k).flatten(2)), self.output_lengths(lengths)

    def logits(self, h: torch.Tensor, columns: torch.Tensor | None = None) -> torch.Tensor:
        """[..., 1 + V] scores: the blank at index 0, then the tokens of `columns` (default: all), in order."""
        table = self.table if columns is None else self.table[columns]
        tokens = self.log_scale.exp() * (h @ table.to(h.dtype).T)
        if self.bias is not None:
            tokens = tokens + (self.bias if columns is None else self.bias[columns])
        allowed = self.allowed if columns is None else self.allowed[columns]
        # A large finite penalty, not -inf: CTC's backward turns -inf scores into NaN gradients.
        tokens = tokens.masked_fill(~allowed, -1e4)
        blank = h @ self.blank + self.blank_bias
        return torch.cat([blank[..., None], tokens], dim=-1)

    # ------------------------------------------------------------------------------------------ output

    def forward(self, features: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.fusing:  # the LLM chose the tokens: their own embeddings
            clips = [self.table[torch.tensor(ids, dtype=torch.long, device=features.device)]
                     for ids in self.heard_ids(features, lengths)]
            out_lengths = torch.tensor([c.shape[0] for c in clips], device=features.device)
            return nn.utils.rnn.pad_sequence(clips, batch_first=True).to(self.mlp[0].weight.dtype), out_lengths
        h, n = self.hidden(features, lengths)
        probs = self.logits(h).float().softmax(-1)  # [B, N, 1 + V]
        if not self.compress:
            out = self._embed(probs, keep_blank=True)
            return out.masked_fill(~valid_mask(n, out.shape[1])[..., None], 0), n
        best = probs.argmax(-1)
        clips = [self._compress_one(probs[b, : int(n[b])], best[b, : int(n[b])]) for b in range(len(n))]
        out_lengths = torch.tensor([c.shape[0] for c in clips], device=features.device)
        return nn.utils.rnn.pad_sequence(clips, batch_first=True) if clips else h[:, :0], out_lengths

    def _compress_one(self, probs: torch.Tensor, best: torch.Tensor) -> torch.Tensor:
        """One clip's positions: blank frames dropped, each run of one best token averaged into one."""
        if best.numel() == 0:
            return self._embed(probs[:0], keep_blank=False)
        starts = torch.ones_like(best, dtype=torch.bool)
        starts[1:] = best[1:] != best[:-1]
        run = torch.cumsum(starts.long(), 0) - 1  # run index of every frame
        keep = best != 0
        runs = int(run[-1]) + 1
        summed = probs.new_zeros(runs, probs.shape[-1]).index_add_(0, run[keep], probs[keep])
        count = torch.zeros(runs, device=probs.device).index_add_(0, run[keep], torch.ones_like(run[keep], dtype=probs.dtype))
        token_runs = count > 0
        mean = summed[token_runs] / count[token_runs, None]
        return self._embed(mean, keep_blank=False)

    def _embed(self, probs: torch.Tensor, keep_blank: bool) -> torch.Tensor:
        """Posterior-weighted LLM embeddings of distributions over (blank, tokens)."""
        table = self.table.to(probs.dtype)
        tokens = probs[..., 1:]
        if self.emit == "hard":
            best = tokens.argmax(-1)
            hard = F.one_hot(best, tokens.shape[-1]).to(probs.dtype)
            tokens = hard + tokens - tokens.detach()  # straight-through, so stage 2 can still train it
            blank = probs[..., :1] * 0
        else:
            blank = probs[..., :1]
            if not keep_blank:  # a kept position is a token: its mass is renormalised without the blank
                tokens = tokens / tokens.sum(-1, keepdim=True).clamp_min(1e-8)
        out = tokens @ table
        if keep_blank:
            out = out + blank * self.blank.to(probs.dtype)
        return out.to(self.mlp[0].weight.dtype)

    # ------------------------------------------------------------------------------------------ training

    def ctc_loss(self, features: torch.Tensor, lengths: torch.Tensor,
                 targets: list[list[int]]) -> tuple[torch.Tensor, int]:
        """(summed CTC loss over the batch, target tokens); clips too short for their transcript add zero.

        With `negatives`, each step scores the batch's own target tokens and that many random others
        instead of the whole vocabulary: the cost of the scores no longer grows with the vocabulary.
        """
        h, n = self.hidden(features, lengths)
        flat = torch.tensor([t for row in targets for t in row], dtype=torch.long, device=h.device)
        columns = None
        if self.negatives and self.negatives < int(self.allowed.sum()):
            pool = self.allowed.nonzero()[:, 0]
            drawn = pool[torch.randint(len(pool), (self.negatives,), device=h.device)]
            columns, flat = torch.unique(torch.cat([flat, drawn]), return_inverse=True)
            flat = flat[: sum(len(t) for t in targets)]
        labels = flat + 1  # index 0 is the blank
        log_probs = self.logits(h, columns).float().log_softmax(-1).transpose(0, 1)  # [N, B, C]
        target_lengths = torch.tensor([len(t) for t in targets], device=h.device)
        loss = F.ctc_loss(log_probs, labels, n, target_lengths, blank=0, reduction="none", zero_infinity=True)
        return loss.sum(), int(target_lengths.sum())

    @torch.no_grad()
    def heard_ids(self, features: torch.Tensor, lengths: torch.Tensor) -> list[list[int]]:
        """What was said, as LLM token ids per clip: the LLM-fused choice where fusion is on, else greedy."""
        if not self.fusing:
            return self.greedy_ids(features, lengths)
        from lalm.lm_fusion import fuse

        llm, prefix, end = self._lm[0]
        h, n = self.hidden(features, lengths)
        probs = self.logits(h).float().softmax(-1)
        best = probs.argmax(-1)
        out = []
        for b in range(len(n)):
            p, path = probs[b, : int(n[b])], best[b, : int(n[b])]
            candidates = []
            for start, stop in _token_runs(path):
                q = p[start:stop].mean(0)[1:]
                logp, ids = (q / q.sum()).clamp_min(1e-12).log().topk(self.lm_candidates)
                candidates.append((ids, logp))
            out.append(fuse(llm, prefix, end, candidates, self.lm_weight, self.lm_beam))
        return out

    @torch.no_grad()
    def greedy_ids(self, features: torch.Tensor, lengths: torch.Tensor) -> list[list[int]]:
        """Best-path decoding: the token ids of each clip, blanks dropped and repeats merged."""
        h, n = self.hidden(features, lengths)
        best = self.logits(h).argmax(-1)
        out = []
        for b in range(best.shape[0]):
            path = best[b, : int(n[b])].tolist()
            out.append([t - 1 for t in ctc_collapse(path)])
        return out


def _token_runs(path: torch.Tensor) -> list[tuple[int, int]]:
    """(start, stop) of each run of one non-blank best label along a CTC path."""
    runs, labels = [], path.tolist()
    for t, label in enumerate(labels):
        if label == 0:
            continue
        if t and labels[t - 1] == label:
            runs[-1] = (runs[-1][0], t + 1)
        else:
            runs.append((t, t + 1))
    return runs
