"""Questions about the voice (gender, pace, ...) for clips whose speaker metadata is known.

    python -m data_gen.voice_qa sift-inputs --manifest speech/manifest.jsonl --out-dir voice/
    python -m data_gen.sift --asr-manifest voice/gender.jsonl --mode sit_sp --system-prompt hear \\
        --instruction "Is the speaker male or female?" --out voice/gender.sift.jsonl --llm LLM
    python -m data_gen.voice_qa check --sift voice/gender.sift.jsonl --field gender --out voice/gender.train.jsonl
    python -m data_gen.voice_qa eval-set --manifest eval_speech/manifest.jsonl --out voice_eval.jsonl

The questions live in a data file (`--questions`, default data_gen/data/voice_questions.json): per
metadata field, the question, its labels (the normalised metadata label -> the word an answer must
name) and a template answer. `sift-inputs` writes, per field, the rows whose label is known, for a
SIFT `sit_sp` run that asks that question. `check` keeps an answer the LLM wrote when it names the
row's label first (as the `label_choice` scorer reads a reply) and otherwise puts the template answer
in its place, counting both: a small LLM that calls a slow voice fast would teach the audio branch a
wrong label. `eval-set` writes a `label_choice` manifest: each clip asked each question it has a label
for; text mode reads the transcript with the metadata (the LLM's own ceiling at reading labels),
audio mode hears the clip, cascade mode reads only a transcript (chance: a transcript has no voice).
"""

from __future__ import annotations

import argparse
import hashlib
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from lalm.console import note
from lalm.data_gen.cli import HelpFormatter
from lalm.data_gen.meta import MetaNormaliser
from lalm.data_gen.templates import META_SEPARATOR, USER_TEMPLATES
from lalm.errors import UserError, run_command
from lalm.eval.scoring.short_answer import named_label
from lalm.jsonl import iter_jsonl, write_json_atomic, write_jsonl_atomic

QUESTIONS = Path(__file__).parent / "data" / "voice_questions.json"


@dataclass(frozen=True)
class VoiceQuestion:
    field: str
    question: str
    labels: dict[str, str]  # normalised metadata label -> the word an answer names
    answer: str  # template answer, `{label}` replaced by that word

    def word(self, meta: dict) -> str | None:
        """The word a right answer names for a row's (normalised) metadata; None where unknown."""
        return self.labels.get(meta.get(self.field)) if isinstance(meta, dict) else None


def load_questions(path: str | Path = QUESTIONS) -> list[VoiceQuestion]:
    try:
        data = json.loads(Path(path).read_text())
        if not isinstance(data, list) or not data:
            raise ValueError("expected a non-empty list")
        return [VoiceQuestion(q["field"], q["question"], dict(q["labels"]), q["answer"]) for q in data]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise UserError(f"--questions {path}: not a list of {{field, question, labels, answer}} ({err})") from err


def normalised(rows, normaliser: MetaNormaliser):
    for row in rows:
        yield row, normaliser.normalise(row.get("meta") or {})


