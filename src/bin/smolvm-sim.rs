fn main() {
    std::process::exit(bottle::sim::main());
}
