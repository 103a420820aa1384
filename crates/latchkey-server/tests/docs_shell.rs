//! The shell commands of README.md and docs/*.md, run as written against the built
//! `latchkey-server`.
//!
//! A page marks the fenced blocks meant to be run with an HTML comment on the line before
//! the fence (the renderer shows nothing of it):
//!
//! - `<!-- test: run -->`: the block runs in the page's bash session (`set -e -o pipefail`;
//!   variables and the working directory carry over to the next block); every command must
//!   succeed.
//! - `<!-- test: server -->`: the block is one command that serves until stopped, as in a
//!   second terminal. It runs in the background; the session goes on once it printed its
//!   `listening on` line. Starting the next server block, or the end of the page, stops it
//!   with SIGTERM (Ctrl-C in that terminal), and it must then exit with status 0.
//! - `<!-- test: output -->`: the block (usually ```` ```text ````) is what the preceding run
//!   or server block prints on stdout, line by line. `…` inside a line matches any text; a
//!   line that is only `…` matches any number of lines.
//!
//! (`<!-- test: rust-program -->` marks a Rust program that `latchkey-docs` runs.)
//!
//! Each page runs in a fresh directory (also `HOME`) holding only a link to the checkout's
//! `.ci/` (for docs/deploying.md's `.ci/postgres.sh`, which gets a `LATCHKEY_PG_STATE` of
//! its own and is stopped after the page), with the built `latchkey-server` first on
//! `PATH`, in a network namespace of its own (`unshare`), so that the pages' fixed ports
//! (8080) are free whatever else runs on the machine, and nothing is substituted in the
//! commands.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Longest a page may run before it is killed (a hung server, a command waiting for
/// input): not a timing assertion, a guard against hanging the suite.
const PAGE_DEADLINE: Duration = Duration::from_secs(180);

/// Pages that must hold marked blocks: a page losing its markers fails the test instead of
/// silently testing nothing.
const MUST_HAVE_BLOCKS: &[&str] = &["README.md", "docs/server.md"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Run,
    Server,
}

#[derive(Debug)]
struct Block {
    kind: Kind,
    /// 1-based line of the opening fence in the page.
    line: usize,
    code: String,
    /// The output block that follows, if any, with its line.
    output: Option<(usize, String)>,
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The fenced block that starts at `lines[start]` (the opening fence): its text and the
/// index of the line after its closing fence.
fn fenced(lines: &[&str], start: usize, page: &str) -> (String, usize) {
    let open = lines
        .get(start)
        .map(|l| l.trim_start())
        .filter(|l| l.starts_with("```"))
        .unwrap_or_else(|| {
            panic!(
                "{page}:{}: a `<!-- test: ... -->` marker must be followed by a fenced block",
                start
            )
        });
    let fence_len = open.len() - open.trim_start_matches('`').len();
    let fence = &open[..fence_len];
    let mut text = String::new();
    for (i, line) in lines.iter().enumerate().skip(start + 1) {
        if line.trim() == fence {
            return (text, i + 1);
        }
        text.push_str(line);
        text.push('\n');
    }
    panic!("{page}:{}: unclosed fenced block", start + 1)
}

/// The marked blocks of one page, in order.
fn marked_blocks(page: &str, text: &str) -> Vec<Block> {
    let lines: Vec<&str> = text.lines().collect();
    let mut blocks: Vec<Block> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let trimmed = lines[i].trim();
        let Some(kind) = trimmed
            .strip_prefix("<!-- test:")
            .and_then(|r| r.strip_suffix("-->"))
            .map(str::trim)
        else {
            i += 1;
            continue;
        };
        let (code, next) = fenced(&lines, i + 1, page);
        let line = i + 2;
        match kind {
            "run" | "server" => blocks.push(Block {
                kind: if kind == "run" {
                    Kind::Run
                } else {
                    Kind::Server
                },
                line,
                code,
                output: None,
            }),
            "output" => {
                let last = blocks.last_mut().unwrap_or_else(|| {
                    panic!("{page}:{line}: an output block must follow a run or server block")
                });
                assert!(
                    last.output.is_none(),
                    "{page}:{line}: a second output block for the block of line {}",
                    last.line
                );
                last.output = Some((line, code));
            }
            // Run by crates/latchkey-docs/tests/readme_program.rs.
            "rust-program" => {}
            other => panic!("{page}:{}: unknown marker `test: {other}`", i + 1),
        }
        i = next;
    }
    blocks
}

