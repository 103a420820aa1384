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

    let readme = fs::read_to_string(root.join("README.md")).expect("README.md");
    fs::write(out.join("readme_program.rs"), readme_program(&readme))
        .expect("write readme_program.rs");
}

/// The README's SDK program (the block after `<!-- test: rust-program -->`) for
/// tests/readme_program.rs, with only what the test must change: its `main` is named
/// `readme_main`, and its base URL is that of the test's server.
fn readme_program(readme: &str) -> String {
    const MARKER: &str = "<!-- test: rust-program -->";
    const URL: &str = "\"http://127.0.0.1:8080\"";
    let start = readme
        .find(MARKER)
        .unwrap_or_else(|| panic!("README.md: no `{MARKER}` before the SDK program"));
    let rest = &readme[start + MARKER.len()..];
    let rest = rest.trim_start();
    assert!(
        rest.starts_with("```rust"),
        "README.md: `{MARKER}` must be followed by a ```rust block"
    );
    let body = &rest[rest.find('\n').expect("fence line") + 1..];
    let code = &body[..body.find("\n```").expect("README.md: unclosed SDK program") + 1];
    for needle in ["async fn main()", URL] {
        assert!(
            code.matches(needle).count() == 1,
            "README.md: the SDK program must contain `{needle}` once (tests/readme_program.rs \
             of latchkey-docs replaces it)"
        );
    }
    code.replace("async fn main()", "async fn readme_main()")
        .replace(URL, "readme_base_url()")
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
