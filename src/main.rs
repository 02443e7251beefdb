fn main() -> std::process::ExitCode {
    sipcast::cli::main()
}
