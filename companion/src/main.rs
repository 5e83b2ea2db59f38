//! The `hzcache-companion` binary: reads the configuration, starts the Hazelcast client and the
//! HTTP server, and stops cleanly on SIGINT or SIGTERM.

use std::sync::Arc;

use hazelcast_client::Client;
use hzcache_companion::cache::Cache;
use hzcache_companion::config::{Config, ConfigError, Invocation, LogFormat};
use hzcache_companion::origin::OriginClient;

fn main() -> std::process::ExitCode {
    let invocation = match Invocation::parse(std::env::args_os().skip(1)) {
        Ok(i) => i,
        // `--help`, `--version`, an unknown option or a missing value: clap prints it
        // (help to stdout with status 0, a mistake to stderr with status 2).
        Err(ConfigError::Usage(e)) => e.exit(),
        Err(e) => {
            eprintln!("hzcache-companion: bad configuration: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let config = invocation.config;
    if invocation.check_only {
        println!("{}", config.summary());
        return std::process::ExitCode::SUCCESS;
    }
    init_logging(config.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("hzcache-companion: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(config)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Logs to standard output at `RUST_LOG`'s levels (default `info`), as text or one JSON object
/// per line. What the fields hold is the code's care, not the format's: no secret is ever a
/// field (a `Secret` prints only its length), and a cache key (URL and query) is a field only
/// as its digest, except in debug lines.
fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let lines = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    match format {
        LogFormat::Text => lines.init(),
        // The event's fields at the top level beside `timestamp` and `level`; `span` holds
        // the innermost span's fields (a fetch's map, key digest, method and outcome).
        LogFormat::Json => lines
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .init(),
    }
}

async fn run(config: Config) -> anyhow::Result<()> {
    if config.origins.is_empty() {
        tracing::warn!("no --origin configured: every miss will fail open to Envoy's upstream");
    }
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.listen))?;
    let hazelcast = Client::start(config.hazelcast.clone());
    tracing::info!(
        listen = %config.listen,
        cluster = %config.hazelcast.cluster_name,
        members = ?config.hazelcast.addresses,
        origins = ?config.origins.keys().collect::<Vec<_>>(),
        "hzcache companion started"
    );
    if config.admin_token.is_none() {
        tracing::info!(
            "no admin token (HZCACHE_ADMIN_TOKEN or --admin-token-file): the purge API is off"
        );
    }
    if config.callout_secret.is_none() {
        tracing::warn!(
            "no callout secret (HZCACHE_CALLOUT_SECRET or --callout-secret-file): any local process can call /v1/*"
        );
    }
    let origin = OriginClient::new(config.origin_timeout, config.max_inflight_body_bytes)
        .with_mark(config.callout_secret.clone());
    let cache = Arc::new(Cache::new(config, hazelcast.clone(), origin));
    let feed = hzcache_companion::feed_driver::spawn(cache.feed.clone(), hazelcast.clone());
    hzcache_companion::server::run(listener, cache, shutdown_signal()).await;
    feed.abort();
    hazelcast.shutdown();
    tracing::info!("hzcache companion stopped");
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch SIGTERM; only Ctrl-C will stop the companion");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
