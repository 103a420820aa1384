//! Strict configuration parsing: a key or table that no configuration type reads is
//! refused at start, with its line and the nearest valid key.
//!
//! Nothing here lists keys by hand; they come from the types:
//!
//! - every configuration struct carries `#[serde(deny_unknown_fields)]`, so serde's
//!   "unknown field `x`, expected one of `a`, `b`" names the valid keys of that table,
//!   and toml's span of the error gives the line. A field added to a struct is a valid
//!   key at once. (`deny_unknown_fields` does not combine with `#[serde(flatten)]`: a
//!   table that needs `flatten` keeps strictness through the second guard below.)
//! - as a second guard, the whole parse runs through `serde_ignored`, so a key ignored
//!   by a struct that lacks the attribute (or sits behind `flatten`) is refused too,
//!   named by its full path.
//!
//! The test `every_table_refuses_a_misspelled_key` in `config.rs` misspells one key of
//! every table of a full configuration and checks the suggestion, so a new table
//! without the attribute fails it.

use serde::de::DeserializeOwned;

use crate::settings::{ConfigError, UnknownKey};
/// Parse `text` into `T`, refusing every key that `T` does not read.
pub(crate) fn from_toml_str<T: DeserializeOwned>(text: &str) -> Result<T, ConfigError> {
    let mut ignored: Option<String> = None;
    let de = toml::Deserializer::new(text);
    let value = serde_ignored::deserialize(de, |path| {
        ignored.get_or_insert_with(|| path.to_string());
    })
    .map_err(|e| from_toml_error(text, &e))?;
    if let Some(path) = ignored {
        return Err(ConfigError::UnknownKey(from_ignored_path(text, &path)));
    }
    Ok(value)
}

/// Turn toml's error into [`ConfigError::UnknownKey`] when serde reported an unknown
/// field, and into [`ConfigError::Parse`] otherwise.
fn from_toml_error(text: &str, e: &toml::de::Error) -> ConfigError {
    let message = e.message();
    let Some(rest) = message.strip_prefix("unknown field ") else {
        return parse_error(text, e);
    };
    // "unknown field `k`, expected one of `a`, `b`" | "expected `a` or `b`" |
    // "expected `a`" | "there are no fields": the backquoted words, key first.
    let mut quoted = rest.split('`').skip(1).step_by(2).map(str::to_owned);
    let Some(key) = quoted.next() else {
        return parse_error(text, e);
    };
    let valid: Vec<String> = quoted.collect();
    let line = e.span().map(|span| line_of(text, span.start));
    ConfigError::UnknownKey(UnknownKey {
        suggestion: nearest(&key, &valid),
        table: line.and_then(|l| table_at(text, l, &key)),
        key,
        line,
        valid,
    })
}

/// [`ConfigError::Parse`] with the line and toml's message, **without** toml's excerpt
/// of the line: the line may hold a secret (a private key, the signing secret), and
/// the message reaches stderr, logs and the admin API's key reload answer.
fn parse_error(text: &str, e: &toml::de::Error) -> ConfigError {
    let message = e.message().trim_end();
    match e.span() {
        Some(span) => ConfigError::Parse(format!("line {}: {message}", line_of(text, span.start))),
        None => ConfigError::Parse(message.to_owned()),
    }
}

/// An unknown key found by `serde_ignored` (a struct without `deny_unknown_fields`):
/// `path` is dotted, e.g. `apps.0.providers.x.y`.
fn from_ignored_path(text: &str, path: &str) -> UnknownKey {
    let (table, key) = match path.rsplit_once('.') {
        Some((table, key)) => {
            // Array indices (`apps.0`) are not part of a table's name.
            let table: Vec<&str> = table
                .split('.')
                .filter(|s| s.parse::<usize>().is_err() && *s != "?")
                .collect();
            (Some(table.join(".")), key)
        }
        None => (None, path),
    };
    let line = text.lines().position(|l| {
        let l = l.trim_start().trim_start_matches('[').trim_start();
        l.strip_prefix(key)
            .is_some_and(|r| r.trim_start().starts_with(['=', ']', '.']))
            || l.contains(&format!(".{key}]"))
            || l.contains(&format!(".{key}."))
    });
    UnknownKey {
        key: key.to_owned(),
        table: table.filter(|t| !t.is_empty()),
        line: line.map(|l| l + 1),
        suggestion: None,
        valid: Vec::new(),
    }
}

