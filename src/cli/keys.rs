//! `keys create|list|revoke`: for operators who lost theirs, next to the database.

use crate::db;
use crate::domain::api_keys::{self, ShellScope};
use crate::values::Timestamp;

use super::KeysCommand;

pub async fn run(action: KeysCommand) -> anyhow::Result<()> {
    let db = db::Db::connect(&action.database().url(), 2).await?;
    match action {
        KeysCommand::Create {
            database: _,
            name,
            role,
            organization,
            project,
            expires_in_days,
        } => {
            let scope = match (&organization, &project) {
                (Some(slug), _) => ShellScope::Organization(slug),
                (None, Some(slug)) => ShellScope::Project(slug),
                (None, None) => ShellScope::Instance,
            };
            let created =
                api_keys::mint_from_shell(&db, &name, role.into(), scope, expires_in_days).await?;
            println!("API key: {}", created.secret);
            println!(
                "id {} · prefix {} · role {}",
                created.api_key.id, created.api_key.prefix, created.api_key.role
            );
        }
        KeysCommand::List { .. } => {
            // Every cell is a String first: `{:<n}` pads only what is formatted as text.
            let now = Timestamp::now();
            let date = |t: Option<Timestamp>| {
                t.map_or_else(
                    || "-".to_owned(),
                    |t| t.to_utc().format("%Y-%m-%d %H:%M").to_string(),
                )
            };
            println!(
                "{:<36}  {:<11}  {:<6}  {:<12}  {:<7}  {:<16}  {:<16}  NAME",
                "ID", "PREFIX", "ROLE", "SCOPE", "STATE", "EXPIRES", "LAST USED"
            );
            for key in api_keys::list_all(&db).await? {
                println!(
                    "{:<36}  {:<11}  {:<6}  {:<12}  {:<7}  {:<16}  {:<16}  {}",
                    key.id.to_string(),
                    key.prefix,
                    key.role.to_string(),
                    format!("{:?}", key.scope_kind()).to_uppercase(),
                    key.state(now).as_str(),
                    date(key.expires_at),
                    date(key.last_used_at),
                    key.name
                );
            }
        }
        KeysCommand::Revoke { key, .. } => {
            let revoked = api_keys::revoke_from_shell(&db, &key).await?;
            println!("revoked {} ({})", revoked.id, revoked.prefix);
        }
    }
    Ok(())
}
