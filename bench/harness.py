"""What the floor-and-measure benchmarks share besides counting: flags, device and peaks, timing, result files."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

from lalm.bench.counting import Hardware, hardware
from lalm.generation import resolve_device


def measure_peaks(device: torch.device) -> tuple[float, float]:
    """This device's own (matmul TFLOP/s, read TB/s): the best of 5 square matmuls in the bench dtype
    (bf16 on a GPU, float32 on a CPU) and of 5 sums over a tensor far larger than the caches."""
    gpu = device.type == "cuda"
    n = 8192 if gpu else 2048
    a = torch.randn(n, n, device=device, dtype=torch.bfloat16 if gpu else torch.float32)
    big = torch.randn(2**29 if gpu else 2**26, device=device)
    best = race({"matmul": lambda: a @ a, "read": big.sum}, device, 5)
    return 2 * n**3 / best["matmul"] / 1e12, big.numel() * big.element_size() / best["read"] / 1e12


# ------------------------------------------------------------------------------------------------ timing


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def clock(device: torch.device) -> float:
    """A wall clock that first waits for the device's queued work."""
    synchronize(device)
    return time.perf_counter()


def race(runs: dict[str, Callable[[], object]], device: torch.device, repeats: int) -> dict[str, float]:
    """Each run's fastest time over `repeats` rounds. Within a round the runs take turns, so a change in
    the load of other jobs on a shared machine hits every run alike, and such load only ever adds time."""
    best = dict.fromkeys(runs, float("inf"))
    for _ in range(repeats):
        for name, run in runs.items():
            start = clock(device)
            run()
            best[name] = min(best[name], clock(device) - start)
    return best


def reset_peak_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory_gb(device: torch.device) -> float | None:
    """Peak allocated device memory since the last reset; None on a CPU (not tracked)."""
    return torch.cuda.max_memory_allocated(device) / 1e9 if device.type == "cuda" else None


# ------------------------------------------------------------------------------------------------ results


def add_common_args(parser, shapes: list[str]) -> None:
    parser.add_argument("--shape", choices=shapes, default="small",
                        help="7b: Whisper-large-v3 encoder + Qwen2.5-7B (for a GPU); tiny, small: for a CPU")
    parser.add_argument("--device", default="auto", help="cuda, cpu, or auto (cuda when available)")
    parser.add_argument("--peak-tflops", type=float, help="matmul peak in TFLOP/s, instead of the table's")
    parser.add_argument("--hbm-tbs", type=float, help="memory bandwidth in TB/s, instead of the table's")
    parser.add_argument("--measure-peaks", action="store_true",
                        help="use this device's measured matmul and read rates as peaks (unless given)")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--repeats", type=int, default=3, help="timings are the fastest of this many rounds")


def start(args) -> tuple[torch.device, Hardware, dict]:
    """Apply --threads, pick the device and its peaks; print the setting and return it for the results."""
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    hw = hardware(device, args.peak_tflops, args.hbm_tbs)
    if args.measure_peaks:
        flops, tbs = measure_peaks(device)
        hw = Hardware(f"{hw.name} (measured peaks)", args.peak_tflops or flops, args.hbm_tbs or tbs)
    info = {
        "command": " ".join(["python", f"bench/{Path(sys.argv[0]).name}", *sys.argv[1:]]),
        "device": hw.name, "device_type": device.type, "shape": args.shape, "peak_tflops": hw.peak_tflops,
        "hbm_tbs": hw.hbm_tbs, "torch": torch.__version__, "threads": torch.get_num_threads(),
    }
    print(f"command: {info['command']}")
    print(f"device: {hw.name} ({device.type}), torch {torch.__version__}, {info['threads']} CPU threads, "
          f"peak {fmt(hw.peak_tflops, '.3g')} TFLOP/s, bandwidth {fmt(hw.hbm_tbs, '.3g')} TB/s")
    return device, hw, info


def fmt(value: float | None, spec: str = ".2f", unit: str = "") -> str:
    return "n/a" if value is None else f"{value:{spec}}{unit}"


def print_table(headers: list[str], rows: list[list[str]]) -> None:
    print("| " + " | ".join(headers) + " |")
    print("|" + " --- |" * len(headers))
    for row in rows:
        print("| " + " | ".join(row) + " |")


def save_results(name: str, payload: dict) -> Path:
    """Write `name`.json under $OUT if set, else ./bench_results/."""
    directory = Path(os.environ.get("OUT") or "bench_results")
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"results: {path}")
    return path
