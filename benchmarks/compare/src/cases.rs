//! The conformance cases: each a short scripted exchange on fresh, unique URLs, run
//! unchanged against every cache and judged only by what any client and the origin can see
//! (status, body, headers, and how many requests reached the origin), never by a cache's own
//! `x-cache`-style header. "Pass" is the behaviour RFC 9111 (and RFC 5861 / RFC 9213 where
//! named) asks of a shared cache; `rfc` and `expect` say which, and docs/comparison.md lists
//! them.

use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result};
use hzcache_e2e::stack::{q, send, set_failing};
use hzcache_e2e::{unique, Origin, Reply};

use crate::caches::Cache;
use crate::origin::pattern;

/// How long after a `max-age=1` response the cases wait for it to be stale. The origin's
/// `Date` has one-second resolution, so an entry may count up to ~1 s of age on arrival;
/// 2.2 s is past its lifetime either way.
const STALE_WAIT: Duration = Duration::from_millis(2200);

pub enum Verdict {
    Pass(String),
    Fail(String),
}

/// What one case saw on one cache.
pub struct Outcome {
    pub pass: bool,
    pub detail: String,
}

pub struct Case {
    pub id: &'static str,
    pub rfc: &'static str,
    pub expect: &'static str,
    run: fn(&Ctx) -> Result<Verdict>,
}

impl Case {
    pub fn run(&self, cache: &Cache, origin: &Origin) -> Outcome {
        let ctx = Ctx { cache, origin };
        match (self.run)(&ctx) {
            Ok(Verdict::Pass(d)) => Outcome {
                pass: true,
                detail: d,
            },
            Ok(Verdict::Fail(d)) => Outcome {
                pass: false,
                detail: d,
            },
            Err(e) => Outcome {
                pass: false,
                detail: format!("error: {e:#}"),
            },
        }
    }
}

/// One case's view of one cache and the origin.
pub struct Ctx<'a> {
    cache: &'a Cache,
    origin: &'a Origin,
}

impl Ctx<'_> {
    /// A path no other case or cache uses, asking the origin for `headers` and `more` query.
    fn path(&self, name: &str, headers: &[&str], more: &str) -> String {
        let mut p = format!("/{}/{name}/{}?", self.cache.name, unique("c"));
        for h in headers {
            p.push_str(&format!("h={}&", q(h)));
        }
        p.push_str(more);
        p
    }
    fn req(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> Result<Reply> {
        send(method, &self.cache.url(path), headers, b"")
    }
    fn get(&self, path: &str) -> Result<Reply> {
        self.req("GET", path, &[])
    }
    fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> Result<Reply> {
        self.req("GET", path, headers)
    }
    /// Requests the origin has seen for `path`.
    fn count(&self, path: &str) -> u32 {
        self.origin.count(path)
    }
    /// GETs `path` twice and returns both answers and the origin's count.
    fn twice(&self, path: &str) -> Result<(Reply, Reply, u32)> {
        let a = self.get(path)?;
        let b = self.get(path)?;
        Ok((a, b, self.count(path)))
    }
}

fn pass(d: impl Into<String>) -> Result<Verdict> {
    Ok(Verdict::Pass(d.into()))
}
fn fail(d: impl Into<String>) -> Result<Verdict> {
    Ok(Verdict::Fail(d.into()))
}
fn judge(ok: bool, d: impl Into<String>) -> Result<Verdict> {
    if ok {
        pass(d)
    } else {
        fail(d)
    }
}

/// An IMF-fixdate for `t` (the companion's own formatter, which its parser is tested against).
fn http_date(t: SystemTime) -> String {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    hzcache_companion::http::date::format_http_date(secs)
}

