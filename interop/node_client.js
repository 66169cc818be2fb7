// Node `ws` as a client: the interop checks against an echo server.
//
// Usage: node node_client.js ws://127.0.0.1:PORT [CHECK...]
//
// Same checks as py_client.py; prints `PASS name` or `FAIL name: detail` per
// check and exits 1 if any failed. Connections keep ws's default
// permessage-deflate offer; `deflate` asserts it was negotiated and that a
// large compressible message crosses the wire compressed both ways (bytes
// counted on the socket); `no-deflate` connects with `perMessageDeflate:
// false` and asserts the server answers without the extension.
"use strict";

const crypto = require("node:crypto");
const WebSocket = require("ws");

const CHECK_TIMEOUT_MS = 30000;
const TEXT_UTF8 = "ascii, 2-byte é ñ ß, 3-byte € 漢字 ✓, 4-byte 𝄞 😀 🦀, mixed: a€𝄞é";

class Failed extends Error {}

function pattern(n, salt) {
  const out = Buffer.alloc(n);
  for (let i = 0; i < n; i++) out[i] = (((i * 131) ^ (i >> 8)) + salt) & 0xff;
  return out;
}

function textOf(n) {
  const cycle = ["a", "é", "€", "𝄞"];
  const parts = [];
  let len = 0;
  for (let k = 0; len < n; k++) {
    let ch = cycle[k % cycle.length];
    if (len + Buffer.byteLength(ch) > n) ch = "z";
    parts.push(ch);
    len += Buffer.byteLength(ch);
  }
  return parts.join("");
}

function describe(m) {
  if (m === undefined) return "nothing";
  if (m.kind === "text") return `text ${Buffer.byteLength(m.data)} bytes ${JSON.stringify(m.data.slice(0, 40))}...`;
  if (m.kind === "binary") return `binary ${m.data.length} bytes ${m.data.subarray(0, 16).toString("hex")}...`;
  if (m.kind === "pong") return `pong ${m.data.length} bytes ${m.data.toString("hex")}`;
  if (m.kind === "close") return `close ${m.code} ${JSON.stringify(m.reason)}`;
  return JSON.stringify(m);
}

// A connection whose events are read in order with `next()`.
class Peer {
  static open(url, protocols, options) {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, protocols || [], { maxPayload: 64 << 20, handshakeTimeout: 10000, ...options });
      const peer = new Peer(ws);
      ws.once("upgrade", (response) => {
        peer.response = response;
      });
      ws.once("open", () => resolve(peer));
      ws.once("error", reject);
    });
  }

  // Bytes [written, read] on the socket so far.
  wire() {
    return [this.ws._socket.bytesWritten, this.ws._socket.bytesRead];
  }

  // Echoes `message`; returns the bytes [sent, received] on the wire for it.
  async echoCounted(message, what) {
    const [w0, r0] = this.wire();
    await this.echo(message, what);
    const [w1, r1] = this.wire();
    return [w1 - w0, r1 - r0];
  }

  constructor(ws) {
    this.ws = ws;
    this.queue = [];
    this.waiters = [];
    ws.on("message", (data, isBinary) =>
      this.push(isBinary ? { kind: "binary", data } : { kind: "text", data: data.toString("utf8") }));
    ws.on("pong", (data) => this.push({ kind: "pong", data }));
    ws.on("close", (code, reason) => this.push({ kind: "close", code, reason: reason.toString("utf8") }));
    ws.on("error", (error) => this.push({ kind: "error", error: String(error) }));
  }

  push(event) {
    const waiter = this.waiters.shift();
    if (waiter) waiter(event);
    else this.queue.push(event);
  }

  next() {
    if (this.queue.length) return Promise.resolve(this.queue.shift());
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  send(data, options) {
    return new Promise((resolve, reject) => this.ws.send(data, options || {}, (e) => (e ? reject(e) : resolve())));
  }

  async echo(message, what) {
    await this.send(message.data, { binary: message.kind === "binary" });
    expect(await this.next(), message, what);
  }

  async closeNormally() {
    this.ws.close(1000);
    for (let i = 0; i < 10; i++) {
      const event = await this.next();
      if (event.kind === "close") return event;
    }
    throw new Failed("no close after 10 events");
  }
}

function same(a, b) {
  if (!a || a.kind !== b.kind) return false;
  if (a.kind === "text") return a.data === b.data;
  return Buffer.compare(Buffer.from(a.data), Buffer.from(b.data)) === 0;
}

function expect(got, want, what) {
  if (!same(got, want)) throw new Failed(`${what}: sent ${describe(want)}, received ${describe(got)}`);
}

const text = (data) => ({ kind: "text", data });
const binary = (data) => ({ kind: "binary", data: Buffer.from(data) });
const range = (a, b) => Array.from({ length: b - a }, (_, i) => a + i);

