"""The offline demo's own pieces (the full run takes ~25 minutes and is run by hand: python -m demo)."""

from pathlib import Path

from lalm.config import load_config
from lalm.demo.run import CONFIG, QUESTIONS, VOICES, paths_under
from lalm.demo.texts import EVAL_QA, TRAIN_TEXTS, check
from lalm.train.config import AlignConfig


def test_texts_are_varied_and_disjoint_from_the_questions():
    check()


def test_demo_overrides_fit_the_training_config(tmp_path):
    cfg = load_config(CONFIG, ["train.steps=3", *paths_under(tmp_path)], cls=AlignConfig)
    voice = tmp_path / "voice"
    assert [s.path for s in cfg.data.train] == [str(voice / "gender.train.jsonl"), str(voice / "pace.train.jsonl"),
                                                str(voice / "content.sift.jsonl")]
    assert all(s.target_field == "response" for s in cfg.data.train)
    assert Path(cfg.train.out_dir) == tmp_path / "align"
    (name, stage), = cfg.resolved_stages()
    assert stage.train.objective == "label" and stage.train.label_fields == ["gender", "pace"]
    assert stage.train.steps == 3
    # the transcript stands beside the continuous branch, written by Whisper's own decoder
    assert cfg.model.recognizer.name == "whisper" and "{transcript}" in cfg.model.prompt.layout


def test_every_question_has_a_short_answer_the_scorer_accepts():
    from lalm.eval.scoring import score_subset

    items = [{"id": q["id"], "answers": q["answers"], "response": f"I believe it is {q['reference']}."} for q in EVAL_QA]
    _, summary = score_subset("short_answer", items)
    assert summary["score"] == 100.0


def test_the_corpus_command_never_states_an_evaluation_fact(tmp_path):
    """The demo's corpus stage, on the kit's own texts plus sentences that do state a fact."""
    from lalm.data_gen.corpus import main
    from lalm.jsonl import read_jsonl

    own = tmp_path / "own.txt"
    leaks = ["Paris is the capital and largest city of France.", "A spider has eight legs and spins webs."]
    own.write_text("\n".join([*TRAIN_TEXTS[:40], *leaks, "Paris is lovely in the spring."]) + "\n")
    out = tmp_path / "corpus.jsonl"
    assert main(["--out", str(out), "--texts", str(own), "--exclude", str(QUESTIONS),
                 "--wordnet", str(tmp_path / "none")]) == 0
    texts = [r["text"] for r in read_jsonl(out)]
    assert not set(leaks) & set(texts)
    assert "Paris is lovely in the spring." in texts  # the answer alone is no fact
    assert len(texts) == 41 and all(r["source"] == "texts" for r in read_jsonl(out))
    assert VOICES.is_file()
