//! The module tree of one crate target, the references between its modules,
//! sibling cycles at every level, and rule violations.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use super::lex::tokenize;
use super::rules::{Rule, RuleKind};
use super::scan::{self, PathRef, Scope, UseLeaf};

/// A module's path from the crate root (`[]` is the root, `["a", "b"]` is `a::b`).
pub(crate) type ModPath = Vec<String>;

/// How a module path is shown: `crate` for the root, `a::b` otherwise.
pub(crate) fn show(path: &[String]) -> String {
    if path.is_empty() {
        "crate".to_string()
    } else {
        path.join("::")
    }
}

/// `"crate"` -> `[]`, `"a::b"` -> `["a", "b"]`.
fn parse(path: &str) -> ModPath {
    if path == "crate" {
        Vec::new()
    } else {
        path.split("::").map(str::to_string).collect()
    }
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

fn parent_dir(file: &str) -> &str {
    file.rfind('/').map_or("", |k| &file[..k])
}

/// One module as loaded: where it is, what it declares, what it names.
#[derive(Debug, Default)]
struct Module {
    file: String,
    children: BTreeSet<String>,
    uses: Vec<UseLeaf>,
    paths: Vec<PathRef>,
    /// Names that top-level `use` declarations bind, as absolute paths
    /// (visible to other modules through `module::name`).
    exports: BTreeMap<String, ModPath>,
    /// Every name a `use` binds here, function bodies included.
    locals: BTreeMap<String, ModPath>,
    /// Modules glob-imported here (`use super::*`).
    globs: Vec<ModPath>,
}

/// One reference from code in one module to another module of the crate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reference {
    pub(crate) from: ModPath,
    pub(crate) to: ModPath,
    /// File relative to `src/`.
    pub(crate) file: String,
    pub(crate) line: usize,
    /// The path as written, and the re-exports it went through.
    pub(crate) text: String,
}

impl Reference {
    /// `file:line text`, with the file under `src_dir`.
    pub(crate) fn show(&self, src_dir: &str) -> String {
        format!("{}:{}  {}", join(src_dir, &self.file), self.line, self.text)
    }
}

/// An edge between two sibling modules, and every reference that makes it.
#[derive(Debug)]
pub(crate) struct Edge {
    /// The parent of both ends.
    pub(crate) level: ModPath,
    pub(crate) from: String,
    pub(crate) to: String,
    pub(crate) refs: Vec<Reference>,
}

/// A strongly connected set of sibling modules.
#[derive(Debug)]
pub(crate) struct Cycle {
    pub(crate) level: ModPath,
    pub(crate) members: Vec<String>,
    /// The shortest cycle through each member (duplicates dropped), each
    /// starting and ending at its smallest member, e.g. `[a, b, a]`.
    pub(crate) paths: Vec<Vec<String>>,
    /// The edges among the members (indices into [`Analysis::edges`]).
    pub(crate) edges: Vec<usize>,
}

/// A reference that breaks a rule.
#[derive(Debug)]
pub(crate) struct Violation {
    pub(crate) rule: Rule,
    pub(crate) reference: Reference,
}

/// Everything found in one crate target.
#[derive(Debug, Default)]
pub(crate) struct Analysis {
    pub(crate) modules: Vec<ModPath>,
    pub(crate) edges: Vec<Edge>,
    pub(crate) cycles: Vec<Cycle>,
    pub(crate) violations: Vec<Violation>,
    /// Rules of this crate whose modules all exist in this target.
    pub(crate) rules_applied: BTreeSet<usize>,
    /// Files read or skipped as test-only (relative to `src/`).
    pub(crate) files: BTreeSet<String>,
    /// Declared modules whose file is missing.
    pub(crate) problems: Vec<String>,
}

impl Analysis {
    /// Does this target break nothing?
    pub(crate) fn is_ok(&self) -> bool {
        self.cycles.is_empty() && self.violations.is_empty() && self.problems.is_empty()
    }
}

