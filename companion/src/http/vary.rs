//! What `Vary` means to a cache (RFC 9111 §4.1): the field names a response varies on (or
//! that it may never be reused, `*`), and the request fields a cache may normalise by their
//! meaning before comparing them: the weighted lists `Accept-Language` and `Accept-Encoding`
//! (RFC 9110 §12.4.2, §12.5.3, §12.5.4), the one language a request prefers above all, and a
//! response's `Content-Language`. Where variants live in Hazelcast is the top-level `vary`'s.

use hyper::header::{HeaderMap, VARY};

use crate::http::syntax::trim;

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

/// A weighted list (`Accept-Language`, `Accept-Encoding`: RFC 9110 §12.4.2, §12.5.3,
/// §12.5.4) in a canonical form: members lower-cased without whitespace, their q-value
/// written in the shortest form (`;q=1` left out), ordered by weight (highest first) and
/// then by name, a name listed twice kept once (its first weight). Equal weights carry no
/// order of preference in RFC 9110, so the order of the request does not select a variant.
/// A member that is not `name[;q=weight]` is kept as written, lower-cased, at weight 1.
pub fn normalise_weighted(parts: &[&[u8]]) -> Vec<u8> {
    let mut members: Vec<(u16, Vec<u8>)> = Vec::new();
    for part in parts.iter().filter(|p| !p.is_empty()) {
        let text = part.to_ascii_lowercase();
        let mut pieces = text.split(|&b| b == b';');
        let name: Vec<u8> = trim(pieces.next().unwrap_or_default()).to_vec();
        let mut weight = 1000u16;
        let mut plain = true;
        for param in pieces {
            let param: Vec<u8> = param
                .iter()
                .copied()
                .filter(|b| *b != b' ' && *b != b'\t')
                .collect();
            match param.strip_prefix(b"q=").and_then(qvalue) {
                Some(w) => weight = w,
                None => plain = false,
            }
        }
        let name = if plain {
            name
        } else {
            text.iter()
                .copied()
                .filter(|b| *b != b' ' && *b != b'\t')
                .collect()
        };
        if !members.iter().any(|(_, n)| *n == name) {
            members.push((weight, name));
        }
    }
    members.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    let mut out = Vec::new();
    for (i, (w, name)) in members.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(name);
        if *w != 1000 {
            let digits = format!("{w:03}");
            let digits = digits.trim_end_matches('0');
            let q = if digits.is_empty() {
                ";q=0".to_string()
            } else {
                format!(";q=0.{digits}")
            };
            out.extend_from_slice(q.as_bytes());
        }
    }
    out
}

/// The one language range the request prefers above all others (RFC 9110 §12.5.4): the
/// member with the highest weight, when exactly one has it, it is above 0 and it is not `*`;
/// lower-cased. `None` otherwise (ties leave the choice to the origin).
pub fn top_language(request: &HeaderMap) -> Option<String> {
    let mut parts: Vec<&[u8]> = Vec::new();
    for v in request.get_all("accept-language") {
        parts.extend(v.as_bytes().split(|&b| b == b',').map(trim));
    }
    let normal = normalise_weighted(&parts);
    let mut members = normal.split(|&b| b == b',').filter(|m| !m.is_empty());
    let first = members.next()?;
    let weight = |m: &[u8]| -> u16 {
        m.split(|&b| b == b';')
            .nth(1)
            .and_then(|q| q.strip_prefix(b"q="))
            .and_then(qvalue)
            .unwrap_or(1000)
    };
    let top = weight(first);
    if top == 0 || members.next().is_some_and(|m| weight(m) == top) {
        return None;
    }
    let name = first.split(|&b| b == b';').next()?;
    if name == b"*"
        || name.is_empty()
        || !name.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'-')
    {
        return None;
    }
    String::from_utf8(name.to_vec()).ok()
}

/// The response's one `Content-Language`, lower-cased; `None` for none, several, or anything
/// that is not a plain language tag.
pub fn content_language(response: &HeaderMap) -> Option<String> {
    let mut lines = response.get_all("content-language").iter();
    let (Some(line), None) = (lines.next(), lines.next()) else {
        return None;
    };
    let tag = trim(line.as_bytes()).to_ascii_lowercase();
    if tag.is_empty() || !tag.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'-') {
        return None;
    }
    String::from_utf8(tag).ok()
}

/// A qvalue (RFC 9110 §12.4.2: `0[.ddd]` or `1[.000]`) in thousandths.
fn qvalue(v: &[u8]) -> Option<u16> {
    let text = std::str::from_utf8(v).ok()?;
    let (int, frac) = text.split_once('.').unwrap_or((text, ""));
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let frac_val: u16 = format!("{frac:0<3}").parse().ok()?;
    match int {
        "0" => Some(frac_val),
        "1" if frac_val == 0 => Some(1000),
        _ => None,
    }
}
