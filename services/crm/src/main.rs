//! `crm`: serve any set of services (`crm serve all` on a laptop, `crm serve customers` in a
//! Kubernetes pod), apply migrations, load demo data.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use crm_kit::{Clock, Settings, server::shutdown_on_signals, telemetry};

#[derive(Parser)]
#[command(
    name = "crm",
    version,
    about = "Customer relationship and after-sales service platform"
)]
struct Cli {
    /// A TOML configuration file; CRM__SECTION__KEY environment variables override it.
    #[arg(long, global = true, env = "CRM_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serves the named services (or `all`), each on its configured port, until SIGTERM.
    Serve {
        /// Service names, or `all`.
        #[arg(default_value = "all")]
        services: Vec<String>,
        /// Apply migrations before serving (development; Kubernetes runs `crm migrate` as a Job).
        #[arg(long)]
        migrate: bool,
    },
    /// Applies the migrations of the named services (or `all`).
    Migrate {
        /// Service names, or `all`.
        #[arg(default_value = "all")]
        services: Vec<String>,
    },
    /// Loads demo customers (safe to repeat: it creates nothing twice).
    DemoData,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let mut settings = Settings::load(cli.config.as_deref())?;
    let service_label = match &cli.command {
        Command::Serve { services, .. } if services.len() == 1 => services[0].clone(),
        _ => "all".to_string(),
    };
    let _guard = telemetry::init(&service_label, &settings.telemetry, std::io::stderr)?;
    match cli.command {
        Command::Serve { services, migrate } => {
            let services = crm::resolve(&services)?;
            if settings.auth.signing_key.is_empty() && services.len() == crm::SERVICES.len() {
                tracing::warn!(
                    "auth.signing_key is not set: using a key made for this process only (development); \
                     tokens die with the process"
                );
                settings.auth.signing_key = crm_kit::auth::generate_signing_key();
            }
            if migrate {
                crm::migrate(&settings, &services).await?;
            }
            let platform =
                crm::Platform::start(&settings, &services, Clock::system(), shutdown_on_signals())
                    .await?;
            for (name, addr) in &platform.addrs {
                tracing::info!(service = name, %addr, "listening");
            }
            platform.wait().await
        }
        Command::Migrate { services } => crm::migrate(&settings, &crm::resolve(&services)?).await,
        Command::DemoData => {
            let n = crm::demo::load(&settings).await?;
            println!("demo data: {n} customers in place");
            Ok(())
        }
    }
}