pub fn all() -> Vec<Case> {
    vec![
        Case {
            id: "fresh-max-age-reused",
            rfc: "RFC 9111 §4, §4.2.1, §5.2.2.1",
            expect: "a 200 with max-age=60 is stored; a second GET is answered from the cache (the origin sees one request, same body)",
            run: fresh_max_age_reused,
        },
        Case {
            id: "s-maxage-over-max-age",
            rfc: "RFC 9111 §4.2.1, §5.2.2.10",
            expect: "a shared cache uses s-maxage, not max-age: max-age=0, s-maxage=60 is reused; max-age=60, s-maxage=0 is not reused without the origin",
            run: s_maxage_over_max_age,
        },
        Case {
            id: "private-not-shared",
            rfc: "RFC 9111 §3, §5.2.2.7",
            expect: "a response with Cache-Control: private, max-age=60 is not stored by a shared cache: the second client's GET reaches the origin",
            run: private_not_shared,
        },
        Case {
            id: "no-store-not-stored",
            rfc: "RFC 9111 §3, §5.2.2.5",
            expect: "a response with no-store, max-age=60 is not stored: the second GET reaches the origin",
            run: no_store_not_stored,
        },
        Case {
            id: "set-cookie-not-shared",
            rfc: "RFC 9111 §7.3 (no MUST; the de facto rule of shared caches)",
            expect: "a max-age=60 response carrying Set-Cookie is not handed to another client: the second GET reaches the origin or at least carries no Set-Cookie",
            run: set_cookie_not_shared,
        },
        Case {
            id: "authorization-not-shared",
            rfc: "RFC 9111 §3.5",
            expect: "the answer to a request with Authorization (response max-age=60, no public/s-maxage/must-revalidate) is not served to a client without it",
            run: authorization_not_shared,
        },
        Case {
            id: "vary-variants-apart",
            rfc: "RFC 9111 §4.1",
            expect: "Vary: Accept-Encoding, max-age=60: the gzip and identity variants are each stored and each served only to matching requests (origin sees 2 requests for 4 GETs)",
            run: vary_variants_apart,
        },
        Case {
            id: "vary-other-field-apart",
            rfc: "RFC 9111 §4.1",
            expect: "the same with Vary: Accept-Language (de / en), a field no cache rewrites: both variants stored, each served only to its own language",
            run: vary_other_field_apart,
        },
        Case {
            id: "vary-star-never-served",
            rfc: "RFC 9111 §4.1",
            expect: "a response with Vary: * never matches: the second GET reaches the origin",
            run: vary_star_never_served,
        },
        Case {
            id: "expires-past-or-invalid-not-fresh",
            rfc: "RFC 9111 §4.2.1, §5.3",
            expect: "Expires one hour in the past, and the invalid Expires: 0 (= already expired), are not served fresh: each second GET reaches the origin",
            run: expires_past_or_invalid_not_fresh,
        },
        Case {
            id: "max-age-overrides-expires",
            rfc: "RFC 9111 §4.2.1, §5.3",
            expect: "with max-age=60 present, an Expires in the past is ignored: the response is stored and reused",
            run: max_age_overrides_expires,
        },
        Case {
            id: "age-on-hits-and-current-age",
            rfc: "RFC 9111 §4, §4.2.3, §5.1",
            expect: "a hit carries Age (here >= the origin's Age: 50 and < 60 for max-age=60); a response arriving with Age: 100 > max-age=60 is already stale and not reused",
            run: age_on_hits_and_current_age,
        },
        Case {
            id: "stale-not-served-without-permission",
            rfc: "RFC 9111 §4.2.4",
            expect: "max-age=1 and no stale directive: after 2.2 s the cache does not answer with the stale body (it fetches or validates first)",
            run: stale_not_served_without_permission,
        },
        Case {
            id: "must-revalidate-stale-not-served",
            rfc: "RFC 9111 §4.2.4, §5.2.2.2",
            expect: "max-age=1, must-revalidate: after 2.2 s the stale body is never served; the origin is asked",
            run: must_revalidate_stale_not_served,
        },
        Case {
            id: "client-if-none-match-304",
            rfc: "RFC 9111 §4.3.2; RFC 9110 §13.1.2",
            expect: "a fresh stored response with ETag \"v1\" answers a client's If-None-Match: \"v1\" with 304 itself (origin sees one request)",
            run: client_if_none_match_304,
        },
        Case {
            id: "stale-revalidated-with-etag",
            rfc: "RFC 9111 §4.3.1, §4.3.3, §4.3.4",
            expect: "max-age=1, ETag: stale after 2.2 s; the cache sends If-None-Match, waits for the origin's 304, answers the stored body, and the 304 makes the entry fresh again (next GET not at the origin)",
            run: stale_revalidated_with_etag,
        },
        Case {
            id: "304-updates-stored-headers",
            rfc: "RFC 9111 §3.2, §4.3.4",
            expect: "when a revalidation gets a 304 carrying a new value of a header (X-Seq), the stored response is updated: the hit after it carries the 304's value with the stored body",
            run: not_modified_updates_stored_headers,
        },
        Case {
            id: "head-from-get-entry",
            rfc: "RFC 9110 §9.3.2; RFC 9111 §4",
            expect: "after a stored GET (max-age=60, 1000-byte body), a HEAD is answered 200 without a body and without the origin",
            run: head_from_get_entry,
        },
        Case {
            id: "head-on-cold-key-then-get",
            rfc: "RFC 9110 §9.3.2; RFC 9111 §3, §4",
            expect: "a HEAD on a cold URL (max-age=60) must not leave an empty entry behind: the GET after it gets the whole 1000-byte body",
            run: head_on_cold_key_then_get,
        },
        Case {
            id: "unsafe-methods-invalidate",
            rfc: "RFC 9111 §4.4",
            expect: "a 2xx answer to POST, PUT or DELETE on a stored URL invalidates it: the next GET reaches the origin",
            run: unsafe_methods_invalidate,
        },
        Case {
            id: "stale-while-revalidate",
            rfc: "RFC 5861 §3; RFC 9111 §4.2.4",
            expect: "max-age=1, stale-while-revalidate=30: after 2.2 s, 5 concurrent GETs get the stale body; one background refresh brings the new body; the origin sees 2 requests in all",
            run: stale_while_revalidate,
        },
        Case {
            id: "stale-if-error-window",
            rfc: "RFC 5861 §4; RFC 9111 §4.2.4",
            expect: "max-age=1, stale-if-error=4 with the origin answering 503: at 2.2 s and 2.6 s the stale 200 is served; at 6.2 s (past the window) the 503 is",
            run: stale_if_error_window,
        },
        Case {
            id: "request-no-cache-validates",
            rfc: "RFC 9111 §5.2.1.4",
            expect: "a client's Cache-Control: no-cache is not answered from a fresh entry without the origin (a conditional or full request reaches it)",
            run: request_no_cache_validates,
        },
        Case {
            id: "request-pragma-no-cache",
            rfc: "RFC 9111 §5.4",
            expect: "a request with Pragma: no-cache and no Cache-Control is treated as Cache-Control: no-cache: it is not answered from a fresh entry without the origin",
            run: request_pragma_no_cache,
        },
        Case {
            id: "request-no-store-not-stored",
            rfc: "RFC 9111 §5.2.1.5",
            expect: "a response to a request with Cache-Control: no-store is not stored: the next plain GET reaches the origin",
            run: request_no_store_not_stored,
        },
        Case {
            id: "response-no-cache-validated",
            rfc: "RFC 9111 §4, §5.2.2.4",
            expect: "a response with no-cache, max-age=60 and an ETag may be stored but is never reused without the origin: the second GET reaches it",
            run: response_no_cache_validated,
        },
        Case {
            id: "cdn-cache-control",
            rfc: "RFC 9213 §2",
            expect: "CDN-Cache-Control wins over Cache-Control: CC max-age=60 + CDN-CC no-store is not stored; CC no-store + CDN-CC max-age=60 is",
            run: cdn_cache_control,
        },
        Case {
            id: "5xx-not-cached",
            rfc: "RFC 9111 §3, §4.2.2",
            expect: "500, 502 and 503 without explicit freshness are not stored (not heuristically cacheable): each second GET reaches the origin",
            run: errors_not_cached,
        },
        Case {
            id: "range-safe",
            rfc: "RFC 9111 §3.3, §3.4; RFC 9110 §14",
            expect: "Range: bytes=0-9 on a cold URL gets the right 10 bytes (206) or the whole body (200); a later plain GET gets the whole 100 bytes, never a part; a later Range: bytes=10-19 the right bytes",
            run: range_safe,
        },
        Case {
            id: "partial-stored-and-completed",
            rfc: "RFC 9111 §3.3, §3.4; RFC 9110 §14.4",
            expect: "an origin that answers a cold URL with a 206 of its first 40 bytes (ETag \"c1\"): Range 0-9 and 30-59 get the right bytes, a later Range 10-59 is answered without the origin (the pieces were stored and combined), a plain GET gets the whole 100 bytes",
            run: partial_stored_and_completed,
        },
        Case {
            id: "partial-etags-not-combined",
            rfc: "RFC 9111 §3.4",
            expect: "every origin answer has its own ETag and fill byte and the origin ignores If-Range: no answer to Range 0-9, 30-59, 0-59, 0-99 ever mixes bytes of two answers, and each 206 has as many bytes as its Content-Range says",
            run: partial_etags_not_combined,
        },
        Case {
            id: "age-on-relayed-unstored",
            rfc: "RFC 9111 §5.1, §4.2.3",
            expect: "a response that is relayed but not stored (no-store, Age: 30; private, Age: 0) keeps its Age (at least the origin's), Age: 0 included",
            run: age_on_relayed_unstored,
        },
        Case {
            id: "heuristic-last-modified",
            rfc: "RFC 9111 §4.2.2; RFC 9110 §15.1",
            expect: "a 200 and a 501 without explicit freshness but with Last-Modified ten days old are reused heuristically with no configuration (origin sees 1 request each); a 302 without public is not",
            run: heuristic_last_modified,
        },
        Case {
            id: "http-date-any-case",
            rfc: "RFC 9110 §5.6.7",
            expect: "an Expires ten minutes ahead written in lower case (`tue, 01 dec 2026 … gmt`) is read as that date: the response is reused",
            run: http_date_any_case,
        },
        Case {
            id: "no-cache-validator-no-lifetime",
            rfc: "RFC 9111 §3, §5.2.2.4",
            expect: "no-cache with an ETag and no lifetime may be stored: the second GET is answered with the stored body after the origin's 304 (origin sees 2 requests, the second conditional)",
            run: no_cache_validator_no_lifetime,
        },
        Case {
            id: "ims-against-date",
            rfc: "RFC 9111 §4.3.2; RFC 9110 §13.1.3",
            expect: "a fresh stored 200 without Last-Modified answers If-Modified-Since later than its Date with 304 itself (origin sees 1 request)",
            run: ims_against_date,
        },
        Case {
            id: "must-understand-over-no-store",
            rfc: "RFC 9111 §5.2.2.3",
            expect: "must-understand, no-store, max-age=60 on a 200 (a status whose caching rules every cache knows) is stored and reused (origin sees 1 request)",
            run: must_understand_over_no_store,
        },
        Case {
            id: "only-if-cached",
            rfc: "RFC 9111 §5.2.1.7",
            expect: "only-if-cached on a cold URL gets 504 without the origin; after a stored GET it gets the stored 200",
            run: only_if_cached,
        },
        Case {
            id: "max-stale",
            rfc: "RFC 9111 §5.2.1.2, §4.2.4",
            expect: "max-age=1 with an ETag, 2.2 s later: a request with max-stale (no value) and one with max-stale=100 get the stored body without the origin",
            run: max_stale,
        },
        Case {
            id: "min-fresh-stale",
            rfc: "RFC 9111 §5.2.1.3",
            expect: "max-age=1, stale-while-revalidate=60, 2.2 s later: a request with min-fresh=1 is not answered with the stale body (the origin is asked)",
            run: min_fresh_stale,
        },
        Case {
            id: "targeted-field-sf-invalid",
            rfc: "RFC 9213 §2.1; RFC 8941",
            expect: "CDN-Cache-Control: max-age=\"600\" (a String where an Integer belongs) is ignored whole: with Cache-Control: no-store the response is not stored; a valid CDN-Cache-Control with parameters (max-age=600;x=1) is honoured",
            run: targeted_field_sf_invalid,
        },
        Case {
            id: "vary-language-normalised",
            rfc: "RFC 9111 §4.1",
            expect: "Vary: Accept-Language: `en-US, de;q=0.5` and `DE;q=0.50 , en-us` select the same variant (origin sees 1 request)",
            run: vary_language_normalised,
        },
        Case {
            id: "cache-status",
            rfc: "RFC 9211",
            expect: "a miss and a hit each carry a Cache-Status field; the hit's says hit",
            run: cache_status,
        },
        Case {
            id: "stampede-coalesced",
            rfc: "none required (collapsed forwarding, a quality property; RFC 9111 §4 allows it)",
            expect: "50 concurrent GETs on a cold key (origin takes 1 s) reach the origin once and all get the same 200",
            run: stampede_coalesced,
        },
        Case {
            id: "oversized-body-intact",
            rfc: "RFC 9110 §6.4, §8.6 (message integrity)",
            expect: "a 3 MiB body with max-age=60 reaches the client whole and byte-exact, twice",
            run: oversized_body_intact,
        },
    ]
}

