#!/usr/bin/env node
// Compatibility suite: the official realm-web@2.0.1 client against latchkey-server.
//
// Usage: node run.js --server <path to the latchkey-server binary>
//
// The script starts its own webhooks (custom function, confirmation and reset
// functions), writes a server config for them, starts latchkey-server on a free
// loopback port, runs every scenario as a separate check, prints one line per
// scenario and the summary line `N passed, M failed`, and exits non-zero on any
// failure. With --record FILE it also writes every request realm-web sent
// (method, path, headers that matter, body keys) as JSON, for the wire cross-check.
"use strict";

const assert = require("node:assert/strict");
const crypto = require("node:crypto");
const fs = require("node:fs");
const http = require("node:http");
const os = require("node:os");
const path = require("node:path");
const { spawn } = require("node:child_process");
const Realm = require("realm-web");

const args = process.argv.slice(2);
function arg(name) {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}
const serverBin = arg("--server") || process.env.LATCHKEY_SERVER_BIN;
const recordFile = arg("--record");
const only = arg("--only");
if (!serverBin) {
  console.error("usage: node run.js --server <latchkey-server binary> [--record FILE] [--only NAME]");
  process.exit(2);
}

// ---------------------------------------------------------------- storage ---
// realm-web in Node keeps users in memory; each App gets its own storage object.
const { Storage } = require("./storage");

// --------------------------------------------------------------- recorder ---
const recorded = [];
function recordingFetch(scenario) {
  return async (url, init = {}) => {
    const u = new URL(url);
    const headers = Object.fromEntries(
      Object.entries(init.headers || {}).map(([k, v]) => [k.toLowerCase(), v]),
    );
    let bodyKeys = null;
    if (typeof init.body === "string" && init.body.length > 0) {
      try { bodyKeys = Object.keys(JSON.parse(init.body)).sort(); } catch { bodyKeys = ["<non-json>"]; }
    }
    recorded.push({
      scenario: scenario.current,
      method: (init.method || "GET").toUpperCase(),
      path: u.pathname,
      query: u.search,
      authorization: headers.authorization ? tokenKind(headers.authorization) : null,
      content_type: headers["content-type"] || null,
      accept: headers.accept || null,
      body_keys: bodyKeys,
    });
    return fetch(url, init);
  };
}
function tokenKind(header) {
  const token = header.replace(/^Bearer /, "");
  try {
    const payload = JSON.parse(Buffer.from(token.split(".")[1], "base64url").toString());
    return `Bearer <${payload.typ || "jwt"}>`;
  } catch {
    return "Bearer <opaque>";
  }
}

// ---------------------------------------------------------------- webhooks ---
// One small HTTP server plays the app's functions: custom-function auth,
// custom confirmation and custom password reset.
const hookCalls = [];
function startHooks() {
  return new Promise((resolve) => {
    const srv = http.createServer((req, res) => {
      let body = "";
      req.on("data", (c) => (body += c));
      req.on("end", () => {
        let payload = {};
        try { payload = JSON.parse(body || "{}"); } catch { /* keep {} */ }
        hookCalls.push({ path: req.url, payload, raw: body, headers: req.headers });
        const reply = (status, obj) => {
          res.writeHead(status, { "content-type": "application/json" });
          res.end(JSON.stringify(obj));
        };
        if (req.url === "/auth") {
          if (payload.username && !payload.reject) return reply(200, { id: `fn-${payload.username}`, name: payload.username });
          return reply(200, { error: "rejected by the auth function" });
        }
        if (req.url === "/confirm") {
          // username decides: pending-* stays pending, fail-* fails, others succeed
          const u = String(payload.username || "");
          if (u.startsWith("pending")) return reply(200, { status: "pending" });
          if (u.startsWith("fail")) return reply(200, { status: "fail" });
          return reply(200, { status: "success" });
        }
        if (req.url === "/reset") {
          const extra = Array.isArray(payload.arguments) ? payload.arguments : [];
          const mode = extra[0] || "success";
          return reply(200, { status: mode });
        }
        reply(404, { error: "no such hook" });
      });
    });
    srv.listen(0, "127.0.0.1", () => resolve(srv));
  });
}

