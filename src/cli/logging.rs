//! Logs go to stderr (results to stdout), as text or JSON lines.

use tracing_subscriber::EnvFilter;

use super::LogFormat;

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
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}
