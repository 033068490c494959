"""Dedup and decontamination: hand cases, planted AIME24 problems, MATH L3-5 vs MATH-500 on the real files."""

from __future__ import annotations

import json
import random
import re
import unicodedata
from collections import defaultdict
from pathlib import Path

import pytest

from r1cli.data.clean import NgramIndex, benchmark_index, decontaminate, dedup, jaccard
from r1cli.data.prepare import read_table
from r1cli.data.text import ngrams, normalise_text, problem_text, word_tokens
from r1cli.errors import R1InputError


def _row(i: int, text: str) -> dict:
    return {"id": f"r{i}", "problem": text, "answer": "1"}


def test_normalisation_folds_case_and_whitespace_only() -> None:
    assert normalise_text("Find  $X^2+1$\n when\tx=3.") == normalise_text("find $x ^ 2 + 1$ When x = 3 .")
    assert normalise_text("z^4 - z^2") != normalise_text("z^4 + z^2")
    assert word_tokens("The ＡＢＣ of x^2-1!") == ["the", "abc", "of", "x", "2", "1"]
    assert ngrams(["a", "b", "c"], 2) == [("a", "b"), ("b", "c")]
    assert ngrams(["a"], 3) == [("a",)] and ngrams([], 3) == []
    assert jaccard({1, 2, 3}, {2, 3, 4}) == 0.5
    prepared = {"id": "p", "prompt": "TEMPLATE Q", "meta": json.dumps({"problem": "Q"})}
    assert problem_text(prepared) == "Q"
    msgs = [{"role": "system", "content": "S"}, {"role": "user", "content": "U"}]
    assert problem_text({"messages": msgs}) == "U"


def test_dedup_exact_and_near_hand_cases() -> None:
    base = ("A bag has 3 red marbles and 5 blue marbles. Two marbles are drawn at random without "
            "replacement. What is the probability that both are red? Express your answer as a common "
            "fraction.")
    near = base.replace("Express your answer as a common fraction.", "Give your answer as a common fraction.")
    other = base.replace("3 red", "4 red").replace("both are red", "both are blue")
    rows = [_row(0, base), _row(1, "  " + base.upper().replace(" ", "\n ")), _row(2, near), _row(3, other),
            _row(4, "Compute 2+2."), _row(5, "compute 2 + 2 .")]
    kept, removed = dedup(rows, near=True, threshold=0.7, ngram=5)
    by_id = {r["id"]: r for r in removed}
    assert [r["id"] for r in kept] == ["r0", "r3", "r4"]
    assert by_id["r1"]["reason"] == "exact-duplicate" and by_id["r1"]["duplicate_of"] == "r0"
    assert by_id["r5"]["reason"] == "exact-duplicate" and by_id["r5"]["duplicate_of"] == "r4"
    assert by_id["r2"]["reason"] == "near-duplicate" and by_id["r2"]["duplicate_of"] == "r0"
    from r1cli.data.text import norm_tokens
    j = jaccard(set(ngrams(norm_tokens(base), 5)), set(ngrams(norm_tokens(near), 5)))
    # 37 tokens -> 33 shingles each; the changed word is in 5 of them: 28 shared of 38 in the union = 14/19
    assert j == 14 / 19 and by_id["r2"]["jaccard"] == round(14 / 19, 4)
    j3 = jaccard(set(ngrams(norm_tokens(base), 5)), set(ngrams(norm_tokens(other), 5)))
    assert j3 < 0.7  # changed numbers and words: kept
    assert [r["id"] for r in dedup(rows, threshold=0.8)[0]] == ["r0", "r2", "r3", "r4"]
    kept2, removed2 = dedup(rows, near=False)
    assert [r["id"] for r in kept2] == ["r0", "r2", "r3", "r4"] and len(removed2) == 2
    with pytest.raises(R1InputError, match="threshold"):
        dedup(rows, threshold=0)


