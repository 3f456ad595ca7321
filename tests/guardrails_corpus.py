"""A labelled corpus for the guardrails: generated positives (valid checksums, never real values) in
sentences, JSON, code, logs and markdown tables, and tricky negatives that look sensitive but are not.

``evaluate(scan)`` scores a scanner on it: per type, precision and recall; over the negatives, the share of
texts with any finding. ``python tests/guardrails_corpus.py`` prints the table the README quotes.
"""

from __future__ import annotations

import base64
import json
import random
import string
import zlib
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

SEED = 20261123
PER_TYPE = 120
ALNUM = string.ascii_letters + string.digits
B64URL = ALNUM + "_-"
HEX = "0123456789abcdef"
UPPER_DIGITS = string.ascii_uppercase + string.digits
BASE62 = string.digits + string.ascii_uppercase + string.ascii_lowercase

# Types whose recall must reach 0.99 (checksummed or fixed-format values).
STRUCTURED = {
    "CARD", "IBAN", "SSN", "EMAIL", "PRIVATE_KEY", "JWT", "OPENAI_KEY", "ANTHROPIC_KEY", "AWS_ACCESS_KEY",
    "GITHUB_TOKEN", "GITLAB_TOKEN", "SLACK_TOKEN", "STRIPE_KEY", "GOOGLE_API_KEY", "SENDGRID_KEY", "NPM_TOKEN",
    "HUGGINGFACE_TOKEN", "SHOPIFY_TOKEN", "DIGITALOCEAN_TOKEN", "PYPI_TOKEN", "TELEGRAM_BOT_TOKEN",
}  # fmt: skip


@dataclass(frozen=True)
class Sample:
    text: str
    # (type, value) pairs that must be found; empty for a negative.
    expected: tuple[tuple[str, str], ...]


