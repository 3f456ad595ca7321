//! Scanner throughput without Python in the way: `make bench-engine` (`make bench-engine-rust` without
//! Hyperscan), or `cargo run --release -p router-core [--features hyperscan] --example scan_throughput`.
//!
//! Scans ~1 MiB of generated English prose (the same shape as `benches/test_guardrails_bench.py`:
//! sentences of common words, one in ten ending with a year) with every default category on (`-- names`:
//! person names too), and a 4 KiB prompt, clean and holding a card, an email and an AWS key (scan +
//! mask); prints MB/s and per-call percentiles for each wake-up pass built in, interleaved round by
//! round so that noise from other processes hits both alike. The pure-Rust row is the pass the engine
//! runs for those categories without Hyperscan; with it, the engine runs the Hyperscan row's pass when
//! names are on or on a text of up to 64 KiB with a hot window, the pure-Rust row's otherwise (see
//! `Wakeup`). Then 4 KiB of each digit-heavy mix (prose with a number per sentence, Python source, JSON
//! log lines, a CSV of numbers; `-- mixes`: only these, `-- mixes mix=JSON`: only that one), scanned:
//! MB/s, p50 and p99.
use std::time::Instant;

use _core::scan::{Categories, Category, Engine, Finding, Masker, Wakeup, DEFAULT_CATEGORIES};

const VOCAB: &str = "the a of to and in is it that for on with as was by this be are from at or an have not they which one you \
were her all she there would their we him been has when who will more no if out so said what up its about \
into than them can only other new some could time these two may then do first any my now such like our over \
man me even most made after also did many before must through back years where much your way well down \
should because each just those people how too little state good very make world still own see men work long \
get here between both life being under never day same another know while last might us great old year off \
come since against go came right used take three model request gateway latency answer summary report draft";

/// xorshift64*: a fixed, dependency-free stream of pseudo-random numbers.
struct Rng(u64);
impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as usize % n
    }
}

fn english(size: usize, seed: u64) -> String {
    let words: Vec<&str> = VOCAB.split(' ').collect();
    let mut rng = Rng(seed);
    let mut out = String::with_capacity(size + 256);
    while out.len() < size {
        let n = 6 + rng.below(13);
        let mut s: String = (0..n)
            .map(|_| words[rng.below(words.len())])
            .collect::<Vec<_>>()
            .join(" ");
        if rng.below(10) == 0 {
            s.push_str(&format!(" in {}", 1990 + rng.below(41)));
        }
        s[..1].make_ascii_uppercase();
        s.push_str([".", ".", ".", "?", "!"][rng.below(5)]);
        s.push(' ');
        out.push_str(&s);
    }
    out.truncate(size);
    out
}

/// English sentences of `english`'s vocabulary, each with one number in a common form (a year, a count,
/// a price, a percentage, a date, a time, a version, an amount with thousands separators).
fn prose_with_numbers(size: usize, seed: u64) -> String {
    let words: Vec<&str> = VOCAB.split(' ').collect();
    let mut rng = Rng(seed);
    let mut out = String::with_capacity(size + 256);
    while out.len() < size {
        let n = 6 + rng.below(11);
        let mut sentence: Vec<String> = (0..n)
            .map(|_| words[rng.below(words.len())].to_owned())
            .collect();
        let number = match rng.below(8) {
            0 => format!("in {}", 1990 + rng.below(41)),
            1 => format!("for {} users", 2 + rng.below(500)),
            2 => format!("at ${}.{:02}", 1 + rng.below(999), rng.below(100)),
            3 => format!("by {}.{}%", rng.below(100), rng.below(10)),
            4 => format!(
                "on {}/{}/20{:02}",
                1 + rng.below(12),
                1 + rng.below(28),
                rng.below(30)
            ),
            5 => format!("at {}:{:02}", rng.below(24), rng.below(60)),
            6 => format!(
                "since version {}.{}.{}",
                rng.below(5),
                rng.below(20),
                rng.below(10)
            ),
            _ => format!("with {},{:03} requests", 1 + rng.below(99), rng.below(1000)),
        };
        sentence.insert(1 + rng.below(n), number);
        let mut s = sentence.join(" ");
        s[..1].make_ascii_uppercase();
        s.push_str([".", ".", ".", "?", "!"][rng.below(5)]);
        s.push(' ');
        out.push_str(&s);
    }
    out.truncate(size);
    out
}

