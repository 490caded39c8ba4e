"""The little of torch.distributed the trainer needs; a plain `python train/align.py` runs as rank 0 of 1."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import torch
import torch.distributed as dist

from lalm.generation import resolve_device


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def main(self) -> bool:
        return self.rank == 0


def init() -> Dist:
    """Join the process group torchrun describes (nccl on GPUs, gloo on CPU), if any."""
    if "RANK" not in os.environ:
        return Dist(device=resolve_device("auto"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available():
        torch.cuda.set_device(local_rank)
        device, backend = torch.device("cuda", local_rank), "nccl"
    else:
        device, backend = torch.device("cpu"), "gloo"
    if not dist.is_initialized():  # later stages of a curriculum join the same group
        dist.init_process_group(backend)
    return Dist(dist.get_rank(), dist.get_world_size(), local_rank, device)


def all_sum(value: torch.Tensor) -> torch.Tensor:
    if dist.is_initialized():
        dist.all_reduce(value, op=dist.ReduceOp.SUM)
    return value


def sum_gradients(params: list[torch.nn.Parameter], world: int) -> None:
    """Sum trainable gradients over ranks in one flat buffer (each rank's loss is already divided by
    the step's global target-token count, so the sum is the exact full-batch gradient).

    Only projectors (and LoRA) train, so their gradients are small: one bucket is cheaper and much
    simpler than a DDP wrapper, and it works unchanged when the frozen LLM is FSDP-sharded.
    """
    if world == 1:
        return
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    offset = 0
    for p, g in zip(params, grads):
        n = g.numel()
        p.grad = flat[offset: offset + n].view_as(p).clone()
        offset += n


def weights_agree(params: list[torch.nn.Parameter]) -> tuple[bool, list[float]]:
    """Whether every rank holds the same trained weights (a desync would silently waste a run)."""
    local = torch.stack([sum(p.detach().double().sum() for p in params), sum(p.detach().double().abs().sum() for p in params)])
    if not dist.is_initialized():
        return True, local.tolist()
    gathered = [torch.zeros_like(local) for _ in range(dist.get_world_size())]
    dist.all_gather(gathered, local)
    return all(torch.equal(g, gathered[0]) for g in gathered), gathered[0].tolist()


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def cleanup() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()
