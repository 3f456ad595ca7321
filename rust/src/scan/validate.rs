//! Validators run on regex candidates only: checksums, issuer tables, ranges, entropy, placeholders.
//!
//! Each takes the whole haystack and the candidate's byte span (so it can look at the surroundings)
//! and returns the span to report, possibly shortened, or `None` to drop the candidate.

/// Which validator a rule's candidates go through.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Check {
    None,
    Card,
    Iban,
    Aba,
    /// A nine-digit number after an SSN cue word.
    Ssn,
    /// A bare `ddd-dd-dddd`: an SSN unless the word right before it labels it as another kind of number.
    SsnShape,
    Phone,
    Ipv4,
    Ipv6,
    Email,
    /// Digits in the value (ignoring separators) between the two bounds.
    Digits(u8, u8),
    /// Shannon entropy of the value at least this many bits per character.
    Entropy(f64),
    /// GitHub classic / npm tokens: CRC32 of the random part, base62, in the last six characters.
    Crc32Base62,
    Jwt,
    AwsKeyId,
    AwsSecret,
    Pem,
    Swift,
    /// Value of a `password=`-style assignment.
    Password,
    /// Value of a `secret=`/`token=`/`api_key=`-style assignment, or a string next to such a cue.
    Secret(f64),
    UrlPassword,
    /// A capitalised name after a cue: not a salutation word (`Dear Customer`, `Regards, The Team`).
    PersonName,
}

pub fn run(check: Check, text: &str, start: usize, end: usize) -> Option<(usize, usize)> {
    let value = &text[start..end];
    let ok = match check {
        Check::None => true,
        Check::Card => return card(text, start, end),
        Check::Iban => return iban(value).map(|len| (start, start + len)),
        Check::Aba => aba(value),
        Check::Ssn => ssn(value),
        Check::SsnShape => ssn(value) && !labelled_not_ssn(text, start),
        Check::Phone => phone(text, start, end),
        Check::Ipv4 => ipv4(text, start, end),
        Check::Ipv6 => ipv6(value),
        Check::Email => email(value),
        Check::Digits(lo, hi) => {
            let n = value.bytes().filter(u8::is_ascii_digit).count();
            (lo as usize..=hi as usize).contains(&n) && !all_same_digit(value)
        }
        Check::Entropy(floor) => shannon(value) >= floor && !placeholder(value),
        Check::Crc32Base62 => crc32_base62(value),
        Check::Jwt => jwt(value),
        Check::AwsKeyId => !value.ends_with("EXAMPLE"),
        Check::AwsSecret => {
            !value.contains("EXAMPLE")
                && !value
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
                && shannon(value) >= 4.0
        }
        Check::Pem => pem(value),
        Check::Swift => swift(value),
        Check::Password => password(value),
        Check::Secret(floor) => secret(value, floor),
        Check::UrlPassword => password(value) && !value.starts_with('$'),
        Check::PersonName => !NOT_NAMES.contains(&value.split([' ', '-']).next().unwrap_or("")),
    };
    ok.then_some((start, end))
}

/// Up to `n` bytes before `start`, lower-cased (for cue words that rule a candidate out).
fn lead_lower(text: &str, start: usize, n: usize) -> String {
    text[super::engine::floor_boundary(text, start.saturating_sub(n))..start].to_ascii_lowercase()
}

/// Shannon entropy in bits per character (over bytes; candidates are ASCII).
pub fn shannon(s: &str) -> f64 {
    let mut freq = [0u32; 256];
    for &b in s.as_bytes() {
        freq[b as usize] += 1;
    }
    let n = s.len() as f64;
    freq.iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = f64::from(c) / n;
            -p * p.log2()
        })
        .sum()
}

fn digits(s: &str) -> Vec<u8> {
    s.bytes()
        .filter(u8::is_ascii_digit)
        .map(|b| b - b'0')
        .collect()
}

fn all_same_digit(s: &str) -> bool {
    let d = digits(s);
    d.windows(2).all(|w| w[0] == w[1])
}

