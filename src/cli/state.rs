//! `opsdeploy state migrate --to postgres | init --admin-url URL`.

use clap::{Subcommand, ValueEnum};
use opsdeploy::config::Config;
use opsdeploy::workflow::{short, state};

use opsdeploy::error::Outcome;

use super::{CliResult, Context, Format};

#[derive(Debug, Subcommand)]
pub enum StateCommand {
    /// Copy the file store's audit log and plan bundles into PostgreSQL
    #[command(
        after_help = "Example:\n  OPSDEPLOY_DATABASE_URL=postgres://deploy@db/shop opsdeploy state migrate --to postgres"
    )]
    Migrate {
        /// The backend to copy to
        #[arg(long, value_enum)]
        to: Backend,
        /// The database (default: the `state` block of opsdeploy.hcl)
        #[arg(long, env = "OPSDEPLOY_DATABASE_URL", hide_env_values = true)]
        url: Option<String>,
    },
    /// Set up team mode's schema as an admin role, and grant the runtime role
    /// opsdeploy connects as only reading and appending
    #[command(
        after_help = "Example:\n  OPSDEPLOY_DATABASE_URL=postgres://deploy@db/shop opsdeploy state init --admin-url postgres://dba@db/shop"
    )]
    Init {
        /// The database as its admin (owner of opsdeploy's schema)
        #[arg(long, env = "OPSDEPLOY_ADMIN_DATABASE_URL", hide_env_values = true)]
        admin_url: String,
        /// The role opsdeploy connects as (default: the user of the configured database URL)
        #[arg(long, value_name = "ROLE")]
        runtime_role: Option<String>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Backend {
    Postgres,
}

pub fn run(ctx: &Context, cmd: &StateCommand) -> CliResult {
    let dir = super::project::current_dir()?;
    let config = Config::load(&dir)?;
    // The only target so far; a new one is a compile error here, not a fall-through.
    let (Backend::Postgres, url) = match cmd {
        StateCommand::Migrate { to, url } => (*to, url),
        StateCommand::Init {
            admin_url,
            runtime_role,
        } => {
            let r = state::init_roles(&config, admin_url, runtime_role.as_deref())?;
            match ctx.format {
                Format::Json => println!("{}", opsdeploy::report::json(&r)),
                _ if ctx.quiet => println!("initialized"),
                _ => println!(
                    "{}: schema owned by {}; {} may read and append the audit log, and alter nothing",
                    r.database, r.admin, r.runtime
                ),
            }
            return Ok(Outcome::Done);
        }
    };
    let url = state::target_url(&config, url.as_deref())?;
    let m = state::migrate_to_postgres(&config, &url)?;
    match ctx.format {
        Format::Json => println!("{}", opsdeploy::report::json(&m)),
        _ if ctx.quiet => println!("migrated {}", short(&m.head)),
        _ => println!(
            "migrated to {}: {} entries copied, {} in all, chain head {} verified; {} plan bundles",
            m.target,
            m.copied,
            m.entries,
            short(&m.head),
            m.bundles
        ),
    }
    if !ctx.quiet {
        anstream::eprintln!(
            "next: set `state {{ backend = \"postgres\"  url = env(\"OPSDEPLOY_DATABASE_URL\") }}` in opsdeploy.hcl"
        );
    }
    Ok(Outcome::Done)
}