/// Python source: functions with numeric defaults, literals, ranges, hex, floats and comments.
fn python_source(size: usize, seed: u64) -> String {
    let names = [
        "request", "retries", "timeout", "offset", "limit", "batch", "window", "scale", "total",
        "count", "index", "budget", "tokens", "latency", "weight", "score",
    ];
    let mut rng = Rng(seed);
    let mut out = String::with_capacity(size + 512);
    out.push_str("import math\nimport time\n\nMAX_RETRIES = 5\nBACKOFF = 0.25\n\n");
    let mut f = 0;
    while out.len() < size {
        let a = names[rng.below(names.len())];
        let b = names[rng.below(names.len())];
        f += 1;
        let body = [
            format!(
                "def {a}_{f}({b}: int = {}, scale: float = {}.{}) -> float:\n",
                rng.below(1000),
                rng.below(10),
                rng.below(100)
            ),
            format!(
                "    \"\"\"Compute the {a} for {b} (see issue #{}).\"\"\"\n",
                100 + rng.below(9000)
            ),
            format!(
                "    values = [{}, {}, {}, {}]\n",
                rng.below(256),
                rng.below(65536),
                rng.below(10),
                rng.below(1000)
            ),
            format!("    mask = 0x{:04X}\n", rng.below(65536)),
            format!(
                "    for i in range({}, {}, {}):\n",
                rng.below(10),
                10 + rng.below(1000),
                1 + rng.below(4)
            ),
            format!(
                "        if i % {} == {}:\n",
                2 + rng.below(15),
                rng.below(2)
            ),
            format!(
                "            {b} += values[i % {}] * {}.{}\n",
                1 + rng.below(4),
                rng.below(100),
                rng.below(1000)
            ),
            format!(
                "    time.sleep({}.{:03})  # wait {} ms\n",
                rng.below(3),
                rng.below(1000),
                rng.below(5000)
            ),
            format!(
                "    return math.sqrt({b} * scale) / {}.0\n\n\n",
                1 + rng.below(64)
            ),
        ];
        for line in body {
            out.push_str(&line);
        }
    }
    out.truncate(size);
    out
}

/// Structured log lines as JSON: ISO timestamps, levels, status codes, latencies, sizes, request ids.
fn json_logs(size: usize, seed: u64) -> String {
    let paths = [
        "/v1/chat/completions",
        "/v1/messages",
        "/v1/embeddings",
        "/healthz",
        "/v1/models",
        "/metrics",
    ];
    let levels = ["info", "info", "info", "warn", "debug", "error"];
    let methods = ["GET", "POST", "POST", "GET"];
    let mut rng = Rng(seed);
    let mut out = String::with_capacity(size + 512);
    let mut ms = 1_765_000_000_000u64 + rng.below(1_000_000) as u64;
    while out.len() < size {
        ms += rng.below(5000) as u64;
        let (secs, milli) = (ms / 1000 % 86_400, ms % 1000);
        out.push_str(&format!(
            "{{\"ts\":\"2026-12-{:02}T{:02}:{:02}:{:02}.{milli:03}Z\",\"level\":\"{}\",\"method\":\"{}\",\"path\":\"{}\",\
             \"status\":{},\"latency_ms\":{}.{},\"bytes\":{},\"upstream_ms\":{},\"attempt\":{},\
             \"request_id\":\"{:08x}-{:04x}-4{:03x}-{:04x}-{:06x}{:06x}\"}}\n",
            1 + rng.below(28),
            secs / 3600,
            secs / 60 % 60,
            secs % 60,
            levels[rng.below(levels.len())],
            methods[rng.below(methods.len())],
            paths[rng.below(paths.len())],
            [200, 200, 200, 201, 204, 400, 404, 429, 500, 502][rng.below(10)],
            rng.below(3000),
            rng.below(100),
            rng.below(200_000),
            rng.below(2500),
            1 + rng.below(3),
            rng.below(1 << 31),
            rng.below(1 << 16),
            rng.below(1 << 12),
            0x8000 + rng.below(1 << 14),
            rng.below(1 << 24),
            rng.below(1 << 24),
        ));
    }
    out.truncate(size);
    out
}

