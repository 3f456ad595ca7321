//! The built-in detection rules: what each looks like, what wakes it up, and how candidates are checked.
//!
//! A rule is woken by a literal anchor (a token prefix or a cue word, found by the one Aho-Corasick
//! pass) or by a digit; its regex then runs only on a small window around the wake-up point. When the
//! regex has a capture group, the group is the sensitive value (the cue word stays readable).
use super::digits::Shape;
use super::validate::Check;
use super::Category;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Trigger {
    /// Any of these literals; `true` = the literal's case must match exactly (token prefixes).
    Literal(&'static [&'static str], bool),
    /// A digit, where the text has this rule's number shape (see `digits`).
    Digit(Shape),
    /// The whole text (custom patterns, which have no anchor we can extract).
    Whole,
}

/// A cheap test on a rule's window before its regex runs: prose is full of lone numbers, and of cue words
/// with no value after them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pre {
    None,
    /// A byte that must occur in the window.
    Byte(u8),
    /// `digit . digit` somewhere (a dotted quad).
    DottedDigits,
    /// At least two colons (IPv6).
    Colons,
    /// Two capitals then two digits (an IBAN's country and check digits).
    CountryCheck,
    /// An ASCII digit (the value after a cue word is a number).
    Digit,
    /// An `=` or a `:` (a `key = value` or `key: value` assignment).
    Assign,
    /// A run of this many token characters (`[A-Za-z0-9+/_=.~-]`): a key or token value.
    TokenRun(u8),
}

#[derive(Debug, Clone)]
pub struct RuleSpec {
    pub kind: String,
    pub category: Category,
    pub pattern: String,
    pub trigger: Trigger,
    pub check: Check,
    /// How far before the wake-up point a match may start, in bytes.
    pub back: usize,
    /// How far after the window start a match may end, in bytes.
    pub span: usize,
    /// Windows with fewer ASCII digits are skipped without running the regex.
    pub min_digits: u8,
    /// Overlapping findings: the higher priority wins.
    pub priority: u8,
    pub pre: Pre,
    /// The trigger literal must start a word: the regex has `\b` right before it, so a cue inside a longer
    /// word ("ms" in "streams", "exp" in "sexp") wakes nothing.
    pub word: bool,
    /// Every match starts at most `back` bytes before a cue it contains, at a key start (a word start,
    /// `_ . -` or a capital: `key_start`): the regex runs anchored at those places near each cue instead
    /// of searching the whole window. A `tokens: int = 0` in code wakes the assignment rules, whose
    /// search otherwise reads the next `span` bytes for a match that cannot start there.
    pub near_cue: bool,
}

/// Where a key of `keyed` (or a `\b` before a letter) can start: `_ . -`, a capital, or a letter after
/// a byte that is no ASCII letter, digit or `_` (a superset of the places `\b` allows).
pub fn key_start(b: &[u8], p: usize) -> bool {
    let c = b[p];
    matches!(c, b'_' | b'.' | b'-')
        || c.is_ascii_uppercase()
        || (c.is_ascii_lowercase()
            && (p == 0 || !(b[p - 1].is_ascii_alphanumeric() || b[p - 1] == b'_')))
}

fn rule(kind: &str, category: Category, trigger: Trigger, pattern: &str, check: Check) -> RuleSpec {
    RuleSpec {
        kind: kind.to_owned(),
        category,
        pattern: pattern.to_owned(),
        trigger,
        check,
        back: 0,
        span: 512,
        min_digits: 0,
        priority: 20,
        pre: Pre::None,
        word: false,
        near_cue: false,
    }
}

impl RuleSpec {
    fn back(mut self, n: usize) -> Self {
        self.back = n;
        self
    }
    fn span(mut self, n: usize) -> Self {
        self.span = n;
        self
    }
    fn digits(mut self, n: u8) -> Self {
        self.min_digits = n;
        self
    }
    fn priority(mut self, p: u8) -> Self {
        self.priority = p;
        self
    }
    fn pre(mut self, pre: Pre) -> Self {
        self.pre = pre;
        self
    }
    fn near_cue(mut self) -> Self {
        self.near_cue = true;
        self
    }
    fn at_word(mut self) -> Self {
        self.word = true;
        self
    }
}