async function checkSubprotocol(base) {
  let peer = await Peer.open(base + "/", ["chat", "superchat"]);
  if (peer.ws.protocol !== "chat") throw new Failed(`offered chat, superchat: negotiated ${JSON.stringify(peer.ws.protocol)}`);
  await peer.echo(text("after subprotocol"), "echo");
  await peer.closeNormally();
  peer = await Peer.open(base + "/");
  if (peer.ws.protocol !== "") throw new Failed(`offered none: negotiated ${JSON.stringify(peer.ws.protocol)}`);
  await peer.closeNormally();
}

async function checkTextUtf8(base) {
  const peer = await Peer.open(base + "/");
  await peer.echo(text(TEXT_UTF8), "text");
  for (const cp of [0xe9, 0x20ac, 0x1d11e, 0x80, 0x7ff, 0x800, 0xffff, 0x10000, 0x10ffff]) {
    await peer.echo(text(String.fromCodePoint(cp).repeat(3)), `text U+${cp.toString(16).toUpperCase()}`);
  }
  await peer.closeNormally();
}

async function checkBinary256(base) {
  const peer = await Peer.open(base + "/");
  await peer.echo(binary(range(0, 256)), "binary 0..255");
  const rev = range(0, 1024).map((i) => 255 - (i % 256));
  await peer.echo(binary(rev), "binary 255..0 x4");
  await peer.closeNormally();
}

async function checkLengths(base) {
  const peer = await Peer.open(base + "/");
  for (const n of [0, 1, 125, 126, 127, 65535, 65536, 65537]) {
    await peer.echo(binary(pattern(n, n & 0xff)), `binary length ${n}`);
    await peer.echo(text(textOf(n)), `text length ${n}`);
  }
  await peer.closeNormally();
}

async function checkLarge(base, n) {
  const peer = await Peer.open(base + "/");
  await peer.echo(binary(pattern(n, 7)), `binary ${n} bytes`);
  if (n <= 1 << 20) await peer.echo(text(textOf(n)), `text ${n} bytes`);
  await peer.closeNormally();
}

async function expectPongAndEcho(peer, ping, message, what) {
  let pong = false;
  let echoed = false;
  for (let i = 0; i < 4 && !(pong && echoed); i++) {
    const event = await peer.next();
    if (!pong && event.kind === "pong" && event.data.equals(ping)) pong = true;
    else if (!echoed) {
      expect(event, message, what);
      echoed = true;
    } else throw new Failed(`${what}: unexpected ${describe(event)}`);
  }
  if (!(pong && echoed)) throw new Failed(`${what}: pong ${pong}, echo ${echoed}`);
}

async function checkFragmentedPing(base) {
  const peer = await Peer.open(base + "/");
  const ws = peer.ws;
  // Text, with a 4-byte character split across fragments.
  const str = "fragménted 𝄞!";
  const bytes = Buffer.from(str);
  const split = bytes.indexOf(Buffer.from("𝄞")) + 2;
  ws.send(bytes.subarray(0, 4), { binary: false, fin: false });
  ws.ping(Buffer.from("mid-text"));
  ws.send(bytes.subarray(4, split), { binary: false, fin: false });
  await peer.send(bytes.subarray(split), { binary: false, fin: true });
  await expectPongAndEcho(peer, Buffer.from("mid-text"), text(str), "fragmented text");
  // Binary, with an empty fragment.
  const data = Buffer.from(range(0, 256));
  ws.send(data.subarray(0, 100), { binary: true, fin: false });
  ws.ping(Buffer.from("mid-binary"));
  ws.send(data.subarray(100, 200), { binary: true, fin: false });
  ws.send(Buffer.alloc(0), { binary: true, fin: false });
  await peer.send(data.subarray(200), { binary: true, fin: true });
  await expectPongAndEcho(peer, Buffer.from("mid-binary"), binary(data), "fragmented binary");
  await peer.closeNormally();
}

async function checkPipelined(base) {
  const peer = await Peer.open(base + "/");
  const sent = range(0, 100).map((i) => (i % 2 === 0 ? text(`message ${i} €`) : binary(pattern(i * 10, i))));
  for (const m of sent) peer.ws.send(m.data, { binary: m.kind === "binary" });
  for (let i = 0; i < sent.length; i++) expect(await peer.next(), sent[i], `pipelined #${i}`);
  await peer.closeNormally();
}

async function checkPingPong(base) {
  const peer = await Peer.open(base + "/");
  for (const payload of [Buffer.alloc(0), Buffer.from("hello"), Buffer.from(range(0, 125)), Buffer.from("pïng €")]) {
    peer.ws.ping(payload);
    const event = await peer.next();
    if (event.kind !== "pong" || !event.data.equals(payload)) {
      throw new Failed(`ping ${payload.toString("hex")}: received ${describe(event)}`);
    }
  }
  await peer.echo(text("still open"), "echo after pings");
  await peer.closeNormally();
}