def _rand(rng: random.Random, alphabet: str, n: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


# -- value generators ---------------------------------------------------------------------------------


def luhn_complete(rng: random.Random, prefix: str, length: int) -> str:
    body = prefix + _rand(rng, string.digits, length - len(prefix) - 1)
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return body + str((10 - total % 10) % 10)


CARD_BRANDS = [("4", 16), ("4", 19), ("51", 16), ("55", 16), ("2221", 16), ("2720", 16), ("34", 15), ("37", 15),
               ("6011", 16), ("65", 16), ("3528", 16), ("3589", 16), ("36", 14), ("300", 14), ("62", 16)]  # fmt: skip


def card(rng: random.Random) -> str:
    prefix, length = rng.choice(CARD_BRANDS)
    digits = luhn_complete(rng, prefix, length)
    sep = rng.choice(["", " ", "-"])
    if not sep:
        return digits
    groups = [4, 6, 5] if length == 15 else [4, 6, 4] if length == 14 else [4] * (length // 4) + [length % 4]
    out, i = [], 0
    for g in groups:
        if g:
            out.append(digits[i : i + g])
            i += g
    return sep.join(out)


IBAN_COUNTRIES = {"DE": 22, "GB": 22, "FR": 27, "NL": 18, "ES": 24, "IT": 27, "CH": 21, "BE": 16, "NO": 15,
                  "PL": 28, "AT": 20, "IE": 22, "SE": 24, "PT": 25, "DK": 18, "FI": 18, "RO": 24, "SA": 24}  # fmt: skip
_LETTER_BANK = {"GB", "NL", "IE", "RO"}


def iban(rng: random.Random) -> str:
    cc = rng.choice(sorted(IBAN_COUNTRIES))
    n = IBAN_COUNTRIES[cc] - 4
    bban = (
        (_rand(rng, string.ascii_uppercase, 4) + _rand(rng, string.digits, n - 4))
        if cc in _LETTER_BANK
        else (_rand(rng, string.digits, n))
    )
    num = "".join(str(int(c, 36)) for c in bban + cc + "00")
    check = 98 - int(num) % 97
    value = f"{cc}{check:02d}{bban}"
    if rng.random() < 0.5:
        value = " ".join(value[i : i + 4] for i in range(0, len(value), 4))
    return value


def ssn(rng: random.Random) -> str:
    area = rng.choice([a for a in range(1, 900) if a != 666])
    return f"{area:03d}-{rng.randint(1, 99):02d}-{rng.randint(1, 9999):04d}"


FIRST = ["jane", "john", "maria", "wei", "fatima", "olga", "diego", "amara", "lukas", "priya", "kenji", "noor"]
LAST = ["doe", "smith", "garcia", "chen", "khan", "ivanova", "lopez", "okafor", "muller", "patel", "sato", "ali"]
DOMAINS = ["acme-corp.io", "example-mail.com", "fastmail.fm", "uni-hamburg.de", "startup.ai", "bank.co.uk"]


def email(rng: random.Random) -> str:
    sep = rng.choice([".", "_", "", "+news."])
    number = rng.randint(1, 99) if rng.random() < 0.3 else ""
    return f"{rng.choice(FIRST)}{sep}{rng.choice(LAST)}{number}@{rng.choice(DOMAINS)}"


def phone(rng: random.Random) -> str:
    kind = rng.randrange(4)
    if kind == 0:
        return f"+1 {rng.randint(201, 989)} {rng.randint(200, 999)} {rng.randint(0, 9999):04d}"
    if kind == 1:
        return f"({rng.randint(201, 989)}) {rng.randint(200, 999)}-{rng.randint(0, 9999):04d}"
    if kind == 2:
        return f"+44 20 {rng.randint(1000, 9999)} {rng.randint(1000, 9999)}"
    return f"+49{rng.randint(150, 179)}{rng.randint(1000000, 9999999)}"


def ipv4(rng: random.Random) -> str:
    first = rng.choice([23, 52, 81, 104, 151, 185, 203])
    return f"{first}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"


def aba(rng: random.Random) -> str:
    while True:
        prefix = rng.choice(["01", "02", "03", "04", "05", "06", "07", "08", "09", "10", "11", "12", "21", "26", "31"])
        body = prefix + _rand(rng, string.digits, 6)
        weights = [3, 7, 1, 3, 7, 1, 3, 7]
        s = sum(int(c) * w for c, w in zip(body, weights, strict=True))
        value = body + str((10 - s % 10) % 10)
        if len(set(value)) > 1:
            return value


def crc_token(rng: random.Random, prefix: str) -> str:
    body = _rand(rng, ALNUM, 30)
    v = zlib.crc32(body.encode())
    tail = ""
    for _ in range(6):
        v, r = divmod(v, 62)
        tail = BASE62[r] + tail
    return prefix + body + tail


def pem(rng: random.Random) -> str:
    kind = rng.choice(["RSA ", "EC ", "", "OPENSSH ", "ENCRYPTED "])
    lines = [base64.b64encode(rng.randbytes(48)).decode() for _ in range(rng.randint(3, 8))]
    return f"-----BEGIN {kind}PRIVATE KEY-----\n" + "\n".join(lines) + f"\n-----END {kind}PRIVATE KEY-----"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def jwt(rng: random.Random) -> str:
    header = _b64url(json.dumps({"alg": rng.choice(["HS256", "RS256"]), "typ": "JWT"}).encode())
    claims = {"sub": str(rng.randint(1, 10**9)), "iat": rng.randint(1_600_000_000, 1_800_000_000)}
    payload = _b64url(json.dumps(claims).encode())
    return f"{header}.{payload}.{_b64url(rng.randbytes(32))}"


def _b32(rng: random.Random, n: int) -> str:
    return _rand(rng, string.ascii_uppercase + "234567", n)


TOKENS: dict[str, Callable[[random.Random], str]] = {
    "OPENAI_KEY": lambda r: "sk-proj-" + _rand(r, B64URL, 74) + "T3BlbkFJ" + _rand(r, B64URL, 74),
    "ANTHROPIC_KEY": lambda r: "sk-ant-api03-" + _rand(r, B64URL, 93) + "AA",
    "AWS_ACCESS_KEY": lambda r: r.choice(["AKIA", "ASIA"]) + _b32(r, 16),
    "GITHUB_TOKEN": lambda r: crc_token(r, r.choice(["ghp_", "gho_", "ghs_", "ghu_"])),
    "GITLAB_TOKEN": lambda r: "glpat-" + _rand(r, B64URL, 20),
    "SLACK_TOKEN": lambda r: f"xoxb-{r.randint(10**10, 10**11)}-{r.randint(10**10, 10**11)}-{_rand(r, ALNUM, 24)}",
    "STRIPE_KEY": lambda r: r.choice(["sk_live_", "rk_live_", "sk_test_"]) + _rand(r, ALNUM, r.choice([24, 99])),
    "GOOGLE_API_KEY": lambda r: "AIza" + _rand(r, B64URL, 35),
    "SENDGRID_KEY": lambda r: "SG." + _rand(r, B64URL, 22) + "." + _rand(r, B64URL, 43),
    "NPM_TOKEN": lambda r: crc_token(r, "npm_"),
    "HUGGINGFACE_TOKEN": lambda r: "hf_" + _rand(r, ALNUM, 34),
    "SHOPIFY_TOKEN": lambda r: r.choice(["shpat_", "shpss_"]) + _rand(r, HEX, 32),
    "DIGITALOCEAN_TOKEN": lambda r: "dop_v1_" + _rand(r, HEX, 64),
    "PYPI_TOKEN": lambda r: "pypi-AgEIcHlwaS5vcmc" + _rand(r, B64URL, 150),
    "TELEGRAM_BOT_TOKEN": lambda r: f"{r.randint(10**8, 10**9)}:AA{_rand(r, B64URL, 33)}",
    "PRIVATE_KEY": pem,
    "JWT": jwt,
}

# -- templates ----------------------------------------------------------------------------------------

PROSE = [
    "Hi team, please use {v} for the migration.",
    "As discussed on the call, the value is {v} — let me know if that works.",
    "{v}",
    "Can you check why {v} shows up in the report?",
]
JSON_T = ['{{"user": "u{n}", "value": "{v}", "active": true}}', '[{{"id": {n}, "data": "{v}"}}]']
CODE_T = ['config = {{"key_{n}": "{v}"}}\nclient.connect(config)', "let x{n} = `{v}`;", '# value\nVALUE_{n}="{v}"']
LOG_T = ["2026-11-23T10:{n:02d}:00Z INFO request value={v} status=200", "[worker-{n}] WARN saw {v} in payload"]
TABLE_T = ["| name | value |\n|---|---|\n| row {n} | {v} |"]

CUED = {
    "CARD": ["Card number: {v}", "please charge {v} for the order total", "visa {v} on file"],
    "IBAN": ["IBAN: {v}", "Wire the money to {v} by Friday."],
    "SSN": ["SSN: {v}", "Employee social security number {v} is on file."],
    "EMAIL": ["Contact {v} for access.", "From: {v}"],
    "PHONE": ["Call me at {v} tomorrow.", "Phone: {v}"],
    "IP_ADDRESS": ["The server at {v} refused the connection.", "client_ip={v}"],
    "ABA_ROUTING": ["Routing number: {v}", "ABA {v} for the transfer."],
}
# Support tickets, order disputes, invoices and logs: the words that label order, ticket, invoice and build
# numbers stand right next to the values (a card number is a card whatever words surround it).
CONTEXT_HEAVY = {
    "CARD": [
        "Refund order {n}123 to card {v}",
        "ticket #{n}411: customer card {v}",
        "order {v} has shipped",
        "Order dispute #{n}: I was charged twice on {v}, please reverse the second charge.",
        "Invoice INV-2026-{n:04d} paid with {v} (serial SN-{n}77).",
        "[ticket {n}] customer read out {v} over the phone; tracking 1Z{n}X in the order notes",
        "order={n} invoice={n}9 card={v} status=declined",
    ],
    "SSN": [
        "Ticket #{n}: the customer's SSN {v} is on the W-9 attached to the invoice.",
        "Case {n} (order 88123): employee {v} is missing from payroll.",
    ],
    "IBAN": ["Invoice {n}: please wire the balance to {v} by Friday.", "Order dispute #{n}: refund to {v}"],
    "EMAIL": ["ticket #{n} opened by {v} about order 88123", "Invoice {n} sent to {v}"],
    "PHONE": ["Order {n}: customer phone {v}, call after 5pm.", "ticket #{n}: callback {v}"],
}


def _render(rng: random.Random, template: str, v: str) -> str:
    return template.format(v=v, n=rng.randint(0, 59))


def positives(rng: random.Random) -> list[Sample]:
    out: list[Sample] = []
    structured: dict[str, Callable[[random.Random], str]] = {
        "CARD": card, "IBAN": iban, "SSN": ssn, "EMAIL": email, "PHONE": phone, "IP_ADDRESS": ipv4,
        "ABA_ROUTING": aba, **TOKENS,
    }  # fmt: skip
    for kind, gen in structured.items():
        templates = (CUED.get(kind) or (PROSE + CODE_T + LOG_T + TABLE_T)) + CONTEXT_HEAVY.get(kind, [])
        if kind not in ("ABA_ROUTING", "PRIVATE_KEY"):
            templates = templates + JSON_T
        for _ in range(PER_TYPE):
            v = gen(rng)
            out.append(Sample(_render(rng, rng.choice(templates), v), ((kind, v),)))
    # Cue-word types and assignments.
    for _ in range(PER_TYPE):
        pw = _rand(rng, ALNUM + "!#%&*", rng.randint(8, 16))
        user = rng.choice(FIRST)
        host = f"db-{rng.randint(1, 9)}.internal"
        out += [
            Sample(f'DB_PASSWORD="{pw}"', (("PASSWORD", pw),)),
            Sample(f"postgres://{user}:{pw}@{host}:5432/app", (("URL_PASSWORD", pw),)),
            Sample(f"CVV: {rng.randint(100, 999)}", (("CVV", None),)),  # type: ignore[arg-type]
        ]
    return out


NEGATIVES_FIXED = [
    "The quick brown fox jumps over the lazy dog.",
    "Use sk-... as a placeholder for your OpenAI key.",
    "export OPENAI_API_KEY=sk-xxxxxxxxxxxxxxxxxxxxxxxx",
    "AWS example: AKIAIOSFODNN7EXAMPLE / wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx is not a real token",
    "api_key = os.environ['OPENAI_API_KEY']",
    "password: ${DB_PASSWORD}",
    "token = get_token()",
    "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----",
    "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n-----END CERTIFICATE-----",
    "The meeting is at 10:30:00 on 2026-11-23.",
    "Python 3.12.1 and numpy 1.26.4 on macOS 14.2.1",
    "Windows build 10.0.19045.2006 is installed.",
    "ISBN 978-3-16-148410-0",
    "Coordinates: 37.7749, -122.4194",
    "The key insight is that the secret to success is hard work.",
    "Reset your password using the link we emailed.",
    "The token limit is 128000 and the answer used 5123 tokens.",
    "Scale factor 0.4111111111111111 applied.",
]


def not_luhn(digits: str) -> str:
    """`digits` with its check digit off by one: the shape of a card, not a card."""
    return digits[:-1] + str((int(digits[-1]) + 1) % 10)


def negatives(rng: random.Random) -> list[Sample]:
    texts: list[str] = list(NEGATIVES_FIXED)
    for _ in range(PER_TYPE):
        uuid = "-".join(_rand(rng, HEX, n) for n in (8, 4, 4, 4, 12))
        sha = _rand(rng, HEX, 40)
        luhn_not_card = luhn_complete(rng, rng.choice(["9", "80", "1", "7"]), rng.choice([13, 16]))
        epoch_ms = str(rng.randint(1_500_000_000_000, 1_800_000_000_000))
        texts += [
            f"request id {uuid} completed",
            f"commit {sha} fixed the build",
            f"sha256:{_rand(rng, HEX, 64)}",
            f"md5 {_rand(rng, HEX, 32)}",
            f"Order #{rng.randint(10**7, 10**9)} shipped, tracking 1Z{_rand(rng, UPPER_DIGITS, 16)}",
            f"Order #{rng.randint(10**4, 10**6)} (ticket {rng.randint(100, 9999)}, invoice {rng.randint(1, 999)}) done",
            f"Order {not_luhn(luhn_complete(rng, '4', 16))} has shipped; ticket #{rng.randint(100, 9999)}",
            f"IMEI {luhn_complete(rng, '35', 15)} on the ticket, serial {rng.randint(10**6, 10**8)}",
            f"[ci] build {ssn(rng)} passed; release {rng.randint(1, 9)}.{rng.randint(0, 30)} tagged",
            f"2026-11-23T10:{rng.randint(0, 59):02d}:00Z INFO build={ssn(rng)} version={rng.randint(1, 9)}.2.1",
            f"Firmware {ssn(rng)} flashed to serial SN{rng.randint(10**5, 10**7)}",
            f"part number: {ssn(rng)}, lot {rng.randint(100, 999)}",
            f"reference {luhn_not_card}",
            f"ts={epoch_ms}",
            f"version {rng.randint(1, 20)}.{rng.randint(0, 30)}.{rng.randint(0, 300)}.{rng.randint(0, 9999)}",
            f"v{rng.randint(1, 9)}.{rng.randint(0, 20)}.{rng.randint(0, 99)}-rc.{rng.randint(1, 9)}",
            f'<img src="data:image/png;base64,{base64.b64encode(rng.randbytes(90)).decode()}">',
            f"The total is ${rng.randint(1, 999)}.{rng.randint(0, 99):02d} for {rng.randint(1, 9)} items.",
            f"Room {rng.randint(100, 999)}, floor {rng.randint(1, 40)}, call ext. {rng.randint(100, 9999)}",
            f"{rng.randint(1, 28)}/{rng.randint(1, 12)}/{rng.randint(1990, 2030)} meeting notes",
            f"| {rng.randint(1, 99)} | {rng.randint(1000, 99999)} | {rng.random():.6f} |",
            f"sk-{_rand(rng, string.ascii_lowercase, 6)}-placeholder",
            f"SELECT * FROM t WHERE id = {rng.randint(1, 10**9)} AND x > {rng.random():.4f};",
        ]
    return [Sample(t, ()) for t in texts]


def corpus() -> tuple[list[Sample], list[Sample]]:
    rng = random.Random(SEED)
    return positives(rng), negatives(rng)


# -- scoring ------------------------------------------------------------------------------------------

ScanFn = Callable[[str], Sequence[tuple[str, int, int]]]  # text -> (type, start, end)


@dataclass
class Score:
    recall: dict[str, float]
    precision: dict[str, float]
    negative_fp_rate: float
    support: dict[str, int]


def evaluate(scan: ScanFn) -> Score:
    pos, neg = corpus()
    tp: Counter[str] = Counter()
    fn: Counter[str] = Counter()
    fp: Counter[str] = Counter()
    for s in pos:
        found = list(scan(s.text))
        matched = set()
        for kind, value in s.expected:
            hit = None
            for i, (t, a, b) in enumerate(found):
                if t == kind and (value is None or s.text[a:b] == value):
                    hit = i
                    break
            if hit is None:
                fn[kind] += 1
            else:
                tp[kind] += 1
                matched.add(hit)
        for i, (t, _, _) in enumerate(found):
            if i not in matched and t not in {k for k, _ in s.expected}:
                fp[t] += 1
    neg_hits = 0
    for s in neg:
        found = list(scan(s.text))
        if found:
            neg_hits += 1
            for t, _, _ in found:
                fp[t] += 1
    kinds = sorted(set(tp) | set(fn) | set(fp))
    recall = {k: tp[k] / (tp[k] + fn[k]) for k in kinds if tp[k] + fn[k]}
    precision = {k: tp[k] / (tp[k] + fp[k]) if tp[k] + fp[k] else 0.0 for k in kinds}
    return Score(recall, precision, neg_hits / len(neg), {k: tp[k] + fn[k] for k in kinds})


# Person names (the opt-in "names" category): cue-word rules, so precision is the number to watch.
NAME_FIRST = ["John", "Maria", "Wei", "Fatima", "Olga", "Diego", "Amara", "Lukas", "Priya", "Kenji"]
NAME_LAST = ["Smith", "Garcia", "Chen", "Khan", "Ivanova", "Lopez", "Okafor", "Muller", "Patel", "Sato"]
NAME_TEMPLATES = ["Dear {n},\nthanks for your order.", "My name is {n} and I need help.", "Name: {n}",
                  "Please ask Dr. {n} to call back.", "Best regards,\n{n}", "Patient: {n}, admitted today"]  # fmt: skip
NAME_NEGATIVES = [
    "Dear team, the release is out.", "My name is on the list.", "Name: the name of the field",
    "Dear Customer, your parcel is delayed.", "Regards, The Support Team", "Mr. Robot is a TV show.",
    "The customer: Acme Corp signed.", "Best regards, and see you Monday.", "Dr. Pepper is a soda.",
    "Dear Sir or Madam,", "Signed, Sealed, Delivered is a song.", "Patient zero was never found.",
]  # fmt: skip


def names_corpus() -> list[Sample]:
    rng = random.Random(SEED)
    out = []
    for _ in range(PER_TYPE):
        name = f"{rng.choice(NAME_FIRST)} {rng.choice(NAME_LAST)}"
        out.append(Sample(rng.choice(NAME_TEMPLATES).format(n=name), (("PERSON", name),)))
    return out + [Sample(t, ()) for t in NAME_NEGATIVES]


def names_precision_recall() -> tuple[float, float]:
    from router import guardrails

    tp = fp = fn = 0
    for s in names_corpus():
        found = [s.text[f.start : f.end] for f in guardrails.scan(s.text, categories=["names"])]
        expected = [v for _, v in s.expected]
        tp += sum(1 for v in found if v in expected)
        fp += sum(1 for v in found if v not in expected)
        fn += sum(1 for v in expected if v not in found)
    return tp / (tp + fp), tp / (tp + fn)


def rust_scan(text: str) -> list[tuple[str, int, int]]:
    from router import guardrails

    return [(f.type, f.start, f.end) for f in guardrails.scan(text)]


if __name__ == "__main__":
    score = evaluate(rust_scan)
    print("| type | samples | precision | recall |\n|---|---|---|---|")
    for k in sorted(score.recall):
        print(f"| {k} | {score.support[k]} | {score.precision[k]:.3f} | {score.recall[k]:.3f} |")
    print(f"\nnegatives with any finding: {score.negative_fp_rate:.2%} of {len(corpus()[1])}")
    precision, recall = names_precision_recall()
    print(f"names (opt-in): precision {precision:.3f}, recall {recall:.3f} on {len(names_corpus())} texts")
