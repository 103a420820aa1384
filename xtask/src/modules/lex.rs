//! A small Rust tokenizer: just enough to find module declarations, `use` trees
//! and paths while skipping comments, string, byte-string, raw-string and char
//! literals (so `"crate::x"` or `// crate::x` never count as a reference).

/// What a token is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// An identifier or keyword (raw identifiers lose their `r#`).
    Ident,
    /// One punctuation character, or `::`.
    Punct,
    /// A string, char or number literal (its text is not kept).
    Literal,
    /// A lifetime or label, such as `'a`.
    Lifetime,
}

/// One token and the 1-based line it starts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Token {
    pub(crate) kind: Kind,
    pub(crate) text: String,
    pub(crate) line: usize,
}

impl Token {
    /// Is this the identifier, keyword or punctuation `text`?
    pub(crate) fn is(&self, text: &str) -> bool {
        self.kind != Kind::Literal && self.text == text
    }

    pub(crate) fn is_ident(&self) -> bool {
        self.kind == Kind::Ident
    }
}

fn is_ident_start(c: char) -> bool {
    c == '_' || c.is_alphabetic()
}

fn is_ident_char(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

/// End (exclusive) of a `"..."` string whose opening quote is at `open`.
fn string_end(c: &[char], open: usize) -> usize {
    let mut k = open + 1;
    while k < c.len() {
        match c[k] {
            '\\' => k += 2,
            '"' => return k + 1,
            _ => k += 1,
        }
    }
    c.len()
}

/// End (exclusive) of a raw string `r#"..."#` whose `r` is at `r`, if it is one.
fn raw_string_end(c: &[char], r: usize) -> Option<usize> {
    let mut k = r + 1;
    let mut hashes = 0;
    while c.get(k) == Some(&'#') {
        hashes += 1;
        k += 1;
    }
    if c.get(k) != Some(&'"') {
        return None;
    }
    k += 1;
    while k < c.len() {
        if c[k] == '"' && (1..=hashes).all(|h| c.get(k + h) == Some(&'#')) {
            return Some(k + 1 + hashes);
        }
        k += 1;
    }
    Some(c.len())
}

/// End (exclusive) of a char literal whose opening quote is at `open`, or `None`
/// when the quote starts a lifetime or label.
fn char_end(c: &[char], open: usize) -> Option<usize> {
    match c.get(open + 1) {
        Some('\\') => {
            let mut k = open + 3;
            while k < c.len() && c[k] != '\'' && c[k] != '\n' {
                k += 1;
            }
            Some((k + 1).min(c.len()))
        }
        Some(_) if c.get(open + 2) == Some(&'\'') => Some(open + 3),
        _ => None,
    }
}

/// End (exclusive) of a literal starting at `i` (strings with any prefix,
/// byte chars), or `None` if no such literal starts there.
fn prefixed_literal_end(c: &[char], i: usize) -> Option<usize> {
    let at = |k: usize| c.get(i + k).copied();
    match (at(0), at(1), at(2)) {
        (Some('"'), _, _) => Some(string_end(c, i)),
        (Some('b' | 'c'), Some('"'), _) => Some(string_end(c, i + 1)),
        (Some('b'), Some('\''), _) => char_end(c, i + 1),
        (Some('r'), Some('"' | '#'), _) => raw_string_end(c, i),
        (Some('b' | 'c'), Some('r'), Some('"' | '#')) => raw_string_end(c, i + 1),
        _ => None,
    }
}

/// Split Rust source into tokens; comments and whitespace are dropped.
pub(crate) fn tokenize(src: &str) -> Vec<Token> {
    let c: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let mut line = 1;
    let lines_in = |from: usize, to: usize| c[from..to].iter().filter(|&&ch| ch == '\n').count();
    while i < c.len() {
        let ch = c[i];
        let next = c.get(i + 1).copied();
        if ch == '\n' {
            line += 1;
            i += 1;
            continue;
        }
        if ch.is_whitespace() {
            i += 1;
            continue;
        }
        if ch == '/' && next == Some('/') {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
            continue;
        }
        if ch == '/' && next == Some('*') {
            let start = i;
            let mut depth = 0;
            while i < c.len() {
                if c[i] == '/' && c.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if c[i] == '*' && c.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
            line += lines_in(start, i.min(c.len()));
            continue;
        }
        let (kind, end) = if let Some(end) = prefixed_literal_end(&c, i) {
            (Kind::Literal, end)
        } else if ch == '\'' {
            match char_end(&c, i) {
                Some(end) => (Kind::Literal, end),
                None => {
                    let mut k = i + 1;
                    while k < c.len() && is_ident_char(c[k]) {
                        k += 1;
                    }
                    (Kind::Lifetime, k)
                }
            }
        } else if ch == 'r' && next == Some('#') && c.get(i + 2).is_some_and(|&n| is_ident_start(n))
        {
            // A raw identifier: keep the name without `r#`.
            let mut k = i + 2;
            while k < c.len() && is_ident_char(c[k]) {
                k += 1;
            }
            out.push(Token {
                kind: Kind::Ident,
                text: c[i + 2..k].iter().collect(),
                line,
            });
            i = k;
            continue;
        } else if is_ident_start(ch) {
            let mut k = i + 1;
            while k < c.len() && is_ident_char(c[k]) {
                k += 1;
            }
            (Kind::Ident, k)
        } else if ch.is_ascii_digit() {
            let mut k = i + 1;
            while k < c.len()
                && (is_ident_char(c[k])
                    || (c[k] == '.' && c.get(k + 1).is_some_and(char::is_ascii_digit)))
            {
                k += 1;
            }
            (Kind::Literal, k)
        } else if ch == ':' && next == Some(':') {
            (Kind::Punct, i + 2)
        } else {
            (Kind::Punct, i + 1)
        };
        let end = end.min(c.len());
        let text = if kind == Kind::Literal {
            String::new()
        } else {
            c[i..end].iter().collect()
        };
        out.push(Token { kind, text, line });
        line += lines_in(i, end);
        i = end;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idents(src: &str) -> Vec<String> {
        tokenize(src)
            .into_iter()
            .filter(|t| t.kind != Kind::Literal)
            .map(|t| t.text)
            .collect()
    }

    #[test]
    fn comments_and_literals_hide_their_contents() {
        let src = r####"
            // crate::a
            /* crate::b /* nested crate::c */ still comment */
            let s = "crate::d \" crate::e";
            let r = r#"crate::f "quoted" "#;
            let b = b"crate::g"; let c = '"'; let d = b'\''; let e = '\u{1F600}';
            /// crate::h
            x
        "####;
        let text = idents(src).join(" ");
        assert!(!text.contains("crate"), "{text}");
        assert!(text.ends_with("x"), "{text}");
    }

    #[test]
    fn lifetimes_are_not_chars_and_lines_are_counted() {
        let toks = tokenize("fn f<'a>(x: &'a str) -> char {\n 'x'\n}\ncrate::y");
        let lifetimes: Vec<_> = toks.iter().filter(|t| t.kind == Kind::Lifetime).collect();
        assert_eq!(lifetimes.len(), 2);
        let krate = toks.iter().find(|t| t.is("crate")).unwrap();
        assert_eq!(krate.line, 4);
        assert!(toks.iter().any(|t| t.is("::")));
    }

    /// Every `.rs` file of the workspace lexes to balanced brackets: a literal,
    /// comment or lifetime taken for something else would unbalance them.
    #[test]
    fn every_workspace_file_has_balanced_brackets() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .unwrap();
        let mut pending = vec![
            root.join("crates"),
            root.join("examples"),
            root.join("tests"),
            root.join("xtask"),
        ];
        let mut files = 0;
        while let Some(dir) = pending.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() && !path.ends_with("node_modules") {
                    pending.push(path);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    let src = std::fs::read_to_string(&path).unwrap();
                    let mut stack = Vec::new();
                    for t in tokenize(&src).iter().filter(|t| t.kind == Kind::Punct) {
                        match t.text.as_str() {
                            "(" | "[" | "{" => stack.push(t.text.clone()),
                            ")" | "]" | "}" => {
                                let open = stack.pop();
                                let want = match t.text.as_str() {
                                    ")" => "(",
                                    "]" => "[",
                                    _ => "{",
                                };
                                assert_eq!(
                                    open.as_deref(),
                                    Some(want),
                                    "{}:{}",
                                    path.display(),
                                    t.line
                                );
                            }
                            _ => {}
                        }
                    }
                    assert!(stack.is_empty(), "{}: unclosed {stack:?}", path.display());
                    files += 1;
                }
            }
        }
        assert!(files > 50, "only {files} files");
    }

    #[test]
    fn raw_identifiers_lose_their_prefix() {
        assert_eq!(idents("r#type::x"), ["type", "::", "x"]);
    }
}