/// The separators between digit groups are all the same (or there are none).
fn consistent_separators(s: &str) -> bool {
    let mut seen: Option<u8> = None;
    for b in s.bytes().filter(|b| !b.is_ascii_digit()) {
        match seen {
            None => seen = Some(b),
            Some(x) if x == b => {}
            Some(_) => return false,
        }
    }
    true
}

pub fn luhn(d: &[u8]) -> bool {
    let sum: u32 = d
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &x)| {
            let mut x = u32::from(x);
            if i % 2 == 1 {
                x *= 2;
                if x > 9 {
                    x -= 9;
                }
            }
            x
        })
        .sum();
    sum.is_multiple_of(10)
}

fn prefix_num(d: &[u8], n: usize) -> u32 {
    d.iter().take(n).fold(0, |acc, &x| acc * 10 + u32::from(x))
}

/// Issuer (IIN) prefix and the lengths that issuer uses.
fn card_issuer_ok(d: &[u8]) -> bool {
    let len = d.len();
    let p1 = prefix_num(d, 1);
    let p2 = prefix_num(d, 2);
    let p3 = prefix_num(d, 3);
    let p4 = prefix_num(d, 4);
    let p6 = prefix_num(d, 6);
    let visa = p1 == 4 && matches!(len, 13 | 16 | 18 | 19);
    let mastercard = ((51..=55).contains(&p2) || (2221..=2720).contains(&p4)) && len == 16;
    let amex = (p2 == 34 || p2 == 37) && len == 15;
    let discover =
        (p4 == 6011 || (644..=649).contains(&p3) || p2 == 65 || (622126..=622925).contains(&p6))
            && (16..=19).contains(&len);
    let jcb = (3528..=3589).contains(&p4) && (16..=19).contains(&len);
    let diners = ((300..=305).contains(&p3) || p3 == 309 || p2 == 36 || p2 == 38 || p2 == 39)
        && (14..=19).contains(&len);
    let unionpay = (p2 == 62 || (8110..=8171).contains(&p4)) && (14..=19).contains(&len);
    let mir = (2200..=2204).contains(&p4) && (16..=19).contains(&len);
    visa || mastercard || amex || discover || jcb || diners || unionpay || mir
}

fn card(text: &str, start: usize, end: usize) -> Option<(usize, usize)> {
    let value = &text[start..end];
    let d = digits(value);
    if !(13..=19).contains(&d.len()) || !consistent_separators(value) || all_same_digit(value) {
        return None;
    }
    // Only the characters glued to the digits can make them a number rather than a card: the fraction of
    // a float (`0.4111111111111111`), an exponent (`1e-4111…`) or the integer part of a decimal
    // (`4111111111111111.5`). No word around a number with a card's issuer, length and Luhn digit hides
    // it: support tickets, order disputes and invoices are where card numbers get pasted.
    let before = &text.as_bytes()[..start];
    let after = &text.as_bytes()[end..];
    let fraction = matches!(before, [.., d, b'.'] if d.is_ascii_digit());
    let exponent = matches!(before, [.., d, b'e' | b'E', b'-' | b'+'] if d.is_ascii_digit());
    let decimal = matches!(after, [b'.', c, ..] if c.is_ascii_digit());
    if fraction || exponent || decimal {
        return None;
    }
    (card_issuer_ok(&d) && luhn(&d)).then_some((start, end))
}

