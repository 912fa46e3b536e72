//! `dynamodb://TABLE` (where runs journal) and `dynamodb://TABLE/RUN_ID` (one run's journal).

use std::fmt;

/// A table, and a run in it when one is named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableLocation {
    pub table: String,
    pub run_id: Option<String>,
}

pub const SCHEME: &str = "dynamodb://";

impl TableLocation {
    /// Whether `text` names a table rather than a file.
    pub fn is_table(text: &str) -> bool {
        text.starts_with(SCHEME)
    }

    /// Parses `dynamodb://TABLE[/RUN_ID]`; the error says what is wrong with it.
    pub fn parse(text: &str) -> Result<TableLocation, String> {
        let rest = text
            .strip_prefix(SCHEME)
            .ok_or_else(|| format!("{text:?} is not dynamodb://TABLE[/RUN_ID]"))?;
        let (table, run_id) = match rest.split_once('/') {
            Some((table, run)) => (table, Some(run.trim_end_matches('/'))),
            None => (rest, None),
        };
        // DynamoDB's own rule for table names.
        let valid = (3..=255).contains(&table.len())
            && table
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
        if !valid {
            return Err(format!(
                "{text:?}: a table name is 3 to 255 letters, digits, '_', '-' or '.'"
            ));
        }
        let run_id = run_id.filter(|r| !r.is_empty());
        if let Some(run) = run_id
            && !run
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            return Err(format!("{text:?}: {run:?} is not a run id"));
        }
        Ok(TableLocation {
            table: table.to_owned(),
            run_id: run_id.map(str::to_owned),
        })
    }

    /// The run this location names, or an error saying one is needed.
    pub fn run(&self) -> Result<&str, String> {
        self.run_id
            .as_deref()
            .ok_or_else(|| format!("{self} names no run: give {self}/RUN_ID"))
    }

    /// This table with `run_id`.
    pub fn with_run(&self, run_id: &str) -> TableLocation {
        TableLocation {
            table: self.table.clone(),
            run_id: Some(run_id.to_owned()),
        }
    }
}

impl fmt::Display for TableLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{SCHEME}{}", self.table)?;
        if let Some(run) = &self.run_id {
            write!(f, "/{run}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_parse_and_print_back() {
        let at =
            TableLocation::parse("dynamodb://firebreak-state/20261202T064401Z-3f9a2c").unwrap();
        assert_eq!(at.table, "firebreak-state");
        assert_eq!(at.run().unwrap(), "20261202T064401Z-3f9a2c");
        assert_eq!(
            at.to_string(),
            "dynamodb://firebreak-state/20261202T064401Z-3f9a2c"
        );
        let table = TableLocation::parse("dynamodb://firebreak-state").unwrap();
        assert!(table.run().unwrap_err().contains("names no run"));
        assert!(
            TableLocation::parse("dynamodb://ab")
                .unwrap_err()
                .contains("3 to 255")
        );
        assert!(TableLocation::parse("s3://b/p").is_err());
        assert!(TableLocation::parse("dynamodb://table/../x").is_err());
    }
}
