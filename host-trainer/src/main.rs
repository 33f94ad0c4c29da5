//! `host-trainer`: the workstation half of doppel — extract faces, train the swap model and the
//! deepfake detector, export signed bundles for the booth. One module per subcommand in `cli/`.

mod cli;

use clap::Parser;

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    if let Err(e) = cli::run(cli::Cli::parse()) {
        if e.is::<cli::ReaderGone>() {
            // The status a shell reports for a filter ended by SIGPIPE.
            std::process::exit(141);
        }
        // One line the user can act on: what was being done, then the chain of causes.
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
