// The storage realm-web uses in Node for these scripts: users in memory, one object per App
// (realm-web's own Node storage keeps them in memory too). Shared by run.js and
// bench_cycles.js.
"use strict";

class Storage {
  constructor() { this.map = new Map(); this.listeners = new Set(); }
  get(key) { return this.map.has(key) ? this.map.get(key) : null; }
  set(key, value) { this.map.set(key, value); this.listeners.forEach((l) => l()); }
  remove(key) { this.map.delete(key); this.listeners.forEach((l) => l()); }
  prefix(keyPart) { return new Prefixed(this, keyPart); }
  clear(prefix) { for (const k of [...this.map.keys()]) if (!prefix || k.startsWith(prefix)) this.map.delete(k); }
  addListener(l) { this.listeners.add(l); }
  removeListener(l) { this.listeners.delete(l); }
}
class Prefixed {
  constructor(storage, keyPart) { this.storage = storage; this.keyPart = keyPart; }
  get(key) { return this.storage.get(`${this.keyPart}:${key}`); }
  set(key, value) { return this.storage.set(`${this.keyPart}:${key}`, value); }
  remove(key) { return this.storage.remove(`${this.keyPart}:${key}`); }
  prefix(keyPart) { return new Prefixed(this, keyPart); }
  clear(prefix = "") { return this.storage.clear(`${this.keyPart}:${prefix}`); }
  addListener(l) { return this.storage.addListener(l); }
  removeListener(l) { return this.storage.removeListener(l); }
}

module.exports = { Storage };