/// The module tree of one crate target.
#[derive(Debug)]
struct Crate<'f> {
    sources: &'f BTreeMap<String, String>,
    modules: BTreeMap<ModPath, Module>,
    files: BTreeSet<String>,
    problems: Vec<String>,
}

impl<'f> Crate<'f> {
    fn load(sources: &'f BTreeMap<String, String>, root: &str) -> Self {
        let mut krate = Crate {
            sources,
            modules: BTreeMap::new(),
            files: BTreeSet::new(),
            problems: Vec::new(),
        };
        match sources.get(root) {
            Some(src) => {
                krate.files.insert(root.to_string());
                let scope = scan::scope(&tokenize(src), src);
                if !scope.test_only {
                    krate.add(Vec::new(), root, parent_dir(root), true, scope);
                }
            }
            None => krate.problems.push(format!("{root}: no such file")),
        }
        krate.bind();
        krate
    }

    /// Files of test-only modules are not scanned, but they are not orphans.
    fn mark_test_files(&mut self, base: &str) {
        let prefix = format!("{base}/");
        let test_files = self
            .sources
            .keys()
            .filter(|f| **f == format!("{base}.rs") || f.starts_with(&prefix))
            .cloned();
        self.files.extend(test_files.collect::<Vec<_>>());
    }

    /// Add the module at `path` (declared by `scope`, in `file`, whose child
    /// module files live in `dir`), then its children.
    fn add(&mut self, path: ModPath, file: &str, dir: &str, file_level: bool, scope: Scope) {
        for name in &scope.test_mods {
            self.mark_test_files(&join(dir, name));
        }
        let mut children = Vec::new();
        for decl in scope.mods {
            let child_dir = join(dir, &decl.name);
            if let Some(body) = decl.body {
                children.push((decl.name, file.to_string(), child_dir, false, body));
                continue;
            }
            let candidates = match &decl.path_attr {
                Some(p) => vec![join(if file_level { parent_dir(file) } else { dir }, p)],
                None => vec![format!("{child_dir}.rs"), format!("{child_dir}/mod.rs")],
            };
            let Some((found, src)) = candidates
                .iter()
                .find_map(|c| self.sources.get_key_value(c))
            else {
                self.problems.push(format!(
                    "{file}:{}: `mod {}` has no file ({})",
                    decl.line,
                    decl.name,
                    candidates.join(" or ")
                ));
                continue;
            };
            self.files.insert(found.clone());
            let child = scan::scope(&tokenize(src), src);
            if child.test_only {
                continue;
            }
            let grandchild_dir = if decl.path_attr.is_some() {
                parent_dir(found).to_string()
            } else {
                child_dir
            };
            children.push((decl.name, found.clone(), grandchild_dir, true, child));
        }
        let module = Module {
            file: file.to_string(),
            children: children.iter().map(|c| c.0.clone()).collect(),
            uses: scope.uses,
            paths: scope.paths,
            ..Module::default()
        };
        self.modules.insert(path.clone(), module);
        for (name, child_file, child_dir, child_file_level, child) in children {
            let mut child_path = path.clone();
            child_path.push(name);
            self.add(child_path, &child_file, &child_dir, child_file_level, child);
        }
    }

    /// Turn a path as written in module `from` into an absolute path, or
    /// `None` when it starts outside the crate (another crate, a local item).
    fn absolutize(&self, from: &[String], segments: &[String]) -> Option<ModPath> {
        let module = self.modules.get(from)?;
        let first = segments.first()?;
        match first.as_str() {
            "crate" => Some(segments[1..].to_vec()),
            "self" | "super" => {
                let mut base = from.to_vec();
                let mut k = 0;
                while let Some(s) = segments.get(k) {
                    match s.as_str() {
                        "self" => {}
                        "super" => {
                            base.pop()?;
                        }
                        _ => break,
                    }
                    k += 1;
                }
                base.extend_from_slice(&segments[k..]);
                Some(base)
            }
            "::" => None,
            name => {
                if module.children.contains(name) {
                    return Some([from, segments].concat());
                }
                if let Some(bound) = module.locals.get(name) {
                    return Some([bound.as_slice(), &segments[1..]].concat());
                }
                module.globs.iter().find_map(|g| {
                    let glob = self.modules.get(g)?;
                    if glob.children.contains(name) {
                        Some([g.as_slice(), segments].concat())
                    } else {
                        let bound = glob.exports.get(name)?;
                        Some([bound.as_slice(), &segments[1..]].concat())
                    }
                })
            }
        }
    }

