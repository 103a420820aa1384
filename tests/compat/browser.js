// Shared launcher for the headless-browser tests (Debian's chromium driven by playwright-core).
// Usage: const { launch } = require('./browser'); const browser = await launch();
'use strict';
const { chromium } = require('playwright-core');

/** Where Chromium lives: $LATCHKEY_CHROMIUM, else Debian's /usr/bin/chromium. */
function chromiumPath() {
  return process.env.LATCHKEY_CHROMIUM || '/usr/bin/chromium';
}

/** Launches headless Chromium with the flags a sandbox-less CI container needs. */
async function launch() {
  return chromium.launch({
    executablePath: chromiumPath(),
    headless: true,
    args: ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-dev-shm-usage'],
  });
}

module.exports = { launch, chromiumPath };
