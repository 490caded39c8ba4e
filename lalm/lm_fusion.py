"""The frozen LLM as the language model of a CTC projector's recognition (shallow fusion).

A CTC head trained on a few hours of speech confuses similar-sounding words ("capital of France" heard
as "cup of friends"), while the LLM next to it knows which words belong together. At each position
the compressed CTC path keeps (one per recognised token) this module weighs the head's top candidates
by `log p_ctc + weight * log p_llm(token | the words chosen so far)` in a small beam search, with the
LLM reading the words exactly where a typed message would stand (after the chat template's user-turn
opening), and ends each hypothesis with the LLM's end-of-turn probability. The positions stay those of
the CTC path; only which token fills each one changes. The LLM runs with its KV cache, one token per
position for the whole beam, so fusion costs a few small forward passes per clip.
"""

from __future__ import annotations

import torch

from lalm.llm import cached_forward
from lalm.processor import AUDIO_SENTINEL


def user_turn_prefix(tokenizer) -> tuple[list[int], list[int]]:
    """(ids before, ids after) a user message in the chat template: the context a typed question has."""
    rendered = tokenizer.apply_chat_template([{"role": "user", "content": AUDIO_SENTINEL}], tokenize=False)
    before, _, after = rendered.partition(AUDIO_SENTINEL)
    ids = lambda text: tokenizer(text, add_special_tokens=False)["input_ids"]  # noqa: E731
    return ids(before), ids(after)


@torch.no_grad()
def fuse(llm, prefix: list[int], end: list[int], candidates: list[tuple[torch.Tensor, torch.Tensor]],
         weight: float, beam: int) -> list[int]:
    """The best token per position: `candidates` holds, per position, (token ids [k], CTC log-probs [k])."""
    if not candidates:
        return []
    device = llm.get_input_embeddings().weight.device
    out, cache = cached_forward(llm, None, input_ids=torch.tensor([prefix], device=device))
    next_logp = out.logits[:, -1].float().log_softmax(-1)
    scores = torch.zeros(1, device=device)
    paths = torch.zeros(1, 0, dtype=torch.long, device=device)
    for ids, ctc_logp in candidates:
        ids, ctc_logp = ids.to(device), ctc_logp.to(device)
        total = scores[:, None] + ctc_logp[None, :] + weight * next_logp[:, ids]  # [beams, k]
        flat = total.flatten()
        keep = flat.topk(min(beam, flat.numel())).indices
        rows, cols = keep // ids.numel(), keep % ids.numel()
        scores, chosen = flat[keep], ids[cols]
        paths = torch.cat([paths[rows], chosen[:, None]], dim=1)
        cache.reorder_cache(rows)
        out, cache = cached_forward(llm, cache, input_ids=chosen[:, None])
        next_logp = out.logits[:, -1].float().log_softmax(-1)
    if end:  # a hypothesis that the LLM would end here is a complete question
        scores = scores + weight * next_logp[:, end[0]]
    return paths[int(scores.argmax())].tolist()