fn fresh_max_age_reused(c: &Ctx) -> Result<Verdict> {
    let p = c.path("fresh", &["cache-control:max-age=60"], "");
    let (a, b, n) = c.twice(&p)?;
    judge(
        n == 1 && a.body == b.body && b.status == 200,
        format!("origin requests {n}"),
    )
}

fn s_maxage_over_max_age(c: &Ctx) -> Result<Verdict> {
    let p1 = c.path("smax", &["cache-control:max-age=0, s-maxage=60"], "");
    let (_, _, n1) = c.twice(&p1)?;
    let p2 = c.path("smax0", &["cache-control:max-age=60, s-maxage=0"], "");
    let (_, _, n2) = c.twice(&p2)?;
    judge(
        n1 == 1 && n2 == 2,
        format!("s-maxage=60: origin {n1} (want 1); s-maxage=0: origin {n2} (want 2)"),
    )
}

fn private_not_shared(c: &Ctx) -> Result<Verdict> {
    let p = c.path("private", &["cache-control:private, max-age=60"], "");
    let (a, b, n) = c.twice(&p)?;
    judge(n == 2 && a.body != b.body, format!("origin requests {n}"))
}

fn no_store_not_stored(c: &Ctx) -> Result<Verdict> {
    let p = c.path("nostore", &["cache-control:no-store, max-age=60"], "");
    let (_, _, n) = c.twice(&p)?;
    judge(n == 2, format!("origin requests {n}"))
}

