//! The `easyprint` command: run the server, manage users and API keys, inspect G-code and
//! slice models.

mod tools;

use std::io::BufRead;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use easyprint_server::auth::{secrets, store};
use easyprint_server::config::{Config, PrinterConfig, SimulationConfig};
use easyprint_server::db::Db;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

#[derive(Parser)]
#[command(name = "easyprint", version, about = "Host 3D printers from a browser")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve {
        /// TOML configuration file.
        #[arg(long)]
        config: PathBuf,
    },
    /// Everything on an embedded default: a simulated printer on a pty, a fresh data
    /// directory, CuraEngine slicing, an admin account whose password is printed once.
    Demo {
        /// Listen address.
        #[arg(long, default_value = "127.0.0.1:5000")]
        listen: std::net::SocketAddr,
        /// Data directory (default: a fresh one under the system's temporary directory).
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Manage accounts.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Create an API key for a user and print it (shown only once).
    Apikey {
        /// TOML configuration file (for the data directory).
        #[arg(long)]
        config: PathBuf,
        /// The key's owner.
        #[arg(long)]
        user: String,
        /// A label to recognise the key by.
        #[arg(long, default_value = "command line")]
        label: String,
    },
    /// Inspect G-code files.
    Gcode {
        #[command(subcommand)]
        command: GcodeCommand,
    },
    /// Slice a model (STL, OBJ, 3MF) with CuraEngine.
    Slice {
        /// The model.
        model: PathBuf,
        /// Cura machine definition id.
        #[arg(long, default_value = "creality_ender3")]
        machine: String,
        /// A Cura setting override, `key=value` (repeatable).
        #[arg(short = 's', long = "setting", value_name = "KEY=VALUE")]
        settings: Vec<String>,
        /// Output file (default: the model's name with `.gcode`).
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum GcodeCommand {
    /// Time estimate, layers, size, filament and problems of a file.
    Info {
        /// The G-code file.
        file: PathBuf,
        /// Print the whole analysis as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Add an account; the password is read from the first line of standard input.
    Add {
        /// TOML configuration file (for the data directory).
        #[arg(long)]
        config: PathBuf,
        /// Login name.
        name: String,
        /// Make the account an administrator.
        #[arg(long)]
        admin: bool,
    },
    /// Print the argon2 hash of the password on standard input (for `[[users]]` in the config).
    Hash,
}

fn main() -> anyhow::Result<()> {
    let filter = std::env::var("EASYPRINT_LOG").unwrap_or_else(|_| "info".into());
    let filter: tracing_subscriber::filter::Targets = filter.parse()?;
    tracing_subscriber::registry()
        .with(tracing_subscriber::fmt::layer())
        .with(filter)
        .init();
    match Cli::parse().command {
        Command::Serve { config } => serve(Config::load(&config)?),
        Command::Demo { listen, data_dir } => demo(listen, data_dir),
        Command::User {
            command:
                UserCommand::Add {
                    config,
                    name,
                    admin,
                },
        } => {
            let db = open_db(&Config::load(&config)?)?;
            store::validate_user_name(&name)?;
            let password = read_password()?;
            store::validate_new_password(&password)?;
            let hash = secrets::hash_password(&password).map_err(|e| anyhow::anyhow!("{e}"))?;
            let user = db.call_blocking(|c| store::insert_user(c, &name, &hash, admin))?;
            println!("created user {} (admin: {})", user.name, user.admin);
            Ok(())
        }
        Command::User {
            command: UserCommand::Hash,
        } => {
            let password = read_password()?;
            println!(
                "{}",
                secrets::hash_password(&password).map_err(|e| anyhow::anyhow!("{e}"))?
            );
            Ok(())
        }
        Command::Gcode {
            command: GcodeCommand::Info { file, json },
        } => tools::gcode_info(&file, json),
        Command::Slice {
            model,
            machine,
            settings,
            output,
        } => tools::slice(&model, &machine, &settings, output),
        Command::Apikey {
            config,
            user,
            label,
        } => {
            let db = open_db(&Config::load(&config)?)?;
            let key = db.call_blocking(|c| {
                let (found, _) = store::find_user_with_hash(c, &user)?
                    .ok_or(easyprint_server::ApiError::NotFound("user"))?;
                store::create_api_key(c, found.id, &label)
            })?;
            println!("{key}");
            Ok(())
        }
    }
}

#[tokio::main]
async fn serve(config: Config) -> anyhow::Result<()> {
    let server = easyprint_server::Server::bind(config).await?;
    tracing::info!(address = %server.local_addr(), "easyprint listening");
    server.run(shutdown_signal()).await.context("server failed")
}

/// Builds the demo configuration, creates the admin and serves.
fn demo(listen: std::net::SocketAddr, data_dir: Option<PathBuf>) -> anyhow::Result<()> {
    let data_dir = match data_dir {
        Some(dir) => dir,
        None => std::env::temp_dir().join(format!("easyprint-demo-{}", secrets::random_id())),
    };
    let config = Config {
        listen,
        data_dir,
        printers: vec![PrinterConfig::simulated(
            "virtual",
            SimulationConfig::default(),
        )],
        ..Config::default()
    };
    let db = open_db(&config)?;
    let password = secrets::typable_password();
    let hash = secrets::hash_password(&password).map_err(|e| anyhow::anyhow!("{e}"))?;
    let existing = db.call_blocking(|c| store::find_user_with_hash(c, "admin"))?;
    if existing.is_some() {
        db.call_blocking(|c| {
            let (user, _) = store::find_user_with_hash(c, "admin")?
                .ok_or(easyprint_server::ApiError::NotFound("user"))?;
            store::set_password(c, user.id, &hash)
        })?;
    } else {
        db.call_blocking(|c| store::insert_user(c, "admin", &hash, true))?;
    }
    drop(db);
    println!();
    println!("  easyprint demo");
    println!("  open      http://{listen}/");
    println!("  user      admin");
    println!("  password  {password}   (shown only once)");
    println!("  data      {}", config.data_dir.display());
    println!(
        "  printer   simulated Marlin on a pseudo-terminal; slicing with CuraEngine ({})",
        config.slicer.machine
    );
    println!();
    serve(config)
}

fn open_db(config: &Config) -> anyhow::Result<Db> {
    std::fs::create_dir_all(&config.data_dir)?;
    Ok(Db::open(&config.data_dir.join("easyprint.sqlite"))?)
}

fn read_password() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler");
    tokio::select! {
        () = ctrl_c => {},
        _ = term.recv() => {},
    }
    tracing::info!("shutting down");
}