/// A provider token: case-sensitive prefix anchors, the token itself is the value.
fn token(kind: &str, anchors: &'static [&'static str], pattern: &str, check: Check) -> RuleSpec {
    rule(
        kind,
        Category::Secrets,
        Trigger::Literal(anchors, true),
        pattern,
        check,
    )
    .priority(30)
}

/// A rule woken by case-insensitive cue words.
fn cue(
    kind: &str,
    category: Category,
    cues: &'static [&'static str],
    pattern: &str,
    check: Check,
) -> RuleSpec {
    rule(
        kind,
        category,
        Trigger::Literal(cues, false),
        pattern,
        check,
    )
    .span(160)
}

// Secret values are ASCII: no class below reaches into non-ASCII text (which also keeps the streaming
// hold-back, which treats non-ASCII text as a word boundary, exact).

/// Keys whose assignment holds a secret (`DB_PASSWORD=...`, `"api_key": "..."`).
const SECRET_KEYS: &str = r"(?:api[_-]?key|apikey|auth[_-]?key|access[_-]?key|secret[_-]?key|private[_-]?key|client[_-]?secret|secret|token|credentials?|auth)";
const PASSWORD_KEYS: &str = r"(?:passw(?:or)?d|passphrase|pwd|pass)";
/// Key name boundary on the left: start of a word, after `_ . -`, or a camelCase hump (`dbPassword`).
fn keyed(keys: &str, capitalised: &str) -> String {
    format!(r"(?:(?:\b|[_.-])(?i:{keys})|(?-i:{capitalised}))")
}

const MONTHS: &str = r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?";

