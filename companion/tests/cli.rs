//! The binary's command line and environment, as a container runs it: `--check-config` with a
//! cleared environment and only the variables a test sets (clap reads the process
//! environment, so these tests run the binary rather than share the test process's).

use std::process::{Command, Output};

fn companion(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hzcache-companion"));
    cmd.env_clear().args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

/// The `--check-config` summary, which must succeed.
fn summary(args: &[&str], env: &[(&str, &str)]) -> String {
    let mut all = vec!["--check-config"];
    all.extend_from_slice(args);
    let out = companion(&all, env);
    assert!(
        out.status.success(),
        "{args:?} {env:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The standard error of a refused configuration, which must exit with status 2.
fn refused(args: &[&str], env: &[(&str, &str)]) -> String {
    let mut all = vec!["--check-config"];
    all.extend_from_slice(args);
    let out = companion(&all, env);
    assert_eq!(out.status.code(), Some(2), "{args:?} {env:?}");
    String::from_utf8(out.stderr).unwrap()
}

#[test]
fn secrets_come_from_the_environment_and_are_shown_only_as_set() {
    let env = [
        ("HZCACHE_CALLOUT_SECRET", "callout-secret-0123456789"),
        ("HZCACHE_ADMIN_TOKEN", "admin-token-0123456789"),
    ];
    let s = summary(&["--listen", "0.0.0.0:8090"], &env);
    assert!(s.contains("callout-secret=set"), "{s}");
    assert!(s.contains("admin-api=on"), "{s}");
    assert!(
        !s.contains("callout-secret-0") && !s.contains("admin-token-0"),
        "{s}"
    );
    let s = summary(&[], &[]);
    assert!(
        s.contains("callout-secret=none") && s.contains("admin-api=off"),
        "{s}"
    );
}

#[test]
fn a_bad_or_ambiguous_secret_names_its_source_and_never_shows_the_value() {
    let e = refused(&[], &[("HZCACHE_CALLOUT_SECRET", "short")]);
    assert!(e.contains("HZCACHE_CALLOUT_SECRET:"), "{e}");
    assert!(!e.contains("short"), "{e}");
    let dir = std::env::temp_dir().join(format!("hzcache-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("token");
    std::fs::write(&file, "from-a-file-0123456789\n").unwrap();
    let path = file.display().to_string();
    let e = refused(
        &["--admin-token-file", &path],
        &[("HZCACHE_ADMIN_TOKEN", "an-admin-token-0123456789")],
    );
    assert!(
        e.contains("--admin-token-file:") && e.contains("not both"),
        "{e}"
    );
    assert!(!e.contains("an-admin-token"), "{e}");
    // The file's variable does as well as its flag.
    let s = summary(&[], &[("HZCACHE_ADMIN_TOKEN_FILE", &path)]);
    assert!(s.contains("admin-api=on"), "{s}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_secret_in_argv_is_refused_even_when_the_environment_has_one() {
    let env = [("HZCACHE_ADMIN_TOKEN", "admin-token-0123456789")];
    for args in [
        &["--admin-token", "an-admin-token-0123456789"][..],
        &["--callout-secret=an-admin-token-0123456789"],
        &["--admin-token"],
    ] {
        let e = refused(args, &env);
        assert!(e.contains("never taken from the command line"), "{e}");
        assert!(!e.contains("an-admin-token"), "{e}");
    }
}

#[test]
fn the_environment_fills_what_flags_leave_out_and_lists_split_on_commas() {
    let env = [
        ("HZCACHE_CLUSTER_NAME", "env"),
        (
            "HZCACHE_ORIGINS",
            "a=http://127.0.0.1:1, b=http://127.0.0.1:2",
        ),
        (
            "HZCACHE_MAPS",
            "hzcache=envelope, cache=body:string,raw=body:bytes",
        ),
        ("HZCACHE_MAX_INFLIGHT_BODY_BYTES", "5000000"),
        ("HZCACHE_HAZELCAST", "127.0.0.1:5701,127.0.0.1:5702"),
    ];
    let s = summary(&["--cluster-name", "flag"], &env);
    assert!(s.contains("cluster-name=flag\n"), "a flag wins: {s}");
    assert!(
        s.contains("origins=a=http://127.0.0.1:1,b=http://127.0.0.1:2\n"),
        "{s}"
    );
    assert!(
        s.contains("maps=cache=body:string,hzcache=envelope,raw=body:bytes\n"),
        "{s}"
    );
    assert!(s.contains("max-inflight-body-bytes=5000000\n"), "{s}");
    assert!(
        s.contains("hazelcast=127.0.0.1:5701,127.0.0.1:5702\n"),
        "{s}"
    );
    let s = summary(&["--map", "hzcache=envelope"], &env);
    assert!(
        s.contains("maps=hzcache=envelope\n"),
        "flags win over HZCACHE_MAPS: {s}"
    );
}

#[test]
fn a_blank_variable_counts_as_unset() {
    let env = [
        ("HZCACHE_LISTEN", ""),
        ("HZCACHE_CLUSTER_NAME", "  "),
        ("HZCACHE_ORIGINS", ""),
        ("HZCACHE_MAX_ENTRY_BYTES", " "),
        ("HZCACHE_CALLOUT_SECRET", ""),
        ("HZCACHE_ADMIN_TOKEN_FILE", ""),
    ];
    let s = summary(&[], &env);
    assert!(s.contains("listen=127.0.0.1:8090\n"), "{s}");
    assert!(s.contains("cluster-name=dev\n"), "{s}");
    assert!(s.contains("origins=\n"), "{s}");
    assert!(s.contains("max-entry-bytes=1048576\n"), "{s}");
    assert!(s.contains("callout-secret=none"), "{s}");
}

#[test]
fn bad_values_name_the_flag_even_from_a_variable() {
    let e = refused(&[], &[("HZCACHE_MAX_ENTRY_BYTES", "lots")]);
    assert!(e.contains("--max-entry-bytes: 'lots'"), "{e}");
    let e = refused(&["--bogus"], &[]);
    assert!(e.contains("--bogus"), "{e}");
    let e = refused(&["--listen"], &[]);
    assert!(e.contains("--listen"), "{e}");
}

#[test]
fn help_describes_every_setting_and_exits_zero() {
    let out = companion(
        &["--help"],
        &[("HZCACHE_CALLOUT_SECRET", "callout-secret-0123456789")],
    );
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for needle in [
        "--listen <ADDR>",
        "HZCACHE_LISTEN=]",
        "[default: 127.0.0.1:8090]",
        "--check-config",
        "HZCACHE_CALLOUT_SECRET",
        "RUST_LOG",
    ] {
        assert!(help.contains(needle), "{needle}: {help}");
    }
    assert!(!help.contains("callout-secret-0123"), "{help}");
    let short = companion(&["-h"], &[]);
    assert!(short.status.success());
}

#[test]
fn the_log_format_is_text_unless_json_is_asked_for() {
    assert!(summary(&[], &[]).contains("log-format=text"));
    let s = summary(&[], &[("HZCACHE_LOG_FORMAT", "json")]);
    assert!(s.contains("log-format=json"), "{s}");
    let s = summary(&["--log-format", "text"], &[("HZCACHE_LOG_FORMAT", "json")]);
    assert!(s.contains("log-format=text"), "a flag wins: {s}");
    let e = refused(&["--log-format", "xml"], &[]);
    assert!(e.contains("--log-format") && e.contains("json"), "{e}");
}

/// Edge case that changed with clap: a variable that is not UTF-8 used to be ignored as if
/// unset; it is now refused, like any other value the companion cannot read.
#[test]
fn a_variable_that_is_not_utf8_is_refused() {
    use std::os::unix::ffi::OsStrExt;
    let out = Command::new(env!("CARGO_BIN_EXE_hzcache-companion"))
        .env_clear()
        .env(
            "HZCACHE_CLUSTER_NAME",
            std::ffi::OsStr::from_bytes(b"dev\xff"),
        )
        .arg("--check-config")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(e.contains("UTF-8"), "{e}");
}