fn set_cookie_not_shared(c: &Ctx) -> Result<Verdict> {
    let p = c.path(
        "cookie",
        &["cache-control:max-age=60", "set-cookie:session=alice"],
        "",
    );
    let (_, b, n) = c.twice(&p)?;
    let leaked = n == 1 && b.header("set-cookie").is_some();
    if n == 2 {
        pass("origin requests 2")
    } else if leaked {
        fail("the second client got the first client's Set-Cookie from the cache")
    } else {
        pass("stored, but the Set-Cookie was not relayed to the second client")
    }
}

fn authorization_not_shared(c: &Ctx) -> Result<Verdict> {
    let p = c.path("auth", &["cache-control:max-age=60"], "");
    let alice = c.get_with(&p, &[("authorization", "Bearer alice")])?;
    let bob = c.get(&p)?;
    let n = c.count(&p);
    // Informational: `public` allows sharing (a MAY, not scored).
    let pp = c.path("authpublic", &["cache-control:public, max-age=60"], "");
    c.get_with(&pp, &[("authorization", "Bearer alice")])?;
    c.get(&pp)?;
    let shared = if c.count(&pp) == 1 {
        "shared"
    } else {
        "not shared"
    };
    judge(
        n == 2 && alice.body != bob.body,
        format!("origin requests {n}; with public: {shared}"),
    )
}

fn vary_variants_apart(c: &Ctx) -> Result<Verdict> {
    let p = c.path(
        "vary",
        &["cache-control:max-age=60", "vary:Accept-Encoding"],
        "",
    );
    let gz = [("accept-encoding", "gzip")];
    let id = [("accept-encoding", "identity")];
    let g1 = c.get_with(&p, &gz)?;
    let i1 = c.get_with(&p, &id)?;
    let g2 = c.get_with(&p, &gz)?;
    let i2 = c.get_with(&p, &id)?;
    let n = c.count(&p);
    let mixed = i1.body == g1.body || g2.body == i1.body || i2.body == g1.body;
    if mixed {
        return fail(format!(
            "a variant was served to the other Accept-Encoding (origin requests {n})"
        ));
    }
    let stored = g2.body == g1.body && i2.body == i1.body;
    judge(
        stored && n == 2,
        format!(
            "variants kept apart; both stored: {}; origin requests {n}",
            if stored { "yes" } else { "no" }
        ),
    )
}

fn vary_star_never_served(c: &Ctx) -> Result<Verdict> {
    let p = c.path("varystar", &["cache-control:max-age=60", "vary:*"], "");
    let (_, _, n) = c.twice(&p)?;
    judge(n == 2, format!("origin requests {n}"))
}

fn expires_past_or_invalid_not_fresh(c: &Ctx) -> Result<Verdict> {
    let past = http_date(SystemTime::now() - Duration::from_secs(3600));
    let p1 = c.path("expired", &[&format!("expires:{past}")], "");
    let (_, _, n1) = c.twice(&p1)?;
    let p2 = c.path("expires0", &["expires:0"], "");
    let (_, _, n2) = c.twice(&p2)?;
    judge(
        n1 == 2 && n2 == 2,
        format!("past: origin {n1}; Expires: 0: origin {n2} (want 2 each)"),
    )
}

fn age_on_hits_and_current_age(c: &Ctx) -> Result<Verdict> {
    let p1 = c.path("age", &["cache-control:max-age=60", "age:50"], "");
    let (_, b, n1) = c.twice(&p1)?;
    let age: Option<u64> = b.header("age").and_then(|a| a.trim().parse().ok());
    let p2 = c.path("aged", &["cache-control:max-age=60", "age:100"], "");
    let (_, _, n2) = c.twice(&p2)?;
    let age_ok = age.is_some_and(|a| (50..60).contains(&a));
    let detail = format!(
        "hit: origin {n1}, Age {}; Age: 100 response: origin {n2} (want 2)",
        age.map(|a| a.to_string())
            .unwrap_or_else(|| "absent".into())
    );
    judge(n1 == 1 && age_ok && n2 == 2, detail)
}

fn stale_not_served_without_permission(c: &Ctx) -> Result<Verdict> {
    let p = c.path("stale", &["cache-control:max-age=1"], "");
    let a = c.get(&p)?;
    std::thread::sleep(STALE_WAIT);
    let b = c.get(&p)?;
    judge(
        b.body != a.body,
        if b.body == a.body {
            "the stale body was served".to_string()
        } else {
            format!("fresh body; origin requests {}", c.count(&p))
        },
    )
}

fn must_revalidate_stale_not_served(c: &Ctx) -> Result<Verdict> {
    let p = c.path(
        "mustreval",
        &["cache-control:max-age=1, must-revalidate"],
        "",
    );
    let a = c.get(&p)?;
    std::thread::sleep(STALE_WAIT);
    let b = c.get(&p)?;
    judge(
        b.body != a.body && b.status == 200,
        if b.body == a.body {
            "the stale body was served despite must-revalidate".to_string()
        } else {
            format!("fresh body; origin requests {}", c.count(&p))
        },
    )
}

fn client_if_none_match_304(c: &Ctx) -> Result<Verdict> {
    let p = c.path("inm", &["cache-control:max-age=60", "etag:\"v1\""], "");
    c.get(&p)?;
    let r = c.get_with(&p, &[("if-none-match", "\"v1\"")])?;
    let n = c.count(&p);
    judge(
        r.status == 304 && n == 1,
        format!("status {}; origin requests {n}", r.status),
    )
}

