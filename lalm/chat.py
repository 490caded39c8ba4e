"""Chat with an LALM in the terminal: typed messages and audio files, streamed answers, multi-turn.

    python -m lalm.chat --model runs/my-model
    python -m lalm.chat --config configs/offline_small.yaml      # untrained: tries the pipeline
    printf '/audio q.wav What is said?\\nAnd in French?\\n' | python -m lalm.chat --model runs/my-model

Commands: `/audio PATH [text]` attaches a clip to the next message (or sends it with `text`),
`/reset`, `/help`, `/quit`. An empty line sends attached clips without text.

Each clip goes through the frozen encoders once, when attached; the history keeps the encoded
clips, so later turns never re-encode past audio (`--verbose` prints the encoder passes per turn).
Input may be a pipe (scripted sessions, tests) as well as a terminal; Ctrl-C stops an answer.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TextIO

from lalm.audio import MAX_CLIP_SECONDS, AudioError, load_audio
from lalm.cli import add_model_arguments, load_model
from lalm.encoders.base import SAMPLE_RATE
from lalm.errors import run_command
from lalm.generation import Sampling
from lalm.model import LALM, EncodedClip
from lalm.processor import Conversation
from lalm.serve_api import APIError, Limits
from lalm.serve_batch import check_context
from lalm.streaming import Row, generate_rows

HELP = """commands:
  /audio PATH [text]  attach a clip (quote a PATH with spaces); with text, send both now
  /reset              forget the conversation and attached clips
  /help               this list
  /quit               leave (Ctrl-D too)
anything else is sent as a message, with the attached clips; an empty line sends the clips alone"""


@dataclass
class ChatSession:
    """A conversation whose audio is kept encoded: `clips` are the history's clips, in order."""

    model: LALM
    sampling: Sampling
    system_prompt: str | None = None
    max_audio_seconds: float = MAX_CLIP_SECONDS  # per clip, as the server's default
    history: Conversation = field(default_factory=list)
    clips: list[EncodedClip] = field(default_factory=list)
    attached: list[EncodedClip] = field(default_factory=list)

    def attach(self, path: str) -> EncodedClip:
        clip = self.model.encode_clip(load_audio(path, self.max_audio_seconds, setting="--max-audio-seconds"))
        self.attached.append(clip)
        return clip

    def send(self, text: str, on_text: Callable[[str], None]) -> Row:
        """Answer `text` with the attached clips, streaming to `on_text`; the turn joins the history."""
        parts = [{"type": "audio"} for _ in self.attached] + ([{"type": "text", "text": text}] if text else [])
        message = {"role": "user", "content": parts}
        system = [{"role": "system", "content": self.system_prompt}] if self.system_prompt else []
        clips = self.clips + self.attached
        self.check_fits(system + self.history + [message], clips)
        row = Row(self.sampling.max_new_tokens, on_text)
        (answer,) = generate_rows(self.model, [system + self.history + [message]], [clips], [row], self.sampling)
        self.history += [message, {"role": "assistant", "content": answer}]
        self.clips, self.attached = clips, []
        return row

    def reset(self) -> None:
        self.history, self.clips, self.attached = [], [], []

    def check_fits(self, conversation: Conversation, clips: list[EncodedClip]) -> None:
        """An APIError, as the server answers, when the prompt and the answer exceed the LLM's context:
        generating from it would run for ages or fail. Without a known context, the server's
        default prompt limit is the bound."""
        length = len(self.model.encode_prompt(conversation, clips)[0].input_ids)
        context = getattr(self.model.llm.config, "max_position_embeddings", None) or Limits.max_prompt_tokens
        check_context(length, self.sampling.max_new_tokens, context)


def split_path(rest: str) -> tuple[str, str]:
    """`PATH text` or `"PATH with spaces" text` -> (PATH, text)."""
    rest = rest.strip()
    if rest[:1] in ("'", '"'):
        end = rest.find(rest[0], 1)
        if end < 0:
            raise ValueError(f"unclosed quote in {rest!r}")
        return rest[1:end], rest[end + 1:].strip()
    path, _, text = rest.partition(" ")
    return path, text.strip()