def test_decontaminate_hand_case_and_short_items() -> None:
    idx = NgramIndex(ngram=4)
    idx.add("bench", "b0", "Let x be the number of red balls in the urn; find x.")
    idx.add("bench", "b1", "Compute 7 choose 3.")  # shorter than n: matched as a whole word sequence
    rows = [_row(0, "Intro. LET  X be the\nnumber of apples."),   # shares "let x be the"
            _row(1, "please compute 7 choose 3 now"),              # contains the whole short item
            _row(2, "compute 7 choose 4"),                          # does not
            _row(3, "nothing in common here at all")]
    kept, removed = decontaminate(rows, idx)
    assert [r["id"] for r in kept] == ["r2", "r3"]
    r0, r1 = removed
    # shared 4-grams: "let x be the", "x be the number", "be the number of"
    assert (r0["id"], r0["benchmark_id"], r0["shared_ngrams"]) == ("r0", "b0", 3)
    assert r0["ngram"] == "be the number of"  # the first shared gram in sorted order
    assert r0["overlap"] == 0.3  # b0 has 13 words -> 10 4-grams
    assert (r1["id"], r1["benchmark_id"], r1["overlap"]) == ("r1", "b1", 1.0)
    kept, removed = decontaminate(rows, idx, min_overlap=0.5)
    assert [r["id"] for r in removed] == ["r1"]


def _fold_ws_case(text: str, rng: random.Random) -> str:
    """Plant a benchmark text with case and whitespace changes."""
    out = []
    for tok in re.split(r"(\s+)", text):
        if tok.isspace() or not tok:
            out.append(rng.choice([" ", "  ", "\n", "\t ", " \n "]))
        else:
            out.append(tok.upper() if rng.random() < 0.3 else tok.swapcase() if rng.random() < 0.2 else tok)
    return "  " + "".join(out) + "\n"


def test_planted_aime24_all_found(shared_data: Path) -> None:
    aime = read_table(shared_data / "eval" / "aime2024.jsonl")
    train = read_table(shared_data / "train" / "deepscaler_aime_1983_2023.jsonl")[:300]
    rng = random.Random(0)
    planted = [{"id": f"planted-{a['id']}", "problem": _fold_ws_case(a["problem"], rng),
                "answer": a["answer"]} for a in aime]
    rows = train + planted
    rng.shuffle(rows)
    index, sizes = benchmark_index(["aime24"], data_dir=shared_data, ngram=13)
    assert sizes == {"aime24": 30}
    kept, removed = decontaminate(rows, index)
    found = {r["id"]: r for r in removed if r["id"].startswith("planted-")}
    assert len(found) == 30
    for pid, rec in found.items():
        assert rec["benchmark"] == "aime24" and rec["benchmark_id"] == pid.removeprefix("planted-")
        assert rec["overlap"] == 1.0
    assert not any(r["id"].startswith("planted-") for r in kept)


def _reference_pairs(train: list[dict], bench: list[dict], n: int) -> set[tuple[str, str]]:
    """Independent reference: word n-gram strings of case-folded text, dict lookups per string."""
    def words(s: str) -> list[str]:
        return re.findall(r"\w+", unicodedata.normalize("NFKC", s).casefold())

    grams: dict[str, set[str]] = defaultdict(set)
    short: dict[int, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for b in bench:
        w = words(b["problem"])
        if len(w) < n:
            short[len(w)][" ".join(w)].add(b["id"])
        for k in range(len(w) - n + 1):
            grams[" ".join(w[k:k + n])].add(b["id"])
    pairs = set()
    for t in train:
        w = words(t["problem"])
        for k in range(len(w) - n + 1):
            for bid in grams.get(" ".join(w[k:k + n]), ()):
                pairs.add((t["id"], bid))
        for L, table in short.items():
            for k in range(len(w) - L + 1):
                for bid in table.get(" ".join(w[k:k + L]), ()):
                    pairs.add((t["id"], bid))
    return pairs


def test_math_l3to5_vs_math500_reports_every_overlap(shared_data: Path) -> None:
    train = read_table(shared_data / "train" / "math_lvl3to5_8k.jsonl")
    bench = read_table(shared_data / "eval" / "math500.jsonl")
    index, _ = benchmark_index(["math500"], data_dir=shared_data, ngram=13)
    kept, removed = decontaminate(train, index)
    got = {(r["id"], m["benchmark_id"]) for r in removed for m in r["matches"]}
    want = _reference_pairs(train, bench, 13)
    assert got == want
    assert len(kept) + len(removed) == len(train) and len(removed) == len({t for t, _ in want})
    # Known near-verbatim copies between MATH train and MATH-500 are among them.
    problems = {b["id"]: b["problem"] for b in bench}
    texts = {r["id"]: r["text"] for r in removed}
    for rec in removed:
        if rec["overlap"] >= 0.8:
            assert problems[rec["benchmark_id"]][:40].lower()[:20] == texts[rec["id"]][:20].lower()
    stamps = [r for r in removed if "Juan's Old Stamping Grounds" in r["text"]]
    assert stamps
    assert all(problems[r["benchmark_id"]].startswith("$\\textbf{Juan's Old Stamping") for r in stamps)
