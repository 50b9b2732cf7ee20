//! `perdure`: the command-line entry point. `perdure server start-dev` runs the whole server in
//! one process; `perdure workflow ...` and `perdure operator ...` are a client in the style of the
//! `temporal` CLI, built on the Rust SDK's client.

mod cli;
mod operator;
mod output;
mod schedule;
mod server;
mod workflow;

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "perdure",
    version,
    about = "Perdure: durable execution, Temporal-compatible"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
// Parsed once per process: the connection flags' size does not matter.
#[allow(clippy::large_enum_variant)]
enum Command {
    /// Run a Perdure server.
    Server {
        #[command(subcommand)]
        command: ServerCommand,
    },
    /// Start, list, inspect, signal, query and stop workflow executions.
    Workflow {
        #[command(flatten)]
        conn: cli::Conn,
        #[command(subcommand)]
        command: workflow::WorkflowCommand,
    },
    /// Manage namespaces and search attributes.
    Operator {
        #[command(flatten)]
        conn: cli::Conn,
        #[command(subcommand)]
        command: operator::OperatorCommand,
    },
    /// Create, inspect, update, pause, trigger, backfill and delete schedules.
    Schedule {
        #[command(flatten)]
        conn: cli::Conn,
        #[command(subcommand)]
        command: schedule::ScheduleCommand,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish or powershell).
    Completion {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

#[derive(Subcommand)]
enum ServerCommand {
    /// Start a development server: gRPC, SQLite persistence and the default namespace in one
    /// process.
    StartDev(server::StartDev),
    /// Start a server process for production: settings from `--config perdure.toml`, flags and
    /// `PERDURE_*` variables; SQLite or PostgreSQL (several processes may share one PostgreSQL
    /// database).
    Start(server::Start),
}

fn main() -> ExitCode {
    let cli = Cli::parse_from(cli::hoist_connection_flags(
        std::env::args_os()
            .map(|a| a.to_string_lossy().into_owned())
            .collect(),
    ));
    let result = match cli.command {
        Command::Server {
            command: ServerCommand::StartDev(args),
        } => server::run(args.into()),
        Command::Server {
            command: ServerCommand::Start(args),
        } => args.resolve().and_then(server::run),
        Command::Workflow { conn, command } => cli::run(conn, |ctx| workflow::run(ctx, command)),
        Command::Operator { conn, command } => cli::run(conn, |ctx| operator::run(ctx, command)),
        Command::Schedule { conn, command } => cli::run(conn, |ctx| schedule::run(ctx, command)),
        Command::Completion { shell } => {
            let mut cmd = Cli::command();
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut cmd, "perdure", &mut script);
            output::emit(&String::from_utf8_lossy(&script));
            Ok(())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            cli::report(&e);
            ExitCode::FAILURE
        }
    }
}
