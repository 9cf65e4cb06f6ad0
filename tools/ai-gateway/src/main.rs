//! `ai-gateway`: the operator CLI of ai-gateway-filter. See docs/cli.md.
//!
//! It compiles plugin configurations with the filter crate's own config code (the very code
//! of the filter's `on_configure`), so what it accepts the filter accepts.

mod analyze;
mod diff;
mod edit;
mod fallback;
mod http;
mod json;
mod source;
mod tree;
mod validate;
mod yaml;

use ai_gateway_filter::config;
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "ai-gateway",
    version,
    about = "Validate, diff and roll out ai-gateway-filter configurations",
    long_about = "Validate, diff and roll out ai-gateway-filter configurations.\n\nPlugin configurations are read as JSON or YAML files, inside Envoy configs (bootstrap, LDS, ECDS: every envoy.filters.http.wasm filter) and inside Kubernetes manifests (Istio WasmPlugin pluginConfig, EnvoyFilter patches), and compiled by the filter's own config code."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check plugin configurations; exit 0 valid, 1 invalid, 2 unreadable
    Validate(ValidateArgs),
    /// What a config change does to traffic: per route, target shares before → after
    Diff(DiffArgs),
    /// Canary analysis (from Prometheus) and weight changes (in place, validated, atomic)
    #[command(subcommand)]
    Canary(CanaryCommand),
}

#[derive(Args)]
struct ValidateArgs {
    /// Plugin config (JSON/YAML), Envoy config, or Kubernetes manifests (multi-document YAML)
    #[arg(required = true, value_name = "FILE")]
    files: Vec<String>,
    #[arg(long, value_enum, default_value_t = ValidateFormat::Text)]
    format: ValidateFormat,
    /// Also fail on model names the provider doesn't list: GET URL/models (URL like
    /// https://api.holysheep.ai/v1), with the key from --api-key-env as a bearer token
    #[arg(long, value_name = "URL")]
    check_models: Option<String>,
    /// Environment variable holding the provider key for --check-models (never printed)
    #[arg(long, value_name = "NAME", default_value = config::defaults::API_KEY_ENV)]
    api_key_env: String,
    /// Print only errors and warnings, not one line per valid configuration
    #[arg(short, long)]
    quiet: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum ValidateFormat {
    Text,
    Json,
}

#[derive(Args)]
struct DiffArgs {
    old: String,
    new: String,
    #[arg(long, value_enum, default_value_t = diff::Format::Markdown)]
    format: diff::Format,
}

#[derive(Subcommand)]
enum CanaryCommand {
    /// Compare the canary with the route's stable targets in Prometheus: promote (exit 0),
    /// hold (10) or rollback (20)
    Analyze(analyze::AnalyzeArgs),
    /// Set one target's weight in a route (edits the number in place)
    SetWeight(edit::SetWeightArgs),
    /// Give the canary weight 100 and every other target of the route 0 (kept, drained)
    Promote(edit::CanaryArgs),
    /// Give the canary weight 0, its weight back to the other targets in proportion
    Rollback(edit::CanaryArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Validate(a) => run_validate(a),
        Command::Diff(a) => diff::run(&a.old, &a.new, a.format),
        Command::Canary(CanaryCommand::Analyze(a)) => analyze::run(&a),
        Command::Canary(CanaryCommand::SetWeight(a)) => edit::run_set_weight(&a),
        Command::Canary(CanaryCommand::Promote(a)) => edit::run_promote(&a),
        Command::Canary(CanaryCommand::Rollback(a)) => edit::run_rollback(&a),
    };
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

fn run_validate(a: ValidateArgs) -> i32 {
    let opts = validate::Options {
        check_models: a.check_models.clone(),
        api_key_env: a.api_key_env.clone(),
    };
    let report = validate::run(&a.files, &opts);
    let code = report.exit_code();
    match a.format {
        ValidateFormat::Json => {
            let doc = serde_json::json!({
                "ok": code == 0,
                "exit_code": code,
                "files": report.files,
                "errors": report.errors,
                "warnings": report.warnings,
            });
            println!(
                "{}",
                serde_json::to_string_pretty(&doc).unwrap_or_else(|e| e.to_string())
            );
        }
        ValidateFormat::Text => {
            for e in &report.errors {
                println!("{e}");
            }
            for w in &report.warnings {
                let mut w = w.clone();
                w.file = format!("{}: warning", w.file);
                println!("{w}");
            }
            if !a.quiet {
                for f in &report.files {
                    for n in &f.notes {
                        println!("{}: note: {n}", f.file);
                    }
                    for c in f.configs.iter().filter(|c| c.valid) {
                        let at = if c.location.is_empty() {
                            String::new()
                        } else {
                            format!("{}: ", c.location)
                        };
                        println!(
                            "{}: {at}ok ({} model(s), {} route(s))",
                            f.file, c.models, c.routes
                        );
                    }
                }
                let configs: usize = report.files.iter().map(|f| f.configs.len()).sum();
                eprintln!(
                    "{} file(s), {} plugin configuration(s): {} error(s), {} warning(s)",
                    report.files.len(),
                    configs,
                    report.errors.len(),
                    report.warnings.len()
                );
            }
        }
    }
    code
}
