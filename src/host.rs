//! Who and where this process is: the host name and the local user, for journal records, locks
//! and claims.

/// The host name (`gethostname`), or `unknown`.
pub fn host() -> String {
    let mut buffer = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates within it.
    let ok = unsafe { libc::gethostname(buffer.as_mut_ptr().cast(), buffer.len()) } == 0;
    if ok {
        let end = buffer.iter().position(|b| *b == 0).unwrap_or(buffer.len());
        String::from_utf8_lossy(&buffer[..end]).into_owned()
    } else {
        "unknown".into()
    }
}

/// The local user (`$USER`, `$LOGNAME`, else the uid). Spoofable: records also carry the AWS
/// caller identity.
pub fn user() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        // SAFETY: getuid cannot fail.
        .unwrap_or_else(|_| format!("uid {}", unsafe { libc::getuid() }))
}
