//! Copies README.md and every docs/*.md page into OUT_DIR, marking the code blocks
//! that have no language as `text` (rustdoc would compile them as Rust), and writes
//! `pages.rs`: one module per page whose documentation is that page. A new page is
//! picked up without a change here.

use std::fmt::Write as _;
use std::fs;
use std::path::PathBuf;

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest.join("../..");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").unwrap());
    let docs = root.join("docs");
    println!("cargo:rerun-if-changed={}", docs.display());

    let mut pages = vec![("readme".to_owned(), root.join("README.md"))];
    let mut entries: Vec<PathBuf> = fs::read_dir(&docs)
        .expect("docs/")
        .map(|e| e.expect("docs/ entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    entries.sort();
    for path in entries {
        let stem = path
            .file_stem()
            .unwrap()
            .to_string_lossy()
            .replace('-', "_");
        pages.push((stem, path));
    }

    let mut modules = String::new();
    for (name, path) in &pages {
        println!("cargo:rerun-if-changed={}", path.display());
        let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let copy = out.join(format!("{name}.md"));
        fs::write(&copy, mark_plain_blocks(&text)).expect("write OUT_DIR copy");
        writeln!(
            modules,
            "#[doc = include_str!({:?})]\npub mod {name} {{}}\n",
            copy.display().to_string()
        )
        .unwrap();
    }
    fs::write(out.join("pages.rs"), modules).expect("write pages.rs");
}

/// Opening fences without a language become ```` ```text ````; every other line is kept.
fn mark_plain_blocks(text: &str) -> String {
    let mut inside = false;
    let mut out = String::with_capacity(text.len() + 64);
    for line in text.lines() {
        let trimmed = line.trim_start();
        if let Some(rest) = trimmed.strip_prefix("```") {
            if inside {
                inside = false;
            } else {
                inside = true;
                if rest.trim().is_empty() {
                    let indent = &line[..line.len() - trimmed.len()];
                    out.push_str(indent);
                    out.push_str("```text\n");
                    continue;
                }
            }
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}