// ------------------------------------------------------------------ server ---
const ADMIN_TOKEN = crypto.randomBytes(24).toString("hex");
const JWT_KEY = crypto.randomBytes(32).toString("hex");
const WEBHOOK_SECRET = crypto.randomBytes(16).toString("hex");

function serverConfig(dir, hookUrl) {
  const secret = () => crypto.randomBytes(32).toString("hex");
  return `
listen = "127.0.0.1:0"
database = "sqlite://${path.join(dir, "compat.db").replace(/\\/g, "/")}"
admin_token = "${ADMIN_TOKEN}"

# Main app: email confirmation and reset by email (outbox), every provider realm-web can use in Node.
[[apps]]
id = "compat-app"
signing_secret = "${secret()}"
access_token_ttl_secs = 1800
refresh_token_ttl_secs = 5184000
[apps.providers.anon-user]
enabled = true
[apps.providers.local-userpass]
enabled = true
auto_confirm = false
[apps.providers.api-key]
enabled = true
[apps.providers.custom-token]
enabled = true
signing_algorithm = "HS256"
signing_keys = ["${JWT_KEY}"]
audience = ["compat-app"]
[apps.providers.custom-function]
enabled = true
webhook_url = "${hookUrl}/auth"
webhook_secret = "${WEBHOOK_SECRET}"

# Confirmation and reset run through webhooks (functions).
[[apps]]
id = "compat-hooks"
signing_secret = "${secret()}"
[apps.providers.local-userpass]
enabled = true
auto_confirm = false
confirmation_webhook_url = "${hookUrl}/confirm"
reset_webhook_url = "${hookUrl}/reset"

# Access tokens live 2 seconds: exercises realm-web's 401 -> refresh -> replay.
[[apps]]
id = "compat-short"
signing_secret = "${secret()}"
access_token_ttl_secs = 2
[apps.providers.anon-user]
enabled = true
`;
}

function startServer(configPath) {
  return new Promise((resolve, reject) => {
    const child = spawn(serverBin, ["serve", "--config", configPath], {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, RUST_LOG: process.env.RUST_LOG || "warn" },
    });
    let out = "";
    let err = "";
    const timer = setTimeout(() => reject(new Error(`server did not start in 30s\n${err}`)), 30000);
    child.stdout.on("data", (d) => {
      out += d;
      const m = out.match(/listening on (http:\/\/[^\s]+)/);
      if (m) { clearTimeout(timer); resolve({ child, url: m[1] }); }
    });
    child.stderr.on("data", (d) => { err += d; if (process.env.COMPAT_VERBOSE) process.stderr.write(d); });
    child.on("exit", (code) => { clearTimeout(timer); reject(new Error(`server exited (${code})\n${err}`)); });
  });
}

// ----------------------------------------------------------------- helpers ---
let BASE = "";
const current = { current: "" };

function newApp(id = "compat-app") {
  return new Realm.App({ id, baseUrl: BASE, storage: new Storage(), fetch: recordingFetch(current) });
}

