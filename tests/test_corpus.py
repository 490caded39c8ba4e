"""data_gen.corpus: WordNet sentences, the common-word filter and the fact filter, on a hand-made WordNet."""

from lalm.data_gen.corpus import FactFilter, build, common_words_filter, wordnet_definitions, wordnet_examples

HEADER = "  1 This software and database is being provided to you, the LICENSEE, by Princeton University\n"
NOUNS = [
    '02234567 05 n 01 spider 0 001 @ 01 n 0000 | predatory arachnid with eight legs; "the spider spun a web"',
    '02234568 05 n 01 zebra 0 001 @ 01 n 0000 | any of several fleet black-and-white striped African equines',
    '02234569 18 n 01 plumber 0 001 @ 01 n 0000 | a craftsman who installs and repairs pipes',  # not an everyday file
    '02234570 15 n 01 Paris 0 001 @ 01 n 0000 | the capital and largest city of France; "she lived in Paris"',
    '02234571 13 n 02 ice_cream 0 icecream 0 001 @ 01 n 0000 | frozen dessert',  # two-word lemma: skipped',
]
VERBS = ['01234567 29 v 01 run 0 001 @ 01 v 0000 | move fast by using legs; "Don\'t run--you\'ll be out of breath"; "run 2 miles"']


def wordnet(tmp_path):
    (tmp_path / "data.noun").write_text(HEADER + "\n".join(NOUNS) + "\n", encoding="latin-1")
    (tmp_path / "data.verb").write_text(HEADER + "\n".join(VERBS) + "\n", encoding="latin-1")
    for part in ("adj", "adv"):
        (tmp_path / f"data.{part}").write_text(HEADER, encoding="latin-1")
    return tmp_path


def test_wordnet_sentences(tmp_path):
    root = wordnet(tmp_path)
    assert list(wordnet_definitions(root)) == [
        "A spider is predatory arachnid with eight legs.",
        "A zebra is any of several fleet black-and-white striped African equines.",
        "Paris is the capital and largest city of France.",
    ]
    assert list(wordnet_examples(root)) == ["the spider spun a web", "she lived in Paris",
                                            "Don't run--you'll be out of breath", "run 2 miles"]


def test_build_drops_facts_digits_and_rare_words(tmp_path):
    questions = [{"prompt": "What is the capital of France?", "answers": ["Paris"]},
                 {"prompt": "How many legs does a spider have?", "answers": ["eight", "8"]}]

    class Tokenizer:  # single tokens: every word of five letters or fewer
        def __call__(self, text, add_special_tokens=False):
            return {"input_ids": [0] * (1 if len(text.strip()) <= 5 else 2)}

    rows, stats = build(100, ["What is the capital of France?", "hello there my friend"], wordnet(tmp_path),
                        FactFilter(questions), common_words_filter(Tokenizer(), 0.75), 0.5, seed=0)
    texts = sorted(r["text"] for r in rows)
    assert texts == ["hello there my friend", "she lived in Paris", "the spider spun a web"], texts
    assert stats["dropped_fact"] == 3  # the question itself, the spider's legs, the capital of France
    assert stats["dropped_unspeakable"] == 1  # "run 2 miles": digits are read unlike they are written
    assert stats["dropped_rare_words"] == 2  # the zebra's long words; "you'll", "breath"
