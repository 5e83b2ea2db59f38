//! Rule matching: which configured rule (if any) applies to a request. The first rule whose
//! host and path prefix match owns the request; whether it caches the request's method is a
//! separate question ([`method_cached`]), so a method a rule does not cache is never picked up
//! by a later, broader rule under another key and map. Owns the request-line view
//! ([`RequestHead`]) and host/port handling; key computation lives in `key.rs`.

use crate::config::{Match, Rule};
use crate::url::{host_without_port, split_target};

/// The parts of a request that rules and keys look at, borrowed from its pseudo-headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestHead<'a> {
    pub method: &'a str,
    /// `:path` as received: path and query.
    pub path: &'a str,
    /// `:authority` as received (may carry a port).
    pub authority: &'a str,
}

/// The first rule whose host and path prefix match, with its index; the method is not looked at.
pub fn find_rule<'c>(rules: &'c [Rule], req: &RequestHead<'_>) -> Option<(usize, &'c Rule)> {
    rules
        .iter()
        .enumerate()
        .find(|(_, rule)| matches(&rule.matcher, req))
}

/// Whether the rule caches requests of this method (only GET and HEAD can be configured).
pub fn method_cached(m: &Match, method: &str) -> bool {
    match method {
        "GET" => m.get,
        "HEAD" => m.head,
        _ => false,
    }
}

/// Whether the rule's host and path prefix match the request.
pub fn matches(m: &Match, req: &RequestHead<'_>) -> bool {
    let (path, _) = split_target(req.path);
    if !path.starts_with(m.path_prefix.as_str()) {
        return false;
    }
    match &m.host {
        None => true,
        Some(host) => host_without_port(req.authority).eq_ignore_ascii_case(host),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{KeySource, KeySpec, Mode, ValueType};

    fn rule(name: &str, prefix: &str, get: bool, head: bool, host: Option<&str>) -> Rule {
        Rule {
            name: name.into(),
            matcher: Match {
                path_prefix: prefix.into(),
                get,
                head,
                host: host.map(str::to_string),
            },
            key: KeySpec {
                source: KeySource::Default,
                prefix: String::new(),
            },
            map: "hzcache".into(),
            mode: Mode::Envelope,
            value_type: ValueType::String,
            content_type: "text/plain".into(),
            ttl_seconds: 60,
            ttl_override_seconds: None,
            stale_while_revalidate_seconds: 0,
            stale_if_error_seconds: 0,
            strip_set_cookie: false,
            last_modified_heuristic_max_seconds: None,
            origin: "default".into(),
            cookies: crate::config::CookiePolicy::Bypass,
            forward_headers: Vec::new(),
        }
    }

    fn req<'a>(method: &'a str, path: &'a str, authority: &'a str) -> RequestHead<'a> {
        RequestHead {
            method,
            path,
            authority,
        }
    }

    /// The rule that caches this request, if any.
    fn found<'r>(rules: &'r [Rule], r: RequestHead<'_>) -> Option<&'r str> {
        find_rule(rules, &r)
            .filter(|(_, rule)| method_cached(&rule.matcher, r.method))
            .map(|(_, rule)| rule.name.as_str())
    }

    #[test]
    fn first_matching_rule_wins() {
        let rules = [
            rule("data", "/data", true, false, None),
            rule("all", "/", true, false, None),
        ];
        assert_eq!(found(&rules, req("GET", "/data?key=1", "h")), Some("data"));
        assert_eq!(found(&rules, req("GET", "/other", "h")), Some("all"));
        let reversed = [rules[1].clone(), rules[0].clone()];
        assert_eq!(found(&reversed, req("GET", "/data", "h")), Some("all"));
    }

    #[test]
    fn no_rules_match_nothing() {
        assert_eq!(found(&[], req("GET", "/", "h")), None);
    }

    #[test]
    fn methods_other_than_the_configured_safe_ones_never_match() {
        let get_only = [rule("r", "/", true, false, None)];
        assert_eq!(found(&get_only, req("GET", "/", "h")), Some("r"));
        assert_eq!(found(&get_only, req("HEAD", "/", "h")), None);
        for m in ["POST", "PUT", "DELETE", "OPTIONS", "get", ""] {
            assert_eq!(found(&get_only, req(m, "/", "h")), None, "{m}");
        }
        let head_only = [rule("r", "/", false, true, None)];
        assert_eq!(found(&head_only, req("HEAD", "/", "h")), Some("r"));
        assert_eq!(found(&head_only, req("GET", "/", "h")), None);
    }

    #[test]
    fn a_method_a_rule_does_not_cache_never_falls_through_to_a_later_rule() {
        let rules = [
            rule("data", "/data", true, false, None),
            rule("all", "/", true, true, None),
        ];
        // HEAD /data belongs to `data`, which caches only GET: not cached at all, rather than
        // cached by `all` under another key and map.
        assert_eq!(
            find_rule(&rules, &req("HEAD", "/data?key=1", "h")).map(|(_, r)| r.name.as_str()),
            Some("data")
        );
        assert_eq!(found(&rules, req("HEAD", "/data?key=1", "h")), None);
        assert_eq!(found(&rules, req("HEAD", "/other", "h")), Some("all"));
    }

    #[test]
    fn prefix_is_matched_against_the_path_without_query() {
        let rules = [rule("r", "/data", true, false, None)];
        assert_eq!(found(&rules, req("GET", "/data", "h")), Some("r"));
        assert_eq!(found(&rules, req("GET", "/data/x", "h")), Some("r"));
        // Plain string prefix, like Envoy's route `prefix`.
        assert_eq!(found(&rules, req("GET", "/database", "h")), Some("r"));
        assert_eq!(found(&rules, req("GET", "/dat", "h")), None);
        assert_eq!(found(&rules, req("GET", "/?x=/data", "h")), None);
        assert_eq!(found(&rules, req("GET", "/Data", "h")), None);
    }

    #[test]
    fn host_is_exact_case_insensitive_and_ignores_port() {
        let rules = [rule("r", "/", true, false, Some("example.com"))];
        assert_eq!(found(&rules, req("GET", "/", "example.com")), Some("r"));
        assert_eq!(
            found(&rules, req("GET", "/", "EXAMPLE.com:8080")),
            Some("r")
        );
        assert_eq!(found(&rules, req("GET", "/", "www.example.com")), None);
        assert_eq!(found(&rules, req("GET", "/", "example.com.evil")), None);
        assert_eq!(found(&rules, req("GET", "/", "")), None);
    }
}
