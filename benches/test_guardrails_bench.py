"""Guardrail scanner: the Rust engine vs the same rule regexes run with Python `re`, side by side.

- throughput on ~1 MiB of clean English prose, every category on (MB/s in extra_info);
- a 4 KiB prompt scanned and masked from Python (mean here, p99 in extra_info, and a p50/p99 table of
  clean, with values and Python `re`, interleaved call by call: run with `-s` to see it);
- 4 KiB of digit-heavy text (prose with a number per sentence, Python source, JSON log lines, a CSV of numbers)
  and of prose without digits, scanned from Python (group `guardrails-4KiB-mixes`, and a MB/s, p50 and p99 table
  of all five interleaved: `-k mixes_side_by_side -s`);
- the same prompt streamed through the StreamScanner in 16-character deltas;
- the gateway's per-request work: screening a chat request, a unary answer, a streamed answer;
- per upstream chunk of a streamed answer (group `guardrails-stream-chunk`): the chat proxy's tap alone; the
  tap screening its own events (`ChatStreamGuard.tap`, what the proxy runs: one Rust call per read); the
  previous wiring, the tap then a second Rust call per read (`AnswerScreen.feed_chat`, which re-splits the
  events); and the previous Python guard (`chat_guard_python.py`); the Transcoder passing an Anthropic stream
  through with and without its answer screen.

The `re` baseline only runs each rule's regex over the text (no validators, no windows), so it is a
lower bound on what a Python implementation of the same rules would cost.
Run: `pytest benches/test_guardrails_bench.py --benchmark-only -s`. The engine without Python (pure-Rust
vs Hyperscan wake-up pass) is `make bench-engine`; Presidio is `benches/test_presidio_bench.py`.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable

import msgspec
import pytest

from chat_guard_python import PythonChatStreamGuard
from router import guardrails
from router._core import Masker, StreamTap, Transcoder
from router.guardrails.answers import AnswerGuard
from router.guardrails.chat_stream import ChatStreamGuard
from router.guardrails.policy import (
    _REQUEST_SKIP,
    CHAT_FIELDS,
    REQUEST_NOT_TEXT,
    Policy,
    _screen_decoded,
    fail_closed,
    map_tree,
    screen_chat_request,
    screen_chat_response,
)
from router.guardrails.settings import GuardrailSettings
from router.metrics import Metrics

_VOCAB = (
    "the a of to and in is it that for on with as was by this be are from at or an have not they which one you "
    "were her all she there would their we him been has when who will more no if out so said what up its about "
    "into than them can only other new some could time these two may then do first any my now such like our over "
    "man me even most made after also did many before must through back years where much your way well down "
    "should because each just those people how too little state good very make world still own see men work long "
    "get here between both life being under never day same another know while last might us great old year off "
    "come since against go came right used take three model request gateway latency answer summary report draft"
)
WORDS = _VOCAB.split()


def english(size: int, seed: int = 7) -> str:
    rng = random.Random(seed)
    out: list[str] = []
    n = 0
    while n < size:
        sentence = " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 18)))
        if rng.random() < 0.1:
            sentence += f" in {rng.randint(1990, 2030)}"
        sentence = sentence[0].upper() + sentence[1:] + rng.choice([".", ".", ".", "?", "!"]) + " "
        out.append(sentence)
        n += len(sentence)
    return "".join(out)[:size]


ENGLISH = english(1 << 20)
PROMPT = english(4096, seed=11)
PROMPT_WITH_VALUES = (
    PROMPT[:1500]
    + " my card is 4111 1111 1111 1111 and mail jane@acme.io "
    + PROMPT[1500:3000]
    + " export AWS_ACCESS_KEY_ID=AKIAQWERTYUIOPASDFGH "
    + PROMPT[3000:3900]
)


# -- digit-heavy text: what agents send besides prose (the same shapes as `make bench-engine`'s mixes) ------


def prose_with_numbers(size: int, seed: int = 17) -> str:
    """English sentences, each with one number in a common form (year, count, price, percentage, date, time,
    version, amount with thousands separators)."""
    rng = random.Random(seed)
    forms: list[Callable[[], str]] = [
        lambda: f"in {rng.randint(1990, 2030)}",
        lambda: f"for {rng.randint(2, 501)} users",
        lambda: f"at ${rng.randint(1, 999)}.{rng.randrange(100):02}",
        lambda: f"by {rng.randrange(100)}.{rng.randrange(10)}%",
        lambda: f"on {rng.randint(1, 12)}/{rng.randint(1, 28)}/20{rng.randrange(30):02}",
        lambda: f"at {rng.randrange(24)}:{rng.randrange(60):02}",
        lambda: f"since version {rng.randrange(5)}.{rng.randrange(20)}.{rng.randrange(10)}",
        lambda: f"with {rng.randint(1, 99)},{rng.randrange(1000):03} requests",
    ]
    out: list[str] = []
    n = 0
    while n < size:
        words = [rng.choice(WORDS) for _ in range(rng.randint(6, 16))]
        words.insert(rng.randint(1, len(words)), rng.choice(forms)())
        sentence = " ".join(words)
        sentence = sentence[0].upper() + sentence[1:] + rng.choice([".", ".", ".", "?", "!"]) + " "
        out.append(sentence)
        n += len(sentence)
    return "".join(out)[:size]


def python_source(size: int, seed: int = 19) -> str:
    """Python functions with numeric defaults, literals, ranges, hex, floats and comments."""
    names = ["request", "retries", "timeout", "offset", "limit", "batch", "window", "scale", "total", "count",
             "index", "budget", "tokens", "latency", "weight", "score"]  # fmt: skip
    rng = random.Random(seed)
    out = ["import math\nimport time\n\nMAX_RETRIES = 5\nBACKOFF = 0.25\n\n"]
    n, f = len(out[0]), 0
    r = rng.randrange
    while n < size:
        a, b = rng.choice(names), rng.choice(names)
        f += 1
        block = (
            f"def {a}_{f}({b}: int = {r(1000)}, scale: float = {r(10)}.{r(100)}) -> float:\n"
            f'    """Compute the {a} for {b} (see issue #{100 + r(9000)})."""\n'
            f"    values = [{r(256)}, {r(65536)}, {r(10)}, {r(1000)}]\n"
            f"    mask = 0x{r(65536):04X}\n"
            f"    for i in range({r(10)}, {10 + r(1000)}, {1 + r(4)}):\n"
            f"        if i % {2 + r(15)} == {r(2)}:\n"
            f"            {b} += values[i % {1 + r(4)}] * {r(100)}.{r(1000)}\n"
            f"    time.sleep({r(3)}.{r(1000):03})  # wait {r(5000)} ms\n"
            f"    return math.sqrt({b} * scale) / {1 + r(64)}.0\n\n\n"
        )
        out.append(block)
        n += len(block)
    return "".join(out)[:size]


