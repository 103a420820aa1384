//! The module dependency rules that `cargo xtask modules` enforces, per crate.
//!
//! A module path is written from the crate root without `crate::` (`"http"`,
//! `"config::idp"`); `"crate"` alone names the root module's own items. A rule
//! on module `m` covers `m` and every module inside it, and a listed module
//! covers itself and every module inside it. Test code (`#[cfg(test)]`) is never
//! checked. Besides these rules, sibling modules must never form a cycle, in any
//! crate: that needs no entry here.

/// What a rule's list means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RuleKind {
    /// The module must not use any of the listed modules.
    MustNotUse,
    /// The module may use only the listed modules (besides its own insides).
    /// Its ancestors count as other modules: list `"crate"` to allow the root's
    /// own items.
    MayOnlyUse,
}

/// One rule: in crate `krate`, module `module` and its insides `kind` `modules`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rule {
    pub(crate) krate: &'static str,
    pub(crate) module: &'static str,
    pub(crate) kind: RuleKind,
    pub(crate) modules: &'static [&'static str],
}

impl Rule {
    /// `module` (and its insides) must not use any of `modules`.
    pub(crate) const fn must_not_use(
        krate: &'static str,
        module: &'static str,
        modules: &'static [&'static str],
    ) -> Self {
        Self::new(krate, module, RuleKind::MustNotUse, modules)
    }

    /// `module` (and its insides) may use no module of its crate but `modules`.
    pub(crate) const fn may_only_use(
        krate: &'static str,
        module: &'static str,
        modules: &'static [&'static str],
    ) -> Self {
        Self::new(krate, module, RuleKind::MayOnlyUse, modules)
    }

    const fn new(
        krate: &'static str,
        module: &'static str,
        kind: RuleKind,
        modules: &'static [&'static str],
    ) -> Self {
        Self {
            krate,
            module,
            kind,
            modules,
        }
    }
}

impl std::fmt::Display for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let verb = match self.kind {
            RuleKind::MustNotUse => "must not use",
            RuleKind::MayOnlyUse => "may only use",
        };
        let list = if self.modules.is_empty() {
            "no other module".to_string()
        } else {
            self.modules.join(", ")
        };
        write!(f, "{}: {} {verb} {list}", self.krate, self.module)
    }
}

/// The rules. Each must hold today; a rule naming a crate or module that does
/// not exist fails the check (so a rename cannot silently retire a rule).
pub(crate) const RULES: &[Rule] = &[
    // latchkey-protocol: the value types below everything else.
    Rule::may_only_use("latchkey-protocol", "object_id", &[]),
    Rule::may_only_use("latchkey-protocol", "secret", &[]),
    // latchkey-session: the clock and the retry policy are leaves.
    Rule::may_only_use("latchkey-session", "clock", &[]),
    Rule::may_only_use("latchkey-session", "retry", &["clock"]),
    // latchkey-server: time, ids, password hashing and token signing are
    // leaves every layer may use; they use nothing of the server but the clock.
    Rule::may_only_use("latchkey-server", "clock", &[]),
    Rule::may_only_use("latchkey-server", "ids", &["clock"]),
    Rule::may_only_use("latchkey-server", "password", &["clock"]),
    // Token signing also reads its keys' configuration (`[[apps.signing_keys]]`,
    // config::keys: plain data, no rule).
    Rule::may_only_use("latchkey-server", "tokens", &["clock", "config"]),
    // latchkey-testkit: the fake identity providers stand alone.
    Rule::must_not_use("latchkey-testkit", "idp", &["full", "record"]),
    //
    // latchkey-server: three layers, pointing down (docs/architecture.md):
    // http (axum) -> auth (the domain: every rule) -> providers -> leaves.
    Rule::may_only_use(
        "latchkey-server",
        "http",
        &["auth", "config", "error", "crate"],
    ),
    Rule::may_only_use(
        "latchkey-server",
        "auth",
        &[
            "providers",
            "config",
            "error",
            "tokens",
            "password",
            "ids",
            "clock",
            "outbound",
            "webhooks",
            "keys",
            "settings",
            "crate",
        ],
    ),
    // The signing-key files (`keys generate`/`rotate`, the admin routes' rotation):
    // below the domain, above the key ring.
    Rule::may_only_use(
        "latchkey-server",
        "keys",
        &["config", "settings", "tokens", "crate"],
    ),
    Rule::may_only_use(
        "latchkey-server",
        "providers",
        &[
            "settings", "error", "password", "ids", "clock", "outbound", "webhooks", "crate",
        ],
    ),
    Rule::may_only_use(
        "latchkey-server",
        "config",
        &["providers", "settings", "strict", "ids", "crate"],
    ),
    Rule::may_only_use(
        "latchkey-server",
        "admin",
        &["auth", "config", "clock", "error", "crate"],
    ),
    Rule::may_only_use("latchkey-server", "error", &["crate"]),
    Rule::may_only_use("latchkey-server", "webhooks", &["outbound"]),
    Rule::may_only_use("latchkey-server", "settings", &[]),
    Rule::may_only_use("latchkey-server", "strict", &["settings"]),
    Rule::may_only_use("latchkey-server", "outbound", &[]),
    // latchkey-session: by concern, each module only on the ones below it.
    Rule::may_only_use("latchkey-session", "profile", &[]),
    Rule::may_only_use("latchkey-session", "events", &[]),
    Rule::may_only_use("latchkey-session", "store", &["profile"]),
    // The on-disk stores: file names and permissions below both; the SQLite store reads
    // the JSON store's files once, to migrate them.
    Rule::may_only_use("latchkey-session", "disk", &["store"]),
    Rule::may_only_use("latchkey-session", "file_store", &["disk", "store"]),
    Rule::may_only_use(
        "latchkey-session",
        "sqlite_store",
        &["disk", "file_store", "store"],
    ),
    Rule::may_only_use("latchkey-session", "error", &["store", "profile"]),
    Rule::may_only_use("latchkey-session", "config", &["clock", "error", "retry"]),
    Rule::may_only_use("latchkey-session", "wire", &["error", "retry"]),
    Rule::may_only_use("latchkey-session", "tokens", &["error"]),
    Rule::may_only_use("latchkey-session", "redirect", &["error"]),
    Rule::may_only_use(
        "latchkey-session",
        "client",
        &["clock", "config", "error", "retry", "wire"],
    ),
    Rule::may_only_use(
        "latchkey-session",
        "record",
        &["error", "profile", "store", "tokens"],
    ),
    Rule::may_only_use(
        "latchkey-session",
        "registry",
        &["error", "events", "profile", "record", "store"],
    ),
    Rule::must_not_use("latchkey-session", "context", &["user", "app", "refresh"]),
    Rule::must_not_use("latchkey-session", "refresh", &["user", "app"]),
    Rule::must_not_use("latchkey-session", "user", &["app"]),
];