/// One line of an expected output against one actual line; `…` matches any text.
fn line_matches(expected: &str, actual: &str) -> bool {
    let parts: Vec<&str> = expected.split('…').collect();
    if parts.len() == 1 {
        return expected == actual;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !actual.starts_with(first) || actual.len() < first.len() + last.len() {
        return false;
    }
    let mut rest = &actual[first.len()..actual.len() - last.len()];
    if !actual.ends_with(last) {
        return false;
    }
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    true
}

/// Expected lines against actual lines; a line that is only `…` matches any number of
/// lines. Trailing spaces are ignored.
fn output_matches(expected: &[&str], actual: &[&str]) -> bool {
    match expected.split_first() {
        None => actual.is_empty(),
        Some((&"…", rest)) => {
            (0..=actual.len()).any(|skip| output_matches(rest, &actual[skip..]))
        }
        Some((e, rest)) => actual
            .split_first()
            .is_some_and(|(a, more)| line_matches(e, a) && output_matches(rest, more)),
    }
}

fn lines_of(text: &str) -> Vec<&str> {
    text.lines().map(str::trim_end).collect()
}

/// The bash script that runs a page's blocks, writing block `i`'s code, stdout and stderr
/// to `harness/i.sh`, `i.out`, `i.err`, and the number of the block being run to
/// `harness/current`.
fn script(blocks: &[Block], harness: &Path) -> String {
    let h = harness.display();
    let mut s = String::from(
        r#"set -eE -o pipefail
trap 'echo "failed at line $LINENO of the block: $BASH_COMMAND" >&2' ERR
ip link set lo up
SERVER_PID=
stop_server() {
  if [ -n "$SERVER_PID" ]; then
    kill -TERM "$SERVER_PID"
    local rc=0
    wait "$SERVER_PID" || rc=$?
    SERVER_PID=
    if [ "$rc" -ne 0 ]; then echo "the server exited with status $rc after SIGTERM" >&2; return 1; fi
  fi
}
trap 'kill $(jobs -p) 2>/dev/null || true' EXIT
"#,
    );
    for (i, block) in blocks.iter().enumerate() {
        writeln!(s, "echo {i} > {h}/current").unwrap();
        match block.kind {
            Kind::Run => {
                writeln!(s, "source {h}/{i}.sh > {h}/{i}.out 2> {h}/{i}.err").unwrap();
            }
            Kind::Server => {
                writeln!(
                    s,
                    r#"stop_server 2> {h}/{i}.err
( source {h}/{i}.sh ) > {h}/{i}.out 2>> {h}/{i}.err &
SERVER_PID=$!
until grep -q '^listening on ' {h}/{i}.out; do
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then echo "exited before printing its listening line" >> {h}/{i}.err; exit 1; fi
  sleep 0.05
done"#
                )
                .unwrap();
            }
        }
    }
    writeln!(s, "echo end > {h}/current\nstop_server").unwrap();
    s
}

/// How to enter a network namespace of one's own here: `unshare -n` as root, `unshare -rn`
/// (a user namespace too, in which `.ci/postgres.sh` cannot switch to the `postgres` user)
/// otherwise. None when neither works.
fn unshare() -> Option<Vec<&'static str>> {
    [vec!["unshare", "-n"], vec!["unshare", "-rn"]]
        .into_iter()
        .find(|args| {
            Command::new(args[0])
                .args(&args[1..])
                .args(["ip", "link", "set", "lo", "up"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
}

/// Kills the page's whole process group when dropped, however the test ends.
struct Group(std::process::Child);

impl Drop for Group {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.0.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.0.wait();
    }
}

/// Runs one page's marked blocks; returns a description of every failure.
fn run_page(page: &str, blocks: &[Block], unshare: &[&str]) -> Vec<String> {
    use std::os::unix::process::CommandExt;

    let dir = tempfile::tempdir().unwrap();
    let (work, harness, bin) = (
        dir.path().join("work"),
        dir.path().join("harness"),
        dir.path().join("bin"),
    );
    for d in [&work, &harness, &bin] {
        std::fs::create_dir(d).unwrap();
    }
    std::os::unix::fs::symlink(repo_root().join(".ci"), work.join(".ci")).unwrap();
    // Outside the temporary directory (0700): the `postgres` user must reach it.
    let pg_state = std::env::temp_dir().join(format!(
        "latchkey-docs-pg-{}-{}",
        std::process::id(),
        page.replace('/', "-")
    ));
    std::os::unix::fs::symlink(
        env!("CARGO_BIN_EXE_latchkey-server"),
        bin.join("latchkey-server"),
    )
    .unwrap();
    for (i, block) in blocks.iter().enumerate() {
        let code = match block.kind {
            Kind::Run => block.code.clone(),
            Kind::Server => {
                let commands: Vec<&str> = block
                    .code
                    .lines()
                    .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
                    .collect();
                assert!(
                    commands.len() == 1,
                    "{page}:{}: a server block is one command on one line",
                    block.line
                );
                format!("exec {}\n", commands[0])
            }
        };
        std::fs::write(harness.join(format!("{i}.sh")), code).unwrap();
    }
    let script_path = harness.join("page.sh");
    std::fs::write(&script_path, script(blocks, &harness)).unwrap();

    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let child = Command::new(unshare[0])
        .args(&unshare[1..])
        .arg("bash")
        .arg(&script_path)
        .current_dir(&work)
        .env("PATH", path)
        .env("HOME", &work)
        .env("LATCHKEY_PG_STATE", &pg_state)
        .env_remove("LATCHKEY_TEST_POSTGRES_URL")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap();
    let mut group = Group(child);
    let started = Instant::now();
    let status = loop {
        if let Some(status) = group.0.try_wait().unwrap() {
            break Some(status);
        }
        if started.elapsed() > PAGE_DEADLINE {
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut script_err = String::new();
    if let (Some(mut err), Some(_)) = (group.0.stderr.take(), status) {
        use std::io::Read;
        let _ = err.read_to_string(&mut script_err);
    }
    drop(group);
    // A PostgreSQL the page started and did not stop (it failed half-way).
    if pg_state.exists() {
        let _ = Command::new("bash")
            .arg(repo_root().join(".ci/postgres.sh"))
            .arg("stop")
            .env("LATCHKEY_PG_STATE", &pg_state)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }

    let read = |name: String| std::fs::read_to_string(harness.join(name)).unwrap_or_default();
    let current = read("current".into());
    let mut failures = Vec::new();
    let failed_at = match status {
        Some(s) if s.success() => None,
        Some(s) => Some(format!("exited with {s}")),
        None => Some(format!("still running after {PAGE_DEADLINE:?}, killed")),
    };
    let reached = match current.trim() {
        "end" => blocks.len(),
        n => n.parse::<usize>().unwrap_or(0),
    };
    if let Some(how) = failed_at {
        let (line, code, out, err) = match blocks.get(reached) {
            Some(b) => (
                b.line.to_string(),
                b.code.clone(),
                read(format!("{reached}.out")),
                read(format!("{reached}.err")),
            ),
            None => (
                "end".into(),
                "(stopping the last server)".into(),
                String::new(),
                script_err.clone(),
            ),
        };
        failures.push(format!(
            "{page}:{line}: the block {how}:\n{code}--- stdout:\n{out}--- stderr:\n{err}{script_err}"
        ));
    }
    // The outputs of the blocks that ran to the end.
    for (i, block) in blocks.iter().enumerate().take(reached.min(blocks.len())) {
        if let Some((line, expected)) = &block.output {
            let actual = read(format!("{i}.out"));
            if !output_matches(&lines_of(expected), &lines_of(&actual)) {
                failures.push(format!(
                    "{page}:{line}: the output of the block of line {} differs from the page.\n\
                     --- the page says:\n{expected}--- it printed:\n{actual}",
                    block.line
                ));
            }
        }
    }
    failures
}

fn pages() -> Vec<(String, String)> {
    let root = repo_root();
    let mut names = vec!["README.md".to_owned()];
    let mut docs: Vec<String> = std::fs::read_dir(root.join("docs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".md"))
        .map(|n| format!("docs/{n}"))
        .collect();
    docs.sort();
    names.extend(docs);
    names
        .into_iter()
        .map(|n| {
            let text = std::fs::read_to_string(root.join(&n)).unwrap();
            (n, text)
        })
        .collect()
}

#[test]
fn shell_blocks_of_the_documentation_run_as_written() {
    let pages: Vec<(String, Vec<Block>)> = pages()
        .into_iter()
        .map(|(name, text)| {
            let blocks = marked_blocks(&name, &text);
            (name, blocks)
        })
        .collect();
    for name in MUST_HAVE_BLOCKS {
        assert!(
            pages.iter().any(|(n, b)| n == name && !b.is_empty()),
            "{name} has no `<!-- test: run -->` block left"
        );
    }
    let Some(unshare) = unshare() else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI must be able to run `unshare -n` (root) or `unshare -rn`, and `ip`"
        );
        eprintln!(
            "\n!!!!! SKIPPED: cannot enter a network namespace (unshare -n / -rn, ip); the \
             documentation's shell blocks were NOT run !!!!!\n"
        );
        return;
    };
    let mut failures = Vec::new();
    let mut count = 0;
    for (name, blocks) in pages.iter().filter(|(_, b)| !b.is_empty()) {
        let needs_postgres = blocks.iter().any(|b| b.code.contains(".ci/postgres.sh"));
        if needs_postgres && unshare.contains(&"-rn") {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI runs as root: {name} needs `unshare -n` for .ci/postgres.sh"
            );
            eprintln!(
                "\n!!!!! SKIPPED {name}: its PostgreSQL walkthrough needs root (.ci/postgres.sh \
                 runs PostgreSQL as the `postgres` user) !!!!!\n"
            );
            continue;
        }
        count += blocks.len();
        failures.extend(run_page(name, blocks, &unshare));
    }
    assert!(
        failures.is_empty(),
        "{} of the documentation's shell checks failed:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
    eprintln!("ran {count} marked shell blocks");
}

#[test]
fn output_patterns() {
    assert!(line_matches("listening on …", "listening on http://x"));
    assert!(line_matches("a…b…c", "a-b-c"));
    assert!(!line_matches("a…b…c", "a-c"));
    assert!(!line_matches("ab…ba", "aba"));
    assert!(!line_matches("exact", "exact!"));
    assert!(output_matches(&["a", "…", "z"], &["a", "z"]));
    assert!(output_matches(&["a", "…", "z"], &["a", "b", "c", "z"]));
    assert!(!output_matches(&["a", "…", "z"], &["a", "b"]));
    assert!(!output_matches(&["a"], &["a", "b"]));
}

#[test]
fn a_marker_needs_a_block_and_output_needs_a_command() {
    let text =
        "<!-- test: run -->\n```sh\necho hi\n```\ntext\n<!-- test: output -->\n```text\nhi\n```\n";
    let blocks = marked_blocks("t.md", text);
    assert_eq!(blocks.len(), 1);
    assert_eq!(blocks[0].line, 2);
    assert_eq!(blocks[0].output.as_ref().unwrap().1, "hi\n");
    let lone =
        std::panic::catch_unwind(|| marked_blocks("t.md", "<!-- test: output -->\n```\nx\n```\n"));
    assert!(lone.is_err());
}
