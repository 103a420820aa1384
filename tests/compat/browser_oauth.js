#!/usr/bin/env node
// Browser sign-in suite: the official realm-web@2.0.1 in headless Chromium signs in
// with Google, Facebook and Apple through the OAuth redirect flow (protocol.md §3.7)
// against latchkey-server and the test kit's fake providers (their consent pages are
// clicked in the popup), and links Google to an email/password user.
//
// Usage: node browser_oauth.js --stack <oauth_stack example binary> [--screenshot FILE]
//
// The page is served from loopback by this script; the stack binary starts the
// server and the fakes with this page's callback as the only allowed redirect URI.
// Prints one line per scenario and `N passed, M failed`; exits non-zero on failure.
"use strict";

const assert = require("node:assert/strict");
const fs = require("node:fs");
const http = require("node:http");
const path = require("node:path");
const readline = require("node:readline");
const { spawn } = require("node:child_process");
const { launch } = require("./browser");

const args = process.argv.slice(2);
function arg(name) {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}
const stackBin = arg("--stack") || process.env.LATCHKEY_OAUTH_STACK_BIN;
const screenshot = arg("--screenshot");
if (!stackBin) {
  console.error("usage: node browser_oauth.js --stack <oauth_stack binary> [--screenshot FILE]");
  process.exit(2);
}

const realmWeb = fs.readFileSync(
  path.join(__dirname, "node_modules", "realm-web", "dist", "bundle.iife.js"),
);

/** The app page: buttons that sign in (or link) and show the result. */
function indexPage(server, appId, redirect) {
  return `<!doctype html><html><head><meta charset="utf-8"><title>latchkey web sign-in</title>
<script src="/realm-web.js"></script></head><body>
<h1>latchkey: sign in with realm-web</h1>
<button id="google">Sign in with Google</button>
<button id="facebook">Sign in with Facebook</button>
<button id="apple">Sign in with Apple</button>
<button id="link-google">Link Google</button>
<pre id="result">not signed in</pre>
<script>
  const app = new Realm.App({ id: ${JSON.stringify(appId)}, baseUrl: ${JSON.stringify(server)} });
  const redirect = ${JSON.stringify(redirect)};
  const show = (promise) => {
    window.outcome = promise.then(
      (user) => ({ ok: true, id: user.id, providerType: user.providerType,
                   identities: user.identities.map((i) => i.providerType),
                   current: app.currentUser && app.currentUser.id }),
      (err) => ({ ok: false, error: String(err && err.message || err) }),
    ).then((r) => { document.getElementById("result").textContent = JSON.stringify(r, null, 2); return r; });
  };
  document.getElementById("google").onclick = () => show(app.logIn(Realm.Credentials.google({ redirectUrl: redirect })));
  document.getElementById("facebook").onclick = () => show(app.logIn(Realm.Credentials.facebook(redirect)));
  document.getElementById("apple").onclick = () => show(app.logIn(Realm.Credentials.apple(redirect)));
  window.passwordUser = async (email) => {
    await app.emailPasswordAuth.registerUser({ email, password: "correct horse" });
    const user = await app.logIn(Realm.Credentials.emailPassword(email, "correct horse"));
    return user.id;
  };
  document.getElementById("link-google").onclick = () =>
    show(app.currentUser.linkCredentials(Realm.Credentials.google({ redirectUrl: redirect })).then(() => app.currentUser.refreshProfile()).then(() => app.currentUser));
</script></body></html>`;
}

const CALLBACK_PAGE = `<!doctype html><html><head><script src="/realm-web.js"></script></head>
<body><script>Realm.handleAuthRedirect();</script>signed in</body></html>`;

/** Serve the page, realm-web and the callback page on a free loopback port. */
function servePages(getIndex) {
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, "http://x");
    if (url.pathname === "/realm-web.js") {
      res.writeHead(200, { "content-type": "text/javascript" });
      return res.end(realmWeb);
    }
    if (url.pathname === "/callback.html") {
      res.writeHead(200, { "content-type": "text/html" });
      return res.end(CALLBACK_PAGE);
    }
    if (url.pathname === "/") {
      res.writeHead(200, { "content-type": "text/html" });
      return res.end(getIndex());
    }
    res.writeHead(404);
    res.end();
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(server)));
}

/** Start the stack binary; resolves with its `{url, app_id}` line. */
function startStack(redirect) {
  const child = spawn(stackBin, [redirect], { stdio: ["pipe", "pipe", "inherit"] });
  const lines = readline.createInterface({ input: child.stdout });
  return new Promise((resolve, reject) => {
    child.once("exit", (code) => reject(new Error(`oauth_stack exited (${code})`)));
    lines.once("line", (line) => resolve({ child, info: JSON.parse(line) }));
  });
}

/** Click `button`, then in the popup fill the fake consent page and click Allow. */
async function signInViaPopup(page, button, sub) {
  const popupOpened = page.waitForEvent("popup", { timeout: 15000 });
  await page.click(button);
  const popup = await popupOpened;
  await popup.waitForSelector("#allow", { timeout: 15000 });
  await popup.fill("#sub", sub);
  await popup.fill("#email", `${sub}@example.com`);
  await popup.click("#allow");
  return page.evaluate(() => window.outcome);
}

async function main() {
  let index = "";
  const pages = await servePages(() => index);
  const origin = `http://127.0.0.1:${pages.address().port}`;
  const redirect = `${origin}/callback.html`;
  const { child, info } = await startStack(redirect);
  index = indexPage(info.url, info.app_id, redirect);
  const browser = await launch();
  const results = [];
  const scenario = async (name, body) => {
    const context = await browser.newContext();
    const page = await context.newPage();
    try {
      await page.goto(`${origin}/`);
      await body(page);
      results.push(true);
      console.log(`ok   ${name}`);
    } catch (e) {
      results.push(false);
      console.log(`FAIL ${name}: ${e && e.stack || e}`);
    } finally {
      await context.close();
    }
  };

  for (const [provider, button] of [
    ["oauth2-google", "#google"],
    ["oauth2-facebook", "#facebook"],
    ["oauth2-apple", "#apple"],
  ]) {
    await scenario(`browser: sign in with ${provider} (popup + handleAuthRedirect)`, async (page) => {
      const r = await signInViaPopup(page, button, `web-${provider}`);
      assert.equal(r.ok, true, JSON.stringify(r));
      assert.equal(r.providerType, provider);
      assert.equal(r.current, r.id, "app.currentUser is the new user");
      assert.deepEqual(r.identities, [provider]);
      // The same person again is the same user.
      const again = await signInViaPopup(page, button, `web-${provider}`);
      assert.equal(again.id, r.id);
    });
  }

  await scenario("browser: link Google to an email/password user (X-BAAS-Location)", async (page) => {
    const userId = await page.evaluate((email) => window.passwordUser(email), "linker@example.com");
    const r = await signInViaPopup(page, "#link-google", "web-linked-google");
    assert.equal(r.ok, true, JSON.stringify(r));
    assert.equal(r.id, userId, "the identity went to the logged-in user");
    assert.deepEqual(r.identities, ["local-userpass", "oauth2-google"]);
    if (screenshot) {
      await page.screenshot({ path: screenshot });
    }
  });

  await browser.close();
  child.stdin.end();
  child.kill();
  pages.close();
  const passed = results.filter(Boolean).length;
  console.log(`${passed} passed, ${results.length - passed} failed`);
  process.exit(passed === results.length ? 0 : 1);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
