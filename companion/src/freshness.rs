//! RFC 9111 for a shared cache, as pure functions: whether an origin response may be stored and
//! for how long ([`decide`]), how old a stored response is ([`current_age`], §4.2.3), and
//! whether a stored response may answer a request now ([`reuse`]). Also the HTTP-date parser
//! (RFC 9110 §5.6.7, all three formats) and the Cache-Control parser. Nothing here reads a
//! clock: times come in as arguments.
//!
//! The rule of thumb everywhere: when in doubt, do not store and do not serve. A miss costs one
//! origin fetch; a wrong hit serves someone else's answer.
//!
//! Directive sources, most specific first (RFC 9213 targeted fields): `Hzcache-Cache-Control`,
//! then `CDN-Cache-Control`, then `Cache-Control`. The first one present and valid decides
//! alone; the others are ignored for caching (they still travel to the client).

use hyper::header::{HeaderMap, AUTHORIZATION, CACHE_CONTROL, SET_COOKIE, VARY};

/// Largest lifetime taken from a header: RFC 9111 §1.2.2 says to treat anything larger than
/// 2^31 as 2^31 seconds.
pub const MAX_DELTA_SECONDS: u64 = 2_147_483_648;
/// How long a stale entry that has validators is kept for revalidation beyond its freshness,
/// at least: a conditional request answered 304 is far cheaper than a full fetch. Bounded so a
/// never-requested stale entry does not sit in the cluster for long.
pub const MIN_REVALIDATION_KEEP_SECS: u64 = 60;
/// And at most (one hour); within these bounds the keep time equals the lifetime.
pub const MAX_REVALIDATION_KEEP_SECS: u64 = 3600;
/// The targeted field of hzcache's own name (RFC 9213 §2): directives only for this cache.
pub const HZCACHE_CACHE_CONTROL: &str = "hzcache-cache-control";
pub const CDN_CACHE_CONTROL: &str = "cdn-cache-control";

/// Status codes a response may be stored for without explicit freshness (RFC 9110 §15.1
/// "heuristically cacheable"). Any other status is heuristically cacheable only when the
/// response says `public` (RFC 9111 §4.2.2). 206 is listed for completeness: partial content
/// is not stored ([`decide`]), so it never gets a heuristic lifetime.
pub const HEURISTICALLY_CACHEABLE: [u16; 12] =
    [200, 203, 204, 206, 300, 301, 308, 404, 405, 410, 414, 501];

/// Final status codes whose caching rules hzcache implements (RFC 9110 §15; for
/// `must-understand`, RFC 9111 §5.2.2.3): the codes RFC 9110 defines, minus 206 (partial
/// content is not stored) and 304 (never stored itself, it updates a stored response).
pub fn status_understood(status: u16) -> bool {
    matches!(status,
        200..=205 | 300..=303 | 305 | 307 | 308 | 400..=417 | 421 | 422 | 426 | 500..=505)
}

// ---------------------------------------------------------------------------------------------
// HTTP-date (RFC 9110 §5.6.7)

const MONTHS: [&[u8; 3]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];
const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
const LONG_DAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

fn num(s: &[u8]) -> Option<u32> {
    if s.is_empty() || s.len() > 4 || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(s.iter().fold(0u32, |n, d| n * 10 + u32::from(d - b'0')))
}

/// Month names in any letter case: RFC 9110 §5.6.7 makes them case-sensitive for senders,
/// but a recipient reading `nov` or `NOV` loses nothing by understanding it.
fn month(s: &[u8]) -> Option<u32> {
    MONTHS
        .iter()
        .position(|m| m.as_slice().eq_ignore_ascii_case(s))
        .map(|i| i as u32 + 1)
}

/// Whether `day` is one of `names`, in any letter case.
fn is_day(names: &[&str], day: &str) -> bool {
    names.iter().any(|d| d.eq_ignore_ascii_case(day))
}

fn is_gmt(s: &str) -> bool {
    s.eq_ignore_ascii_case("GMT")
}

/// `HH:MM:SS` → seconds of the day.
fn clock(s: &[u8]) -> Option<i64> {
    if s.len() != 8 || s[2] != b':' || s[5] != b':' {
        return None;
    }
    let (h, m, sec) = (num(&s[0..2])?, num(&s[3..5])?, num(&s[6..8])?);
    // 60 allows a leap second, as RFC 9110's grammar does.
    if h > 23 || m > 59 || sec > 60 {
        return None;
    }
    Some(i64::from(h * 3600 + m * 60 + sec))
}

fn assemble(y: i64, m: u32, d: u32, secs: i64) -> Option<i64> {
    if !(1..=12).contains(&m) || d == 0 || d > days_in_month(y, m) {
        return None;
    }
    Some(days_from_civil(y, m, d) * 86_400 + secs)
}

/// Parses an HTTP-date into Unix seconds (day and month names and `GMT` in any letter case,
/// as a tolerant recipient reads them, RFC 9110 §5.6.7): IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), the
/// obsolete RFC 850 form (`Sunday, 06-Nov-94 08:49:37 GMT`) and asctime
/// (`Sun Nov  6 08:49:37 1994`). A two-digit year more than 50 years in the future is read as
/// the most recent past year with those digits (RFC 9110 §5.6.7), hence `now_secs`. Anything
/// else is `None`; callers decide what an invalid date means.
pub fn parse_http_date(v: &[u8], now_secs: i64) -> Option<i64> {
    let v = trim(v);
    let text = std::str::from_utf8(v).ok()?;
    if let Some((day, rest)) = text.split_once(", ") {
        if is_day(&DAYS, day) {
            // IMF-fixdate: "06 Nov 1994 08:49:37 GMT"
            let p: Vec<&str> = rest.split(' ').collect();
            if p.len() != 5 || p[0].len() != 2 || p[2].len() != 4 || !is_gmt(p[4]) {
                return None;
            }
            let (d, m, y) = (
                num(p[0].as_bytes())?,
                month(p[1].as_bytes())?,
                num(p[2].as_bytes())?,
            );
            return assemble(i64::from(y), m, d, clock(p[3].as_bytes())?);
        }
        if is_day(&LONG_DAYS, day) {
            // RFC 850: "06-Nov-94 08:49:37 GMT"
            let p: Vec<&str> = rest.split(' ').collect();
            if p.len() != 3 || !is_gmt(p[2]) {
                return None;
            }
            let dmy: Vec<&str> = p[0].split('-').collect();
            if dmy.len() != 3 || dmy[0].len() != 2 || dmy[2].len() != 2 {
                return None;
            }
            let (d, m, yy) = (
                num(dmy[0].as_bytes())?,
                month(dmy[1].as_bytes())?,
                i64::from(num(dmy[2].as_bytes())?),
            );
            let this_year = 1970 + now_secs.div_euclid(31_556_952);
            let mut y = this_year - this_year.rem_euclid(100) + yy;
            if y > this_year + 50 {
                y -= 100;
            }
            return assemble(y, m, d, clock(p[1].as_bytes())?);
        }
        return None;
    }
    // asctime: "Sun Nov  6 08:49:37 1994" (day padded with a space)
    if v.len() != 24 || v[3] != b' ' || v[7] != b' ' || v[10] != b' ' || v[19] != b' ' {
        return None;
    }
    let day = std::str::from_utf8(&v[0..3]).ok()?;
    if !is_day(&DAYS, day) {
        return None;
    }
    let m = month(&v[4..7])?;
    let d = match (v[8], v[9]) {
        (b' ', c) if c.is_ascii_digit() => u32::from(c - b'0'),
        _ => num(&v[8..10])?,
    };
    assemble(i64::from(num(&v[20..24])?), m, d, clock(&v[11..19])?)
}

/// Formats Unix seconds as an IMF-fixdate.
pub fn format_http_date(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let tod = secs.rem_euclid(86_400);
    // Inverse of days_from_civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    // 1970-01-01 was a Thursday (index 3 from Monday).
    let wd = (days + 3).rem_euclid(7) as usize;
    format!(
        "{}, {:02} {} {:04} {:02}:{:02}:{:02} GMT",
        DAYS[wd],
        d,
        std::str::from_utf8(MONTHS[(m - 1) as usize]).unwrap_or("Jan"),
        y,
        tod / 3600,
        tod % 3600 / 60,
        tod % 60
    )
}

// ---------------------------------------------------------------------------------------------
// Cache-Control

/// The directives of all field lines of one Cache-Control-like field together. Names are
/// case-insensitive. A lifetime directive given twice with different values, or with a value
/// that is not a non-negative integer, sets `invalid_lifetime` (RFC 9111 §4.2.1: such a
/// response is treated as stale; hzcache then does not store it).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CacheControl {
    pub no_store: bool,
    pub no_cache: bool,
    pub private: bool,
    pub public: bool,
    pub must_revalidate: bool,
    pub proxy_revalidate: bool,
    pub immutable: bool,
    /// `must-understand` (RFC 9111 §5.2.2.3): with an understood status it overrides
    /// `no-store`; with any other status the response is not stored.
    pub must_understand: bool,
    pub only_if_cached: bool,
    /// Request `max-stale` (§5.2.1.2): `Some(u64::MAX)` without a value (any staleness).
    pub max_stale: Option<u64>,
    pub max_age: Option<u64>,
    pub s_maxage: Option<u64>,
    pub min_fresh: Option<u64>,
    pub stale_while_revalidate: Option<u64>,
    pub stale_if_error: Option<u64>,
    pub invalid_lifetime: bool,
}

/// At most this many directives are looked at per field: real fields have a handful; a field
/// with thousands is an attack on the parser.
const MAX_DIRECTIVES: usize = 64;

impl CacheControl {
    /// Parses every line of field `name`.
    pub fn parse_field(headers: &HeaderMap, name: &str) -> CacheControl {
        CacheControl::parse_lines(headers.get_all(name).iter().map(|v| v.as_bytes()))
    }

    pub fn parse(headers: &HeaderMap) -> CacheControl {
        CacheControl::parse_field(headers, CACHE_CONTROL.as_str())
    }

