// A real browser against the `chat` example: headless Chromium (Debian's
// package), driven by playwright-core, opens the chat page in two tabs with
// different names; each sends a message (long enough to go compressed); both
// must show both messages and the connected state, and each page's info line
// must show that Chromium negotiated permessage-deflate with the server.
// Saves a screenshot.
//
// Over TLS (an https:// URL: the chat example with --tls-cert/--tls-key), the
// browser context accepts the test certificate (Playwright's
// `ignoreHTTPSErrors`, which covers the page's wss:// connection too; for the
// tests only), and the extra check `browser-wss` asserts that the page was
// loaded over https and that every WebSocket it opened was wss://.
//
// Usage: node browser_chat.js http(s)://127.0.0.1:PORT/ SCREENSHOT.png
"use strict";

const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const { chromium } = require("playwright-core");

const EXECUTABLE = process.env.CHROMIUM || "/usr/bin/chromium";
const ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-dev-shm-usage",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];
const STEP_TIMEOUT_MS = 15000;

const results = [];
function report(name, ok, detail) {
  results.push(ok);
  console.log(`${ok ? "PASS" : "FAIL"} ${name}${detail ? `: ${detail}` : ""}`);
}

async function step(name, fn) {
  try {
    const note = await fn();
    report(name, true, note);
    return true;
  } catch (error) {
    report(name, false, String(error.message || error).split("\n")[0]);
    return false;
  }
}

async function main() {
  const [url, screenshot] = process.argv.slice(2);
  if (!url || !screenshot) {
    console.error("usage: node browser_chat.js http(s)://127.0.0.1:PORT/ SCREENSHOT.png");
    process.exit(2);
  }
  // A fresh, throwaway profile for every run.
  const tls = url.startsWith("https:");
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), "rfc6455-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: EXECUTABLE,
    headless: true,
    args: ARGS,
    viewport: { width: 900, height: 600 },
    timeout: 30000,
    // The test certificate is signed by a throwaway CA: accept it (tests only).
    ignoreHTTPSErrors: tls,
  });
  context.setDefaultTimeout(STEP_TIMEOUT_MS);
  const names = ["ada", "grace"];
  const pages = [];
  // Every WebSocket each page opens, by page: url, and whether it opened.
  const sockets = new Map();
  try {
    const opened = await step("browser-open-two-tabs", async () => {
      for (const name of names) {
        const page = await context.newPage();
        page.on("pageerror", (error) => console.log(`page error (${name}): ${error}`));
        sockets.set(page, []);
        page.on("websocket", (socket) => sockets.get(page).push(socket.url()));
        await page.goto(url);
        // The name is part of the WebSocket URL: changing it reconnects.
        await page.fill("#name", name);
        await page.press("#name", "Enter");
        pages.push(page);
      }
    });
    if (!opened) return;
    await step("browser-connected-state", async () => {
      for (const page of pages) {
        await page.waitForSelector('#state[data-state="open"]');
        const text = (await page.textContent("#state")).trim();
        if (text !== "connected") throw new Error(`#state says ${JSON.stringify(text)}`);
        // The reconnect with the new name is the current connection.
        await page.waitForFunction(
          (name) => [...document.querySelectorAll("#messages li")].some((li) => li.textContent.includes(`${name} joined`)),
          names[pages.indexOf(page)],
        );
      }
    });
    if (tls) {
      await step("browser-wss", async () => {
        const seen = [];
        for (const page of pages) {
          const protocol = await page.evaluate(() => location.protocol);
          if (protocol !== "https:") throw new Error(`page loaded over ${protocol}`);
          const urls = sockets.get(page);
          if (!urls.length) throw new Error("the page opened no WebSocket");
          const plain = urls.filter((u) => !u.startsWith("wss://"));
          if (plain.length) throw new Error(`not over TLS: ${plain.join(", ")}`);
          seen.push(...urls);
        }
        return `${seen.length} WebSockets, all wss:// (${seen[seen.length - 1]})`;
      });
    }
    await step("browser-deflate", async () => {
      // Once open, the page writes `extensions: <socket.extensions>` into #info
      // (or "no extension, no subprotocol").
      const lines = [];
      for (const page of pages) {
        await page.waitForFunction(() => document.getElementById("info").textContent.trim() !== "");
        const info = (await page.textContent("#info")).trim();
        if (!/extensions: permessage-deflate\b/.test(info)) throw new Error(`#info says ${JSON.stringify(info)}`);
        lines.push(info);
      }
      return [...new Set(lines)].join(" | ");
    });
    await step("browser-send-and-see-both", async () => {
      // Long enough to be compressed (over the 64-byte threshold): the
      // server broadcasts it as one prepared message, compressed once, which
      // each tab's Chromium inflates.
      const line = (name) =>
        `hello from ${name} ✓ 𝄞 ` + Array(4).fill("the quick brown fox jumps over the lazy dog").join("; ");
      for (let i = 0; i < pages.length; i++) {
        await pages[i].fill("#message", line(names[i]));
        await pages[i].click("#send");
      }
      const expected = names.map((name) => `${name}: ${line(name)}`);
      for (const page of pages) {
        await page.waitForFunction((want) => {
          const seen = [...document.querySelectorAll("#messages li")].map((li) => li.textContent);
          return want.every((line) => seen.includes(line));
        }, expected);
      }
    });
    await step("browser-screenshot", async () => {
      await pages[0].screenshot({ path: screenshot });
      const size = fs.statSync(screenshot).size;
      if (size < 1000) throw new Error(`screenshot is only ${size} bytes`);
      return `${screenshot} (${size} bytes)`;
    });
  } finally {
    await context.close().catch(() => {});
    fs.rmSync(profile, { recursive: true, force: true });
  }
}

main()
  .catch((error) => report("browser", false, String(error.message || error).split("\n")[0]))
  .finally(() => process.exit(results.length && results.every(Boolean) ? 0 : 1));