/// IBAN registry lengths (SWIFT registry release 102, plus RU).
const IBAN_LENGTHS: &[(&str, u8)] = &[
    ("AD", 24),
    ("AE", 23),
    ("AL", 28),
    ("AT", 20),
    ("AZ", 28),
    ("BA", 20),
    ("BE", 16),
    ("BG", 22),
    ("BH", 22),
    ("BI", 27),
    ("BR", 29),
    ("BY", 28),
    ("CH", 21),
    ("CR", 22),
    ("CY", 28),
    ("CZ", 24),
    ("DE", 22),
    ("DJ", 27),
    ("DK", 18),
    ("DO", 28),
    ("EE", 20),
    ("EG", 29),
    ("ES", 24),
    ("FI", 18),
    ("FK", 18),
    ("FO", 18),
    ("FR", 27),
    ("GB", 22),
    ("GE", 22),
    ("GI", 23),
    ("GL", 18),
    ("GR", 27),
    ("GT", 28),
    ("HN", 28),
    ("HR", 21),
    ("HU", 28),
    ("IE", 22),
    ("IL", 23),
    ("IQ", 23),
    ("IS", 26),
    ("IT", 27),
    ("JO", 30),
    ("KW", 30),
    ("KZ", 20),
    ("LB", 28),
    ("LC", 32),
    ("LI", 21),
    ("LT", 20),
    ("LU", 20),
    ("LV", 21),
    ("LY", 25),
    ("MC", 27),
    ("MD", 24),
    ("ME", 22),
    ("MK", 19),
    ("MN", 20),
    ("MR", 27),
    ("MT", 31),
    ("MU", 30),
    ("NI", 28),
    ("NL", 18),
    ("NO", 15),
    ("OM", 23),
    ("PK", 24),
    ("PL", 28),
    ("PS", 29),
    ("PT", 25),
    ("QA", 29),
    ("RO", 24),
    ("RS", 22),
    ("RU", 33),
    ("SA", 24),
    ("SC", 31),
    ("SD", 18),
    ("SE", 24),
    ("SI", 19),
    ("SK", 24),
    ("SM", 27),
    ("SO", 23),
    ("ST", 25),
    ("SV", 28),
    ("TL", 23),
    ("TN", 24),
    ("TR", 26),
    ("UA", 29),
    ("VA", 22),
    ("VG", 24),
    ("XK", 20),
    ("YE", 30),
];

pub fn iban_length(country: &str) -> Option<usize> {
    IBAN_LENGTHS
        .binary_search_by(|(c, _)| (*c).cmp(country))
        .ok()
        .map(|i| IBAN_LENGTHS[i].1 as usize)
}

pub fn iban_mod97(compact: &[u8]) -> bool {
    let mut r: u32 = 0;
    for &c in compact[4..].iter().chain(&compact[..4]) {
        match c {
            b'0'..=b'9' => r = (r * 10 + u32::from(c - b'0')) % 97,
            b'A'..=b'Z' => r = (r * 100 + u32::from(c - b'A' + 10)) % 97,
            _ => return false,
        }
    }
    r == 1
}

/// Returns the byte length of the valid IBAN at the start of `value`: the registry length decides
/// where it ends (a greedy candidate may have swallowed a following group), then mod-97.
fn iban(value: &str) -> Option<usize> {
    let want = iban_length(value.get(..2)?)?;
    let mut compact = Vec::with_capacity(34);
    let mut cut = None;
    for (i, b) in value.bytes().enumerate() {
        if b.is_ascii_alphanumeric() {
            compact.push(b);
            if compact.len() == want {
                cut = Some(i + 1);
                break;
            }
        }
    }
    let cut = cut?;
    // Shortened: it must end at a group boundary, not in the middle of a group.
    if cut < value.len() && !matches!(value.as_bytes()[cut], b' ' | b'-') {
        return None;
    }
    iban_mod97(&compact).then_some(cut)
}

fn aba(value: &str) -> bool {
    let d = digits(value);
    if d.len() != 9 || all_same_digit(value) {
        return false;
    }
    let p = prefix_num(&d, 2);
    let prefix_ok = p <= 12 || (21..=32).contains(&p) || (61..=72).contains(&p) || p == 80;
    let w = [3u32, 7, 1, 3, 7, 1, 3, 7, 1];
    prefix_ok && d.iter().zip(w).map(|(&c, w)| u32::from(c) * w).sum::<u32>() % 10 == 0
}

fn ssn(value: &str) -> bool {
    let d = digits(value);
    if d.len() != 9 || !consistent_separators(value) || all_same_digit(value) {
        return false;
    }
    let area = prefix_num(&d, 3);
    let group = prefix_num(&d[3..], 2);
    let serial = prefix_num(&d[5..], 4);
    area != 0
        && area != 666
        && area < 900
        && group != 0
        && serial != 0
        && d != [1, 2, 3, 4, 5, 6, 7, 8, 9]
}

