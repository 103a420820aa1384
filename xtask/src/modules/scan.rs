//! What one module scope (a file, or an inline `mod x { ... }`) declares and
//! refers to: child modules, `use` trees and paths in code. Items under a
//! test-only `#[cfg(test)]` are skipped entirely (tests may use anything).

use super::lex::{Kind, Token};

/// What a scope declares and refers to, before any name resolution.
#[derive(Debug, Default)]
pub(crate) struct Scope {
    /// The scope starts with `#![cfg(test)]`: it is test-only and ignored.
    pub(crate) test_only: bool,
    /// `mod name;` and `mod name { ... }` (test-only ones are left out).
    pub(crate) mods: Vec<ModDecl>,
    /// Names of test-only child modules declared here (their files are not scanned).
    pub(crate) test_mods: Vec<String>,
    /// Every leaf of every `use` tree.
    pub(crate) uses: Vec<UseLeaf>,
    /// Paths in code of two segments or more whose first segment may name a
    /// module (`crate::`, `self::`, `super::`, `$crate::` or an identifier).
    pub(crate) paths: Vec<PathRef>,
}

/// A child module declaration.
#[derive(Debug)]
pub(crate) struct ModDecl {
    pub(crate) name: String,
    pub(crate) line: usize,
    /// The body of an inline module.
    pub(crate) body: Option<Scope>,
    /// A `#[path = "..."]` attribute.
    pub(crate) path_attr: Option<String>,
}

/// One leaf of a `use` tree, e.g. `use crate::{a::b as c, d::*}` has two.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UseLeaf {
    /// The full path; a global `::x` path starts with `"::"`.
    pub(crate) segments: Vec<String>,
    /// `as name` (`as _` gives `"_"`).
    pub(crate) alias: Option<String>,
    /// `path::*`.
    pub(crate) glob: bool,
    /// Declared at the top level of the scope (not inside a function body).
    pub(crate) top_level: bool,
    pub(crate) line: usize,
}

/// A path written in code, e.g. `crate::a::f` in `crate::a::f()`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PathRef {
    pub(crate) segments: Vec<String>,
    pub(crate) line: usize,
}

fn is_open(t: &Token) -> bool {
    t.kind == Kind::Punct && matches!(t.text.as_str(), "(" | "[" | "{")
}

fn is_close(t: &Token) -> bool {
    t.kind == Kind::Punct && matches!(t.text.as_str(), ")" | "]" | "}")
}

/// Index just after the bracket group that opens at `open`.
fn group_end(toks: &[Token], open: usize) -> usize {
    let mut depth = 0usize;
    for (k, t) in toks.iter().enumerate().skip(open) {
        if is_open(t) {
            depth += 1;
        } else if is_close(t) {
            depth = depth.saturating_sub(1);
            if depth == 0 {
                return k + 1;
            }
        }
    }
    toks.len()
}

fn at(toks: &[Token], i: usize, text: &str) -> bool {
    toks.get(i).is_some_and(|t| t.is(text))
}

/// Is the `cfg` predicate starting at `i` true only under `cfg(test)`?
/// Returns the answer and the index after the predicate.
fn test_only_predicate(toks: &[Token], i: usize) -> (bool, usize) {
    let Some(t) = toks.get(i).filter(|t| t.is_ident()) else {
        return (false, i + 1);
    };
    if at(toks, i + 1, "=") {
        // `feature = "x"`
        return (false, i + 3);
    }
    if !at(toks, i + 1, "(") {
        // `test`, `unix`...
        return (t.is("test"), i + 1);
    }
    let end = group_end(toks, i + 1);
    let mut parts = Vec::new();
    let mut k = i + 2;
    while k + 1 < end {
        if at(toks, k, ",") {
            k += 1;
            continue;
        }
        let (part, next) = test_only_predicate(toks, k);
        parts.push(part);
        k = next;
    }
    let value = match t.text.as_str() {
        "all" => parts.iter().any(|&p| p),
        "any" => !parts.is_empty() && parts.iter().all(|&p| p),
        _ => false,
    };
    (value, end)
}