def json_logs(size: int, seed: int = 23) -> str:
    """Structured log lines: ISO timestamps, levels, status codes, latencies, sizes, request ids."""
    rng = random.Random(seed)
    r = rng.randrange
    paths = ["/v1/chat/completions", "/v1/messages", "/v1/embeddings", "/healthz", "/v1/models", "/metrics"]
    out: list[str] = []
    n, ms = 0, 1_765_000_000_000 + r(1_000_000)
    while n < size:
        ms += r(5000)
        secs, milli = ms // 1000 % 86_400, ms % 1000
        line = (
            f'{{"ts":"2026-12-{1 + r(28):02}T{secs // 3600:02}:{secs // 60 % 60:02}:{secs % 60:02}.{milli:03}Z",'
            f'"level":"{rng.choice(["info", "info", "info", "warn", "debug", "error"])}",'
            f'"method":"{rng.choice(["GET", "POST", "POST", "GET"])}","path":"{rng.choice(paths)}",'
            f'"status":{rng.choice([200, 200, 200, 201, 204, 400, 404, 429, 500, 502])},'
            f'"latency_ms":{r(3000)}.{r(100)},"bytes":{r(200_000)},"upstream_ms":{r(2500)},"attempt":{1 + r(3)},'
            f'"request_id":"{r(1 << 31):08x}-{r(1 << 16):04x}-4{r(1 << 12):03x}-{0x8000 + r(1 << 14):04x}-'
            f'{r(1 << 24):06x}{r(1 << 24):06x}"}}\n'
        )
        out.append(line)
        n += len(line)
    return "".join(out)[:size]


