fn main() {
    std::process::exit(bottle::cli::main());
}
