#!/usr/bin/env node
// Browser tests of the web console: headless Chromium (playwright-core, ./browser.js)
// drives /console of a `latchkey-server dev`, and the official realm-web client plays
// the app's users, so that what the console does is seen where it matters (a disabled
// user's refresh fails, edited custom data reaches the SDK after a refresh).
//
// Usage: node console.js --server <latchkey-server binary> [--screenshots DIR] [--only NAME]
//
// Prints one line per scenario and `N passed, M failed`; exits non-zero on a failure.
// With --screenshots it writes the main pages as PNG files into DIR (docs/ keeps them).
"use strict";

const assert = require("node:assert/strict");
const fs = require("node:fs");
const path = require("node:path");
const { spawn } = require("node:child_process");
const Realm = require("realm-web");
const { launch } = require("./browser");
const { Storage } = require("./storage");

const args = process.argv.slice(2);
const arg = (name) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const serverBin = arg("--server") || process.env.LATCHKEY_SERVER_BIN;
const shots = arg("--screenshots");
const only = arg("--only");
if (!serverBin) {
  console.error("usage: node console.js --server <latchkey-server binary> [--screenshots DIR] [--only NAME]");
  process.exit(2);
}

/** Start `latchkey-server dev`; its URL, app id and admin token from the banner. */
function startDev() {
  return new Promise((resolve, reject) => {
    const child = spawn(serverBin, ["dev"], {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, RUST_LOG: process.env.RUST_LOG || "warn" },
    });
    let out = "";
    let err = "";
    const timer = setTimeout(() => reject(new Error(`server did not start in 30s\n${err}`)), 30000);
    child.stdout.on("data", (d) => {
      out += d;
      const url = out.match(/listening on (http:\/\/[^\s]+)/);
      const app = out.match(/app id: (\S+)/);
      const token = out.match(/admin token: (\S+)/);
      const consoleUrl = out.match(/console: (http:\/\/\S+)/);
      if (url && app && token && consoleUrl) {
        clearTimeout(timer);
        resolve({ child, url: url[1], app: app[1], token: token[1], consoleUrl: consoleUrl[1] });
      }
    });
    child.stderr.on("data", (d) => { err += d; });
    child.on("exit", (code) => { clearTimeout(timer); reject(new Error(`server exited (${code})\n${err}`)); });
  });
}

let S; // the server
let browser;

function realmApp() {
  return new Realm.App({ id: S.app, baseUrl: S.url, storage: new Storage() });
}

/** A new email/password user logged in through realm-web (dev auto-confirms). */
async function emailUser(email) {
  const app = realmApp();
  await app.emailPasswordAuth.registerUser({ email, password: "p4ssw0rd!" });
  const user = await app.logIn(Realm.Credentials.emailPassword(email, "p4ssw0rd!"));
  return { app, user };
}

/** A browser page signed in to the console. */
async function signedIn(viewport) {
  const context = await browser.newContext(viewport ? { viewport } : {});
  const page = await context.newPage();
  await page.goto(S.consoleUrl);
  await page.fill("input[name=token]", S.token);
  await Promise.all([page.waitForURL(`**/console/apps/${S.app}`), page.click("button:has-text('Sign in')")]);
  return { context, page };
}

async function openUser(page, email) {
  await page.fill("input[name=q]", email);
  await Promise.all([page.waitForLoadState(), page.click("button:has-text('Search')")]);
  const rows = page.locator("tbody tr");
  assert.equal(await rows.count(), 1, "one user found");
  await Promise.all([page.waitForLoadState(), rows.first().locator("a").click()]);
  assert.match(await page.locator("h1").innerText(), /^User [0-9a-f]{24}$/);
}

async function shot(page, name) {
  if (!shots) return;
  fs.mkdirSync(shots, { recursive: true });
  await page.screenshot({ path: path.join(shots, `${name}.png`), fullPage: true });
}