/// A CSV table of numbers: ids, dates, quantities, prices, ratios, counts.
fn csv_numbers(size: usize, seed: u64) -> String {
    let mut rng = Rng(seed);
    let mut out = String::with_capacity(size + 128);
    out.push_str("id,date,region,quantity,unit_price,total,discount,score,visits\n");
    let mut id = 10_000 + rng.below(1000);
    while out.len() < size {
        id += 1 + rng.below(3);
        let (q, p) = (1 + rng.below(500), 1 + rng.below(20_000));
        out.push_str(&format!(
            "{id},2026-{:02}-{:02},{},{q},{}.{:02},{}.{:02},0.{:02},{}.{},{}\n",
            1 + rng.below(12),
            1 + rng.below(28),
            1 + rng.below(40),
            p / 100,
            p % 100,
            q * p / 100,
            q * p % 100,
            rng.below(50),
            rng.below(100),
            rng.below(10),
            rng.below(100_000),
        ));
    }
    out.truncate(size);
    out
}

fn percentile(samples: &mut [u64], p: f64) -> f64 {
    samples.sort_unstable();
    samples[((samples.len() as f64) * p) as usize] as f64 / 1000.0
}

/// One way of scanning: a pass forced (`whole`: over all of the text, or the prefilter's windows), or
/// left to the engine (`None`, what `Engine::scan` picks).
struct Row {
    name: &'static str,
    engine: Engine,
    whole: Option<bool>,
}

impl Row {
    fn new(name: &'static str, wakeup: Wakeup, whole: Option<bool>) -> Self {
        let engine = Engine::with_wakeup(&[], wakeup).unwrap();
        Self {
            name,
            engine,
            whole,
        }
    }

    fn scan(&self, text: &str, cats: Categories) -> Vec<Finding> {
        match self.whole {
            Some(whole) => self.engine.scan_with(text, cats, whole),
            None => self.engine.scan(text, cats),
        }
    }
}

fn main() {
    // `-- names`: person names on too (their cue words need a pass over the whole text).
    let names = std::env::args().any(|a| a == "names");
    let (cats, cats_label) = if names {
        (
            DEFAULT_CATEGORIES | Category::Names.bit(),
            "every category, person names included",
        )
    } else {
        (DEFAULT_CATEGORIES, "default categories")
    };
    #[allow(unused_mut)] // pushed to with the hyperscan feature
    let mut rows = vec![Row::new(
        if names {
            "pure Rust (Aho-Corasick, whole text)"
        } else {
            "pure Rust (prefilter + Aho-Corasick)"
        },
        Wakeup::Prefilter,
        Some(names),
    )];
    #[cfg(feature = "hyperscan")]
    rows.extend([
        Row::new(
            "Hyperscan literals, whole text",
            Wakeup::Hyperscan,
            Some(true),
        ),
        Row::new(
            "the engine's pick (Hyperscan build)",
            Wakeup::Hyperscan,
            None,
        ),
    ]);
    let text = english(1 << 20, 7);
    let prompt = english(4096, 11);
    let with_values = format!(
        "{} my card is 4111 1111 1111 1111 and mail jane@acme.io {} export AWS_ACCESS_KEY_ID=AKIAQWERTYUIOPASDFGH {}",
        &prompt[..1500],
        &prompt[1500..3000],
        &prompt[3000..3900]
    );
    for row in &rows {
        assert!(row.scan(&text, cats).is_empty());
        assert_eq!(row.scan(&with_values, cats).len(), 3);
    }

    // `-- mixes`: only the digit-heavy 4 KiB mixes (for a profile).
    if std::env::args().any(|a| a == "mixes") {
        mixes(&rows, cats);
        return;
    }
    // `-- values`: only the 4 KiB prompt with values, for a profile.
    let only_values = std::env::args().any(|a| a == "values");
    let rounds = if only_values { 0 } else { 300 };
    let mut secs = vec![Vec::with_capacity(rounds); rows.len()];
    for _ in 0..rounds {
        for (row, s) in rows.iter().zip(&mut secs) {
            let t = Instant::now();
            std::hint::black_box(row.scan(std::hint::black_box(&text), cats));
            s.push(t.elapsed().as_secs_f64());
        }
    }
    if !only_values {
        println!("1 MiB English, {cats_label} ({rounds} rounds):");
    }
    for (row, s) in rows.iter().zip(&mut secs).filter(|_| !only_values) {
        s.sort_by(f64::total_cmp);
        let mbs = |t: f64| text.len() as f64 / t / 1e6;
        println!(
            "  {:<38} median {:>6.0} MB/s   best {:>6.0} MB/s",
            row.name,
            mbs(s[s.len() / 2]),
            mbs(s[0])
        );
    }

    // `-- throughput`: stop here (for `perf stat`).
    if std::env::args().any(|a| a == "throughput") {
        return;
    }
    for (label, p) in [("clean", &prompt), ("with values", &with_values)] {
        if only_values && label == "clean" {
            continue;
        }
        let mut samples = vec![Vec::new(); rows.len()];
        for _ in 0..20_000 {
            for (row, s) in rows.iter().zip(&mut samples) {
                let t = Instant::now();
                let f = row.scan(p, cats);
                std::hint::black_box(Masker::default().apply(&row.engine, p, &f));
                s.push(t.elapsed().as_nanos() as u64);
            }
        }
        println!("4 KiB prompt {label}, scan + mask:");
        for (row, s) in rows.iter().zip(&mut samples) {
            println!(
                "  {:<38} p50 {:>5.1} us   p99 {:>5.1} us",
                row.name,
                percentile(s, 0.5),
                percentile(s, 0.99)
            );
        }
    }
    if !only_values {
        mixes(&rows, cats);
    }
}

