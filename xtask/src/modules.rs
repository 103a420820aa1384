//! `cargo xtask modules`: the module graph of every crate of the workspace.
//!
//! For each crate target (`src/lib.rs`, `src/main.rs`, `src/bin/*`) the module
//! tree is read by following `mod` declarations, and every reference a module
//! makes to another (`use` trees, and paths in code such as `crate::a::f()` or
//! `super::b::X`, through `use` re-exports) is resolved to the module it names.
//! The check fails when sibling modules form a cycle, at any level (a
//! reference from inside `x` to inside its sibling `y` is the edge `x -> y`;
//! references up to an ancestor's own items are fine), or when a rule of
//! [`rules::RULES`] is broken. Comments, literals and `#[cfg(test)]` code are
//! ignored: tests may use anything.

mod graph;
mod lex;
mod rules;
mod scan;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

use crate::workspace;
use graph::{Analysis, show};

/// Every `.rs` file under `dir`, keyed by its path relative to `dir` (with `/`).
fn read_sources(dir: &Path) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(at) = pending.pop() {
        let entries = fs::read_dir(&at).map_err(|e| format!("{}: {e}", at.display()))?;
        for entry in entries {
            let path = entry.map_err(|e| format!("{}: {e}", at.display()))?.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text =
                    fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
                let rel = path.strip_prefix(dir).expect("below dir");
                let rel: Vec<String> = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect();
                out.insert(rel.join("/"), text);
            }
        }
    }
    Ok(out)
}

/// The crate targets found in `src/`: (label, root file).
fn targets(sources: &BTreeMap<String, String>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (root, label) in [("lib.rs", "lib"), ("main.rs", "bin")] {
        if sources.contains_key(root) {
            out.push((label.to_string(), root.to_string()));
        }
    }
    for file in sources.keys() {
        let Some(rest) = file.strip_prefix("bin/") else {
            continue;
        };
        let name = match rest.split_once('/') {
            None => rest.strip_suffix(".rs"),
            Some((name, "main.rs")) => Some(name),
            Some(_) => None,
        };
        if let Some(name) = name {
            out.push((format!("bin {name}"), file.clone()));
        }
    }
    out
}

/// `items` joined with ", ", wrapped to lines of about 100 columns.
fn wrapped(first: &str, indent: &str, items: &[String]) -> String {
    let mut out = first.to_string();
    let mut width = out.len();
    for (k, item) in items.iter().enumerate() {
        let piece = if k + 1 < items.len() {
            format!("{item}, ")
        } else {
            item.clone()
        };
        if width + piece.len() > 100 && width > indent.len() {
            out.push('\n');
            out.push_str(indent);
            width = indent.len();
        }
        width += piece.len();
        out.push_str(&piece);
    }
    out
}

fn print_graph(a: &Analysis) {
    let names: Vec<String> = a.modules.iter().map(|m| show(m)).collect();
    println!("{}", wrapped("    modules: ", "      ", &names));
    let mut grouped: BTreeMap<(String, &str), Vec<String>> = BTreeMap::new();
    for e in &a.edges {
        grouped
            .entry((show(&e.level), &e.from))
            .or_default()
            .push(e.to.clone());
    }
    for ((level, from), to) in grouped {
        println!(
            "{}",
            wrapped(&format!("    {level}: {from} -> "), "        ", &to)
        );
    }
}

fn print_problems(a: &Analysis, src: &str) {
    for problem in &a.problems {
        println!("    PROBLEM {src}/{problem}");
    }
    for cycle in &a.cycles {
        println!(
            "    CYCLE among the children of {}: {}",
            show(&cycle.level),
            cycle.members.join(", ")
        );
        for path in &cycle.paths {
            println!("      cycle: {}", path.join(" -> "));
        }
        for &k in &cycle.edges {
            let e = &a.edges[k];
            let more = match e.refs.len() {
                1 => String::new(),
                n => format!(" (+{} more)", n - 1),
            };
            println!(
                "      {} -> {}: {}{more}",
                e.from,
                e.to,
                e.refs[0].show(src)
            );
        }
    }
    for v in &a.violations {
        println!("    RULE {}: {}", v.rule, v.reference.show(src));
    }
}

/// Check every crate of the workspace under `root`; print the graphs when
/// `verbose`, and always print what is wrong. Fails on any cycle, broken rule,
/// missing module file, or rule naming a crate or module that does not exist.
pub(crate) fn check(root: &Path, verbose: bool) -> Result<(), String> {
    println!("==> modules (module cycles and rules, per crate)");
    let mut failed = Vec::new();
    let mut applied = BTreeSet::new();
    for member in workspace::members(root)? {
        let src_dir = root.join(&member.dir).join("src");
        if !src_dir.is_dir() {
            continue;
        }
        let src = member.dir.join("src").to_string_lossy().replace('\\', "/");
        let sources = read_sources(&src_dir)?;
        let mut reached = BTreeSet::new();
        for (label, root_file) in targets(&sources) {
            let a = graph::analyze(&member.name, &sources, &root_file, rules::RULES);
            let crate_label = format!("{} ({label})", member.name);
            let status = if a.is_ok() { "ok" } else { "FAILED" };
            println!(
                "  {crate_label}: {} modules, {} edges, {} cycles, {} rule violations: {status}",
                a.modules.len(),
                a.edges.len(),
                a.cycles.len(),
                a.violations.len(),
            );
            if verbose {
                print_graph(&a);
            }
            print_problems(&a, &src);
            if !a.is_ok() {
                failed.push(crate_label);
            }
            applied.extend(a.rules_applied.iter().copied());
            reached.extend(a.files);
        }
        for file in sources.keys().filter(|f| !reached.contains(*f)) {
            println!("    note: {src}/{file} is in no module tree (not compiled)");
        }
    }
    for (k, rule) in rules::RULES.iter().enumerate() {
        if !applied.contains(&k) {
            println!("  RULE {rule}: names a crate or module that does not exist");
            failed.push(format!("rule `{rule}`"));
        }
    }
    if failed.is_empty() {
        println!("    ok: no module cycles, every module rule holds");
        Ok(())
    } else {
        Err(format!("module check failed: {}", failed.join(", ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_lib_main_and_bins() {
        let sources: BTreeMap<String, String> = [
            "lib.rs",
            "main.rs",
            "bin/a.rs",
            "bin/b/main.rs",
            "bin/b/util.rs",
            "x.rs",
        ]
        .into_iter()
        .map(|f| (f.to_string(), String::new()))
        .collect();
        let found: Vec<String> = targets(&sources)
            .into_iter()
            .map(|(label, file)| format!("{label}={file}"))
            .collect();
        assert_eq!(
            found,
            [
                "lib=lib.rs",
                "bin=main.rs",
                "bin a=bin/a.rs",
                "bin b=bin/b/main.rs"
            ]
        );
    }

    #[test]
    fn wrapping_keeps_lines_short() {
        let items: Vec<String> = (0..40).map(|k| format!("module{k}")).collect();
        let text = wrapped("    modules: ", "      ", &items);
        assert!(text.lines().count() > 1);
        assert!(text.lines().all(|l| l.len() <= 100), "{text}");
    }
}