fn stale_revalidated_with_etag(c: &Ctx) -> Result<Verdict> {
    // The origin takes 600 ms for conditional requests only: a validation the client
    // waited for shows in the time the answer took.
    let p = c.path(
        "reval",
        &["cache-control:max-age=1", "etag:\"e7\""],
        "cond=1&cdelay=600",
    );
    let a = c.get(&p)?;
    std::thread::sleep(STALE_WAIT);
    let t = Instant::now();
    let b = c.get(&p)?;
    let took = t.elapsed();
    let sent_inm = c
        .origin
        .last_headers(&p)
        .and_then(|h| h.get("if-none-match").cloned())
        .is_some_and(|v| v == "\"e7\"");
    // Let a background validation (if that is what ran) finish before the next look.
    std::thread::sleep(Duration::from_millis(800));
    let n2 = c.count(&p);
    let d = c.get(&p)?;
    let n3 = c.count(&p);
    let waited = took >= Duration::from_millis(550);
    let detail = format!(
        "If-None-Match sent: {sent_inm}; stored body answered: {}; client waited for the 304: {waited} ({} ms); refreshed (next GET not at origin): {}",
        b.status == 200 && b.body == a.body,
        took.as_millis(),
        n3 == n2 && d.body == a.body
    );
    judge(
        sent_inm && b.status == 200 && b.body == a.body && waited && n2 == 2 && n3 == 2,
        detail,
    )
}

fn not_modified_updates_stored_headers(c: &Ctx) -> Result<Verdict> {
    let p = c.path(
        "upd304",
        &["cache-control:max-age=1", "etag:\"u\""],
        "cond=1&seqh=x-seq",
    );
    let a = c.get(&p)?;
    std::thread::sleep(STALE_WAIT);
    let b = c.get(&p)?;
    // Let a background validation (if that is what ran) finish.
    std::thread::sleep(Duration::from_millis(500));
    let d = c.get(&p)?;
    let n = c.count(&p);
    let seq = |r: &Reply| r.header("x-seq").unwrap_or("absent").to_string();
    judge(
        // With two origin answers, a value other than the first's can only be the 304's.
        n == 2 && d.body == a.body && seq(&d) != seq(&a) && d.header("x-seq").is_some(),
        format!(
            "X-Seq: first {}, after the 304 {}, next hit {} (want the 304's); origin requests {n} (want 2)",
            seq(&a),
            seq(&b),
            seq(&d)
        ),
    )
}

fn request_pragma_no_cache(c: &Ctx) -> Result<Verdict> {
    request_header_forces_validation(c, "pragma", "\"p\"", ("pragma", "no-cache"))
}

fn max_age_overrides_expires(c: &Ctx) -> Result<Verdict> {
    let past = http_date(SystemTime::now() - Duration::from_secs(3600));
    let p = c.path(
        "maxexp",
        &["cache-control:max-age=60", &format!("expires:{past}")],
        "",
    );
    let (_, _, n) = c.twice(&p)?;
    judge(n == 1, format!("origin requests {n} (want 1)"))
}

fn head_from_get_entry(c: &Ctx) -> Result<Verdict> {
    let p = c.path("head", &["cache-control:max-age=60"], "size=1000");
    let g = c.get(&p)?;
    let h = c.req("HEAD", &p, &[])?;
    let n = c.count(&p);
    judge(
        g.body.len() == 1000 && h.status == 200 && h.body.is_empty() && n == 1,
        format!(
            "HEAD status {}, body {} bytes, content-length {}; origin requests {n}",
            h.status,
            h.body.len(),
            h.header("content-length").unwrap_or("absent")
        ),
    )
}

fn vary_other_field_apart(c: &Ctx) -> Result<Verdict> {
    let p = c.path(
        "varylang",
        &["cache-control:max-age=60", "vary:Accept-Language"],
        "",
    );
    let de = [("accept-language", "de")];
    let en = [("accept-language", "en")];
    let d1 = c.get_with(&p, &de)?;
    let e1 = c.get_with(&p, &en)?;
    let d2 = c.get_with(&p, &de)?;
    let e2 = c.get_with(&p, &en)?;
    let n = c.count(&p);
    if e1.body == d1.body || d2.body == e1.body || e2.body == d1.body {
        return fail(format!(
            "a variant was served to the other Accept-Language (origin requests {n})"
        ));
    }
    let stored = d2.body == d1.body && e2.body == e1.body;
    judge(
        stored && n == 2,
        format!(
            "variants kept apart; both stored: {}; origin requests {n}",
            if stored { "yes" } else { "no" }
        ),
    )
}

fn head_on_cold_key_then_get(c: &Ctx) -> Result<Verdict> {
    let p = c.path("headcold", &["cache-control:max-age=60"], "size=1000");
    let h = c.req("HEAD", &p, &[])?;
    let g = c.get(&p)?;
    let intact = g.status == 200
        && g.body.len() == 1000
        && g.body.iter().enumerate().all(|(i, b)| *b == pattern(i));
    judge(
        h.status == 200 && h.body.is_empty() && intact,
        format!(
            "HEAD {} ({} bytes); GET {} with {} bytes{}; origin requests {}",
            h.status,
            h.body.len(),
            g.status,
            g.body.len(),
            if intact { "" } else { " WRONG" },
            c.count(&p)
        ),
    )
}

fn request_no_store_not_stored(c: &Ctx) -> Result<Verdict> {
    let p = c.path("reqnostore", &["cache-control:max-age=60"], "");
    c.get_with(&p, &[("cache-control", "no-store")])?;
    c.get(&p)?;
    let n = c.count(&p);
    judge(n == 2, format!("origin requests {n} (want 2)"))
}

fn response_no_cache_validated(c: &Ctx) -> Result<Verdict> {
    let p = c.path(
        "respnocache",
        &["cache-control:no-cache, max-age=60", "etag:\"r\""],
        "cond=1",
    );
    c.get(&p)?;
    let b = c.get(&p)?;
    let n = c.count(&p);
    judge(
        n == 2 && b.status == 200,
        format!("status {}; origin requests {n} (want 2)", b.status),
    )
}

fn unsafe_methods_invalidate(c: &Ctx) -> Result<Verdict> {
    let mut notes = Vec::new();
    let mut ok = true;
    for method in ["POST", "PUT", "DELETE"] {
        let p = c.path("inv", &["cache-control:max-age=60"], "");
        c.get(&p)?;
        c.get(&p)?;
        if c.count(&p) != 1 {
            ok = false;
            notes.push(format!("{method}: the GET was not stored to begin with"));
            continue;
        }
        let r = send(
            method,
            &c.cache.url(&p),
            &[("content-type", "text/plain")],
            b"x",
        )
        .with_context(|| method.to_string())?;
        let before = c.count(&p);
        c.get(&p)?;
        let invalidated = c.count(&p) == before + 1;
        ok &= invalidated && (200..300).contains(&r.status);
        notes.push(format!(
            "{method} {}: {}",
            r.status,
            if invalidated {
                "invalidated"
            } else {
                "NOT invalidated"
            }
        ));
    }
    judge(ok, notes.join("; "))
}