/// Is the attribute body (the tokens inside `#[...]`) a test-only `cfg`?
fn is_test_cfg(attr: &[Token]) -> bool {
    attr.first().is_some_and(|t| t.is("cfg")) && at(attr, 1, "(") && {
        let (value, _) = test_only_predicate(attr, 2);
        value
    }
}

/// The value of a `path = "..."` attribute. The lexer drops literal text, so
/// the value is read from `src_lines` (the file's lines) at the attribute's line.
fn path_attr(attr: &[Token], src_lines: &[&str]) -> Option<String> {
    if !(attr.first()?.is("path") && at(attr, 1, "=")) {
        return None;
    }
    let line = src_lines.get(attr[0].line.checked_sub(1)?)?;
    let after = &line[line.find("path")?..];
    let start = after.find('"')? + 1;
    let len = after[start..].find('"')?;
    Some(after[start..start + len].to_string())
}

#[derive(PartialEq)]
enum ItemKind {
    /// Ends with its first `{ ... }` at depth 0, or a `;`.
    Block,
    /// Ends with a `;` (const, static, let, use, type).
    Semicolon,
    /// A field, match arm, expression or statement: ends at `,` or `;`.
    Other,
}

/// Index just after the item, statement or field starting at `i` (after its attributes).
fn item_end(toks: &[Token], mut i: usize) -> usize {
    while at(toks, i, "#") {
        let open = if at(toks, i + 1, "!") { i + 2 } else { i + 1 };
        i = group_end(toks, open);
    }
    let mut kind = ItemKind::Other;
    for t in toks[i..]
        .iter()
        .take_while(|t| !is_open(t) && !t.is(";") && !t.is(",") && !t.is("="))
    {
        if matches!(
            t.text.as_str(),
            "fn" | "mod" | "impl" | "trait" | "struct" | "enum" | "union" | "macro_rules"
        ) && t.is_ident()
        {
            kind = ItemKind::Block;
            break;
        }
        if matches!(t.text.as_str(), "const" | "static" | "let" | "use" | "type") && t.is_ident() {
            kind = ItemKind::Semicolon;
        }
    }
    let mut depth = 0usize;
    for (k, t) in toks.iter().enumerate().skip(i) {
        if is_open(t) {
            depth += 1;
        } else if is_close(t) {
            if depth == 0 {
                return k;
            }
            depth -= 1;
            if depth == 0 && t.is("}") && kind == ItemKind::Block {
                return k + 1;
            }
        } else if depth == 0 && (t.is(";") || (t.is(",") && kind == ItemKind::Other)) {
            return k + 1;
        }
    }
    toks.len()
}

/// Parse one `use` tree starting at `i` under `prefix`; push its leaves.
/// Returns the index after the tree.
fn use_tree(
    toks: &[Token],
    mut i: usize,
    prefix: &[String],
    top_level: bool,
    out: &mut Vec<UseLeaf>,
) -> usize {
    let mut segments = prefix.to_vec();
    let mut line = toks.get(i).map_or(0, |t| t.line);
    if at(toks, i, "::") && prefix.is_empty() {
        segments.push("::".to_string());
        i += 1;
    }
    loop {
        let Some(t) = toks.get(i) else {
            return i;
        };
        if t.is("*") {
            out.push(UseLeaf {
                segments,
                alias: None,
                glob: true,
                top_level,
                line: t.line,
            });
            return i + 1;
        }
        if t.is("{") {
            let end = group_end(toks, i) - 1;
            i += 1;
            while i < end {
                let next = use_tree(toks, i, &segments, top_level, out);
                i = if next == i { i + 1 } else { next };
                if at(toks, i, ",") {
                    i += 1;
                }
            }
            return end + 1;
        }
        if t.is_ident() && !t.is("as") {
            segments.push(t.text.clone());
            line = t.line;
            i += 1;
            if at(toks, i, "::") {
                i += 1;
                continue;
            }
        }
        break;
    }
    let mut alias = None;
    if at(toks, i, "as") {
        alias = toks.get(i + 1).map(|t| t.text.clone());
        i += 2;
    }
    if segments.len() > prefix.len() {
        out.push(UseLeaf {
            segments,
            alias,
            glob: false,
            top_level,
            line,
        });
    }
    i
}

