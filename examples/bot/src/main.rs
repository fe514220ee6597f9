//! `tidings-example-bot`: assigns new tasks and announces them. See `--help` and `examples/README.md`.

use std::process::ExitCode;
use std::time::Duration;

use tidings_example_bot::{Bot, BotConfig};
use tracing_subscriber::EnvFilter;

const USAGE: &str = "tidings-example-bot [flags]

  --url URL                server (TIDINGS_URL, default http://127.0.0.1:3000)
  --token JWT              the bot's token (TIDINGS_TOKEN); without it, dev login as --user
  --user ID                demo user for dev login (TIDINGS_BOT_USER, default bot)
  --internal-api-key K     key for POST /internal/emit (TIDINGS_INTERNAL_API_KEY,
                           default the example server's built-in DEV key)
  --assignees A,B          users to assign tasks to in turn (TIDINGS_BOT_ASSIGNEES, default alice,bob)
  --chat ID                chat to announce in (TIDINGS_BOT_CHAT, default general)

  RUST_LOG sets the log filter (default info).";

fn config() -> Result<BotConfig, String> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let mut c = BotConfig {
        server_url: env("TIDINGS_URL").unwrap_or_else(|| "http://127.0.0.1:3000".into()),
        token: env("TIDINGS_TOKEN"),
        login_user: env("TIDINGS_BOT_USER").unwrap_or_else(|| "bot".into()),
        internal_api_key: env("TIDINGS_INTERNAL_API_KEY").unwrap_or_else(|| "tidings-dev-internal-key".into()),
        assignees: env("TIDINGS_BOT_ASSIGNEES")
            .unwrap_or_else(|| "alice,bob".into())
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect(),
        chat_id: env("TIDINGS_BOT_CHAT").unwrap_or_else(|| "general".into()),
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--url" => c.server_url = value()?,
            "--token" => c.token = Some(value()?),
            "--user" => c.login_user = value()?,
            "--internal-api-key" => c.internal_api_key = value()?,
            "--assignees" => {
                c.assignees = value()?.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect()
            }
            "--chat" => c.chat_id = value()?,
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown flag {other:?}\n\n{USAGE}")),
        }
    }
    Ok(c)
}

#[tokio::main]
async fn main() -> ExitCode {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    tracing_subscriber::fmt().with_env_filter(filter).with_target(false).with_ansi(ansi).init();
    let config = match config() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return if e == USAGE { ExitCode::SUCCESS } else { ExitCode::from(2) };
        }
    };
    // Starting is retried too: the server may come up after the bot.
    let bot = loop {
        match Bot::connect(config.clone()).await {
            Ok(b) => break b,
            Err(e) => {
                tracing::warn!(error = %e, "could not start; retrying in 5 s");
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => return ExitCode::SUCCESS,
                    () = tokio::time::sleep(Duration::from_secs(5)) => {}
                }
            }
        }
    };
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    match bot.run(shutdown).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "bot failed");
            ExitCode::FAILURE
        }
    }
}
