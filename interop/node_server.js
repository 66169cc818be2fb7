// Node `ws` as a server for the interop checks of our client.
//
// Usage: node node_server.js [PORT]   (default 0: any free port)
//
// Echoes text as text and binary as binary, chooses the first subprotocol the
// client offers, and serves the helper paths of README.md: `/close/ID`,
// `/seen/ID` and `/server-close`. Prints `listening on ws://127.0.0.1:PORT`
// once ready. Listens on 127.0.0.1 only.
//
// permessage-deflate is on (ws's server leaves it off by default), with
// threshold 0 so that every message is compressed, and ws's other defaults
// (context takeover kept on both sides unless the client asks otherwise).
"use strict";

const { WebSocketServer } = require("ws");

const seen = new Map();
const port = Number(process.argv[2] || 0);

const wss = new WebSocketServer({
  host: "127.0.0.1",
  port,
  maxPayload: 64 << 20,
  perMessageDeflate: { threshold: 0 },
  handleProtocols: (protocols) => {
    const first = protocols.values().next();
    return first.done ? false : first.value;
  },
});

wss.on("listening", () => console.log(`listening on ws://127.0.0.1:${wss.address().port}`));

wss.on("connection", (ws, request) => {
  const path = request.url;
  if (path.startsWith("/seen/")) {
    const id = path.slice("/seen/".length);
    let tries = 0;
    const poll = () => {
      if (seen.has(id) || tries++ >= 250) {
        ws.send(seen.get(id) ?? "none", () => ws.close(1000));
      } else {
        setTimeout(poll, 20);
      }
    };
    poll();
    return;
  }
  if (path === "/server-close") {
    ws.close(4001, "server bye");
    return;
  }
  ws.on("message", (data, isBinary) => ws.send(data, { binary: isBinary }));
  ws.on("close", (code, reason) => {
    if (path.startsWith("/close/")) {
      seen.set(path.slice("/close/".length), code === 1005 ? "no-status" : `${code} ${reason.toString("utf8")}`);
    }
  });
});
