#!/usr/bin/env node
// Desktop/CLI browser sign-in in a real browser: runs the latchkey example
// `browser_sign_in` (the SDK's loopback listener, the server and the fake Google), opens
// the URL it prints in headless Chromium, clicks "Allow" on the fake consent page, and
// checks that the loopback relay page posted the fragment back (its text) and that the
// example signed in and refreshed the tokens (its output).
//
// Usage: node browser_native.js --example <browser_sign_in example binary>
// Prints one line per scenario and `N passed, M failed`; exits non-zero on failure.
"use strict";

const readline = require("node:readline");
const { spawn } = require("node:child_process");
const { launch } = require("./browser");

const args = process.argv.slice(2);
const i = args.indexOf("--example");
const exampleBin = i >= 0 ? args[i + 1] : process.env.LATCHKEY_BROWSER_SIGN_IN_BIN;
if (!exampleBin) {
  console.error("usage: node browser_native.js --example <browser_sign_in binary>");
  process.exit(2);
}

/** Run the example; resolve with its sign-in URL and a promise of its whole output. */
function startExample() {
  const child = spawn(exampleBin, [], { stdio: ["ignore", "pipe", "inherit"] });
  const lines = readline.createInterface({ input: child.stdout });
  const output = [];
  const done = new Promise((resolve) => child.on("exit", (code) => resolve({ code, output })));
  const url = new Promise((resolve, reject) => {
    lines.on("line", (line) => {
      output.push(line);
      if (line.startsWith("  http")) resolve(line.trim());
    });
    child.on("exit", () => reject(new Error(`the example exited early:\n${output.join("\n")}`)));
  });
  return { child, url, done };
}

async function main() {
  let passed = 0;
  let failed = 0;
  const browser = await launch();
  const example = startExample();
  try {
    const url = await example.url;
    const page = await browser.newPage();
    await page.goto(url);
    await page.waitForSelector("#allow", { timeout: 15000 });
    await page.fill("#sub", "native-browser-1");
    await page.fill("#email", "native@example.com");
    await page.click("#allow");
    // Consent -> server callback -> loopback relay page -> fetch POST of the fragment.
    await page.waitForFunction(
      () => document.getElementById("m") && document.getElementById("m").textContent.startsWith("Received"),
      null,
      { timeout: 15000 },
    );
    if (page.url().includes("#")) throw new Error(`the fragment stayed in the address bar: ${page.url()}`);
    const { code, output } = await example.done;
    const text = output.join("\n");
    if (code !== 0 || !/signed in: user \w+ \(native@example\.com\)/.test(text) || !text.includes("access token refreshed")) {
      throw new Error(`example exit ${code}:\n${text}`);
    }
    console.log("ok   native app: Google sign-in through the loopback relay page in Chromium");
    passed += 1;
  } catch (e) {
    console.log(`FAIL native app: Google sign-in through the loopback relay page in Chromium: ${e.stack || e}`);
    failed += 1;
    example.child.kill();
  } finally {
    await browser.close();
  }
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed === 0 ? 0 : 1);
}

main();