/// Labels that make a bare `ddd-dd-dddd` the number of a build, release, part, lot or record: `build
/// 858-12-4680` is a version string, not an SSN. Only the word right before the number counts (after `#`,
/// `:`, `no.` and the like), so a cue elsewhere in the sentence changes nothing; an SSN cue word
/// (`SSN 123-45-6789`) is a rule of its own and is never lowered.
const NOT_SSN_LABELS: [&str; 33] = [
    "batch",
    "bug",
    "build",
    "case",
    "change",
    "commit",
    "fw",
    "firmware",
    "invoice",
    "issue",
    "item",
    "job",
    "kb",
    "lot",
    "model",
    "order",
    "part",
    "patch",
    "po",
    "pr",
    "rel",
    "release",
    "ref",
    "reference",
    "rev",
    "revision",
    "run",
    "serial",
    "sku",
    "ticket",
    "tracking",
    "v",
    "version",
];

fn labelled_not_ssn(text: &str, start: usize) -> bool {
    let lead = lead_lower(text, start, 32);
    let mut words = lead
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .rev();
    let mut word = words.next();
    // `build no. 858-12-4680`, `part number 123-45-6789`, `order id 123-45-6789`.
    if matches!(word, Some("no" | "nr" | "num" | "number" | "id")) {
        word = words.next();
    }
    // A number in between (`ticket 12 123-45-6789`) is the word right before, and it is no label.
    word.is_some_and(|w| NOT_SSN_LABELS.contains(&w))
}

fn phone(text: &str, start: usize, end: usize) -> bool {
    let value = &text[start..end];
    let n = value.bytes().filter(u8::is_ascii_digit).count();
    if !(7..=15).contains(&n) || all_same_digit(value) {
        return false;
    }
    // GUID fragments and dotted versions: no hex letters, hyphens or dots glued on either side.
    let before = text[..start].bytes().next_back();
    let after = text[end..].bytes().next();
    let glued =
        |b: Option<u8>| matches!(b, Some(c) if c.is_ascii_alphanumeric() || c == b'-' || c == b'_');
    let dotted = |b: Option<u8>| matches!(b, Some(b'.' | b'/' | b':'));
    let digit_after_dot = text.as_bytes().get(end + 1).is_some_and(u8::is_ascii_digit);
    !(glued(before) || glued(after) || dotted(before) || (dotted(after) && digit_after_dot))
}

fn ipv4(text: &str, start: usize, end: usize) -> bool {
    let value = &text[start..end];
    let before = &text.as_bytes()[..start];
    let after = &text.as_bytes()[end..];
    // OIDs and four-part versions: `1.3.6.1.4.1`, `v10.7.31.9`, `version 1.2.3.4`.
    if matches!(before.last(), Some(b'.' | b'v' | b'V' | b'-' | b'_'))
        || matches!(after, [b'.', c, ..] if c.is_ascii_digit())
    {
        return false;
    }
    let lead = lead_lower(text, start, 16);
    if lead.contains("version") || lead.ends_with("ver ") || lead.ends_with("oid ") {
        return false;
    }
    match value.parse::<std::net::Ipv4Addr>() {
        Ok(ip) => !ip.is_unspecified() && !ip.is_loopback() && !ip.is_broadcast(),
        Err(_) => false,
    }
}

fn ipv6(value: &str) -> bool {
    // Times like 12:30:45 never parse; `::` alone and loopback are not personal data. The rule wakes on digits,
    // so an all-letter form (`a::a`, `dead::beef`) would be found only when a digit happened to sit nearby:
    // one answer for the same words, whatever surrounds them, means such forms are never an address.
    value.bytes().any(|b| b.is_ascii_digit())
        && value.bytes().filter(|&b| b == b':').count() >= 2
        && matches!(value.parse::<std::net::Ipv6Addr>(), Ok(ip) if !ip.is_loopback() && !ip.is_unspecified())
}

