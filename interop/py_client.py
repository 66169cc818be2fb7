"""Python `websockets` as a client: the interop checks against an echo server.

Usage: python py_client.py ws://127.0.0.1:PORT [CHECK...]
       INTEROP_CA_FILE=ca.pem python py_client.py wss://127.0.0.1:PORT [CHECK...]

For `wss://`, every connection uses an `ssl.SSLContext` that trusts only the
PEM certificate(s) in `INTEROP_CA_FILE` (the test CA) and checks the server's
name (IP address or DNS name in its subjectAltName) as usual; without the
variable, the system's default roots.

The server must echo text as text and binary as binary, choose the first
subprotocol offered, and serve the helper paths described in README.md
(`/close/ID`, `/seen/ID`, `/server-close`). Prints `PASS name` or
`FAIL name: detail` per check and exits 1 if any failed.

Every connection keeps websockets' default permessage-deflate offer; the
`deflate` check asserts it was negotiated and that a large compressible
message crosses the wire compressed both ways (bytes counted on the
transport); `no-deflate` connects with `compression=None` and asserts the
server answers without the extension.
"""

import asyncio
import json
import os
import ssl
import sys
import uuid

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed
from websockets.extensions.permessage_deflate import PerMessageDeflate

CHECK_TIMEOUT = 30  # seconds, per check; the run as a whole has its own bound
TEXT_UTF8 = "ascii, 2-byte é ñ ß, 3-byte € 漢字 ✓, 4-byte 𝄞 😀 🦀, mixed: a€𝄞é"


def pattern(n, salt=0):
    """n bytes that are not a repetition of any short period."""
    return bytes(((i * 31 + (i >> 8) * 7 + salt) & 0xFF) for i in range(n)) if n < 4096 else _big(n, salt)


def _big(n, salt):
    block = bytes(((i * 131 + salt) ^ (i >> 8)) & 0xFF for i in range(65536))
    out = bytearray()
    k = 0
    while len(out) < n:
        out += block[k % 256:] + block[: k % 256]
        k += 1
    return bytes(out[:n])


