//! The kvraft command: the command line of [`kvraft::cli`] with the Rafts
//! this crate ships.

fn main() -> std::process::ExitCode {
    kvraft::cli::main_with(&[])
}