/// Collect `ident (:: ident)*` starting at `i`; returns the segments and the
/// index after them.
fn path_at(toks: &[Token], mut i: usize) -> (Vec<String>, usize) {
    let mut segments = Vec::new();
    while let Some(t) = toks.get(i) {
        if !t.is_ident() {
            break;
        }
        segments.push(t.text.clone());
        i += 1;
        if at(toks, i, "::") && toks.get(i + 1).is_some_and(Token::is_ident) {
            i += 1;
        } else {
            break;
        }
    }
    (segments, i)
}

/// Scan one scope: a whole file, or the inside of an inline module.
/// `src` is the file's text (only used to read `#[path]` values).
pub(crate) fn scope(toks: &[Token], src: &str) -> Scope {
    let lines: Vec<&str> = src.lines().collect();
    scope_in(toks, &lines)
}

fn scope_in(toks: &[Token], lines: &[&str]) -> Scope {
    let mut scope = Scope::default();
    let mut i = 0;
    // Inner attributes at the start: `#![cfg(test)]` makes the scope test-only.
    while at(toks, i, "#") && at(toks, i + 1, "!") && at(toks, i + 2, "[") {
        let end = group_end(toks, i + 2);
        if is_test_cfg(&toks[i + 3..end - 1]) {
            scope.test_only = true;
            return scope;
        }
        i = end;
    }
    let mut depth = 0usize;
    let mut path_attr_value = None;
    while i < toks.len() {
        let t = &toks[i];
        if t.is("#") && (at(toks, i + 1, "[") || (at(toks, i + 1, "!") && at(toks, i + 2, "["))) {
            let mut k = i;
            let mut test = false;
            while at(toks, k, "#") {
                let open = if at(toks, k + 1, "!") { k + 2 } else { k + 1 };
                if !at(toks, open, "[") {
                    break;
                }
                let end = group_end(toks, open);
                let body = &toks[open + 1..end.saturating_sub(1).max(open + 1)];
                test |= is_test_cfg(body);
                if let Some(p) = path_attr(body, lines) {
                    path_attr_value = Some(p);
                }
                k = end;
            }
            if test {
                if let Some(name) = mod_name(toks, k) {
                    scope.test_mods.push(name);
                }
                i = item_end(toks, k);
                path_attr_value = None;
            } else {
                if mod_name(toks, k).is_none() {
                    path_attr_value = None;
                }
                i = k;
            }
            continue;
        }
        if t.is("mod")
            && t.is_ident()
            && let Some(name) = toks.get(i + 1).filter(|n| n.is_ident())
            && (at(toks, i + 2, "{") || at(toks, i + 2, ";"))
        {
            let (body, next) = if at(toks, i + 2, "{") {
                let end = group_end(toks, i + 2);
                (Some(scope_in(&toks[i + 3..end - 1], lines)), end)
            } else {
                (None, i + 3)
            };
            match body {
                Some(b) if b.test_only => scope.test_mods.push(name.text.clone()),
                body => scope.mods.push(ModDecl {
                    name: name.text.clone(),
                    line: name.line,
                    body,
                    path_attr: path_attr_value.take(),
                }),
            }
            i = next;
            continue;
        }
        if t.is("use") && t.is_ident() && !at(toks, i + 1, "<") {
            i = use_tree(toks, i + 1, &[], depth == 0, &mut scope.uses);
            continue;
        }
        if t.is_ident() && at(toks, i + 1, "::") && toks.get(i + 2).is_some_and(Token::is_ident) {
            let prev = i.checked_sub(1).map(|p| &toks[p]);
            let after_dot = prev.is_some_and(|p| p.is("."));
            let dollar = prev.is_some_and(|p| p.is("$"));
            // `pub(in crate::a)` names a visibility, not a dependency.
            let visibility = prev.is_some_and(|p| p.is("in"))
                && i.checked_sub(2).is_some_and(|p| toks[p].is("("));
            let (segments, next) = path_at(toks, i);
            if !after_dot && !visibility && (!dollar || t.is("crate")) {
                scope.paths.push(PathRef {
                    segments,
                    line: t.line,
                });
            }
            i = next;
            continue;
        }
        if t.is("::") {
            // A global path (`::std::x`) or the tail after generics (`<T>::x`).
            let (_, next) = path_at(toks, i + 1);
            i = next.max(i + 1);
            continue;
        }
        if is_open(t) {
            depth += 1;
        } else if is_close(t) {
            depth = depth.saturating_sub(1);
        }
        i += 1;
    }
    scope
}

