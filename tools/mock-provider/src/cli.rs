//! Command-line parsing (hand-written to keep the dependency set small).

use std::net::SocketAddr;

use hyper::http::HeaderValue;

/// Models listed by `GET /v1/models` when no `--model` flag is given.
pub const DEFAULT_MODELS: [&str; 5] = [
    "gpt-4.1",
    "gpt-4.1-mini",
    "claude-sonnet-4.5",
    "deepseek-v3.2",
    "gemini-2.5-flash",
];

pub const USAGE: &str = "\
usage: mock-provider [--listen ADDR] [--name NAME] [--threads N] [--latency-ms N]
                     [--fail-status CODE] [--model NAME]...

  --listen ADDR       address to listen on (default 127.0.0.1:0; the bound address is printed)
  --name NAME         value of the x-mock-provider response header and of owned_by (default mock)
  --threads N         tokio worker threads (default 1)
  --latency-ms N      base delay before every OpenAI response (default 0)
  --fail-status CODE  every OpenAI endpoint answers CODE (200..=599) with an OpenAI error body
  --model NAME        model listed by GET /v1/models (repeatable; replaces the default list)
  -h, --help          print this help
";

/// Server configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub listen: SocketAddr,
    pub name: String,
    pub threads: usize,
    pub latency_ms: u64,
    pub fail_status: Option<u16>,
    pub models: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            name: "mock".to_string(),
            threads: 1,
            latency_ms: 0,
            fail_status: None,
            models: DEFAULT_MODELS.iter().map(|m| m.to_string()).collect(),
        }
    }
}

/// What the command line asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Command {
    Run(Config),
    Help,
}

/// Parses the arguments after the program name. Accepts `--flag value` and `--flag=value`.
pub fn parse<I: IntoIterator<Item = String>>(args: I) -> Result<Command, String> {
    let mut cfg = Config::default();
    let mut models: Vec<String> = Vec::new();
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        if arg == "-h" || arg == "--help" {
            return Ok(Command::Help);
        }
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let known = [
            "--listen",
            "--name",
            "--threads",
            "--latency-ms",
            "--fail-status",
            "--model",
        ];
        if !known.contains(&flag.as_str()) {
            return Err(format!("unknown argument: {arg}"));
        }
        let value = match inline {
            Some(v) => v,
            None => it
                .next()
                .ok_or_else(|| format!("missing value for {flag}"))?,
        };
        match flag.as_str() {
            "--listen" => {
                cfg.listen = value
                    .parse()
                    .map_err(|_| format!("invalid --listen address: {value}"))?;
            }
            "--name" => {
                if value.is_empty() || HeaderValue::from_str(&value).is_err() {
                    return Err(format!(
                        "invalid --name (must be a valid header value): {value:?}"
                    ));
                }
                cfg.name = value;
            }
            "--threads" => {
                cfg.threads = match value.parse::<usize>() {
                    Ok(n) if (1..=1024).contains(&n) => n,
                    _ => return Err(format!("invalid --threads (1..=1024): {value}")),
                };
            }
            "--latency-ms" => {
                cfg.latency_ms = value
                    .parse()
                    .map_err(|_| format!("invalid --latency-ms: {value}"))?;
            }
            "--fail-status" => {
                cfg.fail_status = match value.parse::<u16>() {
                    Ok(n) if (200..=599).contains(&n) => Some(n),
                    _ => return Err(format!("invalid --fail-status (200..=599): {value}")),
                };
            }
            _ => {
                if value.is_empty() {
                    return Err("empty --model".to_string());
                }
                models.push(value);
            }
        }
    }
    if !models.is_empty() {
        cfg.models = models;
    }
    Ok(Command::Run(cfg))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Command, String> {
        parse(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn defaults() {
        assert_eq!(p(&[]), Ok(Command::Run(Config::default())));
        assert_eq!(p(&["--help"]), Ok(Command::Help));
    }

    #[test]
    fn all_flags() {
        let Ok(Command::Run(c)) = p(&[
            "--listen",
            "127.0.0.1:9999",
            "--name=primary",
            "--threads",
            "2",
            "--latency-ms",
            "15",
            "--fail-status",
            "503",
            "--model",
            "a",
            "--model=b",
        ]) else {
            panic!("parse failed")
        };
        assert_eq!(c.listen, "127.0.0.1:9999".parse().unwrap());
        assert_eq!(c.name, "primary");
        assert_eq!(c.threads, 2);
        assert_eq!(c.latency_ms, 15);
        assert_eq!(c.fail_status, Some(503));
        assert_eq!(c.models, vec!["a".to_string(), "b".to_string()]);
    }

    #[test]
    fn errors() {
        assert!(p(&["--bogus"]).is_err());
        assert!(p(&["--listen"]).is_err());
        assert!(p(&["--listen", "nope"]).is_err());
        assert!(p(&["--threads", "0"]).is_err());
        assert!(p(&["--fail-status", "99"]).is_err());
        assert!(p(&["--fail-status", "600"]).is_err());
        assert!(p(&["--name", "bad\nname"]).is_err());
    }
}