def sift_inputs(manifest: Path, out_dir: Path, questions: list[VoiceQuestion], balance: bool = True,
                content_rows: int = 0, max_per_label: int | None = None, within: str | None = None) -> dict:
    """Per field, the manifest rows whose label is known (audio paths made absolute); with `balance`,
    as many rows of each label as of the rarest (a branch trained on 80 % male voices learns to say male);
    with `within` (a metadata field, e.g. engine), balanced inside each of its values, and a value whose
    rows hold one label only is left out: were every flite voice male, a branch would learn "sounds like
    flite, so male" and call a female flite voice male (docs/quality.md row AB). With `content_rows`, also
    content.jsonl: that many rows of any label, for a question-free SIFT run; `max_per_label` caps each
    label's rows (SIFT time grows with them)."""
    # In a fixed shuffle once, so every cut below (balance, cap, content rows) keeps the same rows in every run.
    rows = sorted(normalised(iter_jsonl(manifest), MetaNormaliser()), key=lambda rm: stable_order(rm[0]))
    counts = {}
    for q in questions:
        cells: dict[str, dict[str, list[dict]]] = {}  # value of `within` -> label -> rows
        for row, meta in rows:
            if q.word(meta) is not None:
                group = str((row.get("meta") or {}).get(within)) if within else ""
                cells.setdefault(group, {}).setdefault(q.word(meta), []).append(row)
        labels = sorted({label for cell in cells.values() for label in cell})
        if len(labels) < 2:
            note(f"{manifest}: field {q.field} has {len(labels)} label(s) {labels}; its question is "
                 "left out (a question with one answer teaches nothing)")
            continue
        if within:
            if short := sorted(g for g, cell in cells.items() if len(cell) < len(labels)):
                note(f"{manifest}: field {q.field}: {within} {', '.join(short)} lack(s) one of the labels {labels}; "
                     f"left out (the {within} would answer the question)")
            cells = {g: cell for g, cell in cells.items() if len(cell) == len(labels)}
            if not cells:
                note(f"{manifest}: field {q.field}: no {within} has every label; its question is left out")
                continue
        # Rows of each label kept per cell: with balance, as many as the cell's rarest label has, and a cap
        # shrinks every cell alike; without, the cap alone (None keeps every row).
        takes = {g: min(len(v) for v in cell.values()) if balance else max_per_label for g, cell in cells.items()}
        if balance and max_per_label is not None and (total := sum(takes.values())) > max_per_label:
            takes = {g: take * max_per_label // total for g, take in takes.items()}
        keep = [absolute(row, manifest) for g, cell in cells.items() for label in sorted(cell)
                for row in cell[label][:takes[g]]]
        write_jsonl_atomic(out_dir / f"{q.field}.jsonl", sorted(keep, key=stable_order))
        counts[q.field] = dict(Counter(q.word(MetaNormaliser().normalise(r.get("meta") or {})) for r in keep))
    if content_rows:  # rows for plain SIFT (no question): the branch must leave content answers alone
        content = [absolute(row, manifest) for row, _ in rows[:content_rows]]
        write_jsonl_atomic(out_dir / "content.jsonl", content)
        counts["content"] = len(content)
    return counts


def absolute(row: dict, manifest: Path) -> dict:
    """The row with its audio path resolved against the manifest's folder, so it reads from anywhere."""
    return {**row, "audio": str((manifest.parent / row["audio"]).resolve())}


def stable_order(row: dict) -> str:
    """A fixed shuffle (by a hash of the id), so balancing keeps the same rows in every run."""
    return hashlib.sha1(str(row["id"]).encode()).hexdigest()


def check(sift: Path, field: str, out: Path, questions: list[VoiceQuestion]) -> dict:
    """SIFT answers kept where they name the row's label first, else the template answer."""
    q = next((q for q in questions if q.field == field), None)
    if q is None:
        raise UserError(f"--field {field}: no question for it; fields: {', '.join(x.field for x in questions)}")
    choices = sorted(set(q.labels.values()))
    rows, tally = [], Counter()
    for row in iter_jsonl(sift):
        word = q.word(row.get("meta") or {})
        if word is None or not isinstance(row.get("response"), str):
            tally["no label"] += 1
            continue
        if named_label(row["response"], choices) == word:
            tally["kept"] += 1
            rows.append(row)
        else:
            tally["replaced"] += 1
            rows.append({**row, "response": q.answer.format(label=word), "truncated": False,
                         "llm_response": row["response"]})
    write_jsonl_atomic(out, rows)
    summary = {"field": field, **tally}
    write_json_atomic(out.with_suffix(".summary.json"), summary)
    return summary


def eval_set(manifest: Path, out: Path, questions: list[VoiceQuestion]) -> dict:
    """A label_choice manifest: each clip asked each question whose label it has."""
    normaliser, items = MetaNormaliser(), []
    for row, meta in normalised(iter_jsonl(manifest), normaliser):
        labels = normaliser.render(meta)
        for q in questions:
            word = q.word(meta)
            if word is None:
                continue
            text = USER_TEMPLATES["sit_sp"].format(transcript=row["text"], meta=META_SEPARATOR.join(labels),
                                                   instruction=q.question)
            items.append({"id": f"{row['id']}-{q.field}", "audio": absolute(row, manifest)["audio"],
                          "prompt": text, "question": q.question, "choices": sorted(set(q.labels.values())),
                          "reference": word, "field": q.field, "meta": row.get("meta")})
    write_jsonl_atomic(out, items)
    return dict(Counter(f"{i['field']}={i['reference']}" for i in items))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m data_gen.voice_qa", description=__doc__,
                                formatter_class=HelpFormatter)
    p.add_argument("--questions", default=str(QUESTIONS), help="the questions' data file")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("sift-inputs", help="per field, the rows with a known label (SIFT sit_sp input)")
    s.add_argument("--manifest", required=True, help="a synthesize manifest (rows with meta)")
    s.add_argument("--out-dir", required=True, help="writes FIELD.jsonl per question")
    s.add_argument("--no-balance", action="store_true", help="keep every row (default: as many rows per label "
                   "as the rarest label has)")
    s.add_argument("--max-per-label", type=int, default=None, help="at most this many rows per label")
    s.add_argument("--balance-within", metavar="FIELD", help="balance labels inside each value of this metadata "
                   "field (e.g. engine) and leave out values with one label, so FIELD cannot answer the question")
    s.add_argument("--content-rows", type=int, default=0, help="also write content.jsonl with this many rows "
                   "(for plain SIFT: the LLM's own answers to the transcript)")
    c = sub.add_parser("check", help="keep LLM answers naming the right label; template the others")
    c.add_argument("--sift", required=True, help="a SIFT sit_sp output asking one field's question")
    c.add_argument("--field", required=True, help="the metadata field the question asks about")
    c.add_argument("--out", required=True, help="the checked training rows (JSONL)")
    e = sub.add_parser("eval-set", help="a label_choice evaluation manifest")
    e.add_argument("--manifest", required=True, help="a synthesize manifest of held-out voices")
    e.add_argument("--out", required=True, help="the evaluation manifest (JSONL)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    def job():
        questions = load_questions(args.questions)
        if args.command == "sift-inputs":
            if args.no_balance and args.balance_within:
                raise UserError("--no-balance and --balance-within contradict each other: keep one")
            result = sift_inputs(Path(args.manifest), Path(args.out_dir), questions, not args.no_balance,
                                 args.content_rows, args.max_per_label, args.balance_within)
        elif args.command == "check":
            result = check(Path(args.sift), args.field, Path(args.out), questions)
        else:
            result = eval_set(Path(args.manifest), Path(args.out), questions)
        print(f"voice_qa {args.command}: {json.dumps(result)}")

    return run_command(job)


if __name__ == "__main__":
    raise SystemExit(main())
