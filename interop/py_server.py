"""Python `websockets` as a server for the interop checks of our client.

Usage: python py_server.py [PORT]   (default 0: any free port)

Echoes text as text and binary as binary, chooses the first subprotocol the
client offers, and serves the helper paths of README.md: `/close/ID`
(remembers the client's close code and reason), `/seen/ID` (sends them back as
`CODE REASON`) and `/server-close` (closes with 4001 "server bye"). Prints
`listening on ws://127.0.0.1:PORT` once ready. Listens on 127.0.0.1 only.
"""

import asyncio
import sys

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


async def main(port):
    async with serve(
        handler,
        "127.0.0.1",
        port,
        select_subprotocol=first_offered,
        max_size=None,
        ping_interval=None,
        close_timeout=10,
    ) as server:
        bound = server.sockets[0].getsockname()[1]
        print(f"listening on ws://127.0.0.1:{bound}", flush=True)
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 0))