fn stale_while_revalidate(c: &Ctx) -> Result<Verdict> {
    let p = c.path(
        "swr",
        &["cache-control:max-age=1, stale-while-revalidate=30"],
        "delay=300",
    );
    let a = c.get(&p)?;
    std::thread::sleep(STALE_WAIT);
    let answers: Vec<Result<Reply>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..5).map(|_| s.spawn(|| c.get(&p))).collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("panicked")))
            })
            .collect()
    });
    let stale = answers
        .iter()
        .filter(|r| r.as_ref().is_ok_and(|r| r.body == a.body))
        .count();
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut refreshed = false;
    while Instant::now() < deadline {
        if c.get(&p).is_ok_and(|r| r.status == 200 && r.body != a.body) {
            refreshed = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let n = c.count(&p);
    judge(
        stale == 5 && refreshed && n == 2,
        format!("stale answers {stale}/5; refreshed: {refreshed}; origin requests {n} (want 2)"),
    )
}

fn stale_if_error_window(c: &Ctx) -> Result<Verdict> {
    let name = unique("down");
    let p = c.path(
        "sie",
        &["cache-control:max-age=1, stale-if-error=4"],
        &format!("fail={name}"),
    );
    let a = c.get(&p)?;
    set_failing(&name, true);
    // Stale for sure at 2.2 s (see STALE_WAIT) and within the window up to age 5; two looks
    // inside it (a cache that serves stale once and then remembers the error fails the
    // second), one at 6.2 s, past it.
    let result = (|| {
        std::thread::sleep(STALE_WAIT);
        let within1 = c.get(&p)?;
        std::thread::sleep(Duration::from_millis(400));
        let within2 = c.get(&p)?;
        std::thread::sleep(Duration::from_millis(3600));
        let past = c.get(&p)?;
        Ok::<_, anyhow::Error>((within1, within2, past))
    })();
    set_failing(&name, false);
    let (within1, within2, past) = result?;
    let stale = |r: &Reply| r.status == 200 && r.body == a.body;
    let show = |r: &Reply| {
        format!(
            "{}{}",
            r.status,
            if r.body == a.body { " stale body" } else { "" }
        )
    };
    judge(
        stale(&within1) && stale(&within2) && past.status == 503,
        format!(
            "within window: {}, {}; past window: {}",
            show(&within1),
            show(&within2),
            show(&past)
        ),
    )
}

fn request_no_cache_validates(c: &Ctx) -> Result<Verdict> {
    request_header_forces_validation(c, "reqnocache", "\"n\"", ("cache-control", "no-cache"))
}

/// A fresh entry, then a request carrying `header`: the cache must go to the origin (RFC 9111
/// §5.2.1.4, and §5.4 for `Pragma` without `Cache-Control`).
fn request_header_forces_validation(
    c: &Ctx,
    name: &str,
    etag: &str,
    header: (&str, &str),
) -> Result<Verdict> {
    let p = c.path(
        name,
        &["cache-control:max-age=60", &format!("etag:{etag}")],
        "cond=1",
    );
    c.get(&p)?;
    let r = c.get_with(&p, &[header])?;
    let n = c.count(&p);
    judge(
        n == 2 && r.status == 200,
        format!("status {}; origin requests {n} (want 2)", r.status),
    )
}

fn cdn_cache_control(c: &Ctx) -> Result<Verdict> {
    let p1 = c.path(
        "cdncc",
        &["cache-control:max-age=60", "cdn-cache-control:no-store"],
        "",
    );
    let (_, _, n1) = c.twice(&p1)?;
    let p2 = c.path(
        "cdncc2",
        &["cache-control:no-store", "cdn-cache-control:max-age=60"],
        "",
    );
    let (_, _, n2) = c.twice(&p2)?;
    judge(
        n1 == 2 && n2 == 1,
        format!("CDN no-store: origin {n1} (want 2); CDN max-age: origin {n2} (want 1)"),
    )
}

fn errors_not_cached(c: &Ctx) -> Result<Verdict> {
    let mut notes = Vec::new();
    let mut ok = true;
    for status in [500, 502, 503] {
        let p = c.path("err", &[], &format!("status={status}"));
        let (a, _, n) = c.twice(&p)?;
        ok &= n == 2 && a.status == status;
        notes.push(format!("{status}: origin {n}"));
    }
    judge(ok, notes.join("; "))
}

fn range_safe(c: &Ctx) -> Result<Verdict> {
    let p = c.path("range", &["cache-control:max-age=60"], "size=100");
    let full: Vec<u8> = (0..100).map(pattern).collect();
    let check = |r: &Reply, from: usize, to: usize| -> bool {
        match r.status {
            200 => r.body.as_ref() == full.as_slice(),
            206 => {
                r.body.as_ref() == &full[from..=to]
                    && r.header("content-range")
                        .is_some_and(|v| v == format!("bytes {from}-{to}/100"))
            }
            _ => false,
        }
    };
    let r1 = c.get_with(&p, &[("range", "bytes=0-9")])?;
    let r2 = c.get(&p)?;
    let r3 = c.get_with(&p, &[("range", "bytes=10-19")])?;
    let ok1 = check(&r1, 0, 9);
    let ok2 = r2.status == 200 && r2.body.as_ref() == full.as_slice();
    let ok3 = check(&r3, 10, 19);
    judge(
        ok1 && ok2 && ok3,
        format!(
            "range 0-9: {} {} bytes{}; plain GET: {} {} bytes{}; range 10-19: {} {} bytes{}; origin requests {}",
            r1.status,
            r1.body.len(),
            if ok1 { "" } else { " WRONG" },
            r2.status,
            r2.body.len(),
            if ok2 { "" } else { " WRONG" },
            r3.status,
            r3.body.len(),
            if ok3 { "" } else { " WRONG" },
            c.count(&p)
        ),
    )
}

/// Whether `r` is a correct answer to a request for bytes `from..=to` of `full` (100 bytes):
/// the whole 200, or a 206 with exactly the bytes its Content-Range names.
fn right_bytes(r: &Reply, full: &[u8], from: usize, to: usize) -> bool {
    match r.status {
        200 => r.body.as_ref() == full,
        206 => {
            r.body.as_ref() == &full[from..=to]
                && r.header("content-range")
                    .is_some_and(|v| v == format!("bytes {from}-{to}/100"))
        }
        _ => false,
    }
}

fn partial_stored_and_completed(c: &Ctx) -> Result<Verdict> {
    let p = c.path(
        "partial",
        &["cache-control:max-age=60", "etag:\"c1\""],
        "size=100&firstbytes=40&firstonce",
    );
    let full: Vec<u8> = (0..100).map(pattern).collect();
    let r1 = c.get_with(&p, &[("range", "bytes=0-9")])?;
    let r2 = c.get_with(&p, &[("range", "bytes=30-59")])?;
    let before = c.count(&p);
    let r3 = c.get_with(&p, &[("range", "bytes=10-59")])?;
    let reused = c.count(&p) == before;
    let r4 = c.get(&p)?;
    let ok = [
        right_bytes(&r1, &full, 0, 9),
        right_bytes(&r2, &full, 30, 59),
        right_bytes(&r3, &full, 10, 59),
        r4.status == 200 && r4.body.as_ref() == full.as_slice(),
    ];
    judge(
        ok.iter().all(|o| *o) && reused,
        format!(
            "0-9: {} {}; 30-59: {} {}; 10-59: {} {}{}; plain GET: {} {} bytes; origin requests {}{}",
            r1.status,
            if ok[0] { "right" } else { "WRONG" },
            r2.status,
            if ok[1] { "right" } else { "WRONG" },
            r3.status,
            if ok[2] { "right" } else { "WRONG" },
            if reused { " (no origin request)" } else { " (from the origin)" },
            r4.status,
            r4.body.len(),
            c.count(&p),
            if ok[3] { "" } else { " WRONG" },
        ),
    )
}

fn partial_etags_not_combined(c: &Ctx) -> Result<Verdict> {
    let p = c.path(
        "partialetag",
        &["cache-control:max-age=60"],
        "size=100&firstbytes=40&seqetag&seqfill&ignoreifrange",
    );
    let mut notes = Vec::new();
    let mut ok = true;
    for range in ["bytes=0-9", "bytes=30-59", "bytes=0-59", "bytes=0-99"] {
        let r = c.get_with(&p, &[("range", range)])?;
        let one_answer = !r.body.is_empty() && r.body.iter().all(|b| *b == r.body[0]);
        let length_right = match (r.status, r.header("content-range")) {
            (206, Some(cr)) => cr
                .strip_prefix("bytes ")
                .and_then(|v| v.split_once('/'))
                .and_then(|(span, _)| span.split_once('-'))
                .and_then(|(a, b)| Some((a.parse::<usize>().ok()?, b.parse::<usize>().ok()?)))
                .is_some_and(|(a, b)| b >= a && r.body.len() == b - a + 1),
            (200, None) => r.body.len() == 100,
            _ => false,
        };
        ok &= one_answer && length_right;
        notes.push(format!(
            "{range}: {} {} bytes{}",
            r.status,
            r.body.len(),
            if one_answer && length_right {
                ""
            } else {
                " MIXED or WRONG"
            }
        ));
    }
    judge(ok, notes.join("; "))
}

fn stampede_coalesced(c: &Ctx) -> Result<Verdict> {
    let p = c.path("stampede", &["cache-control:max-age=60"], "delay=1000");
    let answers: Vec<Result<Reply>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..50).map(|_| s.spawn(|| c.get(&p))).collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("panicked")))
            })
            .collect()
    });
    let ok: Vec<&Reply> = answers
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .filter(|r| r.status == 200)
        .collect();
    let same = ok.windows(2).all(|w| w[0].body == w[1].body);
    let n = c.count(&p);
    judge(
        n == 1 && ok.len() == 50 && same,
        format!(
            "origin requests {n}; 200s {}/50; one body: {same}",
            ok.len()
        ),
    )
}