    pub fn parse_lines<'a>(lines: impl Iterator<Item = &'a [u8]>) -> CacheControl {
        let mut cc = CacheControl::default();
        let mut seen = 0;
        for value in lines {
            for directive in split_directives(value) {
                seen += 1;
                if seen > MAX_DIRECTIVES {
                    cc.invalid_lifetime = true;
                    return cc;
                }
                let (name, arg) = match directive.iter().position(|&b| b == b'=') {
                    Some(i) => (&directive[..i], Some(unquote(trim(&directive[i + 1..])))),
                    None => (directive, None),
                };
                let name = trim(name).to_ascii_lowercase();
                let bad = &mut cc.invalid_lifetime;
                match name.as_slice() {
                    b"no-store" => cc.no_store = true,
                    // `no-cache="field"` and `private="field"` name fields not to reuse; hzcache
                    // treats the whole response as if the directive had no argument (stricter).
                    b"no-cache" => cc.no_cache = true,
                    b"private" => cc.private = true,
                    b"public" => cc.public = true,
                    b"must-revalidate" => cc.must_revalidate = true,
                    b"proxy-revalidate" => cc.proxy_revalidate = true,
                    b"immutable" => cc.immutable = true,
                    b"only-if-cached" => cc.only_if_cached = true,
                    b"must-understand" => cc.must_understand = true,
                    b"max-stale" => match arg.map(delta_seconds) {
                        None => cc.max_stale = Some(u64::MAX),
                        Some(Some(v)) => cc.max_stale = Some(v),
                        // A malformed max-stale is not a permission to serve stale.
                        Some(None) => {}
                    },
                    b"max-age" => set_seconds(&mut cc.max_age, arg, bad),
                    b"s-maxage" => set_seconds(&mut cc.s_maxage, arg, bad),
                    b"min-fresh" => set_seconds(&mut cc.min_fresh, arg, bad),
                    b"stale-while-revalidate" => {
                        set_seconds(&mut cc.stale_while_revalidate, arg, bad)
                    }
                    b"stale-if-error" => set_seconds(&mut cc.stale_if_error, arg, bad),
                    _ => {}
                }
            }
        }
        cc
    }
}

/// A delta-seconds value (RFC 9111 §1.2.2): one or more digits, nothing else; `None` otherwise.
/// Digits beyond what fits are still a valid, very large number: clamped to 2^31.
fn delta_seconds(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(
        std::str::from_utf8(digits)
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or(MAX_DELTA_SECONDS)
            .min(MAX_DELTA_SECONDS),
    )
}

fn set_seconds(slot: &mut Option<u64>, arg: Option<&[u8]>, invalid: &mut bool) {
    let parsed = arg.and_then(delta_seconds);
    match (parsed, *slot) {
        (None, _) => *invalid = true,
        (Some(v), Some(old)) if v != old => *invalid = true,
        (Some(v), _) => *slot = Some(v),
    }
}

/// Splits on commas outside quoted strings.
fn split_directives(v: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut parts = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, &b) in v.iter().enumerate() {
        if escaped {
            escaped = false;
        } else if quoted && b == b'\\' {
            escaped = true;
        } else if b == b'"' {
            quoted = !quoted;
        } else if b == b',' && !quoted {
            parts.push(&v[start..i]);
            start = i + 1;
        }
    }
    parts.push(&v[start..]);
    parts.into_iter().map(trim).filter(|p| !p.is_empty())
}

pub fn trim(s: &[u8]) -> &[u8] {
    let start = s
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(s.len());
    let end = s
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &s[start..end]
}

fn unquote(s: &[u8]) -> &[u8] {
    if s.len() >= 2 && s[0] == b'"' && s[s.len() - 1] == b'"' {
        &s[1..s.len() - 1]
    } else {
        s
    }
}

/// Which field the response's caching directives came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Hzcache,
    Cdn,
    CacheControl,
}

/// The response directives that apply to hzcache: the first targeted field that is present
/// and valid, else Cache-Control. Targeted fields are Structured Fields Dictionaries (RFC 9213
/// §2.1, RFC 8941 §3.2): a field that does not parse as one, is empty, or gives a known
/// directive a value of the wrong type (`max-age="10"`, `no-store=1`) is ignored as a whole.
pub fn response_directives(h: &HeaderMap) -> (CacheControl, Source) {
    for (name, source) in [
        (HZCACHE_CACHE_CONTROL, Source::Hzcache),
        (CDN_CACHE_CONTROL, Source::Cdn),
    ] {
        if h.contains_key(name) {
            if let Some(cc) = targeted_directives(h, name) {
                return (cc, source);
            }
        }
    }
    (CacheControl::parse(h), Source::CacheControl)
}

/// A targeted field's directives, or `None` when the field must be ignored (RFC 9213 §2.1).
pub fn targeted_directives(h: &HeaderMap, name: &str) -> Option<CacheControl> {
    let mut joined = Vec::new();
    for (i, line) in h.get_all(name).iter().enumerate() {
        if i > 0 {
            joined.extend_from_slice(b", ");
        }
        joined.extend_from_slice(line.as_bytes());
    }
    let members = sf::parse_dictionary(&joined)?;
    if members.is_empty() || members.len() > MAX_DIRECTIVES {
        return None;
    }
    let mut cc = CacheControl::default();
    for (key, value) in members {
        let flag = |v: &sf::Item| match v {
            sf::Item::Boolean(b) => Some(*b),
            _ => None,
        };
        let seconds = |v: &sf::Item| match v {
            sf::Item::Integer(n) if *n >= 0 => Some((*n as u64).min(MAX_DELTA_SECONDS)),
            _ => None,
        };
        match key.as_str() {
            "no-store" => cc.no_store = flag(&value)?,
            // With field names (a String or an Inner List) they count as the bare directive.
            "no-cache" | "private" => {
                let on = match &value {
                    sf::Item::Boolean(b) => *b,
                    sf::Item::String(_) | sf::Item::InnerList => true,
                    _ => return None,
                };
                if key == "no-cache" {
                    cc.no_cache = on;
                } else {
                    cc.private = on;
                }
            }
            "public" => cc.public = flag(&value)?,
            "must-revalidate" => cc.must_revalidate = flag(&value)?,
            "proxy-revalidate" => cc.proxy_revalidate = flag(&value)?,
            "immutable" => cc.immutable = flag(&value)?,
            "must-understand" => cc.must_understand = flag(&value)?,
            "max-age" => cc.max_age = Some(seconds(&value)?),
            "s-maxage" => cc.s_maxage = Some(seconds(&value)?),
            "stale-while-revalidate" => cc.stale_while_revalidate = Some(seconds(&value)?),
            "stale-if-error" => cc.stale_if_error = Some(seconds(&value)?),
            _ => {}
        }
    }
    Some(cc)
}

/// The part of RFC 8941 (Structured Field Values) the targeted fields need: a Dictionary
/// parser that checks the whole syntax and keeps each member's bare item type.
pub mod sf {
    #[derive(Clone, Debug, PartialEq)]
    pub enum Item {
        Integer(i64),
        Decimal,
        String(String),
        Token(String),
        ByteSequence,
        Boolean(bool),
        InnerList,
    }