/// The 1-based line of byte `offset`.
fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// The table that line `line` (1-based) belongs to: the nearest header at or above it,
/// less the unknown `key` itself when the line is that header (`[throtle]`,
/// `[apps.providers.local_userpass]`).
fn table_at(text: &str, line: usize, key: &str) -> Option<String> {
    let lines: Vec<&str> = text.lines().collect();
    let upto = line.min(lines.len());
    let header = lines[..upto].iter().rev().find_map(|l| {
        let l = l.trim();
        l.starts_with('[').then(|| {
            let end = l.find(']').unwrap_or(l.len());
            l[..end].trim_start_matches('[').trim().to_owned()
        })
    })?;
    let header_line = lines[upto.saturating_sub(1)].trim_start().starts_with('[');
    let table = if header_line {
        match header.split_once(key) {
            Some((before, _)) => before.trim_end_matches('.').to_owned(),
            None => header,
        }
    } else {
        header
    };
    (!table.is_empty()).then_some(table)
}

/// The valid key closest to `key`, if close enough to be a misspelling of it: `-` and
/// `_` count as the same, and case is ignored.
fn nearest(key: &str, valid: &[String]) -> Option<String> {
    let norm = |s: &str| s.to_ascii_lowercase().replace('-', "_");
    let key_n = norm(key);
    valid
        .iter()
        .map(|v| (strsim::damerau_levenshtein(&key_n, &norm(v)), v))
        .filter(|(d, v)| *d <= (v.len() / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, v)| v.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_key() {
        let valid: Vec<String> = ["enabled", "auto_confirm", "reset_url", "anon-user"]
            .map(String::from)
            .into();
        assert_eq!(nearest("enabeld", &valid).as_deref(), Some("enabled"));
        assert_eq!(
            nearest("auto_confrim", &valid).as_deref(),
            Some("auto_confirm")
        );
        assert_eq!(nearest("anon_user", &valid).as_deref(), Some("anon-user"));
        assert_eq!(nearest("Enabled", &valid).as_deref(), Some("enabled"));
        assert_eq!(nearest("webhook", &valid), None);
        assert_eq!(nearest("x", &valid), None);
    }

    #[test]
    fn lines_and_tables() {
        let text = "a = 1\n[t]\nb = 2\n\n[[apps]]\n[apps.providers.x]\nc = 3\n";
        assert_eq!(line_of(text, 0), 1);
        assert_eq!(line_of(text, text.find("c =").unwrap()), 7);
        assert_eq!(table_at(text, 1, "a"), None);
        assert_eq!(table_at(text, 3, "b").as_deref(), Some("t"));
        assert_eq!(table_at(text, 2, "t"), None);
        assert_eq!(
            table_at(text, 6, "x").as_deref(),
            Some("apps.providers"),
            "the unknown part of a header is not its table"
        );
        assert_eq!(table_at(text, 7, "c").as_deref(), Some("apps.providers.x"));
    }

    /// A syntax error names its line, never the line's text (it may hold a secret).
    #[test]
    fn parse_errors_do_not_quote_the_line() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Keyed {
            a: u32,
            key: String,
        }
        let text = "a = 1\nkey = \"s3cr3t-s3cr3t\" = =\n";
        let e = from_toml_str::<Keyed>(text).unwrap_err().to_string();
        assert!(e.contains("line 2"), "{e}");
        assert!(!e.contains("s3cr3t"), "{e}");
        let e = from_toml_str::<Keyed>("a = \"x\"\nkey = \"s3cr3t\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 1") && !e.contains("s3cr3t"), "{e}");
    }

    /// A struct without `deny_unknown_fields` still refuses unknown keys.
    #[test]
    fn ignored_keys_are_refused_too() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Loose {
            a: u32,
            #[serde(default)]
            inner: Vec<Inner>,
        }
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Inner {
            b: u32,
        }
        assert!(from_toml_str::<Loose>("a = 1\n[[inner]]\nb = 2\n").is_ok());
        let ConfigError::UnknownKey(e) =
            from_toml_str::<Loose>("a = 1\n[[inner]]\nb = 2\nbee = 3\n").unwrap_err()
        else {
            panic!("not an unknown key")
        };
        assert_eq!(e.key, "bee");
        assert_eq!(e.table.as_deref(), Some("inner"));
        assert_eq!(e.line, Some(4));
        let ConfigError::UnknownKey(e) = from_toml_str::<Loose>("a = 1\nz = 2\n").unwrap_err()
        else {
            panic!("not an unknown key")
        };
        assert_eq!((e.key.as_str(), e.table, e.line), ("z", None, Some(2)));
    }
}
