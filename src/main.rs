/// The command line runs on a thread with room to spare: the Security Hub client deserializes a
/// finding (hundreds of optional resource-detail shapes) through frames that overflow the
/// default 8 MiB main stack in debug builds. Only touched pages cost memory.
const STACK_BYTES: usize = 64 << 20;

fn main() -> std::process::ExitCode {
    // Die quietly on a closed pipe (`firebreak plan … | head`) instead of panicking.
    // SAFETY: called before any thread starts; restores the default disposition only.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    std::thread::Builder::new()
        .name("firebreak".into())
        .stack_size(STACK_BYTES)
        .spawn(firebreak::cli::main)
        .expect("the main thread starts")
        .join()
        // A panic was already reported by the panic hook; exit as Rust's main would.
        .unwrap_or(std::process::ExitCode::from(101))
}