    /// Resolve every module's `use` bindings (to a fixed point: a `use` may
    /// start with a name another `use` binds).
    fn bind(&mut self) {
        let keys: Vec<ModPath> = self.modules.keys().cloned().collect();
        for _ in 0..16 {
            let mut changed = false;
            for key in &keys {
                let mut exports = BTreeMap::new();
                let mut locals = BTreeMap::new();
                let mut globs = Vec::new();
                for leaf in &self.modules[key].uses {
                    let (segments, name) = leaf_binding(leaf);
                    let Some(abs) = self.absolutize(key, &segments) else {
                        continue;
                    };
                    if leaf.glob {
                        if self.modules.contains_key(&abs) {
                            globs.push(abs);
                        }
                        continue;
                    }
                    let Some(name) = name else {
                        continue;
                    };
                    if leaf.top_level {
                        exports.insert(name.clone(), abs.clone());
                    }
                    locals.insert(name, abs);
                }
                let module = self.modules.get_mut(key).expect("key from the map");
                if module.exports != exports || module.locals != locals || module.globs != globs {
                    changed = true;
                    module.exports = exports;
                    module.locals = locals;
                    module.globs = globs;
                }
            }
            if !changed {
                break;
            }
        }
    }

    /// How many leading segments of `path` name a module.
    fn module_prefix_len(&self, path: &[String]) -> usize {
        (1..=path.len())
            .take_while(|&k| self.modules.contains_key(&path[..k]))
            .count()
    }

    /// The module an absolute path names: its longest prefix that is a module,
    /// following `use` re-exports (`crate::Config` where the root has
    /// `pub use config::Config` names `config`). Also returns the re-exports used.
    fn target(&self, abs: &[String]) -> (ModPath, Vec<String>) {
        let mut path = abs.to_vec();
        let mut via = Vec::new();
        for _ in 0..16 {
            let k = self.module_prefix_len(&path);
            let Some(name) = path.get(k) else {
                break;
            };
            let module = &self.modules[&path[..k]];
            let next = module.exports.get(name).cloned().or_else(|| {
                module.globs.iter().find_map(|g| {
                    let glob = self.modules.get(g)?;
                    if glob.children.contains(name) {
                        Some([g.as_slice(), std::slice::from_ref(name)].concat())
                    } else {
                        glob.exports.get(name).cloned()
                    }
                })
            });
            match next {
                Some(next) if next != path[..=k] => {
                    via.push(format!(
                        "crate::{} = crate::{}",
                        path[..=k].join("::"),
                        next.join("::")
                    ));
                    path = [next.as_slice(), &path[k + 1..]].concat();
                }
                _ => break,
            }
        }
        path.truncate(self.module_prefix_len(&path));
        (path, via)
    }

    /// Every reference from one module of the crate to another (or to itself).
    fn references(&self) -> Vec<Reference> {
        let mut refs = Vec::new();
        for (key, module) in &self.modules {
            let uses = module.uses.iter().map(|u| {
                let mut text = format!("use {}", u.segments.join("::"));
                if u.glob {
                    text.push_str("::*");
                }
                (leaf_binding(u).0, u.line, text)
            });
            let paths = module
                .paths
                .iter()
                .map(|p| (p.segments.clone(), p.line, p.segments.join("::")));
            for (segments, line, mut text) in uses.chain(paths) {
                let Some(abs) = self.absolutize(key, &segments) else {
                    continue;
                };
                let (to, via) = self.target(&abs);
                if !via.is_empty() {
                    text = format!("{text}  (via {})", via.join(", "));
                }
                refs.push(Reference {
                    from: key.clone(),
                    to,
                    file: module.file.clone(),
                    line,
                    text,
                });
            }
        }
        refs.sort_by(|a, b| (&a.file, a.line, &a.text).cmp(&(&b.file, b.line, &b.text)));
        refs.dedup();
        refs
    }
}

