mod cli;

#[global_allocator]
static GLOBAL: opsdeploy::GlobalAllocator = opsdeploy::GlobalAllocator {};

fn main() -> std::process::ExitCode {
    cli::main()
}