const scenarios = {
  async wrong_token_is_refused() {
    const context = await browser.newContext();
    const page = await context.newPage();
    const res = await page.goto(`${S.url}/console/apps/${S.app}`);
    assert.equal(res.status(), 401, "nothing without signing in");
    await page.fill("input[name=token]", "not-the-admin-token");
    await page.click("button:has-text('Sign in')");
    await page.waitForSelector("[role=alert]");
    assert.match(await page.locator("[role=alert]").innerText(), /Wrong admin token/);
    assert.equal((await context.cookies()).length, 0, "no cookie for a wrong token");
    await shot(page, "console-sign-in");
    await context.close();
  },

  async sign_in_sets_a_strict_http_only_cookie_and_log_out_ends_it() {
    const { context, page } = await signedIn();
    const [cookie] = await context.cookies();
    assert.equal(cookie.name, "latchkey_console");
    assert.equal(cookie.httpOnly, true);
    assert.equal(cookie.sameSite, "Strict");
    assert.equal(cookie.secure, false, "plain http on loopback");
    assert.equal(await page.evaluate(() => document.cookie), "", "not readable by scripts");
    await Promise.all([page.waitForLoadState(), page.click("text=Log out")]);
    assert.equal((await context.cookies()).length, 0);
    const res = await page.goto(`${S.url}/console/apps/${S.app}`);
    assert.equal(res.status(), 401);
    await context.close();
  },

  async forms_without_the_csrf_token_are_refused() {
    const { user } = await emailUser("csrf@example.com");
    const { context, page } = await signedIn();
    const res = await page.request.post(`${S.url}/console/apps/${S.app}/users/${user.id}/disable`, {
      form: { csrf: "forged" },
      maxRedirects: 0,
    });
    assert.equal(res.status(), 403);
    const after = await page.request.get(`${S.url}/admin/v1/apps/${S.app}/users/${user.id}`, {
      headers: { authorization: `Bearer ${S.token}` },
    });
    assert.equal((await after.json()).disabled, false, "nothing changed");
    await context.close();
  },

  async search_by_email_id_and_provider_with_counts() {
    const { user } = await emailUser("findme@example.com");
    const anon = await realmApp().logIn(Realm.Credentials.anonymous());
    const { context, page } = await signedIn();
    assert.ok(Number(await page.locator("#count-users").innerText()) >= 2);
    assert.ok(Number(await page.locator("#count-sessions").innerText()) >= 2);
    await page.fill("input[name=q]", "FINDME@example");
    await Promise.all([page.waitForLoadState(), page.click("button:has-text('Search')")]);
    assert.equal(await page.locator("tbody tr").count(), 1);
    assert.match(await page.locator("tbody").innerText(), /findme@example\.com/);
    await page.fill("input[name=q]", anon.id);
    await Promise.all([page.waitForLoadState(), page.click("button:has-text('Search')")]);
    assert.match(await page.locator("tbody").innerText(), new RegExp(anon.id));
    await page.fill("input[name=q]", "");
    await page.selectOption("select[name=provider]", "local-userpass");
    await Promise.all([page.waitForLoadState(), page.click("button:has-text('Search')")]);
    const text = await page.locator("tbody").innerText();
    assert.ok(text.includes(user.id) && !text.includes(anon.id), "filtered by provider");
    await page.selectOption("select[name=provider]", "");
    await page.fill("input[name=q]", "");
    await Promise.all([page.waitForLoadState(), page.click("button:has-text('Search')")]);
    await shot(page, "console-users");
    await context.close();
  },

  async disabling_a_user_makes_its_refresh_fail() {
    const { user } = await emailUser("disable@example.com");
    await user.refreshAccessToken();
    const { context, page } = await signedIn();
    await openUser(page, "disable@example.com");
    await Promise.all([page.waitForLoadState(), page.click("button:has-text('Disable')")]);
    assert.equal(await page.locator("#user-state").innerText(), "disabled");
    await assert.rejects(user.refreshAccessToken(), "the SDK's refresh fails for a disabled user");
    await Promise.all([page.waitForLoadState(), page.click("button:has-text('Enable')")]);
    assert.equal(await page.locator("#user-state").innerText(), "enabled");
    await context.close();
  },

  async revoking_sessions_ends_the_sdk_session() {
    const { user } = await emailUser("revoke@example.com");
    const { context, page } = await signedIn();
    await openUser(page, "revoke@example.com");
    assert.equal(await page.locator("#no-sessions").count(), 0, "a session is listed");
    await shot(page, "console-user");
    await Promise.all([page.waitForLoadState(), page.click("button:has-text('Revoke sessions')")]);
    assert.equal(await page.locator("#no-sessions").count(), 1);
    await assert.rejects(user.refreshAccessToken());
    await context.close();
  },

  async custom_data_edits_are_validated_and_reach_the_sdk() {
    const { user } = await emailUser("custom@example.com");
    const { context, page } = await signedIn();
    await openUser(page, "custom@example.com");
    await page.fill("textarea[name=custom_data]", "{not json");
    await Promise.all([page.waitForLoadState(), page.click("text=Save custom data")]);
    assert.match(await page.locator("[role=alert]").innerText(), /Not valid JSON/);
    assert.equal(await page.locator("textarea").inputValue(), "{not json", "what was typed is kept");
    await page.fill("textarea[name=custom_data]", "[1, 2]");
    await Promise.all([page.waitForLoadState(), page.click("text=Save custom data")]);
    assert.match(await page.locator("[role=alert]").innerText(), /JSON object/);
    await page.fill("textarea[name=custom_data]", '{"plan": "gold", "seats": 3}');
    await Promise.all([page.waitForLoadState(), page.click("text=Save custom data")]);
    assert.match(await page.locator("[role=status]").innerText(), /saved/);
    const data = await user.refreshCustomData();
    assert.equal(data.plan, "gold");
    assert.equal(data.seats, 3);
    await context.close();
  },

  async deleting_a_user_asks_for_confirmation() {
    const { user } = await emailUser("delete@example.com");
    const { context, page } = await signedIn();
    await openUser(page, "delete@example.com");
    await Promise.all([page.waitForLoadState(), page.click("text=Delete…")]);
    assert.match(await page.locator("main").innerText(), /cannot be undone/);
    await Promise.all([page.waitForLoadState(), page.click("text=Cancel")]);
    await Promise.all([page.waitForLoadState(), page.click("text=Delete…")]);
    await Promise.all([page.waitForLoadState(), page.click("text=Delete for good")]);
    assert.match(await page.locator("[role=status]").innerText(), /deleted/);
    await assert.rejects(user.refreshAccessToken());
    await context.close();
  },

  async server_api_keys_are_created_once_shown_and_deleted() {
    const { context, page } = await signedIn();
    await Promise.all([page.waitForLoadState(), page.click("header >> text=API keys")]);
    await page.fill("input[name=name]", "backend");
    await Promise.all([page.waitForLoadState(), page.click("text=Create key")]);
    const secret = await page.locator("#new-key").innerText();
    assert.match(secret, /^\S{32,}$/);
    await shot(page, "console-keys");
    const keyUser = await realmApp().logIn(Realm.Credentials.apiKey(secret));
    assert.ok(keyUser.id);
    await page.goto(`${S.url}/console/apps/${S.app}/keys`);
    assert.equal(await page.locator("#new-key").count(), 0, "the secret is shown once");
    assert.ok(!(await page.content()).includes(secret));
    const row = page.locator("tr", { hasText: "backend" });
    await Promise.all([page.waitForLoadState(), row.locator("button:has-text('Disable')").click()]);
    await assert.rejects(realmApp().logIn(Realm.Credentials.apiKey(secret)), "a disabled key cannot log in");
    await Promise.all([page.waitForLoadState(), page.locator("tr", { hasText: "backend" }).locator("button:has-text('Enable')").click()]);
    await realmApp().logIn(Realm.Credentials.apiKey(secret));
    await Promise.all([page.waitForLoadState(), page.locator("tr", { hasText: "backend" }).locator("button:has-text('Delete')").click()]);
    assert.equal(await page.locator("tr", { hasText: "backend" }).count(), 0);
    await assert.rejects(realmApp().logIn(Realm.Credentials.apiKey(secret)));
    await context.close();
  },

  async outbox_and_audit_log() {
    const app = realmApp();
    await app.emailPasswordAuth.sendResetPasswordEmail({ email: "findme@example.com" }).catch(() => {});
    const { context, page } = await signedIn({ width: 390, height: 844 });
    await Promise.all([page.waitForLoadState(), page.click("header >> text=Outbox")]);
    await Promise.all([page.waitForLoadState(), page.click("header >> text=Audit log")]);
    const audit = await page.locator("tbody").innerText();
    assert.match(audit, /disable_user/);
    assert.match(audit, /console 127\.0\.0\.1/);
    const width = await page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(width <= 390, `fits a phone-sized screen (${width}px)`);
    await shot(page, "console-audit-phone");
    await context.close();
  },
};

async function main() {
  S = await startDev();
  browser = await launch();
  let passed = 0;
  let failed = 0;
  for (const [name, run] of Object.entries(scenarios)) {
    if (only && name !== only) continue;
    try {
      await run();
      passed += 1;
      console.log(`ok   ${name}`);
    } catch (e) {
      failed += 1;
      console.log(`FAIL ${name}\n${e.stack}`);
    }
  }
  await browser.close();
  S.child.kill();
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed === 0 ? 0 : 1);
}

main().catch((e) => {
  console.error(e);
  if (S) S.child.kill();
  process.exit(1);
});