    struct P<'a> {
        s: &'a [u8],
        i: usize,
    }

    impl P<'_> {
        fn peek(&self) -> Option<u8> {
            self.s.get(self.i).copied()
        }
        fn sp(&mut self) {
            while self.peek() == Some(b' ') {
                self.i += 1;
            }
        }
        fn ows(&mut self) {
            while matches!(self.peek(), Some(b' ' | b'\t')) {
                self.i += 1;
            }
        }
        fn key(&mut self) -> Option<String> {
            let start = self.i;
            match self.peek()? {
                b'a'..=b'z' | b'*' => self.i += 1,
                _ => return None,
            }
            while matches!(
                self.peek(),
                Some(b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' | b'.' | b'*')
            ) {
                self.i += 1;
            }
            Some(String::from_utf8_lossy(&self.s[start..self.i]).into_owned())
        }
        fn bare(&mut self) -> Option<Item> {
            match self.peek()? {
                b'-' | b'0'..=b'9' => self.number(),
                b'"' => self.string(),
                b':' => {
                    self.i += 1;
                    while let Some(c) = self.peek() {
                        self.i += 1;
                        match c {
                            b':' => return Some(Item::ByteSequence),
                            c if c.is_ascii_alphanumeric() || b"+/=".contains(&c) => {}
                            _ => return None,
                        }
                    }
                    None
                }
                b'?' => {
                    self.i += 1;
                    let b = match self.peek()? {
                        b'0' => false,
                        b'1' => true,
                        _ => return None,
                    };
                    self.i += 1;
                    Some(Item::Boolean(b))
                }
                c if c.is_ascii_alphabetic() || c == b'*' => {
                    let start = self.i;
                    self.i += 1;
                    while let Some(c) = self.peek() {
                        if c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~:/".contains(&c) {
                            self.i += 1;
                        } else {
                            break;
                        }
                    }
                    Some(Item::Token(
                        String::from_utf8_lossy(&self.s[start..self.i]).into_owned(),
                    ))
                }
                _ => None,
            }
        }
        fn number(&mut self) -> Option<Item> {
            let start = self.i;
            if self.peek() == Some(b'-') {
                self.i += 1;
            }
            let (mut digits, mut frac, mut dot) = (0, 0, false);
            while let Some(c) = self.peek() {
                match c {
                    b'0'..=b'9' if dot => frac += 1,
                    b'0'..=b'9' => digits += 1,
                    b'.' if !dot && digits > 0 => dot = true,
                    _ => break,
                }
                self.i += 1;
            }
            if digits == 0 {
                return None;
            }
            if dot {
                return (digits <= 12 && (1..=3).contains(&frac)).then_some(Item::Decimal);
            }
            if digits > 15 {
                return None;
            }
            std::str::from_utf8(&self.s[start..self.i])
                .ok()?
                .parse()
                .ok()
                .map(Item::Integer)
        }
        fn string(&mut self) -> Option<Item> {
            self.i += 1;
            let mut out = String::new();
            loop {
                let c = self.peek()?;
                self.i += 1;
                match c {
                    b'\\' => {
                        let e = self.peek()?;
                        if e != b'"' && e != b'\\' {
                            return None;
                        }
                        out.push(e as char);
                        self.i += 1;
                    }
                    b'"' => return Some(Item::String(out)),
                    0x20..=0x7e => out.push(c as char),
                    _ => return None,
                }
            }
        }
        fn params(&mut self) -> Option<()> {
            while self.peek() == Some(b';') {
                self.i += 1;
                self.sp();
                self.key()?;
                if self.peek() == Some(b'=') {
                    self.i += 1;
                    self.bare()?;
                }
            }
            Some(())
        }
        fn item_or_inner_list(&mut self) -> Option<Item> {
            if self.peek() != Some(b'(') {
                let item = self.bare()?;
                self.params()?;
                return Some(item);
            }
            self.i += 1;
            loop {
                self.sp();
                if self.peek()? == b')' {
                    self.i += 1;
                    self.params()?;
                    return Some(Item::InnerList);
                }
                self.bare()?;
                self.params()?;
                if !matches!(self.peek()?, b' ' | b')') {
                    return None;
                }
            }
        }
    }

    /// Parses a Dictionary (RFC 8941 §4.2.2); `None` on any syntax error. Members keep their
    /// order; a key given twice keeps its last value, as §4.2.2 says.
    pub fn parse_dictionary(s: &[u8]) -> Option<Vec<(String, Item)>> {
        let mut p = P { s, i: 0 };
        let mut out: Vec<(String, Item)> = Vec::new();
        p.sp();
        if p.i == s.len() {
            return Some(out);
        }
        loop {
            let key = p.key()?;
            let value = if p.peek() == Some(b'=') {
                p.i += 1;
                p.item_or_inner_list()?
            } else {
                p.params()?;
                Item::Boolean(true)
            };
            out.retain(|(k, _)| *k != key);
            out.push((key, value));
            p.ows();
            if p.i == s.len() {
                return Some(out);
            }
            if p.peek()? != b',' {
                return None;
            }
            p.i += 1;
            p.ows();
            if p.i == s.len() {
                return None;
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Age, Date, Expires

/// The `Age` value (RFC 9111 §5.1): the first member of the first line; `None` (ignored) when
/// that is not a non-negative integer. Huge values clamp to 2^31.
pub fn age_value(h: &HeaderMap) -> Option<u64> {
    let first = h.get("age")?.as_bytes();
    let member = trim(first.split(|&b| b == b',').next().unwrap_or(b""));
    delta_seconds(member)
}

/// `Date` in Unix seconds, if there is exactly one valid value.
pub fn date_value(h: &HeaderMap, now_secs: i64) -> Option<i64> {
    let mut it = h.get_all("date").iter();
    let first = it.next()?;
    if it.next().is_some() {
        return None;
    }
    parse_http_date(first.as_bytes(), now_secs)
}

/// `Expires`: `None` when absent, `Some(None)` when invalid or duplicated (RFC 9111 §5.3: an
/// invalid date, "0" included, means already expired), `Some(Some(t))` otherwise.
pub fn expires_value(h: &HeaderMap, now_secs: i64) -> Option<Option<i64>> {
    let mut it = h.get_all("expires").iter();
    let first = it.next()?;
    if it.next().is_some() {
        return Some(None);
    }
    Some(parse_http_date(first.as_bytes(), now_secs))
}

// ---------------------------------------------------------------------------------------------
// Storing

/// What the rule (filter configuration) adds to the response's own rules.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Policy {
    /// Lifetime for a response without explicit freshness (an operator-chosen heuristic, RFC
    /// 9111 §4.2.2: only for heuristically cacheable statuses or `public`). `None`: off.
    pub default_ttl: Option<u32>,
    /// Replaces the lifetime from `CDN-Cache-Control`/`Cache-Control`/`Expires` (not from
    /// `Hzcache-Cache-Control`, which is the origin talking to hzcache itself).
    pub ttl_override: Option<u32>,
    /// Stale-while-revalidate / stale-if-error windows when the response gives none (an
    /// out-of-band contract in RFC 9111 §4.2.4's words). Never used when the response forbids
    /// stale (must-revalidate, proxy-revalidate, s-maxage, no-cache).
    pub stale_while_revalidate: u32,
    pub stale_if_error: u32,
    /// Store responses that carry `Set-Cookie`, without it (RFC 9111 §7.3: the field is meant
    /// for one user, so it is never stored or served from the cache; the client whose request
    /// went to the origin still gets it). `false`: such responses are not stored.
    pub strip_set_cookie: bool,
    /// Heuristic freshness from `Last-Modified` (§4.2.2): [`LAST_MODIFIED_FRACTION_PERCENT`] of
    /// `Date − Last-Modified`, at most this many seconds, for heuristically cacheable statuses
    /// without explicit freshness. `None`: off; `default_ttl` (if any) applies instead.
    pub last_modified_heuristic_max: Option<u32>,
    /// How long past its freshness a stored response may answer when the origin cannot be
    /// reached at all (§4.2.4: a disconnected cache); the companion's
    /// `--stale-if-unreachable-secs`. Never when the response forbids stale (must-revalidate,
    /// proxy-revalidate, no-cache, s-maxage). 0: off.
    pub stale_if_unreachable: u32,
}

/// When the exchange happened (Unix milliseconds), for the age calculation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Times {
    pub request_ms: i64,
    pub response_ms: i64,
}

/// How a stored response may be reused; kept in the envelope.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Freshness {
    /// Freshness lifetime (§4.2.1), seconds.
    pub lifetime_secs: u32,
    /// `corrected_initial_age` (§4.2.3), seconds.
    pub initial_age_secs: u32,
    /// `response_time`, Unix milliseconds.
    pub stored_at_ms: i64,
    pub stale_while_revalidate_secs: u32,
    pub stale_if_error_secs: u32,
    /// No stale serving at all (must-revalidate, proxy-revalidate, s-maxage).
    pub must_revalidate: bool,
    /// `no-cache`: validate before every reuse.
    pub no_cache: bool,
    pub immutable: bool,
    /// How long past freshness it may answer when the origin is unreachable (0: never).
    pub stale_if_unreachable_secs: u32,
}

impl Freshness {
    /// How long Hazelcast keeps the entry: the rest of its freshness plus the longest stale
    /// use it may still have (stale-while-revalidate, stale-if-error, or revalidation when it
    /// has validators). `0`: not worth storing.
    pub fn keep_secs(&self, has_validators: bool) -> u64 {
        let fresh_left =
            u64::from(self.lifetime_secs).saturating_sub(u64::from(self.initial_age_secs));
        let mut stale = 0u64;
        if !self.must_revalidate && !self.no_cache {
            stale = u64::from(
                self.stale_while_revalidate_secs
                    .max(self.stale_if_error_secs),
            );
        }
        // Only a response that was fresh on arrival is kept for an outage of the origin: one
        // that arrived stale is relayed, not stored for it.
        if fresh_left > 0 {
            stale = stale.max(u64::from(self.stale_if_unreachable_secs));
        }
        if has_validators {
            stale = stale.max(
                u64::from(self.lifetime_secs)
                    .clamp(MIN_REVALIDATION_KEEP_SECS, MAX_REVALIDATION_KEEP_SECS),
            );
        }
        fresh_left + stale
    }
}

/// The storage decision for one response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    Store(Freshness),
    DontStore(&'static str),
}

/// `corrected_initial_age` of RFC 9111 §4.2.3, seconds.
pub fn initial_age(response: &HeaderMap, times: Times) -> u64 {
    let now_secs = times.response_ms.div_euclid(1000);
    let apparent = date_value(response, now_secs)
        .map(|d| (times.response_ms - d * 1000).max(0) as u64 / 1000)
        .unwrap_or(0);
    let delay = (times.response_ms - times.request_ms).max(0) as u64 / 1000;
    let corrected_age_value = age_value(response).unwrap_or(0).saturating_add(delay);
    apparent.max(corrected_age_value).min(MAX_DELTA_SECONDS)
}

/// `current_age` of RFC 9111 §4.2.3, seconds: the initial age plus the time resident here.
pub fn current_age(f: &Freshness, now_ms: i64) -> u64 {
    let resident = (now_ms - f.stored_at_ms).max(0) as u64 / 1000;
    u64::from(f.initial_age_secs).saturating_add(resident)
}

/// How much longer a stored response stays fresh, milliseconds (0: stale now, or `no-cache`,
/// which is never reused without validation). What an in-Envoy L1 may keep a copy for.
pub fn fresh_ms_left(f: &Freshness, now_ms: i64) -> u64 {
    if f.no_cache {
        return 0;
    }
    let age_ms = u64::from(f.initial_age_secs)
        .saturating_mul(1000)
        .saturating_add((now_ms - f.stored_at_ms).max(0) as u64);
    u64::from(f.lifetime_secs)
        .saturating_mul(1000)
        .saturating_sub(age_ms)
}

fn secs(v: u64) -> u32 {
    v.min(u64::from(u32::MAX)) as u32
}

/// Whether the response has a validator for a conditional request.
pub fn has_validators(response: &HeaderMap) -> bool {
    response.contains_key("etag") || response.contains_key("last-modified")
}

