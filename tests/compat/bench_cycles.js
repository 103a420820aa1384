#!/usr/bin/env node
// `cargo xtask bench` (SDK part): realm-web@2.0.1 doing anonymous login + log-out cycles
// against latchkey-server, the same cycles as the Rust SDK's `sdk_bench cycles`.
//
// Usage: node bench_cycles.js <base url> <app id> <cycles> <warm-up cycles>
//
// It runs the warm-up cycles, prints `ready`, waits for a line on stdin, runs the
// measured cycles, prints `done`, and waits for stdin to close: the parent (xtask) reads
// this process's CPU time and peak memory from /proc at `ready` and at `done`, exactly as
// it does for the Rust SDK. realm-web keeps its users in memory in Node (as in run.js).
"use strict";

const readline = require("node:readline");
const Realm = require("realm-web");

const [baseUrl, appId, cyclesArg, warmupArg] = process.argv.slice(2);
if (!baseUrl || !appId || !cyclesArg || !warmupArg) {
  console.error("usage: node bench_cycles.js <base url> <app id> <cycles> <warm-up cycles>");
  process.exit(2);
}

const { Storage } = require("./storage");

// One cycle sends what latchkey's does: POST login, GET profile, DELETE session. realm-web's
// `user.logOut()` keeps a logged-out anonymous user, which its next anonymous login then
// tries to reuse (and fails: it has no tokens); `app.removeUser` logs out (one DELETE) and
// forgets the user, as latchkey's log out of an anonymous user does.
async function run(app, count) {
  for (let i = 0; i < count; i++) {
    const user = await app.logIn(Realm.Credentials.anonymous());
    await app.removeUser(user);
  }
}

(async () => {
  const app = new Realm.App({ id: appId, baseUrl, storage: new Storage() });
  const lines = readline.createInterface({ input: process.stdin })[Symbol.asyncIterator]();
  await run(app, Number(warmupArg));
  process.stdout.write("ready\n");
  await lines.next();
  await run(app, Number(cyclesArg));
  process.stdout.write("done\n");
  while (!(await lines.next()).done) { /* wait for stdin to close */ }
  process.exit(0);
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