def csv_numbers(size: int, seed: int = 29) -> str:
    """A CSV table of numbers: ids, dates, regions, quantities, prices, totals, ratios, scores, counts."""
    rng = random.Random(seed)
    r = rng.randrange
    out = ["id,date,region,quantity,unit_price,total,discount,score,visits\n"]
    n, row_id = len(out[0]), 10_000 + r(1000)
    while n < size:
        row_id += 1 + r(3)
        q, p = 1 + r(500), 1 + r(20_000)
        line = (
            f"{row_id},2026-{1 + r(12):02}-{1 + r(28):02},{1 + r(40)},{q},{p // 100}.{p % 100:02},"
            f"{q * p // 100}.{q * p % 100:02},0.{r(50):02},{r(100)}.{r(10)},{r(100_000)}\n"
        )
        out.append(line)
        n += len(line)
    return "".join(out)[:size]


MIXES = {
    "prose-no-digits": " ".join(w for w in english(8192, seed=13).split(" ") if not w[:1].isdigit())[:4096],
    "prose-numbers": prose_with_numbers(4096),
    "python-source": python_source(4096),
    "json-logs": json_logs(4096),
    "csv-numbers": csv_numbers(4096),
}


def python_rules() -> list[re.Pattern[str]]:
    out = []
    for _, _, pattern in guardrails.default().rules():
        try:
            out.append(re.compile(pattern.replace(r"\z", r"\Z")))
        except re.error:
            continue
    return out


RULES = python_rules()


def re_scan(text: str) -> list[tuple[int, int]]:
    return [m.span() for rx in RULES for m in rx.finditer(text)]


def re_mask(text: str) -> str:
    spans = sorted(re_scan(text))
    out, last = [], 0
    for a, b in spans:
        if a >= last:
            out.append(text[last:a])
            out.append("[X]")
            last = b
    out.append(text[last:])
    return "".join(out)


def p99_us(fn, text: str, n: int = 3000) -> float:
    samples = []
    for _ in range(n):
        t = time.perf_counter_ns()
        fn(text)
        samples.append(time.perf_counter_ns() - t)
    samples.sort()
    return samples[int(n * 0.99)] / 1000


def test_python_baseline_uses_the_same_rules() -> None:
    assert len(RULES) >= len(guardrails.default().rules()) - 2
    assert guardrails.scan(ENGLISH[:200_000]) == []


def _from_mean(benchmark, key: str, of_mean: Callable[[float], float]) -> None:
    """`extra_info[key]`: a number derived from the run's mean (seconds), where it was timed
    (`--benchmark-disable` runs the benches once, untimed, as smoke tests)."""
    if benchmark.stats is not None:
        benchmark.extra_info[key] = round(of_mean(benchmark.stats.stats.mean), 2)


@pytest.mark.benchmark(group="guardrails-throughput-1MiB-english")
def test_scan_english_rust(benchmark) -> None:
    assert benchmark(guardrails.scan, ENGLISH) == []
    _from_mean(benchmark, "MB/s", lambda mean: len(ENGLISH) / mean / 1e6)


@pytest.mark.benchmark(group="guardrails-throughput-1MiB-english")
def test_scan_english_python_re(benchmark) -> None:
    benchmark.pedantic(re_scan, args=(ENGLISH,), rounds=3, iterations=1)
    _from_mean(benchmark, "MB/s", lambda mean: len(ENGLISH) / mean / 1e6)