/// Decides whether the response to a GET may be stored by a shared cache and how it may be
/// reused (RFC 9111 §3, §3.5, §4.2.1, §4.2.2, §5.2).
pub fn decide(
    method: &str,
    request: &HeaderMap,
    status: u16,
    response: &HeaderMap,
    policy: &Policy,
    times: Times,
) -> Decision {
    if method != "GET" {
        return Decision::DontStore("only responses to GET are stored");
    }
    let req_cc = CacheControl::parse(request);
    if req_cc.no_store {
        return Decision::DontStore("request no-store");
    }
    if !(200..=599).contains(&status) {
        return Decision::DontStore("status is not final");
    }
    if status == 206 || status == 304 {
        return Decision::DontStore("partial content or 304 are not stored");
    }
    let (cc, source) = response_directives(response);
    // must-understand (§5.2.2.3): a cache that understands the status's caching rules ignores
    // no-store; one that does not must not store.
    if cc.must_understand && !status_understood(status) {
        return Decision::DontStore("must-understand with a status whose rules are not known");
    }
    if cc.no_store && !cc.must_understand {
        return Decision::DontStore("no-store");
    }
    if cc.private {
        return Decision::DontStore("private");
    }
    if request.contains_key(AUTHORIZATION)
        && !(cc.public || cc.s_maxage.is_some() || cc.must_revalidate)
    {
        return Decision::DontStore("request carried authorization");
    }
    if response.contains_key(SET_COOKIE) && !policy.strip_set_cookie {
        return Decision::DontStore("set-cookie");
    }
    if vary_names(response).is_none() {
        return Decision::DontStore("vary: * (or an unusable Vary)");
    }
    if cc.invalid_lifetime {
        return Decision::DontStore("invalid or conflicting lifetime directives");
    }
    let now_secs = times.response_ms.div_euclid(1000);
    let expires = expires_value(response, now_secs);
    // Explicit lifetime (§4.2.1): s-maxage, max-age, Expires − Date.
    let explicit = if let Some(s) = cc.s_maxage {
        Some(s)
    } else if let Some(m) = cc.max_age {
        Some(m)
    } else if source == Source::CacheControl {
        match expires {
            None => None,
            Some(None) => Some(0),
            Some(Some(exp)) => {
                let date = date_value(response, now_secs).unwrap_or(now_secs);
                Some((exp - date).max(0) as u64)
            }
        }
    } else {
        None
    };
    let lifetime = match (explicit, source) {
        (Some(l), Source::Hzcache) => l,
        (Some(l), _) => policy.ttl_override.map_or(l, u64::from),
        // no-cache with a validator (§3, §5.2.2.4): storable, stale from the start, and
        // revalidated before every use; no heuristic lifetime could be used anyway.
        (None, _) if cc.no_cache && has_validators(response) => 0,
        (None, _) => {
            if !(cc.public || HEURISTICALLY_CACHEABLE.contains(&status)) {
                return Decision::DontStore("status is not cacheable without explicit freshness");
            }
            let from_last_modified = policy
                .last_modified_heuristic_max
                .and_then(|max| last_modified_lifetime(response, now_secs, max));
            match policy.ttl_override.map(u64::from).or(from_last_modified) {
                Some(t) => t,
                None => match policy.default_ttl {
                    Some(t) => u64::from(t),
                    None => {
                        return Decision::DontStore(
                            "no explicit freshness and no default TTL (heuristics off)",
                        )
                    }
                },
            }
        }
    };
    // s-maxage carries proxy-revalidate's meaning for a shared cache (§5.2.2.10).
    let must_revalidate = cc.must_revalidate || cc.proxy_revalidate || cc.s_maxage.is_some();
    let no_stale = must_revalidate || cc.no_cache;
    let swr = cc.stale_while_revalidate.map(secs).unwrap_or(if no_stale {
        0
    } else {
        policy.stale_while_revalidate
    });
    let sie =
        cc.stale_if_error
            .map(secs)
            .unwrap_or(if no_stale { 0 } else { policy.stale_if_error });
    let f = Freshness {
        lifetime_secs: secs(lifetime),
        initial_age_secs: secs(initial_age(response, times)),
        stored_at_ms: times.response_ms,
        stale_while_revalidate_secs: swr,
        stale_if_error_secs: sie,
        must_revalidate: cc.must_revalidate || cc.proxy_revalidate,
        no_cache: cc.no_cache,
        immutable: cc.immutable,
        // At most as long as it was fresh: keeping every entry a fixed window past its
        // freshness would multiply what short-lived entries hold in Hazelcast.
        stale_if_unreachable_secs: if no_stale {
            0
        } else {
            policy.stale_if_unreachable.min(secs(lifetime))
        },
    };
    let validators = has_validators(response);
    if cc.no_cache && !validators {
        return Decision::DontStore("no-cache without a validator");
    }
    if f.keep_secs(validators) == 0 {
        return Decision::DontStore("already stale and nothing to keep it for");
    }
    Decision::Store(f)
}

/// The share of the time since `Last-Modified` that a heuristic lifetime may be (RFC 9111
/// §4.2.2 names 10 % as typical): a page unchanged for ten days is likely unchanged tomorrow.
pub const LAST_MODIFIED_FRACTION_PERCENT: u64 = 10;

/// The heuristic lifetime from `Last-Modified`: [`LAST_MODIFIED_FRACTION_PERCENT`] of
/// `Date − Last-Modified` (the response time when `Date` is missing or invalid), at most
/// `max_secs`. `None` without exactly one valid `Last-Modified` or when it is later than
/// `Date` (a clock problem, not information).
pub fn last_modified_lifetime(response: &HeaderMap, now_secs: i64, max_secs: u32) -> Option<u64> {
    let mut lines = response.get_all("last-modified").iter();
    let (Some(line), None) = (lines.next(), lines.next()) else {
        return None;
    };
    let modified = parse_http_date(line.as_bytes(), now_secs)?;
    let date = date_value(response, now_secs).unwrap_or(now_secs);
    let unchanged_for = u64::try_from(date - modified).ok()?;
    Some((unchanged_for * LAST_MODIFIED_FRACTION_PERCENT / 100).min(u64::from(max_secs)))
}

/// Most Vary names honoured; more is a sign of a response that should not be shared.
pub const MAX_VARY_NAMES: usize = 16;

/// The lower-cased, sorted, de-duplicated field names in `Vary`: `Some(vec![])` when absent,
/// `None` for `*` or anything unusable (then the response is not stored or served).
pub fn vary_names(response: &HeaderMap) -> Option<Vec<String>> {
    let mut names = Vec::new();
    for line in response.get_all(VARY) {
        let text = line.to_str().ok()?;
        for n in text.split(',') {
            let n = n.trim();
            if n.is_empty() {
                continue;
            }
            if n == "*" {
                return None;
            }
            if !n
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
            {
                return None;
            }
            names.push(n.to_ascii_lowercase());
        }
    }
    names.sort();
    names.dedup();
    if names.len() > MAX_VARY_NAMES {
        return None;
    }
    Some(names)
}

// ---------------------------------------------------------------------------------------------
// Reusing

/// What the request asks of a stored response (RFC 9111 §5.2.1, shared-cache reading).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RequestRules {
    /// `no-cache`, or `max-age=0`: only reuse after successful validation.
    pub revalidate: bool,
    pub max_age: Option<u64>,
    pub min_fresh: Option<u64>,
    /// Do not store the response to this request (a stored one may still answer it).
    pub no_store: bool,
    /// `max-stale` (§5.2.1.2): a stale response this many seconds past its lifetime may
    /// answer (`u64::MAX`: any), unless the response forbids stale.
    pub max_stale: Option<u64>,
    /// `only-if-cached` (§5.2.1.7): answer from storage or with a 504, never from the origin.
    pub only_if_cached: bool,
}

impl RequestRules {
    pub fn from_request(request: &HeaderMap) -> RequestRules {
        let cc = CacheControl::parse(request);
        // `Pragma: no-cache` is honoured only without Cache-Control (RFC 9111 §5.4).
        let pragma = !request.contains_key(CACHE_CONTROL)
            && request.get_all("pragma").iter().any(|v| {
                v.as_bytes()
                    .split(|&b| b == b',')
                    .any(|t| trim(t).eq_ignore_ascii_case(b"no-cache"))
            });
        RequestRules {
            revalidate: cc.no_cache || pragma || cc.max_age == Some(0),
            max_age: cc.max_age,
            min_fresh: cc.min_fresh,
            no_store: cc.no_store,
            max_stale: cc.max_stale,
            only_if_cached: cc.only_if_cached,
        }
    }
}

/// How a stored response may answer this request now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reuse {
    /// Serve it.
    Fresh,
    /// Serve it stale and refresh it in the background (stale-while-revalidate).
    StaleWhileRevalidate,
    /// Serve it stale because the client allows it (`max-stale`); no refresh.
    StaleAllowed,
    /// Validate (or refetch) first; if the origin fails, it may still be served when
    /// `stale_if_error` says so.
    Revalidate { stale_if_error: bool },
}

pub fn reuse(f: &Freshness, req: &RequestRules, now_ms: i64) -> Reuse {
    let age = current_age(f, now_ms);
    let lifetime = u64::from(f.lifetime_secs);
    let staleness = age.saturating_sub(lifetime);
    let stale_ok = !f.must_revalidate && !f.no_cache;
    let sie = stale_ok && age >= lifetime && staleness < u64::from(f.stale_if_error_secs);
    let fresh = age < lifetime;
    // RFC 8246: while fresh, an immutable response does not change, so a client's reload
    // (`no-cache`, `max-age=0`, `Pragma: no-cache`) or any `max-age` limit could only be
    // answered by a 304 confirming these same bytes: it is served from the cache. The
    // response's own `no-cache` still wins; `min-fresh` still applies.
    let client_may_force = !(f.immutable && fresh);
    if f.no_cache || (client_may_force && (req.revalidate || req.max_age.is_some_and(|m| age > m)))
    {
        return Reuse::Revalidate {
            stale_if_error: sie,
        };
    }
    let fresh_enough = req
        .min_fresh
        .is_none_or(|m| lifetime.saturating_sub(age) >= m);
    if fresh && fresh_enough {
        return Reuse::Fresh;
    }
    // A client asking for remaining freshness (`min-fresh`) gets no stale answer at all.
    if !fresh && stale_ok && req.min_fresh.is_none() {
        if req.max_stale.is_some_and(|m| staleness <= m) {
            return Reuse::StaleAllowed;
        }
        if staleness < u64::from(f.stale_while_revalidate_secs) {
            return Reuse::StaleWhileRevalidate;
        }
    }
    Reuse::Revalidate {
        stale_if_error: sie,
    }
}

// ---------------------------------------------------------------------------------------------
// Conditional requests from clients (RFC 9110 §13)

fn etag_opaque(t: &[u8]) -> &[u8] {
    let t = trim(t);
    t.strip_prefix(b"W/").unwrap_or(t)
}

