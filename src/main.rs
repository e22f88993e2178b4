mod cli;

#[global_allocator]
static GLOBAL: opsdeploy::GlobalAllocator = opsdeploy::GlobalAllocator {};

fn main() -> std::process::ExitCode {
    opsdeploy::return_freed_memory_promptly();
    // A policy compile in a child of this binary, under the policy's limits
    // (src/engine/compile.rs); never a command people type.
    if std::env::args_os().nth(1).as_deref() == Some(opsdeploy::engine::COMPILE_CHILD_ARG.as_ref())
    {
        return opsdeploy::engine::compile_child_main();
    }
    // `opsdeploy plan staging | head` closes the pipe early: end quietly as
    // cat and grep do (killed by SIGPIPE) instead of panicking on the write.
    #[cfg(unix)]
    // SAFETY: setting a signal disposition to its default before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    if let Ok(exe) = std::env::current_exe() {
        opsdeploy::engine::compile_in_child(exe);
    }
    cli::main()
}
