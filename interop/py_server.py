"""Python `websockets` as a server for the interop checks of our client.

Usage: python py_server.py [PORT] [--tls-cert FILE --tls-key FILE]
(PORT default 0: any free port; with the certificate chain and key, PEM
files, it serves TLS: wss://)

Echoes text as text and binary as binary, chooses the first subprotocol the
client offers, and serves the helper paths of README.md: `/close/ID`
(remembers the client's close code and reason), `/seen/ID` (sends them back as
`CODE REASON`) and `/server-close` (closes with 4001 "server bye"). Prints
`listening on ws://127.0.0.1:PORT` (or `wss://`) once ready. Listens on
127.0.0.1 only.
"""

import argparse
import asyncio
import ssl

from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed

SEEN = {}


def first_offered(connection, subprotocols):
    return subprotocols[0] if subprotocols else None


async def handler(ws):
    path = ws.request.path
    if path.startswith("/seen/"):
        cid = path[len("/seen/"):]
        for _ in range(250):  # up to 5 s
            if cid in SEEN:
                break
            await asyncio.sleep(0.02)
        await ws.send(SEEN.get(cid, "none"))
        await ws.close(1000)
        return
    if path == "/server-close":
        await ws.close(4001, "server bye")
        return
    try:
        async for message in ws:
            await ws.send(message)
    except ConnectionClosed:
        pass
    if path.startswith("/close/"):
        rcvd = ws.protocol.close_rcvd
        SEEN[path[len("/close/"):]] = "no-status" if rcvd is None else f"{rcvd.code} {rcvd.reason}"


async def main(port, tls):
    async with serve(
        handler,
        "127.0.0.1",
        port,
        select_subprotocol=first_offered,
        max_size=None,
        ping_interval=None,
        close_timeout=10,
        ssl=tls,
    ) as server:
        bound = server.sockets[0].getsockname()[1]
        print(f"listening on {'wss' if tls else 'ws'}://127.0.0.1:{bound}", flush=True)
        await server.serve_forever()


def server_tls(cert, key):
    """A TLS server context with the certificate chain and key (PEM files)."""
    if not cert and not key:
        return None
    if not (cert and key):
        raise SystemExit("--tls-cert and --tls-key go together")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    context.set_alpn_protocols(["http/1.1"])
    return context


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Python websockets echo server for the interop checks")
    parser.add_argument("port", nargs="?", type=int, default=0)
    parser.add_argument("--tls-cert", metavar="FILE")
    parser.add_argument("--tls-key", metavar="FILE")
    args = parser.parse_args()
    asyncio.run(main(args.port, server_tls(args.tls_cert, args.tls_key)))
