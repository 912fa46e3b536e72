//! `--journal dynamodb://TABLE` on `run`, `resume`, `approve` and `deny`: a run kept in the
//! workers' table — its journal (the local file is the working copy), lease, claims and locks —
//! so a person at a terminal can take up a run a worker holds, or start one the workers see.
//! `resume`, `approve` and `deny` also take the run as `dynamodb://TABLE/RUN_ID`.

use crate::engine::Settings;
use crate::table::{Shared, TableLocation};

use super::{Exit, GlobalArgs};

/// The table a command keeps its run in, and the run when the target named it.
pub struct TableChoice {
    pub table: Option<TableLocation>,
    /// The run id to act on (the target's, or the target itself).
    pub target: String,
}

/// Reads `--journal` and a `dynamodb://TABLE/RUN_ID` target; exit 2 with the reason otherwise.
pub fn choose(journal: Option<&str>, target: &str) -> Result<TableChoice, Exit> {
    let invalid = |why: String| {
        eprintln!("error: {why}");
        Exit::Invalid
    };
    let from_flag = match journal.map(TableLocation::parse) {
        None => None,
        Some(Ok(table)) if table.run_id.is_none() => Some(table),
        Some(Ok(_)) => {
            return Err(invalid(
                "--journal: give the table alone (dynamodb://TABLE)".into(),
            ));
        }
        Some(Err(e)) => return Err(invalid(format!("--journal: {e}"))),
    };
    if !TableLocation::is_table(target) {
        return Ok(TableChoice {
            table: from_flag,
            target: target.to_owned(),
        });
    }
    let named = TableLocation::parse(target).map_err(invalid)?;
    let run = named.run().map_err(invalid)?.to_owned();
    if let Some(flag) = &from_flag
        && flag.table != named.table
    {
        return Err(invalid(format!(
            "the run is in table {} but --journal names {}",
            named.table, flag.table
        )));
    }
    Ok(TableChoice {
        table: Some(TableLocation {
            run_id: None,
            ..named
        }),
        target: run,
    })
}

/// `settings` keeping runs in `table` (records too large for an item spill to the run's seal).
pub async fn with_table(
    settings: Settings,
    table: Option<TableLocation>,
    global: &GlobalArgs,
) -> Settings {
    let Some(table) = table else {
        return settings;
    };
    let clients = match &settings.clients {
        Some(clients) => clients.clone(),
        None => crate::aws::Clients::new(&crate::aws::load_sdk_config(&global.aws_options()).await),
    };
    let spill = settings
        .custody
        .as_ref()
        .and_then(|custody| {
            crate::custody::SealTarget::parse(&custody.seal)
                .ok()
                .map(|seal| (seal, custody.owner.clone()))
        })
        .map(|(seal, owner)| crate::table::spill::Spill {
            s3: clients.s3.clone(),
            bucket: seal.bucket,
            prefix: seal.prefix,
            owner: Some(owner).filter(|o| !o.is_empty()),
        });
    Settings {
        shared: Some(Shared {
            spill,
            ..Shared::new(clients.dynamodb.clone(), table)
        }),
        ..settings
    }
}
