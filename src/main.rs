fn main() -> std::process::ExitCode {
    bottle::cli::main()
}
