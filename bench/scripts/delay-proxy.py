#!/usr/bin/env python3
"""A TCP proxy on loopback that delays every response: the first bytes the upstream sends after each request
wait DELAY_MS before they are forwarded (a far or congested origin). Used by the loader benchmarks to make a slow
tier out of s3rver. Usage: delay-proxy.py LISTEN_PORT UPSTREAM_PORT DELAY_MS (runs until killed)."""
import asyncio
import sys


async def main(listen_port: int, upstream_port: int, delay: float) -> None:
    async def handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            up_r, up_w = await asyncio.open_connection("127.0.0.1", upstream_port)
        except OSError:
            client_w.close()
            return
        pending = asyncio.Event()  # set once a request went up and its response has not started yet

        async def requests() -> None:
            while data := await client_r.read(65536):
                pending.set()
                up_w.write(data)
                await up_w.drain()
            up_w.close()

        async def responses() -> None:
            while data := await up_r.read(65536):
                if pending.is_set():
                    pending.clear()
                    await asyncio.sleep(delay)
                client_w.write(data)
                await client_w.drain()
            client_w.close()

        try:
            await asyncio.gather(requests(), responses())
        except (ConnectionError, OSError):
            pass
        finally:
            client_w.close()
            up_w.close()

    server = await asyncio.start_server(handle, "127.0.0.1", listen_port)
    print(f"delay-proxy 127.0.0.1:{listen_port} -> {upstream_port}, {delay * 1000:.0f} ms a response", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    asyncio.run(main(int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]) / 1000))
