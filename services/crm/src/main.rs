//! `crm`: serve any set of services (`crm serve all` on a laptop, `crm serve customers` in a
//! Kubernetes pod), apply migrations, load demo data.

use std::path::PathBuf;

use anyhow::Context;
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
    /// Loads demo customers and one demo user per role (safe to repeat: it creates nothing twice).
    DemoData,
    /// Manages users and API keys.
    #[command(subcommand)]
    Admin(Admin),
    /// Writes the API's documents generated from the contracts: `<out>/openapi.json` (JSON over
    /// HTTP) and the reference in `<out>/api/`; with --check, only says whether they are in step.
    ApiDocs {
        /// The directory to write into.
        #[arg(long, default_value = "docs")]
        out: PathBuf,
        /// Compare instead of writing; fail naming every file that differs.
        #[arg(long)]
        check: bool,
    },
}

#[derive(Subcommand)]
enum Admin {
    /// Creates an internal user. The password is read from CRM_NEW_PASSWORD or standard input.
    CreateUser {
        /// Login name.
        #[arg(long)]
        username: String,
        /// Roles, comma-separated (e.g. sales_rep,tech_support).
        #[arg(long, value_delimiter = ',')]
        roles: Vec<String>,
        /// Display name.
        #[arg(long, default_value = "")]
        display_name: String,
        /// Sales region, for sales reps and managers.
        #[arg(long, default_value = "")]
        region: String,
        /// Partner organisation, for partner users.
        #[arg(long, default_value = "")]
        partner_id: String,
    },
    /// Prints a new Ed25519 signing key (for the gateway) and its public key (for every service).
    GenerateSigningKey,
    /// Creates an API key for a partner system and prints it once.
    CreateApiKey {
        /// What the key is for.
        #[arg(long)]
        name: String,
        /// Roles, comma-separated (usually partner).
        #[arg(long, value_delimiter = ',', default_value = "partner")]
        roles: Vec<String>,
        /// Partner organisation.
        #[arg(long, default_value = "")]
        partner_id: String,
        /// Lifetime in days; 0 for the configured default.
        #[arg(long, default_value_t = 0)]
        ttl_days: i32,
    },
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
        Command::ApiDocs { out, check } => api_docs(&settings, &out, check),
        Command::Migrate { services } => crm::migrate(&settings, &crm::resolve(&services)?).await,
        Command::DemoData => {
            let stale = "loading demo data failed; if the local database holds demo data of an \
                         older version, `make clean-local` resets it";
            let users = crm::demo::load_users(&settings).await.context(stale)?;
            let customers = crm::demo::load(&settings, &users).await.context(stale)?;
            let n = customers.len();
            let repairs = crm::demo::repairs::load(&settings).await.context(stale)?;
            let complaints = crm::demo::complaints::load(&settings, &users, &customers)
                .await
                .context(stale)?;
            let pipeline = crm::demo::pipeline::load(&settings, &users, &customers)
                .await
                .context(stale)?;
            println!(
                "demo data: {n} customers, {} users, {} repair centres, {} repair orders, \
                 {complaints} complaint cycles, {} leads and {} opportunities in place",
                users.len(),
                repairs.centres,
                repairs.orders,
                pipeline.leads,
                pipeline.opportunities
            );
            Ok(())
        }
        Command::Admin(Admin::CreateUser {
            username,
            roles,
            display_name,
            region,
            partner_id,
        }) => {
            let password = match std::env::var("CRM_NEW_PASSWORD") {
                Ok(p) => p,
                Err(_) => {
                    let mut line = String::new();
                    std::io::stdin().read_line(&mut line)?;
                    line.trim_end_matches(['\r', '\n']).to_string()
                }
            };
            let identity = crm::admin::identity(&settings).await?;
            let user = crm_proto::gateway::v1::User {
                username,
                display_name,
                roles,
                region,
                partner_id,
                ..Default::default()
            };
            let request_id = uuid::Uuid::new_v4().to_string();
            let created =
                crm::admin::create_user(&identity, &request_id, user, &password, "cli").await?;
            println!(
                "created user {} ({}) with roles {}",
                created.username,
                created.id,
                created.roles.join(",")
            );
            Ok(())
        }
        Command::Admin(Admin::GenerateSigningKey) => {
            let seed = crm_kit::auth::generate_signing_key();
            println!("CRM__AUTH__SIGNING_KEY={seed}");
            println!(
                "public key (auth.verification_keys.<kid>): {}",
                crm_kit::auth::public_key(&seed)?
            );
            Ok(())
        }
        Command::Admin(Admin::CreateApiKey {
            name,
            roles,
            partner_id,
            ttl_days,
        }) => {
            let identity = crm::admin::identity(&settings).await?;
            let key = crm_proto::gateway::v1::ApiKey {
                name,
                roles,
                partner_id,
                ..Default::default()
            };
            let created = crm::admin::create_api_key(&identity, key, ttl_days, "cli").await?;
            let api_key = created.api_key.unwrap_or_default();
            println!(
                "created API key {} for {:?}; it is shown only now:",
                api_key.id, api_key.name
            );
            println!("{}", created.secret);
            Ok(())
        }
    }
}

/// `crm api-docs`: writes (or checks) the generated documents; a stale file in `<out>/api/`
/// that is no longer generated is reported by --check and removed when writing.
fn api_docs(settings: &Settings, out: &std::path::Path, check: bool) -> anyhow::Result<()> {
    let files = crm_gateway::api_docs::generate(settings)?;
    let generated: std::collections::BTreeSet<PathBuf> =
        files.iter().map(|(name, _)| out.join(name)).collect();
    let stale: Vec<PathBuf> = std::fs::read_dir(out.join("api"))
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "md") && !generated.contains(p))
        .collect();
    if check {
        let mut differing: Vec<String> = files
            .iter()
            .filter(|(name, text)| {
                std::fs::read_to_string(out.join(name)).ok().as_deref() != Some(text.as_str())
            })
            .map(|(name, _)| out.join(name).display().to_string())
            .collect();
        differing.extend(
            stale
                .iter()
                .map(|p| format!("{} (no longer generated)", p.display())),
        );
        anyhow::ensure!(
            differing.is_empty(),
            "the API documents are not in step with proto/ (run `cargo run -p crm -- api-docs`): {}",
            differing.join(", ")
        );
        println!("api docs: {} files in step", files.len());
        return Ok(());
    }
    std::fs::create_dir_all(out.join("api"))?;
    for path in stale {
        std::fs::remove_file(path)?;
    }
    for (name, text) in &files {
        std::fs::write(out.join(name), text)?;
    }
    println!(
        "api docs: {} files written under {}",
        files.len(),
        out.display()
    );
    Ok(())
}
