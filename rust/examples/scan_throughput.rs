//! Scanner throughput without Python in the way: `make bench-engine`, or
//! `cargo run --release -p router-core [--features hyperscan] --example scan_throughput`.
//!
//! Scans ~1 MiB of generated English prose (the same shape as `benches/test_guardrails_bench.py`:
//! sentences of common words, one in ten ending with a year) with every default category on (`-- names`:
//! person names too), and a 4 KiB prompt, clean and holding a card, an email and an AWS key (scan +
//! mask); prints MB/s and per-call percentiles for each wake-up pass built in, interleaved round by
//! round so that noise from other processes hits both alike. The pure-Rust row is the pass the engine
//! runs for those categories without Hyperscan; with it, the engine runs the Hyperscan row's pass when
//! names are on or on a text of up to 64 KiB with a hot window, the pure-Rust row's otherwise (see
//! `Wakeup`).
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
}
