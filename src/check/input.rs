//! Reading history files in either format: this crate's JSON (see
//! [`super::history`]) or Jepsen-style EDN event lines (see [`super::edn`]).

use std::path::Path;

use super::edn::parse_edn_history;
use super::history::{History, HistoryError};

/// Reads a history file in either format; errors name the file.
pub fn load_any(path: impl AsRef<Path>) -> Result<History, HistoryError> {
    let path = path.as_ref();
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| HistoryError::Io { path: name.clone(), source })?;
    parse_any(&text, &name)
}

/// Parses `text` as JSON when it looks like a JSON history object, else as
/// EDN event lines. `name` is used in errors and as the EDN scenario.
pub fn parse_any(text: &str, name: &str) -> Result<History, HistoryError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.trim_start().starts_with("{\"") {
        History::from_json_str_named(text, name).or_else(|json_err| parse_edn_history(text, name).map_err(|_| json_err))
    } else {
        parse_edn_history(text, name)
    }
}