/// The path a `use` leaf imports (a trailing `self` dropped) and the name it binds.
fn leaf_binding(leaf: &UseLeaf) -> (Vec<String>, Option<String>) {
    let mut segments = leaf.segments.clone();
    if segments.last().is_some_and(|s| s == "self") && segments.len() > 1 {
        segments.pop();
    }
    let name = match &leaf.alias {
        Some(alias) if alias == "_" => None,
        Some(alias) => Some(alias.clone()),
        None => segments.last().cloned(),
    };
    (segments, name)
}

/// Group references into sibling edges: a reference from inside `l::x` to
/// inside `l::y` (x != y) is the edge x -> y at level `l`. References up to an
/// ancestor's own items, or down into a module's own children, make no edge.
fn edges(refs: &[Reference]) -> Vec<Edge> {
    let mut map: BTreeMap<(ModPath, String, String), Vec<Reference>> = BTreeMap::new();
    for r in refs {
        let common = r.from.iter().zip(&r.to).take_while(|(a, b)| a == b).count();
        if let (Some(from), Some(to)) = (r.from.get(common), r.to.get(common)) {
            let key = (r.from[..common].to_vec(), from.clone(), to.clone());
            map.entry(key).or_default().push(r.clone());
        }
    }
    map.into_iter()
        .map(|((level, from, to), refs)| Edge {
            level,
            from,
            to,
            refs,
        })
        .collect()
}

/// The strongly connected sets of more than one sibling, at every level.
fn cycles(edges: &[Edge]) -> Vec<Cycle> {
    let mut by_level: BTreeMap<&ModPath, BTreeMap<&str, BTreeSet<&str>>> = BTreeMap::new();
    for e in edges {
        by_level
            .entry(&e.level)
            .or_default()
            .entry(&e.from)
            .or_default()
            .insert(&e.to);
    }
    let mut found = Vec::new();
    for (level, graph) in by_level {
        let reach = |start: &str| -> BTreeSet<String> {
            let mut seen = BTreeSet::new();
            let mut stack = vec![start.to_string()];
            while let Some(n) = stack.pop() {
                for &m in graph.get(n.as_str()).into_iter().flatten() {
                    if seen.insert(m.to_string()) {
                        stack.push(m.to_string());
                    }
                }
            }
            seen
        };
        let nodes: BTreeSet<&str> = graph.keys().copied().collect();
        let reaches: BTreeMap<&str, BTreeSet<String>> =
            nodes.iter().map(|&n| (n, reach(n))).collect();
        let mut done = BTreeSet::new();
        for &n in &nodes {
            if done.contains(n) || !reaches[n].contains(n) {
                continue;
            }
            let members: Vec<String> = nodes
                .iter()
                .filter(|&&m| m == n || (reaches[n].contains(m) && reaches[m].contains(n)))
                .map(|m| m.to_string())
                .collect();
            done.extend(members.iter().cloned());
            let member_set: BTreeSet<&str> = members.iter().map(String::as_str).collect();
            let edge_ids = edges
                .iter()
                .enumerate()
                .filter(|(_, e)| {
                    &e.level == level
                        && member_set.contains(e.from.as_str())
                        && member_set.contains(e.to.as_str())
                })
                .map(|(k, _)| k)
                .collect();
            let mut paths: Vec<Vec<String>> = Vec::new();
            for member in &members {
                let path = smallest_first(shortest_cycle(&graph, member));
                if !paths.contains(&path) {
                    paths.push(path);
                }
            }
            paths.sort_by_key(|p| (p.len(), p.clone()));
            found.push(Cycle {
                level: level.clone(),
                paths,
                members,
                edges: edge_ids,
            });
        }
    }
    found
}

