//! Credentials: the callout secret the filter presents on `/v1/*` and the admin token of
//! `/admin/*`. A [`Secret`] is read from the environment or a file (never a command-line
//! argument, which `ps` shows to every user of the machine), compared in constant time, and
//! never printed: its `Debug` shows only its length, so a logged `Config` leaks nothing.

use std::fmt;
use std::path::Path;
use subtle::ConstantTimeEq;

/// Shortest and longest credential accepted: a short one can be guessed, a long one is a
/// pasting mistake. The filter enforces the same bounds on its side.
pub const SECRET_LEN: std::ops::RangeInclusive<usize> = 16..=256;

/// The most a secret file may hold; anything larger is not a secret file.
const MAX_FILE_BYTES: u64 = 4096;

/// No `PartialEq`: the one comparison is [`Secret::matches`], in constant time.
#[derive(Clone)]
pub struct Secret(String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret(<{} bytes, redacted>)", self.0.len())
    }
}

impl Secret {
    /// A secret of 16 to 256 visible ASCII characters, or why not.
    pub fn new(value: &str) -> Result<Secret, String> {
        if SECRET_LEN.contains(&value.len()) && value.bytes().all(|b| b.is_ascii_graphic()) {
            Ok(Secret(value.to_string()))
        } else {
            Err(format!(
                "must be {} to {} visible ASCII characters",
                SECRET_LEN.start(),
                SECRET_LEN.end()
            ))
        }
    }

    /// Reads a secret file: its content without the trailing line break editors add.
    pub fn from_file(path: &Path) -> Result<Secret, String> {
        let meta = std::fs::metadata(path).map_err(|e| format!("cannot read {path:?}: {e}"))?;
        if meta.len() > MAX_FILE_BYTES {
            return Err(format!("{path:?} is larger than {MAX_FILE_BYTES} bytes"));
        }
        let text =
            std::fs::read_to_string(path).map_err(|e| format!("cannot read {path:?}: {e}"))?;
        Secret::new(text.trim_end_matches(['\n', '\r'])).map_err(|e| format!("{path:?}: {e}"))
    }

    /// Whether `given` is this secret, in time that does not depend on where they differ.
    pub fn matches(&self, given: &[u8]) -> bool {
        constant_time_eq(given, self.0.as_bytes())
    }

    /// The value, for the one place that must send it (tests' clients).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// Compares without an early exit (`subtle`), so the time taken does not tell how much of a
/// guess was right. The length is not secret (it is fixed by configuration): a guess of
/// another length is refused at once.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_is_never_printed() {
        let s = Secret::new("super-secret-value-123").unwrap();
        let shown = format!("{s:?} {:?}", Some(&s));
        assert!(!shown.contains("super-secret"), "{shown}");
        assert!(shown.contains("22 bytes"));
    }

    #[test]
    fn secrets_are_bounded_visible_ascii() {
        assert!(Secret::new(&"a".repeat(16)).is_ok());
        assert!(Secret::new(&"a".repeat(256)).is_ok());
        for bad in [
            "a".repeat(15),
            "a".repeat(257),
            format!("{} x", "a".repeat(16)),
        ] {
            assert!(Secret::new(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_secret_file_loses_only_its_trailing_line_break() {
        let dir = std::env::temp_dir().join(format!("hzcache-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("s");
        std::fs::write(&file, "0123456789abcdef\n").unwrap();
        assert!(Secret::from_file(&file)
            .unwrap()
            .matches(b"0123456789abcdef"));
        std::fs::write(&file, vec![b'a'; 5000]).unwrap();
        assert!(Secret::from_file(&file).is_err());
        assert!(Secret::from_file(&dir.join("missing")).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn constant_time_comparison_agrees_with_equality() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        let s = Secret::new("0123456789abcdef").unwrap();
        assert!(s.matches(b"0123456789abcdef"));
        assert!(!s.matches(b"0123456789abcdeF"));
        assert!(!s.matches(b""));
    }
}
