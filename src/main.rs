fn main() -> std::process::ExitCode {
    // Die quietly on a closed pipe (`firebreak plan … | head`) instead of panicking.
    // SAFETY: called before any thread starts; restores the default disposition only.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    firebreak::cli::main()
}