/// The shortest path from `start` back to itself (breadth-first).
fn shortest_cycle(graph: &BTreeMap<&str, BTreeSet<&str>>, start: &str) -> Vec<String> {
    let mut prev: BTreeMap<&str, &str> = BTreeMap::new();
    let mut queue = VecDeque::from([start]);
    while let Some(n) = queue.pop_front() {
        for &m in graph.get(n).into_iter().flatten() {
            if m == start {
                let mut path = vec![start.to_string()];
                let mut at = n;
                while at != start {
                    path.push(at.to_string());
                    at = prev[at];
                }
                path.push(start.to_string());
                path.reverse();
                return path;
            }
            if !prev.contains_key(m) {
                prev.insert(m, n);
                queue.push_back(m);
            }
        }
    }
    vec![start.to_string()]
}

/// Rotate a closed path `[a, ..., a]` to start (and end) at its smallest member.
fn smallest_first(mut path: Vec<String>) -> Vec<String> {
    path.pop();
    if let Some(k) = (0..path.len()).min_by_key(|&k| &path[k]) {
        path.rotate_left(k);
    }
    if let Some(first) = path.first().cloned() {
        path.push(first);
    }
    path
}

/// Does rule entry `entry` cover module `path`? An entry covers itself and its
/// insides, but `crate` (the root) covers only the root's own items.
fn covers(entry: &[String], path: &[String]) -> bool {
    path.starts_with(entry) && (!entry.is_empty() || path.is_empty())
}

