//! The `cliptag` binary: the desktop app without a subcommand, headless tools with one.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cliptag::cli::Cli::parse();
    if let Some(threads) = cli.threads().filter(|t| *t > 0) {
        // SAFETY: no other thread exists yet; candle reads these once, when it sizes its pool.
        unsafe {
            std::env::set_var("CANDLE_NUM_THREADS", threads.to_string());
            std::env::set_var("RAYON_NUM_THREADS", threads.to_string());
        }
    }
    cliptag::model::kernels::tune_allocator();
    // Every thread started from here on inherits the flush-to-zero mode.
    cliptag::model::kernels::flush_denormals_on_this_thread();
    if cli.command.is_some() && !cli.open.is_empty() {
        let paths: Vec<String> = cli.open.iter().map(|p| p.display().to_string()).collect();
        eprintln!(
            "cliptag: {} before the command: a command takes its folders after its name \
             (`cliptag index FOLDER`)",
            paths.join(" ")
        );
        return ExitCode::from(2);
    }
    let result = match cli.command {
        None => cliptag::cli::paths_to_open(&cli.open)
            .and_then(|open| cliptag::app::run(cli.db.clone(), None, open))
            .map(|()| ExitCode::SUCCESS),
        Some(_) => cliptag::cli::run(cli),
    };
    match result {
        Ok(code) => code,
        // Output piped into `head` and closed early is not an error worth a message.
        Err(error) if is_broken_pipe(&error) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("cliptag: {}", message(&error));
            ExitCode::FAILURE
        }
    }
}

fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// The error and its causes, each said once: a cause whose text its parent's message already
/// holds (an I/O error inside "path: reason") is not repeated.
fn message(error: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in error.chain() {
        let part = cause.to_string();
        if text.contains(&part) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&part);
    }
    text
}