async function admin(method, p, body) {
  const res = await fetch(`${BASE}/admin/v1${p}`, {
    method,
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, ...(body ? { "content-type": "application/json" } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`admin ${method} ${p}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

async function outbox(appId, to, kind) {
  const all = await admin("GET", `/apps/${appId}/outbox`);
  const mine = all.filter((m) => m.to === to && m.kind === kind);
  assert.ok(mine.length > 0, `no ${kind} message for ${to} in the outbox`);
  return mine[mine.length - 1];
}

async function expectError(promise, code, status) {
  try {
    await promise;
  } catch (e) {
    assert.equal(e.errorCode, code, `expected error_code ${code}, got ${e.errorCode} (${e.message})`);
    if (status) assert.equal(e.statusCode, status, `status for ${code}`);
    return e;
  }
  assert.fail(`expected ${code}, but the call succeeded`);
}

function hs256(payload, key = JWT_KEY) {
  const enc = (o) => Buffer.from(JSON.stringify(o)).toString("base64url");
  const data = `${enc({ alg: "HS256", typ: "JWT" })}.${enc(payload)}`;
  const sig = crypto.createHmac("sha256", key).update(data).digest("base64url");
  return `${data}.${sig}`;
}
function customJwt(sub, extra = {}) {
  const now = Math.floor(Date.now() / 1000);
  return hs256({ sub, aud: "compat-app", iat: now, exp: now + 600, ...extra });
}

let seq = 0;
const email = (p = "user") => `${p}-${Date.now()}-${++seq}@example.com`;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function confirmedUser(app, appId = "compat-app") {
  const e = email();
  await app.emailPasswordAuth.registerUser({ email: e, password: "p4ssw0rd!" });
  const msg = await outbox(appId, e, "confirm");
  await app.emailPasswordAuth.confirmUser({ token: msg.token, tokenId: msg.token_id });
  return e;
}

// --------------------------------------------------------------- scenarios ---
const scenarios = [];
const scenario = (name, fn) => scenarios.push({ name, fn });

scenario("anonymous login (location, login, profile)", async () => {
  const app = newApp();
  const user = await app.logIn(Realm.Credentials.anonymous());
  assert.equal(user.state, "active");
  assert.match(user.id, /^[0-9a-f]{24}$/);
  assert.equal(user.providerType, "anon-user");
  assert.equal(user.identities.length, 1);
  assert.equal(user.identities[0].providerType, "anon-user");
  assert.match(user.deviceId, /^[0-9a-f]{24}$/);
  assert.equal(app.currentUser.id, user.id);
});

scenario("anonymous login reuses the logged-in anonymous user", async () => {
  const app = newApp();
  const a = await app.logIn(Realm.Credentials.anonymous());
  const b = await app.logIn(Realm.Credentials.anonymous());
  assert.equal(a.id, b.id);
});

scenario("anonymous(false) creates a new user and keeps the device id", async () => {
  const app = newApp();
  const a = await app.logIn(Realm.Credentials.anonymous());
  const b = await app.logIn(Realm.Credentials.anonymous(false));
  assert.notEqual(a.id, b.id);
  assert.equal(a.deviceId, b.deviceId, "the server reuses the device id realm-web sent");
});

scenario("email/password: register, unconfirmed login refused, confirm via outbox, log in", async () => {
  const app = newApp();
  const e = email();
  await app.emailPasswordAuth.registerUser({ email: e, password: "p4ssw0rd!" });
  await assert.rejects(app.logIn(Realm.Credentials.emailPassword(e, "p4ssw0rd!")));
  const msg = await outbox("compat-app", e, "confirm");
  assert.ok(msg.token && msg.token_id);
  await app.emailPasswordAuth.confirmUser({ token: msg.token, tokenId: msg.token_id });
  const user = await app.logIn(Realm.Credentials.emailPassword(e, "p4ssw0rd!"));
  assert.equal(user.providerType, "local-userpass");
  assert.equal(user.profile.email, e);
});

scenario("email/password: resend confirmation email, then already confirmed", async () => {
  const app = newApp();
  const e = email();
  await app.emailPasswordAuth.registerUser({ email: e, password: "p4ssw0rd!" });
  const before = (await admin("GET", "/apps/compat-app/outbox")).filter((m) => m.to === e).length;
  await app.emailPasswordAuth.resendConfirmationEmail({ email: e });
  const after = (await admin("GET", "/apps/compat-app/outbox")).filter((m) => m.to === e).length;
  assert.equal(after, before + 1);
  const msg = await outbox("compat-app", e, "confirm");
  await app.emailPasswordAuth.confirmUser({ token: msg.token, tokenId: msg.token_id });
  await expectError(app.emailPasswordAuth.resendConfirmationEmail({ email: e }), "UserAlreadyConfirmed");
});

scenario("email/password: a used or wrong confirmation token is UserpassTokenInvalid", async () => {
  const app = newApp();
  const e = email();
  await app.emailPasswordAuth.registerUser({ email: e, password: "p4ssw0rd!" });
  const msg = await outbox("compat-app", e, "confirm");
  await expectError(app.emailPasswordAuth.confirmUser({ token: "x" + msg.token, tokenId: msg.token_id }), "UserpassTokenInvalid");
  await app.emailPasswordAuth.confirmUser({ token: msg.token, tokenId: msg.token_id });
  await expectError(app.emailPasswordAuth.confirmUser({ token: msg.token, tokenId: msg.token_id }), "UserpassTokenInvalid");
});

scenario("email/password: reset by email through the outbox", async () => {
  const app = newApp();
  const e = await confirmedUser(app);
  await app.emailPasswordAuth.sendResetPasswordEmail({ email: e });
  const msg = await outbox("compat-app", e, "reset");
  await app.emailPasswordAuth.resetPassword({ token: msg.token, tokenId: msg.token_id, password: "n3w-p4ssw0rd" });
  await expectError(app.logIn(Realm.Credentials.emailPassword(e, "p4ssw0rd!")), "InvalidPassword", 401);
  const user = await app.logIn(Realm.Credentials.emailPassword(e, "n3w-p4ssw0rd"));
  assert.equal(user.profile.email, e);
});

scenario("email/password: custom confirmation function (pending, then retry succeeds)", async () => {
  const app = newApp("compat-hooks");
  const pending = `pending-${email()}`;
  await app.emailPasswordAuth.registerUser({ email: pending, password: "p4ssw0rd!" });
  await assert.rejects(app.logIn(Realm.Credentials.emailPassword(pending, "p4ssw0rd!")));
  const ok = email("fn");
  await app.emailPasswordAuth.registerUser({ email: ok, password: "p4ssw0rd!" });
  const user = await app.logIn(Realm.Credentials.emailPassword(ok, "p4ssw0rd!"));
  assert.equal(user.state, "active");
  await expectError(app.emailPasswordAuth.retryCustomConfirmation({ email: ok }), "UserAlreadyConfirmed");
  const calls = hookCalls.filter((c) => c.path === "/confirm" && c.payload.username === pending);
  assert.ok(calls.length >= 1 && calls[0].payload.token && calls[0].payload.tokenId);
  await app.emailPasswordAuth.retryCustomConfirmation({ email: pending });
  assert.ok(hookCalls.filter((c) => c.path === "/confirm" && c.payload.username === pending).length >= 2);
});

scenario("email/password: reset password function (success, pending, fail)", async () => {
  const app = newApp("compat-hooks");
  const e = email("fn");
  await app.emailPasswordAuth.registerUser({ email: e, password: "p4ssw0rd!" });
  await app.emailPasswordAuth.callResetPasswordFunction({ email: e, password: "pending-pw1" }, "pending");
  await app.logIn(Realm.Credentials.emailPassword(e, "p4ssw0rd!"));
  await assert.rejects(app.emailPasswordAuth.callResetPasswordFunction({ email: e, password: "failing-pw1" }, "fail"));
  await app.emailPasswordAuth.callResetPasswordFunction({ email: e, password: "n3w-p4ssw0rd" }, "success", { n: 1 });
  const user = await app.logIn(Realm.Credentials.emailPassword(e, "n3w-p4ssw0rd"));
  assert.equal(user.state, "active");
  const call = hookCalls.filter((c) => c.path === "/reset").pop();
  assert.deepEqual(call.payload.arguments, ["success", { n: 1 }], "EJSON arguments decoded to plain JSON");
  await expectError(
    app.emailPasswordAuth.callResetPasswordFunction({ email: email("nobody"), password: "whatever1" }),
    "UserNotFound",
  );
});

scenario("user API keys: create, list, fetch, disable, enable, delete, log in", async () => {
  const app = newApp();
  await confirmedUser(app).then((e) => app.logIn(Realm.Credentials.emailPassword(e, "p4ssw0rd!")));
  const user = app.currentUser;
  const created = await user.apiKeys.create("ci-key");
  assert.match(String(created._id), /^[0-9a-f]{24}$/);
  assert.equal(created.name, "ci-key");
  assert.equal(created.disabled, false);
  assert.ok(created.key && created.key.length >= 32);
  const all = await user.apiKeys.fetchAll();
  assert.equal(all.length, 1);
  assert.equal(all[0].key, undefined, "the secret is shown only once");
  const one = await user.apiKeys.fetch(created._id);
  assert.equal(one.name, "ci-key");

  const keyApp = newApp();
  const keyUser = await keyApp.logIn(Realm.Credentials.apiKey(created.key));
  assert.equal(keyUser.id, user.id, "a user API key logs in as its owner");
  const profile = await fetch(`${BASE}/api/client/v2.0/auth/profile`, { headers: { authorization: `Bearer ${keyUser.accessToken}` } });
  assert.equal((await profile.json()).type, "normal", "a user API key's user is a normal user");

  await user.apiKeys.disable(created._id);
  assert.equal((await user.apiKeys.fetch(created._id)).disabled, true);
  await assert.rejects(newApp().logIn(Realm.Credentials.apiKey(created.key)));
  await user.apiKeys.enable(created._id);
  assert.equal((await user.apiKeys.fetch(created._id)).disabled, false);
  await user.apiKeys.delete(created._id);
  assert.equal((await user.apiKeys.fetchAll()).length, 0);
  await expectError(user.apiKeys.fetch(created._id), "APIKeyNotFound", 404);
  assert.equal(user.state, "active", "a missing key is a 404, which does not log the user out");
});

scenario("server API key (admin API) logs in as a server user", async () => {
  const key = await admin("POST", "/apps/compat-app/api_keys", { name: `server-${Date.now()}` });
  assert.ok(key.key && key._id);
  const app = newApp();
  const user = await app.logIn(Realm.Credentials.apiKey(key.key));
  assert.equal(user.providerType, "api-key");
  const raw = await fetch(`${BASE}/api/client/v2.0/auth/profile`, { headers: { authorization: `Bearer ${user.accessToken}` } });
  assert.equal((await raw.json()).type, "server");
});

scenario("custom JWT login, with metadata in the profile", async () => {
  const app = newApp();
  const sub = `ext-${Date.now()}`;
  const user = await app.logIn(Realm.Credentials.jwt(customJwt(sub, { name: "Jay" })));
  assert.equal(user.providerType, "custom-token");
  const again = await newApp().logIn(Realm.Credentials.jwt(customJwt(sub)));
  assert.equal(again.id, user.id, "the same external subject is the same user");
});

scenario("custom function login (EJSON payload decoded for the function)", async () => {
  const app = newApp();
  const user = await app.logIn(Realm.Credentials.function({ username: "fn-user", age: 42 }));
  assert.equal(user.providerType, "custom-function");
  const call = hookCalls.filter((c) => c.path === "/auth").pop();
  assert.deepEqual(call.payload, { username: "fn-user", age: 42 });
  const stamp = call.headers["x-latchkey-timestamp"];
  assert.match(stamp ?? "", /^\d+$/, "webhook requests carry X-Latchkey-Timestamp (Unix seconds)");
  assert.ok(Math.abs(Number(stamp) - Date.now() / 1000) < 300, "the timestamp is current");
  const expected = "sha256=" + crypto.createHmac("sha256", WEBHOOK_SECRET).update(`${stamp}.`).update(call.raw).digest("hex");
  assert.equal(call.headers["x-latchkey-signature"], expected, "webhook requests carry an HMAC-SHA256 of \"<timestamp>.<body>\"");
  const again = await newApp().logIn(Realm.Credentials.function({ username: "fn-user" }));
  assert.equal(again.id, user.id);
});

scenario("refresh the access token", async () => {
  const app = newApp();
  const user = await app.logIn(Realm.Credentials.anonymous());
  const before = user.accessToken;
  await sleep(1100);
  await user.refreshAccessToken();
  assert.notEqual(user.accessToken, before);
  assert.equal(user.state, "active");
});

scenario("refresh custom data after an admin update", async () => {
  const app = newApp();
  const user = await app.logIn(Realm.Credentials.anonymous(false));
  assert.deepEqual(user.customData, {});
  await admin("PUT", `/apps/compat-app/users/${user.id}/custom_data`, { plan: "pro", seats: 3 });
  const data = await user.refreshCustomData();
  assert.equal(data.plan, "pro");
  assert.equal(user.customData.seats, 3);
});

scenario("refresh the profile", async () => {
  const app = newApp();
  const e = await confirmedUser(app);
  const user = await app.logIn(Realm.Credentials.emailPassword(e, "p4ssw0rd!"));
  await user.refreshProfile();
  assert.equal(user.profile.email, e);
  assert.equal(user.identities[0].providerType, "local-userpass");
});

scenario("link email/password to an anonymous user", async () => {
  const app = newApp();
  const anon = await app.logIn(Realm.Credentials.anonymous(false));
  const refresh = anon.refreshToken;
  const e = await confirmedUser(newApp());
  await anon.linkCredentials(Realm.Credentials.emailPassword(e, "p4ssw0rd!"));
  assert.equal(anon.identities.length, 2);
  assert.deepEqual(anon.identities.map((i) => i.providerType).sort(), ["anon-user", "local-userpass"]);
  assert.equal(anon.refreshToken, refresh);
  await anon.refreshAccessToken(); // the old refresh token still works
  const again = await newApp().logIn(Realm.Credentials.emailPassword(e, "p4ssw0rd!"));
  assert.equal(again.id, anon.id, "the linked identity logs in as the same user");
});

scenario("switch between users", async () => {
  const app = newApp();
  const a = await app.logIn(Realm.Credentials.anonymous(false));
  const b = await app.logIn(Realm.Credentials.anonymous(false));
  assert.equal(app.currentUser.id, b.id);
  app.switchUser(a);
  assert.equal(app.currentUser.id, a.id);
  assert.equal(Object.keys(app.allUsers).length, 2);
});

scenario("log out", async () => {
  const app = newApp();
  const e = await confirmedUser(app);
  const user = await app.logIn(Realm.Credentials.emailPassword(e, "p4ssw0rd!"));
  const refresh = user.refreshToken;
  await user.logOut();
  assert.equal(user.state, "logged-out");
  const res = await fetch(`${BASE}/api/client/v2.0/auth/session`, { method: "POST", headers: { authorization: `Bearer ${refresh}` } });
  assert.equal(res.status, 401, "the session is revoked on the server");
});

scenario("remove a user", async () => {
  const app = newApp();
  const user = await app.logIn(Realm.Credentials.anonymous(false));
  await app.removeUser(user);
  assert.equal(user.state, "removed");
  assert.equal(app.currentUser, null);
});

scenario("delete a user (log-out-after-delete quirk)", async () => {
  const app = newApp();
  const e = await confirmedUser(app);
  const user = await app.logIn(Realm.Credentials.emailPassword(e, "p4ssw0rd!"));
  await app.deleteUser(user); // DELETE /auth/delete, then DELETE /auth/session must not throw
  assert.equal(user.state, "removed");
  await expectError(newApp().logIn(Realm.Credentials.emailPassword(e, "p4ssw0rd!")), "InvalidPassword", 401);
});

scenario("expired access token: 401, refresh, replay", async () => {
  const app = newApp("compat-short");
  const user = await app.logIn(Realm.Credentials.anonymous());
  const before = user.accessToken;
  await sleep(3100);
  await user.refreshProfile(); // 401 InvalidSession -> POST /auth/session -> replay
  assert.notEqual(user.accessToken, before);
  assert.equal(user.state, "active");
});

scenario("session revocation by the admin logs the user out", async () => {
  const app = newApp();
  const user = await app.logIn(Realm.Credentials.anonymous(false));
  await admin("DELETE", `/apps/compat-app/users/${user.id}/sessions`);
  await expectError(user.refreshAccessToken(), "InvalidSession", 401);
  assert.equal(user.state, "logged-out");
});

scenario("error: wrong password is InvalidPassword (401)", async () => {
  const app = newApp();
  const e = await confirmedUser(app);
  const err = await expectError(app.logIn(Realm.Credentials.emailPassword(e, "wrong-password")), "InvalidPassword", 401);
  assert.doesNotMatch(err.message, /wrong-password/);
});

scenario("error: duplicate registration is AccountNameInUse", async () => {
  const app = newApp();
  const e = email();
  await app.emailPasswordAuth.registerUser({ email: e, password: "p4ssw0rd!" });
  await expectError(app.emailPasswordAuth.registerUser({ email: e, password: "p4ssw0rd!" }), "AccountNameInUse", 409);
});

scenario("error: unknown user is UserNotFound", async () => {
  const app = newApp();
  await expectError(app.emailPasswordAuth.resendConfirmationEmail({ email: email("ghost") }), "UserNotFound", 404);
});

scenario("error: disabled user is UserDisabled", async () => {
  const app = newApp();
  const e = await confirmedUser(app);
  const user = await app.logIn(Realm.Credentials.emailPassword(e, "p4ssw0rd!"));
  await admin("PUT", `/apps/compat-app/users/${user.id}/disable`);
  await expectError(newApp().logIn(Realm.Credentials.emailPassword(e, "p4ssw0rd!")), "UserDisabled");
  await admin("PUT", `/apps/compat-app/users/${user.id}/enable`);
  await newApp().logIn(Realm.Credentials.emailPassword(e, "p4ssw0rd!"));
});

scenario("error: bad custom JWT and rejected function are AuthError", async () => {
  const app = newApp();
  const forged = hs256({ sub: "x", aud: "compat-app", iat: 1, exp: 9999999999 }, "not-the-key");
  await expectError(app.logIn(Realm.Credentials.jwt(forged)), "AuthError", 401);
  const now = Math.floor(Date.now() / 1000);
  await expectError(app.logIn(Realm.Credentials.jwt(customJwt("x", { exp: now - 3600, iat: now - 7200 }))), "AuthError", 401);
  await expectError(app.logIn(Realm.Credentials.function({ username: "x", reject: true })), "AuthError", 401);
  assert.equal(app.currentUser, null);
});

// -------------------------------------------------------------------- main ---
async function main() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "latchkey-compat-"));
  const hooks = await startHooks();
  const hookUrl = `http://127.0.0.1:${hooks.address().port}`;
  const configPath = path.join(dir, "latchkey.toml");
  fs.writeFileSync(configPath, serverConfig(dir, hookUrl));
  const { child, url } = await startServer(configPath);
  BASE = url;
  console.log(`realm-web ${require("realm-web/package.json").version} against latchkey-server at ${url}`);

  let passed = 0;
  let failed = 0;
  for (const s of scenarios) {
    if (only && !s.name.includes(only)) continue;
    current.current = s.name;
    try {
      await s.fn();
      passed++;
      console.log(`ok - ${s.name}`);
    } catch (e) {
      failed++;
      console.log(`FAIL - ${s.name}: ${e && e.stack ? e.stack.split("\n").slice(0, 3).join(" | ") : e}`);
    }
  }
  if (recordFile) fs.writeFileSync(recordFile, JSON.stringify(recorded, null, 1));
  child.kill("SIGTERM");
  hooks.close();
  fs.rmSync(dir, { recursive: true, force: true });
  console.log(`compat: ${passed} passed, ${failed} failed`);
  process.exit(failed === 0 ? 0 : 1);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