def read_lines(stdin: TextIO) -> Iterator[str]:
    """Lines typed at a prompt (with line editing) on a terminal, or read from a pipe."""
    if stdin.isatty():
        import readline  # noqa: F401  (importing it gives input() history and editing)

        while True:
            try:
                yield input("you> ")
            except EOFError:
                return
    else:
        for line in stdin:
            yield line.rstrip("\n")


class EncoderPasses:
    """Counts frozen-encoder forward passes (for --verbose): shows that past audio is not re-encoded."""

    def __init__(self, model: LALM):
        self.count = 0
        # Every clip runs through all branches together, so the first branch counts clips.
        next(iter(model.branches.values())).encoder.register_forward_hook(self._hook)

    def _hook(self, *_) -> None:
        self.count += 1


def run(session: ChatSession, lines: Iterator[str], out: TextIO, log: TextIO, verbose: bool) -> None:
    passes = EncoderPasses(session.model) if verbose else None
    turn, seen = 0, 0

    def answer(text: str) -> None:
        nonlocal turn, seen
        out.write("assistant> ")
        out.flush()
        start = time.perf_counter()
        try:
            row = session.send(text, lambda delta: (out.write(delta), out.flush()))
        except KeyboardInterrupt:
            out.write(" [stopped]\n")
            return
        except APIError as err:  # too long for the model: the turn is dropped, the chat goes on
            out.write(f"\nerror: {err.message}; /reset clears the history\n")
            return
        out.write("\n")
        out.flush()
        turn += 1
        if passes is not None:
            log.write(f"[turn {turn}: {passes.count - seen} encoder passes, {len(session.clips)} clips in context, "
                      f"{len(row.token_ids)} tokens ({row.finish_reason}) in {time.perf_counter() - start:.1f} s]\n")
            log.flush()
            seen = passes.count

    for line in lines:
        command, _, rest = line.strip().partition(" ") if line.startswith("/") else ("", "", line)
        if command in ("/quit", "/exit"):
            return
        if command == "/help":
            out.write(HELP + "\n")
        elif command == "/reset":
            session.reset()
            out.write("(conversation cleared)\n")
        elif command == "/audio":
            try:
                path, text = split_path(rest)
                clip = session.attach(path)
            except (AudioError, ValueError) as err:
                out.write(f"error: {err}\n")
                continue
            out.write(f"(attached {path}: {clip.samples / SAMPLE_RATE:.1f} s)\n")
            if text:
                answer(text)
        elif command:
            out.write(f"unknown command {command}; /help lists the commands\n")
        elif rest.strip() or session.attached:
            answer(rest.strip())
        out.flush()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m lalm.chat", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_arguments(parser)
    parser.add_argument("--max-new-tokens", type=int, default=256, help="answer length limit in tokens")
    parser.add_argument("--temperature", type=float, default=0.0, help="0 (default): greedy decoding")
    parser.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling mass (with --temperature > 0)")
    parser.add_argument("--system-prompt", help="system message (default: the model config's, if any)")
    parser.add_argument("--max-audio-seconds", type=float, default=MAX_CLIP_SECONDS,
                        help="per clip; lalm.serve has the same flag and default (default: %(default)s)")
    parser.add_argument("--verbose", action="store_true", help="per turn: encoder passes, tokens, time (stderr)")
    args = parser.parse_args(argv)
    if args.max_new_tokens < 1 or args.temperature < 0 or not 0 < args.top_p <= 1:
        parser.error("need --max-new-tokens >= 1, --temperature >= 0 and 0 < --top-p <= 1")

    model = load_model(args)
    session = ChatSession(model, Sampling(args.max_new_tokens, args.temperature, args.top_p), args.system_prompt,
                          args.max_audio_seconds)
    if sys.stdin.isatty():
        print("type a message, or /audio PATH [text]; /help lists the commands")
    try:
        run(session, read_lines(sys.stdin), sys.stdout, sys.stderr, args.verbose)
    except KeyboardInterrupt:  # at the prompt: leave quietly
        print()


def cli() -> int:
    """The installed command (see [project.scripts] in pyproject.toml)."""
    return run_command(main)


if __name__ == "__main__":
    sys.exit(cli())