fn oversized_body_intact(c: &Ctx) -> Result<Verdict> {
    let size = 3 * 1024 * 1024 + 7;
    let p = c.path(
        "big",
        &["cache-control:max-age=60"],
        &format!("size={size}"),
    );
    let mut notes = Vec::new();
    let mut ok = true;
    for _ in 0..2 {
        let r = c.get(&p)?;
        let intact = r.status == 200
            && r.body.len() == size
            && r.body.iter().enumerate().all(|(i, b)| *b == pattern(i));
        ok &= intact;
        notes.push(format!(
            "{} {} bytes{}",
            r.status,
            r.body.len(),
            if intact { "" } else { " CORRUPT" }
        ));
    }
    notes.push(format!("origin requests {}", c.count(&p)));
    judge(ok, notes.join("; "))
}

fn age_on_relayed_unstored(c: &Ctx) -> Result<Verdict> {
    let p1 = c.path("agens", &["cache-control:no-store", "age:30"], "");
    let a = c.get(&p1)?;
    let p2 = c.path("agepriv", &["cache-control:private", "age:0"], "");
    let b = c.get(&p2)?;
    let age = |r: &Reply| r.header("age").and_then(|a| a.trim().parse::<u64>().ok());
    judge(
        age(&a).is_some_and(|v| v >= 30) && age(&b).is_some(),
        format!(
            "no-store Age {:?} (want >= 30); private Age: 0 → {:?}",
            age(&a),
            age(&b)
        ),
    )
}