def text_of(n):
    """Valid UTF-8 text exactly n bytes long, mixing 1- to 4-byte characters."""
    chars = "a" + "é" + "€" + "𝄞"  # 1 + 2 + 3 + 4 = 10 bytes
    unit = chars * 1000
    s = (unit * (n // len(unit.encode()) + 1))
    encoded = s.encode()[:n]
    # Trim a partial character at the end, pad with ASCII.
    text = encoded.decode("utf-8", errors="ignore")
    return text + "z" * (n - len(text.encode()))


def describe(value):
    if isinstance(value, (bytes, bytearray)):
        return f"binary {len(value)} bytes {bytes(value[:16]).hex()}..."
    if isinstance(value, str):
        return f"text {len(value.encode())} bytes {value[:40]!r}..."
    return repr(value)


class Failed(Exception):
    pass


def expect(got, want, what):
    if type(got) is not type(want) or got != want:
        raise Failed(f"{what}: sent {describe(want)}, received {describe(got)}")


TLS = None  # the ssl.SSLContext for wss:// URLs (set in __main__)


def client_tls():
    """The client TLS context: the CA in INTEROP_CA_FILE, else the defaults."""
    context = ssl.create_default_context(cafile=os.environ.get("INTEROP_CA_FILE") or None)
    context.set_alpn_protocols(["http/1.1"])
    return context


def opts():
    # compression left at its default: websockets offers permessage-deflate,
    # which the server must decline (or negotiate) correctly.
    extra = dict(ssl=TLS) if TLS is not None else {}
    return dict(max_size=None, open_timeout=10, close_timeout=10, ping_interval=None, **extra)


async def echo_one(ws, message, what):
    await ws.send(message)
    expect(await ws.recv(), message, what)


async def check_subprotocol(base):
    async with connect(base + "/", subprotocols=["chat", "superchat"], **opts()) as ws:
        if ws.subprotocol != "chat":
            raise Failed(f"offered chat, superchat: negotiated {ws.subprotocol!r}, expected 'chat'")
        await echo_one(ws, "after subprotocol", "echo")
    async with connect(base + "/", **opts()) as ws:
        if ws.subprotocol is not None:
            raise Failed(f"offered none: negotiated {ws.subprotocol!r}")


async def check_text_utf8(base):
    async with connect(base + "/", **opts()) as ws:
        await echo_one(ws, TEXT_UTF8, "text")
        for ch in ["é", "€", "𝄞", "\u0080", "\u07ff", "\u0800", "\uffff", "\U00010000", "\U0010ffff"]:
            await echo_one(ws, ch * 3, f"text U+{ord(ch):04X}")


async def check_binary_256(base):
    async with connect(base + "/", **opts()) as ws:
        await echo_one(ws, bytes(range(256)), "binary 0..255")
        await echo_one(ws, bytes(range(255, -1, -1)) * 4, "binary 255..0 x4")


async def check_lengths(base):
    async with connect(base + "/", **opts()) as ws:
        for n in [0, 1, 125, 126, 127, 65535, 65536, 65537]:
            await echo_one(ws, pattern(n, n), f"binary length {n}")
            await echo_one(ws, text_of(n), f"text length {n}")


async def check_large(base, n):
    async with connect(base + "/", **opts()) as ws:
        await echo_one(ws, _big(n, 7), f"binary {n} bytes")
        if n <= 1 << 20:
            await echo_one(ws, text_of(n), f"text {n} bytes")


async def check_fragmented_ping(base):
    async with connect(base + "/", **opts()) as ws:
        pongs = []

        async def text_fragments():
            yield "frag"
            pongs.append(await ws.ping(b"mid-text"))
            yield "mént"
            yield "ed 𝄞"

        await ws.send(text_fragments())
        expect(await ws.recv(), "fragménted 𝄞", "fragmented text")

        async def binary_fragments():
            yield bytes(range(0, 100))
            pongs.append(await ws.ping(b"mid-binary"))
            yield bytes(range(100, 200))
            yield b""
            yield bytes(range(200, 256))

        await ws.send(binary_fragments())
        expect(await ws.recv(), bytes(range(256)), "fragmented binary")
        for pong in pongs:
            # websockets resolves a ping's future only on a pong carrying
            # the same payload.
            await asyncio.wait_for(pong, 10)


async def check_pipelined(base):
    async with connect(base + "/", **opts()) as ws:
        sent = []
        for i in range(100):
            message = f"message {i} €" if i % 2 == 0 else pattern(i * 10, i)
            sent.append(message)
            await ws.send(message)
        for i, message in enumerate(sent):
            expect(await ws.recv(), message, f"pipelined #{i}")


async def check_ping_pong(base):
    async with connect(base + "/", **opts()) as ws:
        for payload in [b"", b"hello", bytes(range(125)), "pïng €".encode()]:
            waiter = await ws.ping(payload)
            await asyncio.wait_for(waiter, 10)
        await echo_one(ws, "still open", "echo after pings")


async def check_close_4000(base):
    cid = uuid.uuid4().hex
    ws = await connect(f"{base}/close/{cid}", **opts())
    await echo_one(ws, "before close", "echo")
    await ws.close(4000, "bye")
    rcvd = ws.protocol.close_rcvd
    if rcvd is None:
        raise Failed("closed with 4000 'bye': no close frame came back")
    if rcvd.code != 4000:
        raise Failed(f"closed with 4000 'bye': peer answered {rcvd.code} {rcvd.reason!r}")
    async with connect(f"{base}/seen/{cid}", **opts()) as report:
        seen = await report.recv()
    if seen != "4000 bye":
        raise Failed(f"closed with 4000 'bye': the server saw {seen!r}")
    return f"echoed close: {rcvd.code} {rcvd.reason!r}"


async def check_server_close(base):
    async with connect(f"{base}/server-close", **opts()) as ws:
        try:
            got = await ws.recv()
            raise Failed(f"expected a close, received {describe(got)}")
        except ConnectionClosed:
            pass
        await ws.wait_closed()
        rcvd = ws.protocol.close_rcvd
        if rcvd is None or rcvd.code != 4001 or rcvd.reason != "server bye":
            raise Failed(f"expected close 4001 'server bye', received {rcvd}")


def json_text(n):
    """About n bytes of JSON-like chat/dashboard records (compresses 5-10x)."""
    records, size, i = [], 2, 0
    while size < n:
        record = {"id": i, "user": f"user{i % 97}", "room": "lobby", "text": f"message number {i} with some text",
                  "ts": 1_700_000_000 + i * 7}
        records.append(record)
        size += len(json.dumps(record, separators=(",", ":"))) + 1
        i += 1
    return json.dumps(records, separators=(",", ":"))


def count_wire(ws):
    """Counts the bytes the connection's transport writes and receives (over
    TLS, the WebSocket bytes that go into and come out of TLS)."""
    counts = {"sent": 0, "received": 0}
    write, received = ws.transport.write, ws.data_received

    def counting_write(data):
        counts["sent"] += len(data)
        return write(data)

    def counting_received(data):
        counts["received"] += len(data)
        return received(data)

    ws.transport.write = counting_write
    ws.data_received = counting_received
    return counts


async def echo_counted(ws, counts, message, what):
    sent, received = counts["sent"], counts["received"]
    await echo_one(ws, message, what)
    return counts["sent"] - sent, counts["received"] - received


async def check_deflate(base):
    async with connect(base + "/", **opts()) as ws:
        header = ws.response.headers.get("Sec-WebSocket-Extensions")
        if not header or "permessage-deflate" not in header:
            raise Failed(f"offered permessage-deflate: the response has Sec-WebSocket-Extensions {header!r}")
        if not any(isinstance(e, PerMessageDeflate) for e in ws.protocol.extensions):
            raise Failed(f"response {header!r}, but websockets has extensions {ws.protocol.extensions!r}")
        counts = count_wire(ws)
        text = json_text(256 << 10)
        n = len(text.encode())
        up, down = await echo_counted(ws, counts, text, "256 KiB JSON text")
        if up * 4 > n or down * 4 > n:
            raise Failed(f"{n} bytes of JSON took {up} bytes to send and {down} to receive: not compressed")
        data = json_text(64 << 10).encode()
        bup, bdown = await echo_counted(ws, counts, data, "64 KiB JSON binary")
        if bup * 4 > len(data) or bdown * 4 > len(data):
            raise Failed(f"{len(data)} bytes of binary JSON took {bup} / {bdown} bytes: not compressed")
        for i in range(20):
            await echo_one(ws, json_text(1024 + i), f"1 KiB JSON #{i}")
    return f"{header}; {n} B of JSON: {up} B sent, {down} B received"


async def check_no_deflate(base):
    async with connect(base + "/", compression=None, **opts()) as ws:
        header = ws.response.headers.get("Sec-WebSocket-Extensions")
        if header is not None or ws.protocol.extensions:
            raise Failed(f"offered no extension: the response has Sec-WebSocket-Extensions {header!r}")
        counts = count_wire(ws)
        text = json_text(256 << 10)
        n = len(text.encode())
        up, down = await echo_counted(ws, counts, text, "256 KiB JSON text")
        if up < n or down < n:
            raise Failed(f"{n} bytes of JSON took {up} bytes to send and {down} to receive without compression")
    return f"no extension; {n} B of JSON: {up} B sent, {down} B received"


CHECKS = [
    ("subprotocol", check_subprotocol),
    ("text-utf8", check_text_utf8),
    ("binary-256", check_binary_256),
    ("length-boundaries", check_lengths),
    ("large-1MiB", lambda base: check_large(base, 1 << 20)),
    ("large-16MiB", lambda base: check_large(base, 16 << 20)),
    ("fragmented-ping", check_fragmented_ping),
    ("pipelined-100", check_pipelined),
    ("ping-pong", check_ping_pong),
    ("close-4000", check_close_4000),
    ("server-close-4001", check_server_close),
    ("deflate", check_deflate),
    ("no-deflate", check_no_deflate),
]


async def main(base):
    failed = 0
    only = sys.argv[2:]
    for name, check in CHECKS:
        if only and name not in only:
            continue
        try:
            note = await asyncio.wait_for(check(base), CHECK_TIMEOUT)
            print(f"PASS {name}" + (f" ({note})" if note else ""), flush=True)
        except Failed as error:
            failed += 1
            print(f"FAIL {name}: {error}", flush=True)
        except (Exception, asyncio.TimeoutError) as error:  # noqa: BLE001 - report anything
            failed += 1
            print(f"FAIL {name}: {type(error).__name__}: {error}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    BASE = sys.argv[1].rstrip("/")
    if BASE.startswith("wss://"):
        TLS = client_tls()
    sys.exit(asyncio.run(main(BASE)))