@pytest.mark.benchmark(group="guardrails-4KiB-prompt-mask")
def test_mask_4k_clean_rust(benchmark) -> None:
    assert benchmark(guardrails.mask, PROMPT) is PROMPT
    benchmark.extra_info["p99_us"] = p99_us(guardrails.mask, PROMPT)


@pytest.mark.benchmark(group="guardrails-4KiB-prompt-mask")
def test_mask_4k_with_values_rust(benchmark) -> None:
    out = benchmark(guardrails.mask, PROMPT_WITH_VALUES)
    assert "[CARD_1]" in out and "[AWS_ACCESS_KEY_1]" in out
    benchmark.extra_info["p99_us"] = p99_us(guardrails.mask, PROMPT_WITH_VALUES)


@pytest.mark.benchmark(group="guardrails-4KiB-prompt-mask")
def test_mask_4k_clean_python_re(benchmark) -> None:
    benchmark.pedantic(re_mask, args=(PROMPT,), rounds=50, iterations=1)
    benchmark.extra_info["p99_us"] = p99_us(re_mask, PROMPT, n=200)


@pytest.mark.benchmark(group="guardrails-4KiB-prompt-p99")
def test_mask_4k_p99_side_by_side(benchmark, capsys) -> None:
    """p50/p99 of one `mask` call from Python, the cases interleaved call by call so that noise from
    other processes hits them alike (the target: 4 KiB with values present, p99 <= 50 us)."""
    cases = {
        "rust clean": (guardrails.mask, PROMPT, 20_000),
        "rust with values": (guardrails.mask, PROMPT_WITH_VALUES, 20_000),
        "python re clean": (re_mask, PROMPT, 100),
    }

    def measure() -> dict[str, list[int]]:
        samples: dict[str, list[int]] = {name: [] for name in cases}
        for i in range(20_000):
            for name, (fn, text, n) in cases.items():
                if i < n:
                    t = time.perf_counter_ns()
                    fn(text)
                    samples[name].append(time.perf_counter_ns() - t)
        return samples

    samples = benchmark.pedantic(measure, rounds=1, iterations=1)
    rows = []
    for name, s in samples.items():
        s.sort()
        p50, p99 = s[len(s) // 2] / 1000, s[int(len(s) * 0.99)] / 1000
        benchmark.extra_info[f"{name} p99_us"] = round(p99, 1)
        rows.append(f"  {name:<18} p50 {p50:>9.1f} us   p99 {p99:>9.1f} us")
    with capsys.disabled():
        print("\n4 KiB prompt, mask from Python:\n" + "\n".join(rows))


@pytest.mark.benchmark(group="guardrails-4KiB-mixes")
@pytest.mark.parametrize("mix", list(MIXES))
def test_scan_4k_mix(benchmark, mix: str) -> None:
    """`scan` of 4 KiB of each mix from Python, default categories (the target: >= 1 GB/s, p99 <= 50 us)."""
    text = MIXES[mix]
    assert benchmark(guardrails.scan, text) == []
    _from_mean(benchmark, "MB/s", lambda mean: len(text) / mean / 1e6)
    benchmark.extra_info["p99_us"] = p99_us(guardrails.scan, text)


@pytest.mark.benchmark(group="guardrails-4KiB-mixes-table")
def test_scan_4k_mixes_side_by_side(benchmark, capsys) -> None:
    """MB/s, p50 and p99 of one `scan` call per mix, the mixes interleaved call by call (run with `-s`)."""
    calls = 10_000

    def measure() -> dict[str, list[int]]:
        samples: dict[str, list[int]] = {name: [] for name in MIXES}
        for _ in range(calls):
            for name, text in MIXES.items():
                t = time.perf_counter_ns()
                guardrails.scan(text)
                samples[name].append(time.perf_counter_ns() - t)
        return samples

    samples = benchmark.pedantic(measure, rounds=1, iterations=1)
    rows = []
    for name, s in samples.items():
        mbs = len(MIXES[name]) / (sum(s) / len(s)) * 1e3
        s.sort()
        p50, p99 = s[len(s) // 2] / 1000, s[int(len(s) * 0.99)] / 1000
        benchmark.extra_info[f"{name} MB/s"] = round(mbs)
        benchmark.extra_info[f"{name} p99_us"] = round(p99, 1)
        rows.append(f"  {name:<16} {mbs:>7.0f} MB/s   p50 {p50:>6.1f} us   p99 {p99:>6.1f} us")
    with capsys.disabled():
        print("\n4 KiB mixes, scan from Python, default categories:\n" + "\n".join(rows))


def stream_deltas(text: str, step: int = 16) -> str:
    s = guardrails.stream()
    out = [s.feed(text[i : i + step]) for i in range(0, len(text), step)]
    out.append(s.finish())
    return "".join(out)


@pytest.mark.benchmark(group="guardrails-4KiB-stream-16-char-deltas")
def test_stream_4k_rust(benchmark) -> None:
    assert benchmark(stream_deltas, PROMPT_WITH_VALUES) == guardrails.mask(PROMPT_WITH_VALUES)
    _from_mean(benchmark, "us_per_delta", lambda mean: mean * 1e6 / (len(PROMPT_WITH_VALUES) / 16))


# -- the gateway's per-request work (what guardrails add to one chat request) ------------------------------

GATEWAY = Policy(GuardrailSettings())
METRICS = Metrics()
CLEAN_MESSAGES = msgspec.json.encode(
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": PROMPT[:600]}]
)
EMAIL_MESSAGES = msgspec.json.encode(
    [{"role": "user", "content": "What is the capital of France? My email is jane.doe@example.com"}]
)
ANSWER = msgspec.json.encode(
    {
        "id": "c",
        "object": "chat.completion",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": PROMPT[:400]}}],
    }
)
WORDS_400 = PROMPT[:400].split(" ")
CHUNKS = (
    b"".join(
        b"data: "
        + msgspec.json.encode(
            {"id": "c", "choices": [{"index": 0, "delta": {"content": w + " "}, "finish_reason": None}]}
        )
        + b"\n\n"
        for w in WORDS_400
    )
    + b"data: [DONE]\n\n"
)


@pytest.mark.benchmark(group="guardrails-per-request")
@pytest.mark.parametrize("messages", [CLEAN_MESSAGES, EMAIL_MESSAGES], ids=["clean-600B", "with-email"])
def test_screen_chat_request(benchmark, messages: bytes) -> None:
    benchmark(lambda: screen_chat_request(GATEWAY, METRICS, {"messages": msgspec.Raw(messages)}))


@pytest.mark.benchmark(group="guardrails-request-walk")
@pytest.mark.parametrize("messages", [CLEAN_MESSAGES, EMAIL_MESSAGES], ids=["clean-600B", "with-email"])
@pytest.mark.parametrize("walk", ["rust-json-walk", "python-decode-tree"])
def test_mask_request_messages(benchmark, messages: bytes, walk: str) -> None:
    """The request path's Rust walk over the raw JSON against decoding it and walking the tree in Python (what
    the gateway did before, and still does for a document the walk gives up on), side by side."""

    def rust() -> bytes | None:
        return GATEWAY.masker().mask_json(messages, _REQUEST_SKIP)

    def python() -> bytes | None:
        masker = GATEWAY.masker()
        tree, changed = map_tree(masker.mask, msgspec.json.decode(messages), REQUEST_NOT_TEXT)
        return msgspec.json.encode(tree) if changed else None

    out = benchmark(rust if walk == "rust-json-walk" else python)
    assert (out is None) == (messages is CLEAN_MESSAGES)


# Evicts the CPU caches between rounds: under load the scanner's tables and the interpreter's objects are
# cold for every request (other requests' work ran in between), and that is where the number of calls and
# Python frames on the request path counts, more than in a warm loop.
_EVICT = bytearray(32 << 20)


def _evict() -> None:
    _EVICT[::64] = bytes([_EVICT[0] ^ 1]) * (len(_EVICT) // 64)


@fail_closed
def _previous_screen_chat_request(policy: Policy, metrics: Metrics, fields: dict[str, msgspec.Raw]) -> Masker | None:
    """The chat request screen as the gateway did it before `DocumentScreen` (the baseline): a fresh masker,
    the walk per field, the wrap, the tally and the record, each its own call from Python. That is the path
    the gateway keeps for a request the one-call walk gives up on (`_screen_decoded`), one frame shorter than
    the previous gateway's (no `_mask_document`), so the comparison if anything flatters the baseline."""
    masker = _screen_decoded(policy, metrics, fields, CHAT_FIELDS)
    return masker if policy.restore else None


@pytest.mark.benchmark(group="guardrails-unary-request-screen")
@pytest.mark.parametrize("caches", ["warm", "cold"])
@pytest.mark.parametrize("path", ["document-screen", "previous-five-calls"])
def test_unary_request_screen(benchmark, caches: str, path: str) -> None:
    """The email prompt's chat request screen: one call into Rust (`DocumentScreen.request`, what the gateway
    does) against the five calls and four Python frames it replaced, side by side, with warm and with
    evicted caches."""
    run = screen_chat_request if path == "document-screen" else _previous_screen_chat_request

    def setup() -> tuple[tuple[Policy, Metrics, dict[str, msgspec.Raw]], dict]:
        if caches == "cold":
            _evict()
        return (GATEWAY, METRICS, {"messages": msgspec.Raw(EMAIL_MESSAGES)}), {}

    benchmark.pedantic(run, setup=setup, rounds=3000 if caches == "cold" else 20000, warmup_rounds=100)


@pytest.mark.benchmark(group="guardrails-per-request")
def test_screen_chat_answer_clean_400B(benchmark) -> None:
    assert benchmark(screen_chat_response, GATEWAY, METRICS, ANSWER) is ANSWER


@pytest.mark.benchmark(group="guardrails-per-request")
def test_stream_guard_answer_of_70_chunks(benchmark) -> None:
    def run() -> bytes:
        guard = ChatStreamGuard(GATEWAY, METRICS)
        tap = guard.tap()
        out = tap.feed(CHUNKS) + tap.finish()
        guard.check(tap)
        return out

    out = benchmark(run)
    assert out.endswith(b"data: [DONE]\n\n")
    benchmark.extra_info["chunks"] = len(WORDS_400)


# -- per upstream chunk: what guardrails add to each chunk of a streamed answer ----------------------------------

# OpenAI-style tokens (" word"), one chunk per token as upstreams send them: every chunk's tail is held back
# and released by the next one, so every chunk is rewritten (the common case, not the clean fast path).
TOKENS = [" " + w for w in PROMPT[:2000].split(" ")]
CHAT_CHUNKS = [
    b"data: "
    + msgspec.json.encode({
        "id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o",
        "choices": [{"index": 0, "delta": {"content": t}, "logprobs": None, "finish_reason": None}],
    })
    + b"\n\n"
    for t in TOKENS
] + [b"data: [DONE]\n\n"]  # fmt: skip
ANTHROPIC_CHUNKS = [
    b'event: message_start\ndata: {"type":"message_start","message":{"id":"msg_1","usage":{"input_tokens":9}}}\n\n',
    b"event: content_block_start\ndata: "
    b'{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}\n\n',
    *(
        b"event: content_block_delta\ndata: "
        + msgspec.json.encode({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": t}})
        + b"\n\n"
        for t in TOKENS
    ),
    b'event: content_block_stop\ndata: {"type":"content_block_stop","index":0}\n\n',
    b"event: message_delta\ndata: "
    b'{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":9}}\n\n',
    b'event: message_stop\ndata: {"type":"message_stop"}\n\n',
]  # fmt: skip


_MOCK_TOKENS = ["The", " quick", " brown", " fox", " jumps", " over", " the", " lazy", " dog", " and", " then", " some",
                " more", " mock", " tokens"]  # fmt: skip
# The mock provider's streamed answer (what `benches/load.py` streams): 19 events in one upstream read.
_MOCK_HEAD = {"id": "chatcmpl-mock1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o",
              "system_fingerprint": "fp_mock"}  # fmt: skip
MOCK_ANSWER = [
    b"".join(
        b"data: " + msgspec.json.encode({**_MOCK_HEAD, "choices": [choice]}) + b"\n\n"
        for choice in [
            {"index": 0, "delta": {"role": "assistant", "content": ""}, "logprobs": None, "finish_reason": None},
            *({"index": 0, "delta": {"content": t}, "logprobs": None, "finish_reason": None} for t in _MOCK_TOKENS),
            {"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"},
        ]
    )
    + b"data: [DONE]\n\n"
]  # fmt: skip


def _chat_stream(guard: str, reads: list[bytes] = CHAT_CHUNKS) -> bytes:
    """The proxy's per-read work on `reads` with `guard`."""
    out = []
    if guard == "rust-in-tap":
        stream_guard = ChatStreamGuard(GATEWAY, METRICS)
        tap = stream_guard.tap()
        for chunk in reads:
            out.append(tap.feed(chunk))
            if tap.has_findings:
                stream_guard.check(tap)
        return b"".join(out)
    tap = StreamTap(strip_usage_chunk=False)
    if guard == "off":
        return b"".join(tap.feed(chunk) for chunk in reads)
    if guard == "rust-after-tap":
        answer = AnswerGuard(GATEWAY, METRICS)
        screen = answer.screen()
        for chunk in reads:
            data = tap.feed(chunk)
            if data:
                out.append(screen.feed_chat(data))
                if screen.has_findings:
                    answer.check(screen)
        return b"".join(out)
    python = PythonChatStreamGuard(GATEWAY, METRICS)
    return b"".join(python.feed(tap.feed(chunk)) for chunk in reads)


@pytest.mark.benchmark(group="guardrails-stream-chunk")
@pytest.mark.parametrize("guard", ["off", "python-previous", "rust-after-tap", "rust-in-tap"])
def test_chat_proxy_stream_per_chunk(benchmark, guard: str) -> None:
    out = benchmark(lambda: _chat_stream(guard))
    assert out.endswith(b"data: [DONE]\n\n") and out.count(b"data: ") >= len(CHAT_CHUNKS)
    benchmark.extra_info["chunks"] = len(CHAT_CHUNKS)
    _from_mean(benchmark, "us_per_chunk", lambda mean: mean * 1e6 / len(CHAT_CHUNKS))


@pytest.mark.benchmark(group="guardrails-stream-chunk")
@pytest.mark.parametrize("guard", ["off", "python-previous", "rust-after-tap", "rust-in-tap"])
def test_chat_proxy_mock_answer_in_one_read(benchmark, guard: str) -> None:
    out = benchmark(lambda: _chat_stream(guard, MOCK_ANSWER))
    assert out.endswith(b"data: [DONE]\n\n") and out.count(b"data: ") >= 18


@pytest.mark.benchmark(group="guardrails-stream-chunk")
@pytest.mark.parametrize("screened", [False, True], ids=["off", "rust"])
def test_anthropic_passthrough_per_chunk(benchmark, screened: bool) -> None:
    def run() -> bytes:
        screen = AnswerGuard(GATEWAY, METRICS).screen() if screened else None
        transcoder = Transcoder("messages", "messages", "m", 1, screen=screen)
        return b"".join(transcoder.feed(c) for c in ANTHROPIC_CHUNKS)

    out = benchmark(run)
    assert out.endswith(b'{"type":"message_stop"}\n\n')
    _from_mean(benchmark, "us_per_chunk", lambda mean: mean * 1e6 / len(ANTHROPIC_CHUNKS))
