//! Where a response's caching directives come from: the targeted fields of RFC 9213
//! (`Hzcache-Cache-Control`, then `CDN-Cache-Control`), most specific first, else
//! `Cache-Control`. A targeted field is a Structured Fields Dictionary (RFC 9213 §2.1, RFC 8941
//! §3.2); the one present and valid decides alone, the others are ignored for caching (they
//! still travel to the client). The RFC 8941 Dictionary parser they need is [`sf`].

use hyper::header::HeaderMap;

use crate::http::cache_control::{CacheControl, MAX_DIRECTIVES};
use crate::http::syntax::MAX_DELTA_SECONDS;

/// The targeted field of hzcache's own name (RFC 9213 §2): directives only for this cache.
pub const HZCACHE_CACHE_CONTROL: &str = "hzcache-cache-control";
pub const CDN_CACHE_CONTROL: &str = "cdn-cache-control";

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