fn email(value: &str) -> bool {
    let Some((local, domain)) = value.rsplit_once('@') else {
        return false;
    };
    !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local != "git"
        && domain
            .rsplit('.')
            .next()
            .is_some_and(|tld| tld.len() >= 2 && tld.bytes().all(|b| b.is_ascii_alphabetic()))
}

fn base62(c: u8) -> Option<u64> {
    match c {
        b'0'..=b'9' => Some(u64::from(c - b'0')),
        b'A'..=b'Z' => Some(u64::from(c - b'A' + 10)),
        b'a'..=b'z' => Some(u64::from(c - b'a' + 36)),
        _ => None,
    }
}

pub fn crc32_base62(tok: &str) -> bool {
    let b = tok.as_bytes();
    if b.len() != 40 {
        return false;
    }
    let mut v: u64 = 0;
    for &c in &b[34..] {
        match base62(c) {
            Some(d) => v = v * 62 + d,
            None => return false,
        }
    }
    u64::from(crc32fast::hash(&b[4..34])) == v
}

fn b64url_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' | b'+' => 62,
            b'_' | b'/' => 63,
            b'=' => break,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

fn jwt(value: &str) -> bool {
    let header = value.split('.').next().unwrap_or("");
    match b64url_decode(header) {
        Some(h) => {
            let h = String::from_utf8_lossy(&h);
            h.starts_with('{') && (h.contains("\"alg\"") || h.contains("\"typ\""))
        }
        None => false,
    }
}

fn pem(value: &str) -> bool {
    // A header with a real body, or an unterminated one (mask to the end: it may be a key cut short).
    let Some(body_start) = value
        .find("-----\n")
        .or_else(|| value.find("-----\\n"))
        .or_else(|| value.find("----- "))
    else {
        return !value.contains("-----END");
    };
    if !value.contains("-----END") {
        return true;
    }
    value[body_start..]
        .bytes()
        .filter(|b| b.is_ascii_alphanumeric() || *b == b'+' || *b == b'/')
        .count()
        >= 40 + 8
}

/// ISO 3166-1 alpha-2 codes (the country inside a BIC).
const COUNTRIES: &str = "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS XK YE YT ZA ZM ZW";

fn swift(value: &str) -> bool {
    value.len() >= 8 && COUNTRIES.split(' ').any(|c| c == &value[4..6])
}

/// Values that are documentation, templates or our own placeholders, never secrets.
pub fn placeholder(value: &str) -> bool {
    let lower = value.to_ascii_lowercase();
    const WORDS: [&str; 10] = [
        "example", "xxxx", "****", "....", "<", "${", "{{", "%(", "redacted", "changeme",
    ];
    WORDS.iter().any(|w| lower.contains(w))
        || value.starts_with('$')
        || is_mask_placeholder(value)
        || all_same_char(value)
        || lower.contains("your_")
        || lower.contains("your-")
        || lower.starts_with("my_")
}

fn all_same_char(s: &str) -> bool {
    let b = s.as_bytes();
    b.windows(2).all(|w| w[0] == w[1])
}

/// Contains one of our own `[TYPE_N]` placeholders (so masking twice changes nothing).
pub fn is_mask_placeholder(value: &str) -> bool {
    let b = value.as_bytes();
    let mut i = 0;
    while let Some(off) = memchr::memchr(b'[', &b[i..]) {
        let s = i + off + 1;
        let mut j = s;
        while j < b.len() && (b[j].is_ascii_uppercase() || b[j] == b'_' || b[j].is_ascii_digit()) {
            j += 1;
        }
        if j < b.len()
            && b[j] == b']'
            && j > s
            && b[j - 1].is_ascii_digit()
            && b[s].is_ascii_uppercase()
        {
            return true;
        }
        i = s;
    }
    false
}

const NOT_NAMES: [&str; 16] = [
    "The",
    "Customer",
    "Customers",
    "Sir",
    "Madam",
    "Team",
    "Support",
    "Client",
    "User",
    "All",
    "Everyone",
    "Friend",
    "Friends",
    "Colleagues",
    "Valued",
    "Hiring",
];