/// Whether a stale stored response may answer because the origin cannot be reached
/// (§4.2.4): within its `stale_if_unreachable_secs` past freshness (0 when the response
/// forbids stale).
pub fn stale_if_unreachable(f: &Freshness, now_ms: i64) -> bool {
    let staleness = current_age(f, now_ms).saturating_sub(u64::from(f.lifetime_secs));
    !f.must_revalidate
        && !f.no_cache
        && current_age(f, now_ms) >= u64::from(f.lifetime_secs)
        && staleness < u64::from(f.stale_if_unreachable_secs)
}

/// Whether the client's `If-None-Match` / `If-Modified-Since` is satisfied by a stored
/// response with these headers, so that a 304 answers it. `If-None-Match` takes precedence
/// (§13.2.2); weak comparison. Only 200 responses are ever answered 304.
pub fn not_modified(request: &HeaderMap, status: u16, stored: &HeaderMap, now_secs: i64) -> bool {
    if status != 200 {
        return false;
    }
    if request.contains_key("if-none-match") {
        let Some(etag) = stored.get("etag") else {
            return false;
        };
        let mine = etag_opaque(etag.as_bytes());
        return request.get_all("if-none-match").iter().any(|line| {
            line.as_bytes()
                .split(|&b| b == b',')
                .map(trim)
                .any(|t| t == b"*" || (!t.is_empty() && etag_opaque(t) == mine))
        });
    }
    let Some(ims) = request.get("if-modified-since") else {
        return false;
    };
    let Some(ims) = parse_http_date(ims.as_bytes(), now_secs) else {
        return false;
    };
    // The stored response's last modification: `Last-Modified`, or without one its `Date`
    // (RFC 9111 §4.3.2; RFC 9110 §13.1.3).
    let modified = match stored.get("last-modified") {
        Some(v) => parse_http_date(v.as_bytes(), now_secs),
        None => date_value(stored, now_secs),
    };
    modified.is_some_and(|m| m <= ims)
}