pub fn builtin() -> Vec<RuleSpec> {
    use Category::*;
    use Check as C;
    let dob_value = format!(
        r"((?:[0-9]{{1,2}}[/.-][0-9]{{1,2}}[/.-](?:19|20)?[0-9]{{2}})|(?:(?:19|20)[0-9]{{2}}-[0-9]{{2}}-[0-9]{{2}})|(?:[0-9]{{1,2}}(?:st|nd|rd|th)?\s+{MONTHS},?\s+(?:19|20)[0-9]{{2}})|(?:{MONTHS}\s+[0-9]{{1,2}}(?:st|nd|rd|th)?,?\s+(?:19|20)[0-9]{{2}}))\b"
    );
    let password_assign = format!(
        r#"{}[\w.-]{{0,20}}["']?\s*(?::=|=>|==|=|:)\s*["'`]?([^\s"'`,;\x80-\U0010FFFF]{{4,200}})"#,
        keyed(PASSWORD_KEYS, "Password|Passwd|Pwd|Pass")
    );
    let secret_assign = format!(
        r#"{}[\w.-]{{0,20}}["']?\s*(?::=|=>|==|=|:)\s*["'`]?([^\s"'`,;\x80-\U0010FFFF]{{8,300}})"#,
        keyed(
            SECRET_KEYS,
            "ApiKey|Secret|Token|AccessKey|AuthKey|PrivateKey|ClientSecret|Credentials?"
        )
    );
    let entropy_near_cue = r#"(?i)\b(?:api[ _-]?key|token|secret|password|passphrase|credentials?|access key|private key)s?\b(?:\s+(?:is|was|reads|:|=))?[\s:=]{1,5}["'`]?([A-Za-z0-9+/_\-=.~]{16,256})"#;
    vec![
        // ---------------------------------------------------------------- PII
        rule("EMAIL", Pii, Trigger::Literal(&["@"], true),
             r"[A-Za-z0-9._%+-]{1,64}@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}\b", C::Email)
            .back(64).span(64 + 256),
        rule("PHONE", Pii, Trigger::Digit(Shape::PhonePlus),
             r"\+[1-9][0-9]{0,2}(?:[ .-]?\(?[0-9]{1,5}\)?){1,5}[ .-]?[0-9]{2,6}\b", C::Phone).back(2).span(32).digits(7).pre(Pre::Byte(b'+')),
        rule("PHONE", Pii, Trigger::Digit(Shape::PhoneNanp),
             r"(?:\b1[ .-])?(?:\([2-9][0-9]{2}\) ?|\b[2-9][0-9]{2}[ .-])[2-9][0-9]{2}[ .-][0-9]{4}\b", C::Phone).back(6).span(24).digits(10),
        // UK and French national formats.
        rule("PHONE", Pii, Trigger::Digit(Shape::PhoneUk), r"\b0[1-9][0-9]{2,3} [0-9]{3,4} ?[0-9]{3,4}\b", C::Phone).back(1).span(16).digits(10),
        rule("PHONE", Pii, Trigger::Digit(Shape::PhoneFr), r"\b0[1-9](?:[ .][0-9]{2}){4}\b", C::Phone).back(1).span(16).digits(10),
        cue("PHONE", Pii, &["phone", "tel", "mobile", "cell", "fax", "whatsapp", "call me"],
            r"(?i)\b(?:phone|tel|telephone|mobile|cell|fax|whatsapp|call me(?: at)?)\b[^0-9+\n]{0,16}(\+?[0-9][0-9 ().-]{5,18}[0-9])\b", C::Phone)
            .span(64).priority(18).at_word().pre(Pre::Digit),
        rule("SSN", Pii, Trigger::Digit(Shape::Ssn),
             r"\b[0-9]{3}[- ][0-9]{2}[- ][0-9]{4}\b", C::SsnShape).span(12).digits(9),
        cue("SSN", Pii, &["ssn", "social security", "ss#"],
            r"(?i)\b(?:ssn|social security(?: number| no\.?| #)?|ss#)\b[^0-9\n]{0,20}([0-9]{9}|[0-9]{3}[- ][0-9]{2}[- ][0-9]{4})\b", C::Ssn)
            .span(64).at_word().pre(Pre::Digit),
        rule("IP_ADDRESS", Pii, Trigger::Digit(Shape::Ipv4),
             r"\b(?:(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\.){3}(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\b", C::Ipv4)
            .back(15).span(32).digits(4).pre(Pre::DottedDigits),
        rule("IP_ADDRESS", Pii, Trigger::Digit(Shape::Ipv6),
             r"(?i)(?:\b[0-9a-f]{1,4}|::)(?::{1,2}[0-9a-f]{0,4}){2,7}(?:\b|::)", C::Ipv6)
            .back(40).span(80).digits(1).priority(15).pre(Pre::Colons),
        cue("DATE_OF_BIRTH", Pii, &["dob", "d.o.b", "birth", "born"],
            &format!(r"(?i)\b(?:dob|d\.o\.b\.?|date of birth|birth ?date|birthday|born(?: on)?)\b[^0-9a-z\n]{{0,6}}(?:is |was |on )?{dob_value}"), C::None)
            .span(80).at_word().pre(Pre::Digit),
        // ---------------------------------------------------------------- person names (opt-in)
        cue("PERSON", Names, &["name", "dear", "mr", "mrs", "ms", "dr", "sincerely", "regards", "signed", "patient", "customer"],
            r"(?:(?i:\bmy name is|\bname is|\bname\s*:|\bfull name\s*:|\bdear|\bsincerely,|\bregards,|\bsigned,?|\bpatient:?|\bcustomer:?)\s+|\b(?:Mr|Mrs|Ms|Dr)\.?\s+)([A-Z][a-z]+(?:[ -](?:[A-Z]\.|[A-Z][a-z]+)){0,2})\b", C::PersonName)
            .span(96).priority(5).at_word(),
        // ---------------------------------------------------------------- PCI
        rule("CARD", Pci, Trigger::Digit(Shape::Card), r"\b[0-9](?:[ -]?[0-9]){12,18}\b", C::Card).span(32).digits(13).priority(25),
        cue("CVV", Pci, &["cvv", "cvc", "cid", "cvn", "csc", "security code", "card code", "card verification"],
            r"(?i)\b(?:cvv2?|cvc2?|cid|cvn|csc|security\s+code|card\s+code|card\s+verification(?:\s+(?:value|code))?)\b[^0-9a-z\n]{0,4}(?:is\s+)?([0-9]{3,4})\b", C::None)
            .span(64).at_word().pre(Pre::Digit),
        cue("CARD_EXPIRY", Pci, &["exp", "valid thru", "valid through", "good thru"],
            r"(?i)\b(?:exp(?:iry|ires|iration)?(?:\s+date)?|valid\s+(?:thru|through)|good\s+thru)\b[^0-9a-z\n]{0,4}(?:is\s+|on\s+)?((?:0[1-9]|1[0-2])\s?[/-]\s?(?:20)?[0-9]{2})\b", C::None)
            .span(64).at_word().pre(Pre::Digit),
        // ---------------------------------------------------------------- banking
        rule("IBAN", Banking, Trigger::Digit(Shape::Iban), r"\b[A-Z]{2}[0-9]{2}(?:[ -]?[A-Z0-9]{4}){2,7}(?:[ -]?[A-Z0-9]{1,4})?\b", C::Iban)
            .back(4).span(48).digits(4).priority(25).pre(Pre::CountryCheck),
        cue("ABA_ROUTING", Banking, &["routing", "aba", "ach", "rtn", "transit"],
            r"(?i)\b(?:routing|aba|ach|rtn|transit)\b[^0-9\n]{0,30}\b([0-9]{9})\b", C::Aba).span(64).at_word().pre(Pre::Digit),
        cue("BANK_ACCOUNT", Banking, &["account", "acct", "a/c", "iban"],
            r"(?i)\b(?:account|acct|a/c)(?:\s*(?:number|num|no\.?|#))?\b[^0-9a-z\n]{0,6}(?:is\s+)?([0-9](?:[ -]?[0-9]){7,16})\b", C::Digits(8, 17))
            .span(64).priority(15).at_word().pre(Pre::Digit),
        cue("SWIFT_BIC", Banking, &["swift", "bic"],
            r"(?i)\b(?:swift|bic)(?:\s*(?:/\s*bic|code))?\b[^A-Za-z0-9\n]{0,6}(?:is\s+)?(?-i:([A-Z]{4}[A-Z]{2}[A-Z2-9][A-NP-Z0-9](?:[A-Z0-9]{3})?))\b", C::Swift)
            .span(64).at_word(),
        // ---------------------------------------------------------------- financial (keywords + context)
        cue("FINANCIAL_AMOUNT", Financial,
            &["balance", "portfolio", "net worth", "holding", "salary", "income", "revenue", "profit", "loss", "dividend", "invest", "statement", "position", "market value", "401", "brokerage", "assets", "p&l", "earnings"],
            r"(?i)\b(?:balance|portfolio|net worth|holdings?|salary|income|revenue|profits?|loss(?:es)?|dividends?|invest(?:ed|ment|ments)?|statement|position|market value|401\(?k\)?|brokerage|assets|p&l|earnings)\b[^.\n$€£¥0-9]{0,40}((?:[$€£¥]\s?[0-9][0-9,]*(?:\.[0-9]{1,2})?(?:\s?(?:k|m|mm|bn|million|billion)\b)?)|(?:[0-9][0-9,]*(?:\.[0-9]{1,2})?\s?(?:usd|eur|gbp|dollars|euros)\b))", C::None)
            .span(128).priority(10).at_word().pre(Pre::Digit),
        cue("TRADE", Financial, &["bought", "sold", "buy", "sell", "short", "purchase"],
            r"(?i)\b(?:bought|sold|buy|sell|shorted|short|purchased?)\s+([0-9][0-9,]*(?:\.[0-9]+)?\s+(?:shares?|units?|contracts?|options?|lots?)\s+(?:of\s+)?\$?(?-i:[A-Z]{1,5}))\b", C::None)
            .span(96).priority(10).at_word().pre(Pre::Digit),
        // ---------------------------------------------------------------- secrets: provider tokens
        token("OPENAI_KEY", &["sk-"], r"\bsk-(?:proj|svcacct|admin|service)-[A-Za-z0-9_-]{40,250}", C::Entropy(3.5)).span(280),
        token("OPENAI_KEY", &["sk-"], r"\bsk-[A-Za-z0-9]{20}T3BlbkFJ[A-Za-z0-9]{20}\b", C::None),
        token("OPENAI_KEY", &["sk-"], r"\bsk-[A-Za-z0-9]{48}\b", C::Entropy(3.5)),
        token("ANTHROPIC_KEY", &["sk-ant-"], r"\bsk-ant-(?:api|admin)[0-9]{2}-[A-Za-z0-9_-]{80,120}", C::Entropy(3.5)).priority(31),
        token("OPENROUTER_KEY", &["sk-or-"], r"\bsk-or-v1-[0-9a-f]{64}\b", C::None).priority(31),
        token("AWS_ACCESS_KEY", &["AKIA", "ASIA", "ABIA", "ACCA"], r"\b(?:AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{16}\b", C::AwsKeyId),
        cue("AWS_SECRET", Secrets, &["aws"],
            r#"(?i)aws[\w.-]{0,20}?(?:secret|key)[\w.-]{0,20}?["']?\s*(?::=|=>|=|:|\s)\s*["']?([A-Za-z0-9/+]{40})(?:[^A-Za-z0-9/+=]|$)"#, C::AwsSecret)
            .span(128).priority(31),
        token("AWS_BEDROCK_KEY", &["ABSK"], r"\bABSK[A-Za-z0-9+/]{109,269}={0,2}", C::None),
        token("GOOGLE_API_KEY", &["AIza"], r"\b(AIza[A-Za-z0-9_-]{35})(?:[^A-Za-z0-9_-]|\z)", C::Entropy(3.5)),
        token("GOOGLE_OAUTH_SECRET", &["GOCSPX-"], r"\b(GOCSPX-[A-Za-z0-9_-]{28})(?:[^A-Za-z0-9_-]|\z)", C::None),
        token("GOOGLE_OAUTH_TOKEN", &["ya29."], r"\bya29\.[A-Za-z0-9_-]{20,}", C::Entropy(3.5)),
        cue("GCP_SERVICE_ACCOUNT", Secrets, &["private_key_id"], r#""private_key_id"\s*:\s*"([0-9a-f]{40})""#, C::None).priority(30),
        token("AZURE_STORAGE_KEY", &["AccountKey="], r"AccountKey=([A-Za-z0-9+/]{86}==)", C::None),
        token("AZURE_CLIENT_SECRET", &["Q~"], r"(?:^|[^A-Za-z0-9_~.-])([A-Za-z0-9_~.]{3}[0-9]Q~[A-Za-z0-9_~.-]{31,34})(?:[^A-Za-z0-9_~.-]|\z)", C::Entropy(3.5)).back(6).span(48),
        token("AZURE_SHARED_KEY", &["SharedAccessKey="], r"SharedAccessKey=([A-Za-z0-9+/]{42,44}=)", C::None),
        token("GITHUB_TOKEN", &["ghp_", "gho_", "ghu_", "ghs_", "ghr_"], r"\bgh[pousr]_[A-Za-z0-9]{36}\b", C::Crc32Base62),
        token("GITHUB_TOKEN", &["github_pat_"], r"\bgithub_pat_[A-Za-z0-9]{22}_[A-Za-z0-9]{59}\b", C::None),
        token("GITLAB_TOKEN", &["glpat-", "gldt-", "glrt-", "glcbt-", "glptt-", "glft-", "glsoat-", "gloas-", "glimt-", "glagent-", "GR1348941"],
              r"\b(?:glpat|gldt|glrt|glcbt|glptt|glft|glsoat|gloas|glimt|glagent)-[A-Za-z0-9_.-]{20,300}|\bGR1348941[A-Za-z0-9_-]{20}", C::Entropy(3.0)),
        token("SLACK_TOKEN", &["xoxb-", "xoxp-", "xoxa-", "xoxr-", "xoxs-", "xoxe-", "xoxo-", "xapp-"],
              r"\bxox[bparseo]-[0-9A-Za-z-]{10,200}|\bxapp-[0-9]-[A-Z0-9]+-[0-9]+-[a-z0-9]+\b", C::Entropy(3.0)),
        token("SLACK_WEBHOOK", &["hooks.slack.com"], r"https://hooks\.slack\.com/(?:services|workflows|triggers)/T[A-Z0-9]+/[AB][A-Z0-9]+/(?:[0-9]+/)?[A-Za-z0-9]{23,25}\b", C::None).back(8),
        token("STRIPE_KEY", &["sk_live_", "sk_test_", "rk_live_", "rk_test_", "whsec_"], r"\b(?:[rs]k_(?:live|test)_[A-Za-z0-9]{24,247}|whsec_[A-Za-z0-9]{32,})\b", C::Entropy(3.0)),
        token("TWILIO_KEY", &["SK"], r"\bSK[0-9a-f]{32}\b", C::Entropy(3.0)),
        cue("TWILIO_KEY", Secrets, &["twilio"], r#"(?i)twilio[\w.-]{0,20}?(?:token|secret|key)[\w.-]{0,10}["']?\s*(?::=|=>|=|:|\s)\s*["']?([0-9a-f]{32})\b"#, C::None).priority(30),
        token("SENDGRID_KEY", &["SG."], r"\b(SG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43})(?:[^A-Za-z0-9_-]|\z)", C::None),
        token("MAILGUN_KEY", &["key-", "pubkey-"], r"\b(?:key|pubkey)-[0-9a-f]{32}\b", C::Entropy(3.0)),
        token("MAILCHIMP_KEY", &["-us"], r"\b[0-9a-f]{32}-us[0-9]{1,2}\b", C::None).back(33).span(72),
        token("NPM_TOKEN", &["npm_"], r"\bnpm_[A-Za-z0-9]{36}\b", C::Crc32Base62),
        token("PYPI_TOKEN", &["pypi-AgE"], r"\bpypi-AgE[A-Za-z0-9_-]{50,}", C::None).span(4096),
        token("HUGGINGFACE_TOKEN", &["hf_", "api_org_"], r"\b(?:hf_|api_org_)[A-Za-z0-9]{34}\b", C::Entropy(3.0)),
        token("SHOPIFY_TOKEN", &["shpat_", "shpca_", "shppa_", "shpss_"], r"\bshp(?:at|ca|pa|ss)_[0-9a-fA-F]{32}\b", C::None),
        cue("DISCORD_TOKEN", Secrets, &["discord"], r"(?i)discord[\s\S]{0,40}?(?-i:\b([MNO][A-Za-z0-9_-]{23,25}\.[A-Za-z0-9_-]{6}\.[A-Za-z0-9_-]{27,38}))(?:[^A-Za-z0-9_-]|\z)", C::None).priority(30),
        token("DISCORD_WEBHOOK", &["/api/webhooks/"], r"https://(?:canary\.|ptb\.)?discord(?:app)?\.com/api/webhooks/[0-9]{17,20}/[A-Za-z0-9_-]{60,70}", C::None).back(40),
        token("TELEGRAM_BOT_TOKEN", &[":AA"], r"\b([0-9]{8,10}:AA[A-Za-z0-9_-]{33})(?:[^A-Za-z0-9_-]|\z)", C::None).back(11).span(64),
        token("DIGITALOCEAN_TOKEN", &["dop_v1_", "doo_v1_", "dor_v1_"], r"\bdo[por]_v1_[0-9a-f]{64}\b", C::None),
        token("HEROKU_KEY", &["HRKU-"], r"\b(HRKU-AA[A-Za-z0-9_-]{58})(?:[^A-Za-z0-9_-]|\z)", C::None),
        cue("HEROKU_KEY", Secrets, &["heroku"], r#"(?i)heroku[\w.-]{0,20}?(?:key|token|secret)[\w.-]{0,10}["']?\s*(?::=|=>|=|:|\s)\s*["']?([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\b"#, C::None).priority(30),
        cue("DATADOG_KEY", Secrets, &["datadog", "dd_api", "dd_app", "dd-api", "dd-app"],
            r#"(?i)(?:datadog|dd)[\w.-]{0,20}?(?:api|app|application)?[_-]?key[\w.-]{0,10}["']?\s*(?::=|=>|=|:|\s)\s*["']?([a-f0-9]{32}|[a-f0-9]{40})\b"#, C::None).priority(30),
        token("SENTRY_DSN", &["://"], r"https://([0-9a-f]{32})(?::[0-9a-f]{32})?@[A-Za-z0-9.-]+/[0-9]+", C::None).back(8),
        token("SENTRY_TOKEN", &["sntryu_", "sntrys_"], r"\b(?:sntryu_[0-9a-f]{64}|sntrys_eyJ[A-Za-z0-9+/=_]{60,})", C::None).span(1024),
        token("DATABRICKS_TOKEN", &["dapi"], r"\bdapi[0-9a-f]{32}(?:-[0-9])?\b", C::Entropy(3.0)),
        token("LINEAR_KEY", &["lin_api_"], r"\blin_api_[A-Za-z0-9]{40}\b", C::None),
        token("NOTION_TOKEN", &["ntn_", "secret_"], r"\b(?:ntn_[0-9]{11}[A-Za-z0-9]{35}|secret_[A-Za-z0-9]{43})\b", C::Entropy(3.5)),
        token("ATLASSIAN_TOKEN", &["ATATT3", "ATCTT3"], r"\bAT[AC]TT3[A-Za-z0-9_=-]{180,200}", C::None),
        token("GROQ_KEY", &["gsk_"], r"\bgsk_[A-Za-z0-9]{52}\b", C::None),
        token("XAI_KEY", &["xai-"], r"\bxai-[A-Za-z0-9_]{80}\b", C::None),
        token("REPLICATE_TOKEN", &["r8_"], r"\b(r8_[A-Za-z0-9_-]{37})(?:[^A-Za-z0-9_-]|\z)", C::Entropy(3.0)),
        token("PERPLEXITY_KEY", &["pplx-"], r"\bpplx-[A-Za-z0-9]{48}\b", C::None),
        token("NVIDIA_KEY", &["nvapi-"], r"\bnvapi-[A-Za-z0-9_-]{64}", C::None),
        token("LANGSMITH_KEY", &["lsv2_"], r"\blsv2_(?:pt|sk)_[0-9a-f]{32}_[0-9a-f]{10}\b", C::None),
        token("DOCKERHUB_TOKEN", &["dckr_"], r"\bdckr_(?:pat_[A-Za-z0-9_-]{27}|oat_[A-Za-z0-9_-]{32})", C::None),
        token("ARTIFACTORY_KEY", &["AKCp"], r"\bAKCp[A-Za-z0-9]{69}\b", C::None),
        token("ALIBABA_KEY", &["LTAI"], r"\bLTAI[A-Za-z0-9]{20}\b", C::Entropy(3.0)),
        token("POSTMAN_KEY", &["PMAK-"], r"\bPMAK-[0-9a-f]{24}-[0-9a-f]{34}\b", C::None),
        token("GRAFANA_TOKEN", &["glsa_", "glc_"], r"\b(?:glsa_[A-Za-z0-9]{32}_[0-9a-fA-F]{8}|glc_eyJ[A-Za-z0-9+/=_-]{32,})", C::None),
        token("SUPABASE_TOKEN", &["sbp_"], r"\bsbp_[a-z0-9]{40}\b", C::None),
        token("VAULT_TOKEN", &["hvs.", "hvb."], r"\bhv[sb]\.[A-Za-z0-9_-]{90,300}", C::None),
        token("TERRAFORM_TOKEN", &[".atlasv1."], r"\b([A-Za-z0-9]{14}\.atlasv1\.[A-Za-z0-9_=-]{60,70})(?:[^A-Za-z0-9_=-]|\z)", C::None).back(15),
        token("AGE_SECRET_KEY", &["AGE-SECRET-KEY-1"], r"\bAGE-SECRET-KEY-1[02-9AC-HJ-NP-Z]{58}\b", C::None),
        token("PULUMI_TOKEN", &["pul-"], r"\bpul-[0-9a-f]{40}\b", C::None),
        token("RUBYGEMS_KEY", &["rubygems_"], r"\brubygems_[0-9a-f]{48}\b", C::None),
        token("DOPPLER_TOKEN", &["dp."], r"\bdp\.(?:pt|st|ct|sa|scim|audit)\.(?:[a-z0-9_-]{2,35}\.)?[A-Za-z0-9]{40,44}\b", C::None),
        token("NEWRELIC_KEY", &["NRAK-", "NRII-", "NRJS-"], r"\b(?:NRAK-[A-Z0-9]{27}|NRII-[A-Za-z0-9_-]{32}|NRJS-[a-f0-9]{19})\b", C::None),
        token("SQUARE_TOKEN", &["sq0atp-", "sq0csp-", "EAAA"], r"\b(?:sq0atp-[A-Za-z0-9_-]{22,60}|sq0csp-[A-Za-z0-9_-]{43}|EAAA[A-Za-z0-9_-]{56,60})\b", C::Entropy(3.5)),
        token("CLOUDFLARE_TOKEN", &["cfut_", "cfat_", "cfk_", "v1.0-"], r"\b(?:cf(?:ut|at|k)_[A-Za-z0-9]{40}[0-9a-f]{8}|v1\.0-[0-9a-f]{24}-[0-9a-f]{146})\b", C::None),
        token("FLYIO_TOKEN", &["fo1_"], r"\b(fo1_[A-Za-z0-9_-]{43})(?:[^A-Za-z0-9_-]|\z)", C::None),
        token("BREVO_KEY", &["xkeysib-"], r"\bxkeysib-[0-9a-f]{64}-[A-Za-z0-9]{16}\b", C::None),
        token("PLANETSCALE_TOKEN", &["pscale_"], r"\bpscale_(?:tkn|oauth|pw)_[A-Za-z0-9_.=-]{32,64}\b", C::None),
        token("TAILSCALE_KEY", &["tskey-"], r"\btskey-[a-z]+-[A-Za-z0-9]+-[A-Za-z0-9]{16,}\b", C::None),
        token("OPENSHIFT_TOKEN", &["sha256~"], r"\b(sha256~[A-Za-z0-9_-]{43})(?:[^A-Za-z0-9_-]|\z)", C::None),
        token("ONEPASSWORD_TOKEN", &["ops_eyJ"], r"\bops_eyJ[A-Za-z0-9+/]{250,}={0,3}", C::None).span(4096),
        token("TEAMS_WEBHOOK", &["webhook.office.com"], r"https://[a-z0-9-]+\.webhook\.office\.com/webhookb2/[0-9a-f-]{36}@[0-9a-f-]{36}/IncomingWebhook/[0-9a-f]{32}/[0-9a-f-]{36}", C::None).back(64),
        // ---------------------------------------------------------------- secrets: structured
        token("JWT", &["eyJ"], r"\beyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}", C::Jwt).span(8192).priority(28),
        rule("PRIVATE_KEY", Secrets, Trigger::Literal(&["-----BEGIN"], true),
             r"-----BEGIN[ A-Z0-9]{0,40}PRIVATE KEY(?: BLOCK)?-----(?s:.*?)(?:-----END[ A-Z0-9]{0,40}PRIVATE KEY(?: BLOCK)?-----|\z)", C::Pem)
            .span(usize::MAX).priority(40),
        token("PRIVATE_KEY", &["PuTTY-User-Key-File-", "BEGIN SSH2 ENCRYPTED PRIVATE KEY"],
              r"PuTTY-User-Key-File-[23]:(?s:.*?)(?:Private-MAC: [0-9a-f]+|\z)|---- BEGIN SSH2 ENCRYPTED PRIVATE KEY ----(?s:.*?)(?:---- END SSH2 ENCRYPTED PRIVATE KEY ----|\z)", C::None)
            .back(5).span(usize::MAX).priority(40),
        token("PRIVATE_KEY", &["LS0tLS1CRUdJTi"], r"LS0tLS1CRUdJTi[A-Za-z0-9+/]{8,}={0,2}", C::None).span(16384).priority(40),
        token("URL_PASSWORD", &["://"], r"\b[a-zA-Z][a-zA-Z0-9+.-]{1,20}://[^\s:/@\x80-\U0010FFFF]{1,64}:([^\s:/@\x80-\U0010FFFF]{3,128})@[A-Za-z0-9.-]+", C::UrlPassword).back(24).span(256),
        cue("URL_PASSWORD", Secrets, &["jdbc:"], r"(?i)\bjdbc:[a-z0-9]{3,12}:[^\s]*?[?;&]password=([^\s;&\x80-\U0010FFFF]{3,128})", C::UrlPassword).span(256),
        cue("PASSWORD", Secrets, &["pass", "pwd"], &password_assign, C::Password).back(1).span(256).priority(12).pre(Pre::Assign).near_cue(),
        cue("SECRET", Secrets, &["key", "secret", "token", "credential", "auth"], &secret_assign, C::Secret(2.5)).back(12).span(360).priority(11).pre(Pre::Assign).near_cue(),
        cue("SECRET", Secrets, &["key", "secret", "token", "password", "passphrase", "credential"], entropy_near_cue, C::Secret(3.5))
            .back(8).span(320).priority(8).pre(Pre::TokenRun(16)).near_cue(),
    ]
}