/// Analyze one crate target: `sources` maps file paths relative to `src/` to
/// their text, `root` is the target's root file (`lib.rs`, `main.rs`...), and
/// the rules of crate `krate` are checked.
pub(crate) fn analyze(
    krate: &str,
    sources: &BTreeMap<String, String>,
    root: &str,
    rules: &[Rule],
) -> Analysis {
    let tree = Crate::load(sources, root);
    let refs = tree.references();
    let edges = edges(&refs);
    let cycles = cycles(&edges);
    let mut violations = Vec::new();
    let mut rules_applied = BTreeSet::new();
    for (index, rule) in rules.iter().enumerate() {
        if rule.krate != krate {
            continue;
        }
        let module = parse(rule.module);
        let listed: Vec<ModPath> = rule.modules.iter().map(|m| parse(m)).collect();
        if !std::iter::once(&module)
            .chain(&listed)
            .all(|m| tree.modules.contains_key(m))
        {
            continue;
        }
        rules_applied.insert(index);
        for r in &refs {
            if !r.from.starts_with(&module) || r.to.starts_with(&module) {
                continue;
            }
            let listed_hit = listed.iter().any(|l| covers(l, &r.to));
            let broken = match rule.kind {
                RuleKind::MustNotUse => listed_hit,
                RuleKind::MayOnlyUse => !listed_hit,
            };
            if broken {
                violations.push(Violation {
                    rule: *rule,
                    reference: r.clone(),
                });
            }
        }
    }
    Analysis {
        modules: tree.modules.keys().cloned().collect(),
        edges,
        cycles,
        violations,
        rules_applied,
        files: tree.files,
        problems: tree.problems,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sources(files: &[(&str, &str)]) -> BTreeMap<String, String> {
        files
            .iter()
            .map(|(f, s)| (f.to_string(), s.to_string()))
            .collect()
    }

    fn run(files: &[(&str, &str)], rules: &[Rule]) -> Analysis {
        analyze("demo", &sources(files), "lib.rs", rules)
    }

    /// Edges as `level: from -> to`.
    fn edge_list(a: &Analysis) -> Vec<String> {
        a.edges
            .iter()
            .map(|e| format!("{}: {} -> {}", show(&e.level), e.from, e.to))
            .collect()
    }

    #[test]
    fn module_paths_follow_files_and_inline_modules() {
        let a = run(
            &[
                ("lib.rs", "mod a; pub mod b; mod c { mod d { } }"),
                ("a.rs", "mod x;"),
                ("a/x.rs", ""),
                ("b/mod.rs", "pub(crate) mod y;"),
                ("b/y.rs", ""),
                ("orphan.rs", ""),
            ],
            &[],
        );
        let modules: Vec<String> = a.modules.iter().map(|m| show(m)).collect();
        assert_eq!(modules, ["crate", "a", "a::x", "b", "b::y", "c", "c::d"]);
        assert!(!a.files.contains("orphan.rs"));
        assert!(a.is_ok());
    }

    #[test]
    fn a_two_module_cycle_is_found_with_its_references() {
        let a = run(
            &[
                ("lib.rs", "mod a;\nmod b;"),
                ("a.rs", "use crate::b::B;\npub fn f() {}"),
                (
                    "b.rs",
                    "pub struct B;\n\npub fn g() {\n    crate::a::f();\n}",
                ),
            ],
            &[],
        );
        assert_eq!(a.cycles.len(), 1);
        let cycle = &a.cycles[0];
        assert_eq!(cycle.members, ["a", "b"]);
        assert_eq!(cycle.paths, [["a", "b", "a"]]);
        let examples: Vec<String> = cycle
            .edges
            .iter()
            .map(|&k| a.edges[k].refs[0].show("src"))
            .collect();
        assert_eq!(
            examples,
            ["src/a.rs:1  use crate::b::B", "src/b.rs:4  crate::a::f"]
        );
        assert!(!a.is_ok());
    }

    #[test]
    fn a_three_module_cycle_is_found_below_the_root() {
        let a = run(
            &[
                ("lib.rs", "mod outer;"),
                ("outer/mod.rs", "mod a;\nmod b;\nmod c;\nmod d;"),
                ("outer/a.rs", "use super::b;"),
                ("outer/b.rs", "fn f() { super::c::g() }"),
                ("outer/c.rs", "use crate::outer::{a::X, d};"),
                ("outer/d.rs", ""),
            ],
            &[],
        );
        assert_eq!(a.cycles.len(), 1);
        let cycle = &a.cycles[0];
        assert_eq!(show(&cycle.level), "outer");
        assert_eq!(cycle.members, ["a", "b", "c"]);
        assert_eq!(cycle.paths, [["a", "b", "c", "a"]]);
        assert_eq!(cycle.edges.len(), 3);
    }

    #[test]
    fn each_member_shows_its_shortest_cycle() {
        let a = run(
            &[
                ("lib.rs", "mod app;\nmod error;\nmod store;\nmod user;"),
                ("app.rs", "use crate::user::User;"),
                ("user.rs", "use crate::app::App;\nuse crate::error::Error;"),
                ("error.rs", "use crate::store::StoreError;"),
                ("store.rs", "use crate::user::UserState;"),
            ],
            &[],
        );
        assert_eq!(a.cycles.len(), 1);
        assert_eq!(a.cycles[0].members, ["app", "error", "store", "user"]);
        assert_eq!(
            a.cycles[0].paths,
            [
                vec!["app", "user", "app"],
                vec!["error", "store", "user", "error"]
            ]
        );
    }

    #[test]
    fn grouped_nested_super_and_relative_paths_resolve_to_the_longest_module() {
        let a = run(
            &[
                ("lib.rs", "mod a;\nmod b;\nmod c;\nuse b::x as bx;"),
                ("a.rs", "mod inner;\nmod other;"),
                (
                    "a/inner.rs",
                    "use super::super::{b::{self, x::Y}, c::*};\nfn f() { super::other::g(); b::h(); }",
                ),
                ("a/other.rs", ""),
                ("b.rs", "pub mod x;"),
                ("b/x.rs", ""),
                ("c.rs", ""),
            ],
            &[],
        );
        assert_eq!(
            edge_list(&a),
            ["crate: a -> b", "crate: a -> c", "a: inner -> other"]
        );
        let targets: Vec<String> = a.edges[0].refs.iter().map(|r| show(&r.to)).collect();
        // `use ...::b::{self}`, `use ...::b::x::Y`, and `b::h()` through the import.
        assert_eq!(targets, ["b", "b::x", "b"]);
        assert!(a.cycles.is_empty());
    }

    #[test]
    fn references_through_re_exports_count() {
        let a = run(
            &[
                ("lib.rs", "mod a;\nmod b;\npub use b::Thing;"),
                ("a.rs", "pub fn f(_: crate::Thing) {}"),
                ("b.rs", "pub struct Thing;\nfn g() { crate::a::f(Thing) }"),
            ],
            &[],
        );
        assert_eq!(edge_list(&a), ["crate: a -> b", "crate: b -> a"]);
        assert_eq!(
            a.edges[0].refs[0].text,
            "crate::Thing  (via crate::Thing = crate::b::Thing)"
        );
        assert_eq!(a.cycles.len(), 1);
    }

    #[test]
    fn test_modules_comments_and_strings_are_ignored() {
        let a = run(
            &[
                ("lib.rs", "mod a;\nmod b;\nmod c;"),
                (
                    "a.rs",
                    "// crate::b::x\n/// [`crate::b`]\nconst S: &str = \"crate::b::y\";\n\
                     #[cfg(test)]\nmod tests { use crate::b::*; fn t() { super::super::b::f() } }",
                ),
                (
                    "b.rs",
                    "use crate::a::S;\n#[cfg(test)]\nmod tests;\npub fn f() {}",
                ),
                ("b/tests.rs", "use crate::c::*;"),
                ("c.rs", "#![cfg(test)]\nuse crate::b::f;"),
            ],
            &[],
        );
        assert_eq!(edge_list(&a), ["crate: b -> a"]);
        assert!(a.is_ok());
        assert!(a.files.contains("b/tests.rs"));
    }

    #[test]
    fn upward_references_make_no_edge() {
        let a = run(
            &[
                ("lib.rs", "mod a;\npub struct Root;"),
                ("a.rs", "mod b;\nuse crate::Root;\nfn f() { b::g() }"),
                ("a/b.rs", "use super::*;\nuse crate::Root;"),
            ],
            &[],
        );
        assert!(a.edges.is_empty(), "{:?}", edge_list(&a));
    }

    #[test]
    fn rule_violations_are_reported_with_their_line() {
        let files = [
            (
                "lib.rs",
                "mod auth;\nmod http;\nmod clock;\npub struct Root;",
            ),
            ("auth.rs", "mod login;\nuse crate::clock::now;"),
            ("auth/login.rs", "\n\nfn f() { crate::http::respond() }"),
            ("http.rs", "use crate::Root;"),
            ("clock.rs", ""),
        ];
        let rules = [
            Rule::must_not_use("demo", "auth", &["http"]),
            Rule::may_only_use("demo", "http", &["clock"]),
            Rule::may_only_use("demo", "auth", &["clock", "http"]),
            Rule::must_not_use("other-crate", "auth", &["http"]),
            Rule::must_not_use("demo", "missing", &["http"]),
        ];
        let a = run(&files, &rules);
        let found: Vec<String> = a
            .violations
            .iter()
            .map(|v| format!("{} | {}", v.rule, v.reference.show("src")))
            .collect();
        assert_eq!(
            found,
            [
                "demo: auth must not use http | src/auth/login.rs:3  crate::http::respond",
                "demo: http may only use clock | src/http.rs:1  use crate::Root",
            ]
        );
        assert_eq!(a.rules_applied, BTreeSet::from([0, 1, 2]));
    }

    #[test]
    fn a_missing_module_file_is_a_problem() {
        let a = run(&[("lib.rs", "mod gone;")], &[]);
        assert_eq!(
            a.problems,
            ["lib.rs:1: `mod gone` has no file (gone.rs or gone/mod.rs)"]
        );
        assert!(!a.is_ok());
    }
}