/// The name of the module declared by the item starting at `i`, if it is one.
fn mod_name(toks: &[Token], mut i: usize) -> Option<String> {
    if at(toks, i, "pub") {
        i += 1;
        if at(toks, i, "(") {
            i = group_end(toks, i);
        }
    }
    if at(toks, i, "mod") {
        toks.get(i + 1)
            .filter(|t| t.is_ident())
            .map(|t| t.text.clone())
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::super::lex::tokenize;
    use super::*;

    fn scan(src: &str) -> Scope {
        scope(&tokenize(src), src)
    }

    fn leaves(src: &str) -> Vec<String> {
        scan(src)
            .uses
            .iter()
            .map(|u| {
                let mut s = u.segments.join("::");
                if u.glob {
                    s.push_str("::*");
                }
                if let Some(a) = &u.alias {
                    s = format!("{s} as {a}");
                }
                s
            })
            .collect()
    }

    #[test]
    fn grouped_and_nested_use_trees_expand_to_leaves() {
        let got = leaves("use crate::{a, b::{self, c as d, e::*}, f::g};\nuse super::super::h;");
        assert_eq!(
            got,
            [
                "crate::a",
                "crate::b::self",
                "crate::b::c as d",
                "crate::b::e::*",
                "crate::f::g",
                "super::super::h",
            ]
        );
    }

    #[test]
    fn code_paths_are_found_but_not_method_calls_or_visibility() {
        let s = scan(
            "pub(in crate::a) fn f() { crate::b::g(); x.y::<T>(); let v = super::c::X; <crate::d::E as T>::f(); }",
        );
        let paths: Vec<String> = s.paths.iter().map(|p| p.segments.join("::")).collect();
        assert_eq!(paths, ["crate::b::g", "super::c::X", "crate::d::E"]);
    }

    #[test]
    fn test_only_items_are_skipped() {
        let s = scan(
            "#[cfg(test)]\nmod tests { use crate::a; }\n#[cfg(all(test, unix))] fn t() { crate::b::f() }\n\
             #[cfg(any(test, feature = \"x\"))] use crate::c;\n#[cfg(not(test))] use crate::d;\n\
             #[cfg(test)] mod helpers;\nuse crate::e;",
        );
        let uses: Vec<String> = s.uses.iter().map(|u| u.segments.join("::")).collect();
        assert_eq!(uses, ["crate::c", "crate::d", "crate::e"]);
        assert!(s.paths.is_empty());
        assert_eq!(s.test_mods, ["tests", "helpers"]);
        assert!(s.mods.is_empty());
    }

    #[test]
    fn inline_modules_and_path_attributes() {
        let s = scan("mod a { use super::b; mod c; }\n#[path = \"x/y.rs\"]\npub mod d;");
        assert_eq!(s.mods.len(), 2);
        let a = s.mods[0].body.as_ref().unwrap();
        assert_eq!(a.uses[0].segments, ["super", "b"]);
        assert_eq!(a.mods[0].name, "c");
        assert_eq!(s.mods[1].path_attr.as_deref(), Some("x/y.rs"));
        assert!(scan("#![cfg(test)]\nuse crate::a;").test_only);
    }

    #[test]
    fn uses_inside_functions_are_not_top_level() {
        let s = scan("use crate::a;\nfn f() { use crate::b; }");
        assert!(s.uses[0].top_level);
        assert!(!s.uses[1].top_level);
    }
}