async function checkClose4000(base) {
  const id = `node-${crypto.randomUUID()}`;
  const peer = await Peer.open(`${base}/close/${id}`);
  await peer.echo(text("before close"), "echo");
  peer.ws.close(4000, "bye");
  const event = await peer.next();
  if (event.kind !== "close" || event.code !== 4000) {
    throw new Failed(`closed with 4000 "bye": peer answered ${describe(event)}`);
  }
  const report = await Peer.open(`${base}/seen/${id}`);
  const seen = await report.next();
  if (!same(seen, text("4000 bye"))) throw new Failed(`closed with 4000 "bye": the server saw ${describe(seen)}`);
  await report.next();
  return `echoed close: ${event.code} ${JSON.stringify(event.reason)}`;
}

async function checkServerClose(base) {
  const peer = await Peer.open(`${base}/server-close`);
  const event = await peer.next();
  if (event.kind !== "close" || event.code !== 4001 || event.reason !== "server bye") {
    throw new Failed(`expected close 4001 "server bye", received ${describe(event)}`);
  }
}

// About n bytes of JSON-like chat/dashboard records (compresses 5-10x).
function jsonText(n) {
  const records = [];
  let size = 2;
  for (let i = 0; size < n; i++) {
    const record = JSON.stringify({
      id: i,
      user: `user${i % 97}`,
      room: "lobby",
      text: `message number ${i} with some text`,
      ts: 1700000000 + i * 7,
    });
    records.push(record);
    size += record.length + 1;
  }
  return `[${records.join(",")}]`;
}

async function checkDeflate(base) {
  const peer = await Peer.open(base + "/");
  const header = peer.response.headers["sec-websocket-extensions"];
  if (!header || !header.includes("permessage-deflate") || !peer.ws.extensions.includes("permessage-deflate")) {
    throw new Failed(`offered permessage-deflate: response ${JSON.stringify(header)}, ws.extensions ${JSON.stringify(peer.ws.extensions)}`);
  }
  const data = jsonText(256 << 10);
  const n = Buffer.byteLength(data);
  const [up, down] = await peer.echoCounted(text(data), "256 KiB JSON text");
  if (up * 4 > n || down * 4 > n) {
    throw new Failed(`${n} bytes of JSON took ${up} bytes to send and ${down} to receive: not compressed`);
  }
  const bin = Buffer.from(jsonText(64 << 10));
  const [bup, bdown] = await peer.echoCounted(binary(bin), "64 KiB JSON binary");
  if (bup * 4 > bin.length || bdown * 4 > bin.length) {
    throw new Failed(`${bin.length} bytes of binary JSON took ${bup} / ${bdown} bytes: not compressed`);
  }
  for (let i = 0; i < 20; i++) await peer.echo(text(jsonText(1024 + i)), `1 KiB JSON #${i}`);
  await peer.closeNormally();
  return `${header}; ${n} B of JSON: ${up} B sent, ${down} B received`;
}

async function checkNoDeflate(base) {
  const peer = await Peer.open(base + "/", [], { perMessageDeflate: false });
  const header = peer.response.headers["sec-websocket-extensions"];
  if (header !== undefined || peer.ws.extensions !== "") {
    throw new Failed(`offered no extension: response ${JSON.stringify(header)}, ws.extensions ${JSON.stringify(peer.ws.extensions)}`);
  }
  const data = jsonText(256 << 10);
  const n = Buffer.byteLength(data);
  const [up, down] = await peer.echoCounted(text(data), "256 KiB JSON text");
  if (up < n || down < n) {
    throw new Failed(`${n} bytes of JSON took ${up} bytes to send and ${down} to receive without compression`);
  }
  await peer.closeNormally();
  return `no extension; ${n} B of JSON: ${up} B sent, ${down} B received`;
}

const CHECKS = [
  ["subprotocol", checkSubprotocol],
  ["text-utf8", checkTextUtf8],
  ["binary-256", checkBinary256],
  ["length-boundaries", checkLengths],
  ["large-1MiB", (base) => checkLarge(base, 1 << 20)],
  ["large-16MiB", (base) => checkLarge(base, 16 << 20)],
  ["fragmented-ping", checkFragmentedPing],
  ["pipelined-100", checkPipelined],
  ["ping-pong", checkPingPong],
  ["close-4000", checkClose4000],
  ["server-close-4001", checkServerClose],
  ["deflate", checkDeflate],
  ["no-deflate", checkNoDeflate],
];

function withTimeout(promise, ms) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Failed(`timed out after ${ms / 1000} s`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

async function main() {
  const base = (process.argv[2] || "").replace(/\/+$/, "");
  if (!base) {
    console.error("usage: node node_client.js ws://HOST:PORT [CHECK...]");
    process.exit(2);
  }
  const only = process.argv.slice(3);
  let failed = 0;
  for (const [name, check] of CHECKS) {
    if (only.length && !only.includes(name)) continue;
    try {
      const note = await withTimeout(check(base), CHECK_TIMEOUT_MS);
      console.log(`PASS ${name}${note ? ` (${note})` : ""}`);
    } catch (error) {
      failed++;
      console.log(`FAIL ${name}: ${error instanceof Failed ? error.message : String(error)}`);
    }
  }
  process.exit(failed ? 1 : 0);
}

main();
