//! `dcos`: see docs/cli.md.

fn main() {
    std::process::exit(dcos_cli::run(std::env::args_os()));
}
