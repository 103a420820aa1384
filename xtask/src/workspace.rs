//! The workspace's member crates, read from the root `Cargo.toml` (xtask has no
//! dependencies, so this is a small line reader, not a TOML parser).

use std::fs;
use std::path::{Path, PathBuf};

/// One workspace member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Member {
    /// The package name, e.g. `latchkey-server`.
    pub(crate) name: String,
    /// The directory, relative to the workspace root, e.g. `crates/latchkey-server`.
    pub(crate) dir: PathBuf,
}

/// The quoted strings of the array `key = [ ... ]` (which may span lines).
fn array(toml: &str, key: &str) -> Option<Vec<String>> {
    let start = toml.lines().position(|l| {
        l.trim_start()
            .strip_prefix(key)
            .is_some_and(|rest| rest.trim_start().starts_with('='))
    })?;
    let rest: Vec<&str> = toml.lines().skip(start).collect();
    let text = rest.join("\n");
    let open = text.find('[')?;
    let close = open + text[open..].find(']')?;
    Some(
        text[open + 1..close]
            .lines()
            .map(|l| l.split('#').next().unwrap_or(""))
            .flat_map(|l| l.split(','))
            .filter_map(|item| {
                let item = item.trim();
                item.strip_prefix('"')?
                    .strip_suffix('"')
                    .map(str::to_string)
            })
            .collect(),
    )
}

/// `name = "..."` in the `[package]` table.
fn package_name(toml: &str) -> Option<String> {
    let mut in_package = false;
    for line in toml.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_package = line == "[package]";
        } else if in_package
            && let Some(rest) = line.strip_prefix("name")
            && let Some(value) = rest.trim_start().strip_prefix('=')
        {
            return value
                .trim()
                .strip_prefix('"')?
                .strip_suffix('"')
                .map(str::to_string);
        }
    }
    None
}

/// The workspace members (`members = [...]`, `dir/*` globs expanded), in order.
pub(crate) fn members(root: &Path) -> Result<Vec<Member>, String> {
    let manifest = root.join("Cargo.toml");
    let toml = fs::read_to_string(&manifest)
        .map_err(|e| format!("cannot read {}: {e}", manifest.display()))?;
    let entries =
        array(&toml, "members").ok_or_else(|| format!("no members in {}", manifest.display()))?;
    let mut dirs = Vec::new();
    for entry in entries {
        match entry.strip_suffix("/*") {
            Some(parent) => {
                let mut found: Vec<PathBuf> = fs::read_dir(root.join(parent))
                    .map_err(|e| format!("{parent}: {e}"))?
                    .filter_map(Result::ok)
                    .filter(|d| d.path().join("Cargo.toml").is_file())
                    .map(|d| Path::new(parent).join(d.file_name()))
                    .collect();
                found.sort();
                dirs.extend(found);
            }
            None => dirs.push(PathBuf::from(entry)),
        }
    }
    dirs.into_iter()
        .map(|dir| {
            let path = root.join(&dir).join("Cargo.toml");
            let toml = fs::read_to_string(&path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            let name = package_name(&toml)
                .ok_or_else(|| format!("no package name in {}", path.display()))?;
            Ok(Member { name, dir })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_and_package_names_are_read() {
        let toml = "[workspace]\nmembers = [\n    \"crates/a\", # the a crate\n    \"b\",\n]\ndefault-members = [\"x\"]\n";
        assert_eq!(array(toml, "members").unwrap(), ["crates/a", "b"]);
        let package = "[package]\nname = \"latchkey-a\"\n[dependencies]\nname = \"no\"\n";
        assert_eq!(package_name(package).as_deref(), Some("latchkey-a"));
    }

    #[test]
    fn this_workspace_has_the_server_and_xtask() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let names: Vec<String> = members(root).unwrap().into_iter().map(|m| m.name).collect();
        assert!(names.iter().any(|n| n == "latchkey-server"));
        assert!(names.iter().any(|n| n == "xtask"));
    }
}
