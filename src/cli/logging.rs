//! Logs go to stderr (results to stdout), as text or JSON lines.

use tracing::level_filters::LevelFilter;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::prelude::*;
use tracing_subscriber::{EnvFilter, fmt};

use super::LogFormat;

/// The SDK's crates log signing internals (canonical requests, strings to sign, credential
/// provider details) at trace. Whatever `-vvv` or `RUST_LOG` asks, they are capped at debug.
const CAPPED_AT_DEBUG: &[&str] = &[
    "aws_sigv4",
    "aws_runtime",
    "aws_config",
    "aws_credential_types",
    "aws_smithy_runtime",
    "aws_smithy_runtime_api",
    "aws_smithy_http",
    "aws_smithy_http_client",
    "aws_smithy_types",
    "hyper",
    "hyper_util",
    "h2",
    "rustls",
];

pub fn init(format: LogFormat, verbose: u8) {
    let level = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    // The SDK's own crates are chatty at debug; keep them one notch quieter unless -vvv.
    let default = if verbose >= 3 {
        level.to_owned()
    } else {
        format!("{level},aws_smithy_runtime=warn,aws_config=warn,hyper=warn")
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let cap = Targets::new()
        .with_default(LevelFilter::TRACE)
        .with_targets(CAPPED_AT_DEBUG.iter().map(|t| (*t, LevelFilter::DEBUG)));
    let layer = fmt::layer().with_writer(std::io::stderr).with_target(false);
    let layer = match format {
        LogFormat::Text => layer.boxed(),
        LogFormat::Json => layer.json().boxed(),
    };
    let _ = tracing_subscriber::registry()
        .with(layer.with_filter(filter).with_filter(cap))
        .try_init();
}