/// 4 KiB of each kind of text agents send (prose, with and without numbers; code; JSON logs; a CSV of
/// numbers), scanned (no mask) by each row, interleaved call by call: MB/s from the mean, p50 and p99.
fn mixes(rows: &[Row], cats: Categories) {
    const ROUNDS: usize = 10_000;
    let mixes = [
        (
            "English prose without digits",
            english(8192, 13)
                .split(' ')
                .filter(|w| !w.starts_with(|c: char| c.is_ascii_digit()))
                .collect::<Vec<_>>()
                .join(" "),
        ),
        (
            "prose, one number per sentence",
            prose_with_numbers(4096, 17),
        ),
        ("Python source", python_source(4096, 19)),
        ("JSON log lines", json_logs(4096, 23)),
        ("CSV of numbers", csv_numbers(4096, 29)),
    ];
    println!("4 KiB mixes, scan ({ROUNDS} calls each, MB/s from the mean):");
    // `-- mixes mix=JSON`: only the mixes whose label holds that word (for a profile of one).
    let only = std::env::args().find_map(|a| a.strip_prefix("mix=").map(str::to_owned));
    for (label, text) in &mixes {
        if only.as_ref().is_some_and(|w| !label.contains(w.as_str())) {
            continue;
        }
        let text = &text[..4096];
        let want = rows[0].scan(text, cats);
        for row in rows {
            assert_eq!(row.scan(text, cats), want, "{label}: {}", row.name);
        }
        let mut samples = vec![Vec::with_capacity(ROUNDS); rows.len()];
        for _ in 0..ROUNDS {
            for (row, s) in rows.iter().zip(&mut samples) {
                let t = Instant::now();
                std::hint::black_box(row.scan(std::hint::black_box(text), cats));
                s.push(t.elapsed().as_nanos() as u64);
            }
        }
        println!("  {label} ({} findings):", want.len());
        for (row, s) in rows.iter().zip(&mut samples) {
            let mean = s.iter().sum::<u64>() as f64 / s.len() as f64;
            println!(
                "    {:<36} {:>6.0} MB/s   p50 {:>5.1} us   p99 {:>5.1} us",
                row.name,
                text.len() as f64 / mean * 1e3,
                percentile(s, 0.5),
                percentile(s, 0.99)
            );
        }
    }
}
