"""The guardrail scanner from Python: API shape, offsets, masking, custom patterns, quality on the labelled
corpus, and the streaming guarantee (no split of the text ever lets a sensitive value through)."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from router import guardrails
from router.guardrails import Guardrails

import guardrails_corpus as corpus

# One text per category (and per multi-part shape), each holding values the scanner must mask.
CATEGORY_TEXTS = {
    "pii": "Mail jane.doe@acme-corp.io or call +1 415 555 2671; SSN 123-45-6788, DOB: 04/07/1985.",
    "pci": "Card 4111 1111 1111 1111, exp 09/27, CVV 123.",
    "banking": "IBAN GB29 NWBK 6016 1331 9268 19, routing 021000021, account no. 12345678901.",
    "secrets": (
        "export AWS_ACCESS_KEY_ID=AKIAQWERTYUIOPASDFGH\nDB=postgres://app:S3cretPw9@db.internal/app\n"
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAzT1tV8k2Q5x9yR3wL7mN4pB6cD0eF1gH2iJ3kK4lL5mM6n\n"
        "-----END RSA PRIVATE KEY-----\npassword = 'hunter22'"
    ),
    "financial": "My portfolio balance is $1,234,567.89 and I bought 500 shares of AAPL.",
}


def values(text: str) -> list[str]:
    return [text[f.start : f.end] for f in guardrails.scan(text)]


def test_findings_carry_category_type_and_python_offsets() -> None:
    text = "naïve 🙂 user: jane@acme.io"
    [f] = guardrails.scan(text)
    assert (f.category, f.type) == ("pii", "EMAIL")
    assert text[f.start : f.end] == "jane@acme.io"


def test_mask_numbers_placeholders_per_value_and_type() -> None:
    out = guardrails.mask("a@x.io wrote to b@y.io; a@x.io paid with 4111111111111111")
    assert out == "[EMAIL_1] wrote to [EMAIL_2]; [EMAIL_1] paid with [CARD_1]"


def test_clean_text_comes_back_as_the_same_object() -> None:
    text = "Nothing to see here, just 42 apples."
    assert guardrails.mask(text) is text


def test_categories_select_what_is_scanned() -> None:
    text = "jane@acme.io 4111111111111111"
    assert [f.type for f in guardrails.scan(text, categories=["pci"])] == ["CARD"]
    assert guardrails.mask(text, categories=["pii"]) == "[EMAIL_1] 4111111111111111"
    with pytest.raises(ValueError, match='unknown guardrail category "cards"'):
        guardrails.scan(text, categories=["cards"])


def test_names_are_opt_in() -> None:
    text = "Dear John Smith, your order is ready."
    assert guardrails.scan(text) == []
    assert guardrails.mask(text, categories=["names"]) == "Dear [PERSON_1], your order is ready."


def test_custom_patterns_are_validated_when_created() -> None:
    with pytest.raises(ValueError, match=r'"EMP" is not a valid regex.*unclosed group'):
        Guardrails([("EMP", "EMP-(")])
    with pytest.raises(ValueError, match="matches the empty string"):
        Guardrails([("EMP", "x*")])
    engine = Guardrails([("employee_id", r"EMP-[0-9]{6}")])
    assert engine.mask("ticket by EMP-123456") == "ticket by [EMPLOYEE_ID_1]"
    assert ("custom", "EMPLOYEE_ID") in engine.types()


def test_there_are_at_least_thirty_provider_token_formats() -> None:
    secrets = {t for c, t in Guardrails().types() if c == "secrets"}
    generic = {"JWT", "PRIVATE_KEY", "URL_PASSWORD", "PASSWORD", "SECRET", "GCP_SERVICE_ACCOUNT"}
    assert len(secrets - generic) >= 30, sorted(secrets)


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("Refund order 88123 to card 4111 1111 1111 1111", "Refund order 88123 to card [CARD_1]"),
        ("ticket #4411: customer card 378282246310005", "ticket #4411: customer card [CARD_1]"),
        ("invoice 5555555555554444 overdue", "invoice [CARD_1] overdue"),
        ("serial: 6011111111111117", "serial: [CARD_1]"),
        ("build 858-12-4680 broke the SSN 123-45-6788 form", "build 858-12-4680 broke the SSN [SSN_1] form"),
    ],
)
def test_context_words_never_hide_a_card_and_a_build_label_is_no_ssn(text: str, masked: str) -> None:
    assert guardrails.mask(text) == masked


CONTEXT_WORDS = ["order", "Order #", "ticket #4411:", "invoice", "INV-2026-0042", "serial", "tracking", "shipment",
                 "isbn", "imei", "timestamp", "Refund order 88123 to card", "build", "case 77 /", ""]  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(
    lead=st.sampled_from(CONTEXT_WORDS),
    tail=st.sampled_from(["", " shipped", ", thanks", " (ticket 4411)"]),
    brand=st.sampled_from(corpus.CARD_BRANDS),
    seed=st.integers(0, 2**32),
)
def test_a_valid_card_is_masked_whatever_words_surround_it(lead: str, tail: str, brand: tuple, seed: int) -> None:
    pan = corpus.luhn_complete(random.Random(seed), *brand)
    text = f"{lead} {pan}{tail}"
    assert [(f.type, text[f.start : f.end]) for f in guardrails.scan(text)] == [("CARD", pan)]
    assert pan not in guardrails.mask(text)


@pytest.mark.parametrize("category", sorted(CATEGORY_TEXTS))
def test_each_category_text_is_fully_masked(category: str) -> None:
    text = CATEGORY_TEXTS[category]
    found = guardrails.scan(text)
    assert found and {f.category for f in found} == {category}
    masked = guardrails.mask(text)
    for v in values(text):
        assert v not in masked


# -- quality on the labelled corpus ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def score() -> corpus.Score:
    return corpus.evaluate(corpus.rust_scan)


def test_recall_on_structured_types(score: corpus.Score) -> None:
    low = {k: r for k, r in score.recall.items() if k in corpus.STRUCTURED and r < 0.99}
    assert not low, low
    assert set(score.recall) >= corpus.STRUCTURED


def test_precision_per_type(score: corpus.Score) -> None:
    low = {k: p for k, p in score.precision.items() if p < 0.98}
    assert not low, low


def test_false_positives_on_tricky_negatives(score: corpus.Score) -> None:
    assert score.negative_fp_rate <= 0.01


# -- streaming --------------------------------------------------------------------------------------------


def stream_through(text: str, cuts: list[int]) -> str:
    s = guardrails.stream()
    out, last = [], 0
    for c in [*cuts, len(text)]:
        out.append(s.feed(text[last:c]))
        last = c
    out.append(s.finish())
    return "".join(out)


@pytest.mark.parametrize("category", sorted(CATEGORY_TEXTS))
def test_every_single_split_never_leaks(category: str) -> None:
    text = CATEGORY_TEXTS[category]
    whole = guardrails.mask(text)
    secrets = values(text)
    for i in range(len(text) + 1):
        out = stream_through(text, [i])
        assert out == whole, i
        assert not any(v in out for v in secrets)


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_any_splits_never_leak(data: st.DataObject) -> None:
    text = data.draw(st.sampled_from(list(CATEGORY_TEXTS.values())))
    cuts = sorted(data.draw(st.lists(st.integers(0, len(text)), max_size=12)))
    out = stream_through(text, cuts)
    assert out == guardrails.mask(text)
    assert not any(v in out for v in values(text))


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=80), st.sampled_from(list(CATEGORY_TEXTS.values())))
def test_scan_offsets_and_masking_on_arbitrary_text(noise: str, text: str) -> None:
    combined = noise + " " + text + noise
    for f in guardrails.scan(combined):
        assert 0 <= f.start < f.end <= len(combined)
    once = guardrails.mask(combined)
    assert guardrails.mask(once) == once


def test_person_names_precision_is_what_the_readme_states() -> None:
    precision, recall = corpus.names_precision_recall()
    assert precision >= 0.95 and recall >= 0.99