fn heuristic_last_modified(c: &Ctx) -> Result<Verdict> {
    let lm = format!(
        "last-modified:{}",
        http_date(SystemTime::now() - Duration::from_secs(10 * 86_400))
    );
    let p1 = c.path("lm200", &[&lm], "");
    let (_, _, n1) = c.twice(&p1)?;
    let p2 = c.path("lm501", &[&lm], "status=501");
    let (_, _, n2) = c.twice(&p2)?;
    let p3 = c.path("lm302", &[&lm, "location:/elsewhere"], "status=302");
    let (_, _, n3) = c.twice(&p3)?;
    judge(
        n1 == 1 && n2 == 1 && n3 == 2,
        format!("200: origin {n1} (want 1); 501: origin {n2} (want 1); 302: origin {n3} (want 2)"),
    )
}

fn http_date_any_case(c: &Ctx) -> Result<Verdict> {
    let exp = http_date(SystemTime::now() + Duration::from_secs(600)).to_ascii_lowercase();
    let p = c.path("lcdate", &[&format!("expires:{exp}")], "");
    let (_, _, n) = c.twice(&p)?;
    judge(n == 1, format!("origin requests {n} (want 1)"))
}

fn no_cache_validator_no_lifetime(c: &Ctx) -> Result<Verdict> {
    let p = c.path(
        "nocachenolife",
        &["cache-control:no-cache", "etag:\"z\""],
        "cond=1",
    );
    let (a, b, n) = c.twice(&p)?;
    judge(
        n == 2 && b.status == 200 && a.body == b.body,
        format!(
            "origin {n} (want 2); second {} with {} the stored body",
            b.status,
            if a.body == b.body { "" } else { "not" }
        ),
    )
}

fn ims_against_date(c: &Ctx) -> Result<Verdict> {
    let p = c.path("imsdate", &["cache-control:max-age=60"], "");
    c.get(&p)?;
    let later = http_date(SystemTime::now() + Duration::from_secs(5));
    let r = c.get_with(&p, &[("if-modified-since", &later)])?;
    let n = c.count(&p);
    judge(
        r.status == 304 && n == 1,
        format!("status {} (want 304); origin {n} (want 1)", r.status),
    )
}

fn must_understand_over_no_store(c: &Ctx) -> Result<Verdict> {
    let p = c.path(
        "mustund",
        &["cache-control:must-understand, no-store, max-age=60"],
        "",
    );
    let (_, _, n) = c.twice(&p)?;
    judge(n == 1, format!("origin requests {n} (want 1)"))
}

fn only_if_cached(c: &Ctx) -> Result<Verdict> {
    let p = c.path("oic", &["cache-control:max-age=60"], "");
    let cold = c.get_with(&p, &[("cache-control", "only-if-cached")])?;
    let n0 = c.count(&p);
    let first = c.get(&p)?;
    let warm = c.get_with(&p, &[("cache-control", "only-if-cached")])?;
    let n = c.count(&p);
    judge(
        cold.status == 504 && n0 == 0 && warm.status == 200 && warm.body == first.body && n == 1,
        format!(
            "cold: {} with origin {n0} (want 504, 0); warm: {} with origin {n} (want 200, 1)",
            cold.status, warm.status
        ),
    )
}

fn max_stale(c: &Ctx) -> Result<Verdict> {
    let p = c.path("maxstale", &["cache-control:max-age=1", "etag:\"m\""], "");
    let a = c.get(&p)?;
    std::thread::sleep(STALE_WAIT);
    let b = c.get_with(&p, &[("cache-control", "max-stale")])?;
    let d = c.get_with(&p, &[("cache-control", "max-stale=100")])?;
    let n = c.count(&p);
    judge(
        n == 1 && b.body == a.body && d.body == a.body,
        format!("origin {n} (want 1)"),
    )
}

fn min_fresh_stale(c: &Ctx) -> Result<Verdict> {
    let p = c.path(
        "minfresh",
        &["cache-control:max-age=1, stale-while-revalidate=60"],
        "",
    );
    let a = c.get(&p)?;
    std::thread::sleep(STALE_WAIT);
    let b = c.get_with(&p, &[("cache-control", "min-fresh=1")])?;
    let n = c.count(&p);
    judge(
        b.body != a.body && n >= 2,
        format!(
            "origin {n} (want 2); {}",
            if b.body == a.body {
                "stale body served"
            } else {
                "new body"
            }
        ),
    )
}

fn targeted_field_sf_invalid(c: &Ctx) -> Result<Verdict> {
    let p1 = c.path(
        "sfbad",
        &[
            "cache-control:no-store",
            "cdn-cache-control:max-age=\"600\"",
        ],
        "",
    );
    let (_, _, n1) = c.twice(&p1)?;
    let p2 = c.path(
        "sfgood",
        &[
            "cache-control:no-store",
            "cdn-cache-control:max-age=600;x=1",
        ],
        "",
    );
    let (_, _, n2) = c.twice(&p2)?;
    judge(
        n1 == 2 && n2 == 1,
        format!("invalid field: origin {n1} (want 2); valid: origin {n2} (want 1)"),
    )
}

fn vary_language_normalised(c: &Ctx) -> Result<Verdict> {
    let p = c.path(
        "varynorm",
        &["cache-control:max-age=60", "vary:Accept-Language"],
        "",
    );
    let a = c.get_with(&p, &[("accept-language", "en-US, de;q=0.5")])?;
    let b = c.get_with(&p, &[("accept-language", "DE;q=0.50 , en-us")])?;
    let n = c.count(&p);
    judge(
        n == 1 && a.body == b.body,
        format!("origin requests {n} (want 1)"),
    )
}

fn cache_status(c: &Ctx) -> Result<Verdict> {
    let p = c.path("cachestatus", &["cache-control:max-age=60"], "");
    let (a, b, _) = c.twice(&p)?;
    let (sa, sb) = (a.header("cache-status"), b.header("cache-status"));
    judge(
        sa.is_some() && sb.is_some_and(|v| v.contains("hit")),
        format!("miss: {sa:?}; hit: {sb:?}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_dates_are_imf_fixdates() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777);
        assert_eq!(http_date(t), "Sun, 06 Nov 1994 08:49:37 GMT");
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(http_date(t), "Tue, 29 Feb 2000 00:00:00 GMT");
    }

    #[test]
    fn case_ids_are_unique() {
        let cases = all();
        let mut ids: Vec<_> = cases.iter().map(|c| c.id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), cases.len());
    }
}