const NOT_PASSWORDS: [&str; 12] = [
    "password",
    "passwd",
    "pass",
    "none",
    "null",
    "true",
    "false",
    "required",
    "optional",
    "string",
    "undefined",
    "hidden",
];

fn password(value: &str) -> bool {
    let lower = value.to_ascii_lowercase();
    value.len() >= 4
        && !placeholder(value)
        && !NOT_PASSWORDS.contains(&lower.as_str())
        && !indirect(value)
}

/// `os.environ["X"]`, `getenv(...)`, `process.env.X`, `vault.read(...)`: a reference, not a value.
fn indirect(value: &str) -> bool {
    value.contains('(')
        || value.starts_with("process.env")
        || value.starts_with("os.environ")
        || value.contains("->")
}

fn secret(value: &str, floor: f64) -> bool {
    let has_digit = value.bytes().any(|b| b.is_ascii_digit());
    // A capitalised word (`Authorization`) is prose; a second capital (`hUnter`, `AbcDef`) is not.
    let has_upper = value.bytes().skip(1).any(|b| b.is_ascii_uppercase());
    let has_lower = value.bytes().any(|b| b.is_ascii_lowercase());
    value.len() >= 8
        && !placeholder(value)
        && !indirect(value)
        && (has_digit || (has_upper && has_lower))
        && !uuid_like(value)
        && !value.contains("://")
        && !value.starts_with('/')
        && shannon(value) >= floor
}

fn uuid_like(v: &str) -> bool {
    let b = v.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| {
            if matches!(i, 8 | 13 | 18 | 23) {
                *c == b'-'
            } else {
                c.is_ascii_hexdigit()
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luhn_and_issuers() {
        for pan in [
            "4111111111111111",
            "5555555555554444",
            "2221000000000009",
            "378282246310005",
            "6011111111111117",
            "3530111333300000",
            "30569309025904",
            "6200000000000005",
        ] {
            let d = digits(pan);
            assert!(luhn(&d) && card_issuer_ok(&d), "{pan}");
        }
        // Luhn-valid but no issuer: a 13-digit millisecond timestamp.
        let d = digits("1500000000009");
        assert!(!card_issuer_ok(&d));
    }

    #[test]
    fn iban_registry_examples() {
        for s in [
            "DE89370400440532013000",
            "GB29NWBK60161331926819",
            "NO9386011117947",
            "MT84MALT011000012345MTLCAST001S",
            "RU0204452560040702810412345678901",
        ] {
            assert_eq!(iban(s), Some(s.len()), "{s}");
        }
        assert_eq!(iban("DE89 3704 0044 0532 0130 00"), Some(27));
        assert_eq!(iban("DE88370400440532013000"), None);
        assert_eq!(iban("XX89370400440532013000"), None);
    }

    #[test]
    fn aba_ssn() {
        assert!(aba("011000015") && aba("021000021") && !aba("021000022") && !aba("991000021"));
        assert!(ssn("123-45-6788") && !ssn("666-12-3456") && !ssn("900-12-3456"));
        assert!(!ssn("123-00-4567") && !ssn("123-45-0000") && !ssn("123-45 6789"));
    }

    #[test]
    fn github_checksum() {
        let body = "abcdefghijklmnopqrstuvwxyz0123";
        let mut v = u64::from(crc32fast::hash(body.as_bytes()));
        let alphabet = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
        let mut tail = Vec::new();
        for _ in 0..6 {
            tail.push(alphabet[(v % 62) as usize]);
            v /= 62;
        }
        tail.reverse();
        let tok = format!("ghp_{body}{}", String::from_utf8(tail).unwrap());
        assert!(crc32_base62(&tok));
        assert!(!crc32_base62("ghp_abcdefghijklmnopqrstuvwxyz0123456789"));
    }

    #[test]
    fn placeholders() {
        assert!(is_mask_placeholder("[EMAIL_1]") && is_mask_placeholder("x[AWS_SECRET_12]"));
        assert!(!is_mask_placeholder("[1]") && !is_mask_placeholder("[abc_1]"));
        assert!(placeholder("${DB_PASSWORD}") && placeholder("xxxxxxxx"));
    }
}
