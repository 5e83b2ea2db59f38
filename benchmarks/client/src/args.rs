//! Command-line options of the form `--name value`, shared by the orchestrator and the Rust
//! runner (no parser crate: the options are few and every one is required or defaulted here).

use std::collections::HashMap;
use std::str::FromStr;

use anyhow::{anyhow, bail, Context, Result};

pub struct Args {
    values: HashMap<String, String>,
}

impl Args {
    /// Parses `--name value` pairs; anything else is an error that names it.
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Args> {
        let mut values = HashMap::new();
        let mut it = args.into_iter();
        while let Some(arg) = it.next() {
            let Some(name) = arg.strip_prefix("--") else {
                bail!("unexpected argument '{arg}' (options are --name value)");
            };
            let value = it
                .next()
                .ok_or_else(|| anyhow!("option --{name} needs a value"))?;
            values.insert(name.to_string(), value);
        }
        Ok(Args { values })
    }

    pub fn text(&self, name: &str) -> Result<String> {
        self.values
            .get(name)
            .cloned()
            .ok_or_else(|| anyhow!("missing option --{name}"))
    }

    pub fn text_or(&self, name: &str, default: &str) -> String {
        self.values
            .get(name)
            .cloned()
            .unwrap_or_else(|| default.to_string())
    }

    pub fn number<T: FromStr>(&self, name: &str) -> Result<T>
    where
        T::Err: std::error::Error + Send + Sync + 'static,
    {
        self.text(name)?
            .parse()
            .with_context(|| format!("option --{name}"))
    }

    pub fn number_or<T: FromStr>(&self, name: &str, default: T) -> Result<T>
    where
        T::Err: std::error::Error + Send + Sync + 'static,
    {
        match self.values.get(name) {
            Some(v) => v.parse().with_context(|| format!("option --{name}")),
            None => Ok(default),
        }
    }

    /// Checks that only `known` options were given, so a typo is not silently ignored.
    pub fn only(&self, known: &[&str]) -> Result<()> {
        for name in self.values.keys() {
            if !known.contains(&name.as_str()) {
                bail!("unknown option --{name} (known: --{})", known.join(", --"));
            }
        }
        Ok(())
    }
}

/// The operation a cell measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Get,
    Set,
}

impl FromStr for Op {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Op> {
        match s {
            "get" => Ok(Op::Get),
            "set" => Ok(Op::Set),
            other => bail!("unknown op '{other}' (get or set)"),
        }
    }
}

impl Op {
    pub fn name(self) -> &'static str {
        match self {
            Op::Get => "get",
            Op::Set => "set",
        }
    }
}

/// Peak and current resident set size of this process in KiB (`VmHWM`, `VmRSS` of
/// `/proc/self/status`), or of `pid`.
pub fn rss_kb(pid: Option<u32>) -> (u64, u64) {
    let path = match pid {
        Some(p) => format!("/proc/{p}/status"),
        None => "/proc/self/status".to_string(),
    };
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}
