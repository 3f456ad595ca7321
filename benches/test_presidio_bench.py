"""Our scanner vs Microsoft Presidio's analyzer, side by side: throughput, and precision/recall on our corpus.

Optional: skipped unless ``presidio-analyzer`` is installed (``pip install presidio-analyzer``; it is not a
project dependency). Presidio's NER needs a spaCy model, which is downloaded from GitHub; this bench gives it
a blank English pipeline (``spacy.blank("en")``) instead, so only Presidio's pattern recognizers (cards,
email, phone, IBAN, SSN, IP, ...) run: the types we compare. Only the types both detect are scored, with the
same corpus and the same scoring (``tests/guardrails_corpus.py``) for both.
Run: ``pytest benches/test_presidio_bench.py --benchmark-only -s``.
"""

from __future__ import annotations

import logging
import tempfile
import time

import pytest

from router import guardrails
from test_guardrails_bench import english

import guardrails_corpus as corpus

presidio = pytest.importorskip("presidio_analyzer")
spacy = pytest.importorskip("spacy")

# Presidio entity -> our type, for the types both scanners detect.
SHARED = {
    "EMAIL_ADDRESS": "EMAIL",
    "CREDIT_CARD": "CARD",
    "IBAN_CODE": "IBAN",
    "US_SSN": "SSN",
    "IP_ADDRESS": "IP_ADDRESS",
    "PHONE_NUMBER": "PHONE",
}
TEXT = english(64 * 1024, seed=3)


@pytest.fixture(scope="module")
def analyzer():
    from presidio_analyzer.nlp_engine import SpacyNlpEngine

    logging.getLogger("presidio-analyzer").setLevel(logging.ERROR)
    model = tempfile.mkdtemp(prefix="blank-en-")
    spacy.blank("en").to_disk(model)
    engine = SpacyNlpEngine(models=[{"lang_code": "en", "model_name": model}])
    return presidio.AnalyzerEngine(nlp_engine=engine, supported_languages=["en"])


def presidio_scan(analyzer):
    def scan(text: str) -> list[tuple[str, int, int]]:
        found = analyzer.analyze(text, language="en", entities=list(SHARED))
        return [(SHARED[r.entity_type], r.start, r.end) for r in found]

    return scan


def ours(text: str) -> list[tuple[str, int, int]]:
    return [(t, a, b) for t, a, b in corpus.rust_scan(text) if t in SHARED.values()]


def mb_per_s(scan, text: str, rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        t = time.perf_counter()
        scan(text)
        best = min(best, time.perf_counter() - t)
    return len(text) / best / 1e6


@pytest.mark.benchmark(group="guardrails-vs-presidio")
def test_presidio_side_by_side(benchmark, analyzer, capsys) -> None:
    scan = presidio_scan(analyzer)

    def compare():
        return (
            corpus.evaluate(ours),
            corpus.evaluate(scan),
            mb_per_s(ours, TEXT, 50),
            mb_per_s(scan, TEXT, 3),
        )

    mine, theirs, our_mbs, their_mbs = benchmark.pedantic(compare, rounds=1, iterations=1)
    rows = [f"{'':<12} {'ours P/R':>13} {'Presidio P/R':>15}"]
    rows += [
        f"{kind:<12} {mine.precision.get(kind, 0):>6.3f}/{mine.recall.get(kind, 0):.3f}"
        f" {theirs.precision.get(kind, 0):>8.3f}/{theirs.recall.get(kind, 0):.3f}"
        for kind in SHARED.values()
    ]
    rows.append(f"{'negatives':<12} {mine.negative_fp_rate:>12.2%} {theirs.negative_fp_rate:>14.2%}  (texts flagged)")
    rows.append(f"{'64 KiB prose':<12} {our_mbs:>8.1f} MB/s {their_mbs:>9.3f} MB/s")
    with capsys.disabled():
        print("\n" + "\n".join(rows))
    benchmark.extra_info.update(ours_mb_s=round(our_mbs, 1), presidio_mb_s=round(their_mbs, 3))
    # Ours must stay the better scanner on every shared type.
    for kind in SHARED.values():
        assert mine.recall[kind] >= theirs.recall.get(kind, 0)
    assert guardrails.scan(TEXT) == []
