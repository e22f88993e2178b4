mod cli;

#[global_allocator]
static GLOBAL: opsdeploy::GlobalAllocator = opsdeploy::GlobalAllocator {};

fn main() -> std::process::ExitCode {
    // `opsdeploy plan staging | head` closes the pipe early: end quietly as
    // cat and grep do (killed by SIGPIPE) instead of panicking on the write.
    #[cfg(unix)]
    // SAFETY: setting a signal disposition to its default before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    cli::main()
}