/// The headers a 304 carries from the stored response (RFC 9110 §15.4.5).
pub const NOT_MODIFIED_HEADERS: [&str; 7] = [
    "cache-control",
    "content-location",
    "date",
    "etag",
    "expires",
    "vary",
    "last-modified",
];

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    const NOW: i64 = 1_700_000_000; // 2023-11-14T22:13:20Z

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    fn times() -> Times {
        Times {
            request_ms: NOW * 1000,
            response_ms: NOW * 1000,
        }
    }

    fn policy() -> Policy {
        Policy {
            default_ttl: Some(60),
            ..Policy::default()
        }
    }

    fn decide_for(resp: &[(&'static str, &'static str)]) -> Decision {
        decide(
            "GET",
            &HeaderMap::new(),
            200,
            &headers(resp),
            &policy(),
            times(),
        )
    }

    fn lifetime(d: Decision) -> u32 {
        match d {
            Decision::Store(f) => f.lifetime_secs,
            Decision::DontStore(why) => panic!("not stored: {why}"),
        }
    }

    fn not_stored(d: &Decision) -> bool {
        matches!(d, Decision::DontStore(_))
    }

    #[test]
    fn the_three_http_date_formats_parse_to_the_same_instant() {
        let want = Some(784_111_777);
        assert_eq!(parse_http_date(b"Sun, 06 Nov 1994 08:49:37 GMT", NOW), want);
        assert_eq!(
            parse_http_date(b"Sunday, 06-Nov-94 08:49:37 GMT", NOW),
            want
        );
        assert_eq!(parse_http_date(b"Sun Nov  6 08:49:37 1994", NOW), want);
        assert_eq!(
            parse_http_date(b"  Sun, 06 Nov 1994 08:49:37 GMT ", NOW),
            want
        );
    }

    #[test]
    fn a_two_digit_year_far_in_the_future_means_the_last_century() {
        // In 2023, "30" is 2030 (7 years ahead) and "94" is 1994 (2094 is > 50 years ahead).
        let y30 = parse_http_date(b"Monday, 01-Jan-30 00:00:00 GMT", NOW).unwrap();
        assert_eq!(format_http_date(y30), "Tue, 01 Jan 2030 00:00:00 GMT");
        let y94 = parse_http_date(b"Monday, 01-Jan-94 00:00:00 GMT", NOW).unwrap();
        assert_eq!(format_http_date(y94), "Sat, 01 Jan 1994 00:00:00 GMT");
    }

    #[test]
    fn malformed_dates_are_refused() {
        for bad in [
            &b"0"[..],
            b"",
            b"yesterday",
            b"Sun, 06 Nov 1994 08:49:37 UTC",
            b"Sun, 6 Nov 1994 08:49:37 GMT",
            b"Sun, 31 Feb 1994 08:49:37 GMT",
            b"Sun, 06 Foo 1994 08:49:37 GMT",
            b"Sun, 06 Nov 1994 25:49:37 GMT",
            b"Xyz, 06 Nov 1994 08:49:37 GMT",
            b"Sun Nov  6 08:49:37 94",
            b"Sun, 06 Nov 1994 08:49 GMT",
            b"\xff\xfe",
        ] {
            assert_eq!(
                parse_http_date(bad, NOW),
                None,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn dates_format_and_parse_back() {
        for t in [0, 784_111_777, NOW, 951_782_400 /* 2000-02-29 */] {
            assert_eq!(
                parse_http_date(format_http_date(t).as_bytes(), NOW),
                Some(t)
            );
        }
    }

    #[test]
    fn a_plain_200_is_stored_for_the_default_ttl_only_when_one_is_configured() {
        assert_eq!(lifetime(decide_for(&[])), 60);
        let off = decide(
            "GET",
            &HeaderMap::new(),
            200,
            &HeaderMap::new(),
            &Policy::default(),
            times(),
        );
        assert!(not_stored(&off));
    }

    #[test]
    fn s_maxage_wins_over_max_age_and_max_age_over_expires() {
        assert_eq!(
            lifetime(decide_for(&[("cache-control", "max-age=10, s-maxage=30")])),
            30
        );
        assert_eq!(
            lifetime(decide_for(&[
                ("cache-control", "max-age=10"),
                ("expires", "Sun, 06 Nov 1994 08:49:37 GMT")
            ])),
            10
        );
    }

    #[test]
    fn expires_minus_date_gives_the_lifetime_and_an_invalid_expires_is_already_stale() {
        let d = decide_for(&[
            ("date", "Tue, 14 Nov 2023 22:13:20 GMT"),
            ("expires", "Tue, 14 Nov 2023 22:15:20 GMT"),
        ]);
        assert_eq!(lifetime(d), 120);
        for bad in ["0", "-1", "soon"] {
            let exp = HeaderValue::from_str(bad).unwrap();
            let mut h = HeaderMap::new();
            h.insert("expires", exp);
            let d = decide("GET", &HeaderMap::new(), 200, &h, &policy(), times());
            assert!(not_stored(&d), "expires {bad}: {d:?}");
            // With a validator it is stored, but stale from the start.
            h.insert("etag", HeaderValue::from_static("\"x\""));
            let d = decide("GET", &HeaderMap::new(), 200, &h, &policy(), times());
            assert_eq!(lifetime(d), 0, "expires {bad}");
        }
        // Two Expires lines: treated as invalid.
        let d = decide_for(&[
            ("expires", "Tue, 14 Nov 2023 22:15:20 GMT"),
            ("expires", "Tue, 14 Nov 2023 22:16:20 GMT"),
        ]);
        assert!(not_stored(&d));
    }

    #[test]
    fn directive_names_are_case_insensitive_and_lines_combine() {
        assert_eq!(
            lifetime(decide_for(&[
                ("cache-control", "Public"),
                ("cache-control", "MAX-AGE=5")
            ])),
            5
        );
        assert!(not_stored(&decide_for(&[("cache-control", "No-Store")])));
    }

    #[test]
    fn private_no_store_set_cookie_and_vary_star_are_not_stored() {
        for h in [
            ("cache-control", "private"),
            ("cache-control", "no-store"),
            ("cache-control", "private=\"x\", max-age=60"),
            ("set-cookie", "a=b"),
            ("vary", "*"),
            ("vary", "accept, *"),
            ("vary", "bad name"),
        ] {
            assert!(not_stored(&decide_for(&[h])), "{h:?}");
        }
    }

    #[test]
    fn no_cache_is_stored_only_with_a_validator_and_always_revalidated() {
        assert!(not_stored(&decide_for(&[(
            "cache-control",
            "no-cache, max-age=60"
        )])));
        let Decision::Store(f) =
            decide_for(&[("cache-control", "no-cache, max-age=60"), ("etag", "\"a\"")])
        else {
            panic!()
        };
        assert!(f.no_cache);
        assert_eq!(
            reuse(&f, &RequestRules::default(), NOW * 1000),
            Reuse::Revalidate {
                stale_if_error: false
            }
        );
    }

    #[test]
    fn a_varying_response_is_stored_and_its_names_are_normalised() {
        assert_eq!(lifetime(decide_for(&[("vary", "Accept-Encoding")])), 60);
        let h = headers(&[("vary", "User-Agent, accept"), ("vary", "ACCEPT")]);
        assert_eq!(
            vary_names(&h),
            Some(vec!["accept".into(), "user-agent".into()])
        );
        assert_eq!(vary_names(&HeaderMap::new()), Some(vec![]));
    }

    #[test]
    fn statuses_with_explicit_freshness_are_all_cacheable_others_only_heuristically() {
        for s in [201, 302, 307, 400, 403, 500, 503] {
            let d = decide(
                "GET",
                &HeaderMap::new(),
                s,
                &HeaderMap::new(),
                &policy(),
                times(),
            );
            assert!(not_stored(&d), "{s} without freshness");
            let d = decide(
                "GET",
                &HeaderMap::new(),
                s,
                &headers(&[("cache-control", "max-age=5")]),
                &policy(),
                times(),
            );
            assert_eq!(lifetime(d), 5, "{s} with max-age");
        }
        // 206 is heuristically cacheable but partial content is not stored.
        for s in HEURISTICALLY_CACHEABLE.into_iter().filter(|s| *s != 206) {
            let d = decide(
                "GET",
                &HeaderMap::new(),
                s,
                &HeaderMap::new(),
                &policy(),
                times(),
            );
            assert_eq!(lifetime(d), 60, "{s}");
        }
        for s in [100, 101, 206, 304, 600, 0] {
            let d = decide(
                "GET",
                &HeaderMap::new(),
                s,
                &headers(&[("cache-control", "max-age=5")]),
                &policy(),
                times(),
            );
            assert!(not_stored(&d), "{s}");
        }
        // `public` makes any status heuristically cacheable.
        let d = decide(
            "GET",
            &HeaderMap::new(),
            302,
            &headers(&[("cache-control", "public")]),
            &policy(),
            times(),
        );
        assert_eq!(lifetime(d), 60);
    }

    #[test]
    fn only_get_responses_are_stored() {
        for m in ["HEAD", "POST", "PUT"] {
            assert!(not_stored(&decide(
                m,
                &HeaderMap::new(),
                200,
                &HeaderMap::new(),
                &policy(),
                times()
            )));
        }
    }

    #[test]
    fn authorized_requests_are_stored_only_when_the_response_allows_sharing() {
        let req = headers(&[("authorization", "Bearer x")]);
        let d = |resp: &[(&'static str, &'static str)]| {
            decide("GET", &req, 200, &headers(resp), &policy(), times())
        };
        assert!(not_stored(&d(&[])));
        assert!(not_stored(&d(&[("cache-control", "max-age=9")])));
        assert_eq!(lifetime(d(&[("cache-control", "public, max-age=9")])), 9);
        assert_eq!(lifetime(d(&[("cache-control", "s-maxage=7")])), 7);
        assert_eq!(
            lifetime(d(&[("cache-control", "must-revalidate, max-age=3")])),
            3
        );
    }

    #[test]
    fn request_no_store_prevents_storing() {
        let req = headers(&[("cache-control", "no-store")]);
        assert!(not_stored(&decide(
            "GET",
            &req,
            200,
            &HeaderMap::new(),
            &policy(),
            times()
        )));
    }

    #[test]
    fn malformed_or_conflicting_lifetimes_are_not_stored() {
        for v in [
            "max-age=abc",
            "max-age=",
            "max-age=-1",
            "max-age=1, max-age=2",
            "s-maxage=1.5",
        ] {
            assert!(not_stored(&decide_for(&[("cache-control", v)])), "{v}");
        }
        assert!(not_stored(&decide_for(&[("cache-control", "max-age=0")])));
        // The same value twice is not a conflict.
        assert_eq!(
            lifetime(decide_for(&[("cache-control", "max-age=4, max-age=4")])),
            4
        );
    }

    #[test]
    fn too_many_directives_make_the_field_invalid() {
        let long = "a, ".repeat(100) + "max-age=5";
        let mut h = HeaderMap::new();
        h.insert("cache-control", HeaderValue::from_str(&long).unwrap());
        assert!(not_stored(&decide(
            "GET",
            &HeaderMap::new(),
            200,
            &h,
            &policy(),
            times()
        )));
    }

    #[test]
    fn quoted_values_and_commas_inside_quotes_parse() {
        let cc = CacheControl::parse(&headers(&[(
            "cache-control",
            "no-cache=\"set-cookie, x\", max-age=\"20\"",
        )]));
        assert!(cc.no_cache);
        assert_eq!(cc.max_age, Some(20));
    }

    #[test]
    fn huge_lifetimes_are_clamped() {
        let cc = CacheControl::parse(&headers(&[(
            "cache-control",
            "max-age=99999999999999999999999",
        )]));
        assert_eq!(cc.max_age, Some(MAX_DELTA_SECONDS));
        assert!(!cc.invalid_lifetime);
    }

    #[test]
    fn targeted_fields_win_over_cache_control_in_order() {
        let d = decide_for(&[
            ("cache-control", "max-age=5"),
            ("cdn-cache-control", "max-age=50"),
        ]);
        assert_eq!(lifetime(d), 50);
        let d = decide_for(&[
            ("cache-control", "max-age=5"),
            ("cdn-cache-control", "max-age=50"),
            ("hzcache-cache-control", "max-age=500"),
        ]);
        assert_eq!(lifetime(d), 500);
        // The browser gets no-store, the shared cache may keep it.
        assert_eq!(
            lifetime(decide_for(&[
                ("cache-control", "no-store"),
                ("cdn-cache-control", "max-age=9")
            ])),
            9
        );
        // And the other way round: the targeted field forbids storing.
        assert!(not_stored(&decide_for(&[
            ("cache-control", "max-age=60"),
            ("hzcache-cache-control", "no-store")
        ])));
        // An invalid targeted field is ignored.
        assert_eq!(
            lifetime(decide_for(&[
                ("cache-control", "max-age=5"),
                ("cdn-cache-control", "max-age=x")
            ])),
            5
        );
    }

    #[test]
    fn the_rule_override_replaces_lifetimes_except_hzcache_cache_control() {
        let p = Policy {
            default_ttl: Some(60),
            ttl_override: Some(7),
            ..Policy::default()
        };
        let d = |resp: &[(&'static str, &'static str)]| {
            decide("GET", &HeaderMap::new(), 200, &headers(resp), &p, times())
        };
        assert_eq!(lifetime(d(&[("cache-control", "max-age=100")])), 7);
        assert_eq!(lifetime(d(&[])), 7);
        assert_eq!(
            lifetime(d(&[("hzcache-cache-control", "max-age=100")])),
            100
        );
        assert!(not_stored(&d(&[("cache-control", "private, max-age=100")])));
    }

    #[test]
    fn age_takes_the_first_member_and_ignores_invalid_values() {
        assert_eq!(age_value(&headers(&[("age", "5")])), Some(5));
        assert_eq!(age_value(&headers(&[("age", "5, 7")])), Some(5));
        assert_eq!(age_value(&headers(&[("age", "5"), ("age", "9")])), Some(5));
        assert_eq!(age_value(&headers(&[("age", "-1")])), None);
        assert_eq!(age_value(&headers(&[("age", "1.5")])), None);
        assert_eq!(age_value(&headers(&[("age", "")])), None);
        assert_eq!(
            age_value(&headers(&[("age", "999999999999999999999")])),
            Some(MAX_DELTA_SECONDS)
        );
    }

    #[test]
    fn current_age_follows_rfc9111_section_4_2_3() {
        // Date 10 s before the response arrived, Age 3, 2 s between request and response.
        let h = headers(&[("date", "Tue, 14 Nov 2023 22:13:10 GMT"), ("age", "3")]);
        let t = Times {
            request_ms: (NOW - 2) * 1000,
            response_ms: NOW * 1000,
        };
        // apparent_age 10; corrected_age_value 3 + 2 = 5; initial = max = 10.
        assert_eq!(initial_age(&h, t), 10);
        let h = headers(&[("date", "Tue, 14 Nov 2023 22:13:20 GMT"), ("age", "30")]);
        assert_eq!(initial_age(&h, t), 32);
        // A Date in the future does not make the age negative.
        let h = headers(&[("date", "Tue, 14 Nov 2023 23:00:00 GMT")]);
        assert_eq!(initial_age(&h, t), 2);
        let f = Freshness {
            initial_age_secs: 10,
            stored_at_ms: NOW * 1000,
            lifetime_secs: 60,
            ..Freshness::default()
        };
        assert_eq!(current_age(&f, (NOW + 5) * 1000 + 999), 15);
        assert_eq!(current_age(&f, (NOW - 100) * 1000), 10);
    }

    #[test]
    fn an_upstream_age_counts_against_the_lifetime() {
        let Decision::Store(f) = decide_for(&[("cache-control", "max-age=60"), ("age", "50")])
        else {
            panic!()
        };
        assert_eq!(f.initial_age_secs, 50);
        assert_eq!(f.keep_secs(false), 10);
        assert!(not_stored(&decide_for(&[
            ("cache-control", "max-age=60"),
            ("age", "60")
        ])));
    }

    fn fresh_for(lifetime: u32) -> Freshness {
        Freshness {
            lifetime_secs: lifetime,
            stored_at_ms: NOW * 1000,
            ..Freshness::default()
        }
    }

    #[test]
    fn a_fresh_entry_is_reused_and_a_stale_one_revalidated() {
        let f = fresh_for(10);
        let r = RequestRules::default();
        assert_eq!(reuse(&f, &r, (NOW + 9) * 1000), Reuse::Fresh);
        assert_eq!(
            reuse(&f, &r, (NOW + 10) * 1000),
            Reuse::Revalidate {
                stale_if_error: false
            }
        );
    }

    #[test]
    fn request_no_cache_and_max_age_zero_force_validation() {
        let f = fresh_for(100);
        for req in [
            headers(&[("cache-control", "no-cache")]),
            headers(&[("cache-control", "max-age=0")]),
            headers(&[("pragma", "no-cache")]),
        ] {
            let r = RequestRules::from_request(&req);
            assert!(
                matches!(reuse(&f, &r, NOW * 1000 + 10), Reuse::Revalidate { .. }),
                "{req:?}"
            );
        }
        // Pragma is ignored when Cache-Control is present.
        let r = RequestRules::from_request(&headers(&[
            ("pragma", "no-cache"),
            ("cache-control", "max-age=50"),
        ]));
        assert_eq!(reuse(&f, &r, NOW * 1000), Reuse::Fresh);
        let r = RequestRules::from_request(&headers(&[("cache-control", "max-age=5")]));
        assert_eq!(reuse(&f, &r, (NOW + 5) * 1000), Reuse::Fresh);
        assert!(matches!(
            reuse(&f, &r, (NOW + 6) * 1000),
            Reuse::Revalidate { .. }
        ));
        let r = RequestRules::from_request(&headers(&[("cache-control", "min-fresh=50")]));
        assert_eq!(reuse(&f, &r, (NOW + 50) * 1000), Reuse::Fresh);
        assert!(matches!(
            reuse(&f, &r, (NOW + 51) * 1000),
            Reuse::Revalidate { .. }
        ));
        // Request no-store does not stop a stored response from answering.
        let r = RequestRules::from_request(&headers(&[("cache-control", "no-store")]));
        assert!(r.no_store);
        assert_eq!(reuse(&f, &r, NOW * 1000), Reuse::Fresh);
    }

    #[test]
    fn a_fresh_immutable_entry_answers_reloads_without_revalidation() {
        let f = Freshness {
            immutable: true,
            ..fresh_for(100)
        };
        for req in [
            headers(&[("cache-control", "no-cache")]),
            headers(&[("cache-control", "max-age=0")]),
            headers(&[("pragma", "no-cache")]),
            headers(&[("cache-control", "max-age=5")]),
        ] {
            let r = RequestRules::from_request(&req);
            assert_eq!(reuse(&f, &r, (NOW + 50) * 1000), Reuse::Fresh, "{req:?}");
        }
        // min-fresh asks for remaining lifetime, which immutable does not add.
        let r = RequestRules::from_request(&headers(&[("cache-control", "min-fresh=60")]));
        assert!(matches!(
            reuse(&f, &r, (NOW + 50) * 1000),
            Reuse::Revalidate { .. }
        ));
        // Once stale, a reload revalidates as for any entry.
        let r = RequestRules::from_request(&headers(&[("cache-control", "no-cache")]));
        assert!(matches!(
            reuse(&f, &r, (NOW + 100) * 1000),
            Reuse::Revalidate { .. }
        ));
        // The response's own no-cache wins over immutable.
        let f = Freshness {
            no_cache: true,
            ..f
        };
        assert!(matches!(
            reuse(&f, &RequestRules::default(), NOW * 1000),
            Reuse::Revalidate { .. }
        ));
    }

    #[test]
    fn set_cookie_responses_are_stored_only_when_the_rule_strips_the_cookie() {
        let resp = headers(&[("cache-control", "max-age=60"), ("set-cookie", "s=1")]);
        assert!(not_stored(&decide(
            "GET",
            &HeaderMap::new(),
            200,
            &resp,
            &policy(),
            times()
        )));
        let p = Policy {
            strip_set_cookie: true,
            ..policy()
        };
        let d = decide("GET", &HeaderMap::new(), 200, &resp, &p, times());
        assert_eq!(lifetime(d), 60);
        // The other rules still apply.
        let private = headers(&[("cache-control", "private"), ("set-cookie", "s=1")]);
        assert!(not_stored(&decide(
            "GET",
            &HeaderMap::new(),
            200,
            &private,
            &p,
            times()
        )));
    }

    #[test]
    fn last_modified_gives_a_tenth_of_its_age_capped_only_when_configured() {
        // Date is NOW; Last-Modified 1000 s earlier → 100 s.
        let resp = headers(&[
            ("date", "Tue, 14 Nov 2023 22:13:20 GMT"),
            ("last-modified", "Tue, 14 Nov 2023 21:56:40 GMT"),
        ]);
        let p = |max: Option<u32>, default_ttl: Option<u32>| Policy {
            default_ttl,
            last_modified_heuristic_max: max,
            ..Policy::default()
        };
        let d =
            |status: u16, p: Policy| decide("GET", &HeaderMap::new(), status, &resp, &p, times());
        assert!(not_stored(&d(200, p(None, None))), "off by default");
        assert_eq!(lifetime(d(200, p(Some(3600), None))), 100);
        assert_eq!(lifetime(d(200, p(Some(30), None))), 30, "capped");
        assert_eq!(
            lifetime(d(200, p(Some(3600), Some(5)))),
            100,
            "Last-Modified wins over the flat default"
        );
        // Only heuristically cacheable statuses (or `public`, tested below).
        assert!(not_stored(&d(302, p(Some(3600), None))));
        assert_eq!(lifetime(d(404, p(Some(3600), None))), 100);
        // Explicit freshness is never replaced by a heuristic.
        let explicit = headers(&[
            ("cache-control", "max-age=7"),
            ("last-modified", "Tue, 14 Nov 2023 21:56:40 GMT"),
        ]);
        let d = decide(
            "GET",
            &HeaderMap::new(),
            200,
            &explicit,
            &p(Some(3600), None),
            times(),
        );
        assert_eq!(lifetime(d), 7);
        // No Date: the response time stands in; a future or doubled Last-Modified is ignored.
        let no_date = headers(&[("last-modified", "Tue, 14 Nov 2023 21:56:40 GMT")]);
        assert_eq!(last_modified_lifetime(&no_date, NOW, 3600), Some(100));
        let future = headers(&[("last-modified", "Tue, 14 Nov 2023 23:00:00 GMT")]);
        assert_eq!(last_modified_lifetime(&future, NOW, 3600), None);
        let twice = headers(&[
            ("last-modified", "Tue, 14 Nov 2023 21:56:40 GMT"),
            ("last-modified", "Tue, 14 Nov 2023 20:00:00 GMT"),
        ]);
        assert_eq!(last_modified_lifetime(&twice, NOW, 3600), None);
        assert_eq!(last_modified_lifetime(&HeaderMap::new(), NOW, 3600), None);
    }

    #[test]
    fn stale_windows_come_from_directives_or_the_rule_and_must_revalidate_forbids_them() {
        let d = decide_for(&[(
            "cache-control",
            "max-age=10, stale-while-revalidate=20, stale-if-error=100",
        )]);
        let Decision::Store(f) = d else { panic!() };
        let r = RequestRules::default();
        assert_eq!(
            reuse(&f, &r, (NOW + 15) * 1000),
            Reuse::StaleWhileRevalidate
        );
        assert_eq!(
            reuse(&f, &r, (NOW + 31) * 1000),
            Reuse::Revalidate {
                stale_if_error: true
            }
        );
        assert_eq!(
            reuse(&f, &r, (NOW + 111) * 1000),
            Reuse::Revalidate {
                stale_if_error: false
            }
        );
        assert_eq!(f.keep_secs(false), 110);

        let p = Policy {
            default_ttl: Some(60),
            stale_while_revalidate: 30,
            stale_if_error: 40,
            ..Policy::default()
        };
        let with = |cc: &'static str| {
            let Decision::Store(f) = decide(
                "GET",
                &HeaderMap::new(),
                200,
                &headers(&[("cache-control", cc)]),
                &p,
                times(),
            ) else {
                panic!("{cc}")
            };
            (
                f.stale_while_revalidate_secs,
                f.stale_if_error_secs,
                f.must_revalidate,
            )
        };
        assert_eq!(with("max-age=10"), (30, 40, false));
        assert_eq!(with("max-age=10, must-revalidate"), (0, 0, true));
        assert_eq!(with("max-age=10, proxy-revalidate"), (0, 0, true));
        assert_eq!(with("s-maxage=10"), (0, 0, false));
        // An explicit directive is the origin's permission even with s-maxage.
        assert_eq!(with("s-maxage=10, stale-if-error=5").1, 5);
        let Decision::Store(f) = decide_for(&[(
            "cache-control",
            "max-age=10, must-revalidate, stale-if-error=100",
        )]) else {
            panic!()
        };
        assert_eq!(
            reuse(&f, &RequestRules::default(), (NOW + 20) * 1000),
            Reuse::Revalidate {
                stale_if_error: false
            }
        );
    }

    #[test]
    fn client_conditionals_match_by_weak_etag_or_date() {
        let stored = headers(&[
            ("etag", "W/\"v1\""),
            ("last-modified", "Tue, 14 Nov 2023 22:00:00 GMT"),
        ]);
        let yes =
            |req: &[(&'static str, &'static str)]| not_modified(&headers(req), 200, &stored, NOW);
        assert!(yes(&[("if-none-match", "\"v1\"")]));
        assert!(yes(&[("if-none-match", "\"x\", W/\"v1\"")]));
        assert!(yes(&[("if-none-match", "*")]));
        assert!(!yes(&[("if-none-match", "\"v2\"")]));
        // If-None-Match wins over If-Modified-Since.
        assert!(!yes(&[
            ("if-none-match", "\"v2\""),
            ("if-modified-since", "Tue, 14 Nov 2023 22:10:00 GMT")
        ]));
        assert!(yes(&[(
            "if-modified-since",
            "Tue, 14 Nov 2023 22:10:00 GMT"
        )]));
        assert!(yes(&[(
            "if-modified-since",
            "Tue, 14 Nov 2023 22:00:00 GMT"
        )]));
        assert!(!yes(&[(
            "if-modified-since",
            "Tue, 14 Nov 2023 21:00:00 GMT"
        )]));
        assert!(!yes(&[("if-modified-since", "garbage")]));
        assert!(!yes(&[]));
        assert!(!not_modified(
            &headers(&[("if-none-match", "*")]),
            404,
            &stored,
            NOW
        ));
    }

    #[test]
    fn rfc9110_5_6_7_day_month_and_gmt_are_read_in_any_letter_case() {
        let want = Some(784_111_777);
        for v in [
            &b"sun, 06 nov 1994 08:49:37 gmt"[..],
            b"SUN, 06 NOV 1994 08:49:37 GMT",
            b"Sun, 06 Nov 1994 08:49:37 Gmt",
            b"SUNDAY, 06-NOV-94 08:49:37 gmt",
            b"sun nov  6 08:49:37 1994",
        ] {
            assert_eq!(
                parse_http_date(v, NOW),
                want,
                "{}",
                String::from_utf8_lossy(v)
            );
        }
        // Still invalid: another zone, a missing zone, a bad month in any case.
        for v in [
            &b"sun, 06 nov 1994 08:49:37 utc"[..],
            b"Sun, 06 Nox 1994 08:49:37 GMT",
        ] {
            assert_eq!(parse_http_date(v, NOW), None);
        }
        // And an Expires in lower case counts as the date it is, not as expired.
        let d = decide_for(&[
            ("date", "tue, 14 nov 2023 22:13:20 gmt"),
            ("expires", "TUE, 14 NOV 2023 22:15:20 GMT"),
        ]);
        assert_eq!(lifetime(d), 120);
    }

    #[test]
    fn rfc9111_4_2_2_heuristics_cover_501_and_public_on_any_status() {
        let lm = [
            ("date", "Tue, 14 Nov 2023 22:13:20 GMT"),
            ("last-modified", "Tue, 14 Nov 2023 21:56:40 GMT"),
        ];
        let p = Policy {
            last_modified_heuristic_max: Some(86_400),
            ..Policy::default()
        };
        let d = |status: u16, extra: &[(&'static str, &'static str)]| {
            let mut h = headers(&lm);
            for (k, v) in extra {
                h.append(*k, HeaderValue::from_static(v));
            }
            decide("GET", &HeaderMap::new(), status, &h, &p, times())
        };
        assert_eq!(lifetime(d(501, &[])), 100, "501 is heuristically cacheable");
        assert!(not_stored(&d(302, &[])), "302 is not");
        assert_eq!(
            lifetime(d(302, &[("cache-control", "public")])),
            100,
            "any status marked public is"
        );
        assert!(not_stored(&d(500, &[])));
        for s in HEURISTICALLY_CACHEABLE.into_iter().filter(|s| *s != 206) {
            assert_eq!(lifetime(d(s, &[])), 100, "{s}");
        }
    }

    #[test]
    fn rfc9111_5_2_2_4_no_cache_with_a_validator_and_no_lifetime_is_stored_stale() {
        let p = Policy::default();
        let d = |h: &[(&'static str, &'static str)]| {
            decide("GET", &HeaderMap::new(), 200, &headers(h), &p, times())
        };
        let Decision::Store(f) = d(&[("cache-control", "no-cache"), ("etag", "\"v\"")]) else {
            panic!("stored")
        };
        assert_eq!((f.lifetime_secs, f.no_cache), (0, true));
        assert!(f.keep_secs(true) >= MIN_REVALIDATION_KEEP_SECS);
        assert!(matches!(
            reuse(&f, &RequestRules::default(), NOW * 1000),
            Reuse::Revalidate { .. }
        ));
        assert_eq!(
            lifetime(d(&[
                ("cache-control", "no-cache"),
                ("last-modified", "Tue, 14 Nov 2023 21:56:40 GMT")
            ])),
            0
        );
        assert!(
            not_stored(&d(&[("cache-control", "no-cache")])),
            "no validator"
        );
    }

    #[test]
    fn rfc9111_5_2_2_3_must_understand_overrides_no_store_for_understood_statuses() {
        let d = |status: u16| {
            decide(
                "GET",
                &HeaderMap::new(),
                status,
                &headers(&[("cache-control", "must-understand, no-store, max-age=60")]),
                &policy(),
                times(),
            )
        };
        assert_eq!(lifetime(d(200)), 60);
        assert_eq!(lifetime(d(404)), 60);
        assert!(not_stored(&d(299)), "an unknown status is not stored");
        assert_eq!(
            lifetime(decide_for(&[(
                "cache-control",
                "must-understand, max-age=5"
            )])),
            5
        );
        assert!(not_stored(&decide(
            "GET",
            &HeaderMap::new(),
            299,
            &headers(&[("cache-control", "must-understand, max-age=60")]),
            &policy(),
            times(),
        )));
    }

    #[test]
    fn rfc9110_13_1_3_if_modified_since_uses_the_stored_date_without_last_modified() {
        let stored = headers(&[("date", "Tue, 14 Nov 2023 22:00:00 GMT")]);
        let ims = |v: &'static str| {
            not_modified(&headers(&[("if-modified-since", v)]), 200, &stored, NOW)
        };
        assert!(ims("Tue, 14 Nov 2023 22:00:00 GMT"));
        assert!(ims("Tue, 14 Nov 2023 22:10:00 GMT"));
        assert!(!ims("Tue, 14 Nov 2023 21:59:59 GMT"));
        assert!(!not_modified(
            &headers(&[("if-modified-since", "Tue, 14 Nov 2023 22:10:00 GMT")]),
            200,
            &HeaderMap::new(),
            NOW
        ));
    }

    #[test]
    fn rfc9111_5_2_1_max_stale_min_fresh_and_only_if_cached() {
        let f = fresh_for(10);
        let rules =
            |cc: &'static str| RequestRules::from_request(&headers(&[("cache-control", cc)]));
        // 5 s stale.
        let at = (NOW + 15) * 1000;
        assert_eq!(reuse(&f, &rules("max-stale"), at), Reuse::StaleAllowed);
        assert_eq!(reuse(&f, &rules("max-stale=5"), at), Reuse::StaleAllowed);
        assert!(matches!(
            reuse(&f, &rules("max-stale=4"), at),
            Reuse::Revalidate { .. }
        ));
        assert!(matches!(
            reuse(&f, &rules("max-stale=x"), at),
            Reuse::Revalidate { .. }
        ));
        // The response's must-revalidate / no-cache win over the client's permission.
        let strict = Freshness {
            must_revalidate: true,
            ..f
        };
        assert!(matches!(
            reuse(&strict, &rules("max-stale"), at),
            Reuse::Revalidate { .. }
        ));
        // min-fresh: a stale entry never answers, not even within stale-while-revalidate.
        let swr = Freshness {
            stale_while_revalidate_secs: 60,
            ..f
        };
        assert_eq!(
            reuse(&swr, &RequestRules::default(), at),
            Reuse::StaleWhileRevalidate
        );
        assert!(matches!(
            reuse(&swr, &rules("min-fresh=1"), at),
            Reuse::Revalidate { .. }
        ));
        assert!(matches!(
            reuse(&f, &rules("min-fresh=1, max-stale"), at),
            Reuse::Revalidate { .. }
        ));
        assert!(rules("only-if-cached").only_if_cached);
        assert!(!rules("max-age=5").only_if_cached);
    }

    #[test]
    fn rfc9111_4_2_4_stale_if_unreachable_only_where_stale_is_allowed() {
        let p = Policy {
            stale_if_unreachable: 60,
            ..Policy::default()
        };
        let f = |cc: &'static str| match decide(
            "GET",
            &HeaderMap::new(),
            200,
            &headers(&[("cache-control", cc)]),
            &p,
            times(),
        ) {
            Decision::Store(f) => f,
            Decision::DontStore(why) => panic!("{cc}: {why}"),
        };
        let plain = f("max-age=100");
        assert_eq!(plain.stale_if_unreachable_secs, 60);
        assert_eq!(plain.keep_secs(false), 160, "kept for the window");
        assert!(!stale_if_unreachable(&plain, (NOW + 50) * 1000), "fresh");
        assert!(stale_if_unreachable(&plain, (NOW + 130) * 1000));
        assert!(
            !stale_if_unreachable(&plain, (NOW + 160) * 1000),
            "past the window"
        );
        // Never longer than it was fresh.
        let short = f("max-age=10");
        assert_eq!(short.stale_if_unreachable_secs, 10);
        assert_eq!(short.keep_secs(false), 20);
        assert!(stale_if_unreachable(&short, (NOW + 15) * 1000));
        assert!(!stale_if_unreachable(&short, (NOW + 20) * 1000));
        for cc in [
            "max-age=10, must-revalidate",
            "max-age=10, proxy-revalidate",
            "s-maxage=10",
        ] {
            let g = f(cc);
            assert_eq!(g.stale_if_unreachable_secs, 0, "{cc}");
            assert!(!stale_if_unreachable(&g, (NOW + 30) * 1000), "{cc}");
        }
        // A response stale on arrival is not kept for an outage.
        let arrived_stale = decide(
            "GET",
            &HeaderMap::new(),
            200,
            &headers(&[("cache-control", "max-age=10"), ("age", "20")]),
            &p,
            times(),
        );
        assert!(not_stored(&arrived_stale));
        // Off.
        let off = match decide_for(&[("cache-control", "max-age=10")]) {
            Decision::Store(f) => f,
            _ => panic!(),
        };
        assert!(!stale_if_unreachable(&off, (NOW + 30) * 1000));
    }

    #[test]
    fn rfc9213_2_1_targeted_fields_are_sf_dictionaries_or_ignored() {
        let cdn = |v: &'static str| {
            lifetime(decide_for(&[
                ("cache-control", "max-age=5"),
                ("cdn-cache-control", v),
            ]))
        };
        assert_eq!(cdn("max-age=50"), 50);
        assert_eq!(cdn("max-age=50, stale-if-error=9;x=1"), 50);
        assert_eq!(cdn("public, max-age=50, unknown=(a b), other=?1"), 50);
        // Wrong type for a known directive, or not a Dictionary: ignored, Cache-Control applies.
        for bad in [
            "max-age=\"50\"",
            "max-age=50.0",
            "max-age=-1",
            "no-store=1",
            "Max-Age=50",
            "max-age=50,",
            "max-age=50 public",
            "max-age = 50",
            "",
            "max-age=9999999999999999",
        ] {
            assert_eq!(cdn(bad), 5, "{bad:?}");
        }
        // A key given twice keeps its last value (RFC 8941 §4.2.2).
        assert_eq!(cdn("max-age=1, max-age=50"), 50);
        // Lines combine into one Dictionary.
        let mut h = headers(&[("cache-control", "max-age=5")]);
        h.append("cdn-cache-control", HeaderValue::from_static("public"));
        h.append("cdn-cache-control", HeaderValue::from_static("max-age=40"));
        assert_eq!(
            lifetime(decide(
                "GET",
                &HeaderMap::new(),
                200,
                &h,
                &policy(),
                times()
            )),
            40
        );
        // A valid no-store in the targeted field still wins.
        assert!(not_stored(&decide_for(&[
            ("cache-control", "max-age=60"),
            ("hzcache-cache-control", "no-store")
        ])));
        assert!(
            sf::parse_dictionary(b"a=\"x\\\"y\", b=:aGk=:, c=tok/en, d=?0, e=(1 2);p").is_some()
        );
        assert!(sf::parse_dictionary(b"a=\"unterminated").is_none());
    }

    proptest::proptest! {
        #[test]
        fn parsers_never_panic_on_arbitrary_bytes(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64)) {
            let _ = parse_http_date(&data, NOW);
            let _ = CacheControl::parse_lines(std::iter::once(data.as_slice()));
        }
    }
}
