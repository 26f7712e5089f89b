"""What the HTTP layer alone costs the apiserver: server CPU per request for one trivial
handler (read the body, answer 300 bytes of JSON) behind three HTTP servers.

    .venv/bin/python -m bench.httpd [--seconds N] [--in-flight N]

* ``aiohttp app``: an aiohttp Application with three pass-through middlewares and a
  catch-all route (how the apiserver was served before ``httpd.py``);
* ``aiohttp low-level``: aiohttp's ``web.Server`` with the handler alone;
* ``httpd``: ``controlplane/apiserver/httpd.py``, the apiserver's server.

Each server runs in a process of its own on plain TCP (uvloop, as ``bramble server``);
this process keeps ``--in-flight`` keep-alive POSTs going with the project's client
(``api/http.py``) and divides the server's CPU time (from /proc) by the requests.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time

from api.http import Pool
from bench.support import procfs

BODY = (
    b'{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"x","namespace":"default",'
    b'"uid":"0c6e1d2e-5a7b-4c1e-9d55-8f3f7f0e6b21","resourceVersion":"12",'
    b'"creationTimestamp":"2026-11-24T00:00:00Z"},"data":{"a":"b","c":"d"}}'
) * 2
SERVERS = ("aiohttp app", "aiohttp low-level", "httpd")


def serve(kind: str) -> None:
    """The server process: listen on a free port, print it, serve until killed."""
    import uvloop
    from aiohttp import web
    from aiohttp.typedefs import Handler

    from controlplane.apiserver import httpd

    async def aiohttp_handler(request: web.BaseRequest) -> web.StreamResponse:
        await request.read()
        return web.Response(body=BODY, content_type="application/json")

    @web.middleware
    async def passthrough(request: web.Request, handler: Handler) -> web.StreamResponse:
        return await handler(request)

    async def httpd_handler(request: httpd.Request) -> httpd.Answer:
        return httpd.Response(BODY)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        if kind == "aiohttp app":
            app = web.Application(middlewares=[passthrough, passthrough, passthrough])
            app.router.add_route("*", "/{tail:.*}", aiohttp_handler)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            port = int(runner.addresses[0][1])
        else:
            factory = (
                web.Server(aiohttp_handler, access_log=None)
                if kind == "aiohttp low-level"
                else httpd.Server(httpd_handler, max_body=1 << 20)
            )
            server = await loop.create_server(factory, "127.0.0.1", 0)
            port = int(server.sockets[0].getsockname()[1])
        print(port, flush=True)
        await asyncio.Event().wait()

    uvloop.run(main())


async def load(port: int, pid: int, seconds: float, in_flight: int) -> tuple[float, float]:
    """(requests/s, server CPU µs per request) over ``seconds`` after a 1 s warm-up."""
    pool = Pool("127.0.0.1", port, context=None)
    body = BODY[: len(BODY) // 2]
    done = 0
    stop = False

    async def worker() -> None:
        nonlocal done
        while not stop:
            await pool.request("POST", "/api/v1/namespaces/default/configmaps",
                               "Content-Type: application/json\r\n", body)  # fmt: skip
            done += 1

    workers = [asyncio.create_task(worker()) for _ in range(in_flight)]
    await asyncio.sleep(1)
    done, cpu0, t0 = 0, procfs.cpu_seconds(pid), time.perf_counter()
    await asyncio.sleep(seconds)
    count, cpu1, t1 = done, procfs.cpu_seconds(pid), time.perf_counter()
    stop = True
    await asyncio.gather(*workers)
    await pool.close()
    return count / (t1 - t0), (cpu1 - cpu0) / count * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--in-flight", type=int, default=32)
    parser.add_argument("--serve", choices=SERVERS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return
    rows = []
    for kind in SERVERS:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bench.httpd", "--serve", kind], stdout=subprocess.PIPE
        )
        try:
            assert proc.stdout is not None
            port = int(proc.stdout.readline())
            rate, cpu = asyncio.run(load(port, proc.pid, args.seconds, args.in_flight))
            rows.append(f"| {kind} | {rate:,.0f} | {cpu:.0f} µs |")
        finally:
            proc.kill()
            proc.wait()
    print(f"{args.in_flight} keep-alive POSTs in flight, {args.seconds:g} s per server\n")
    print("| server | requests/s | server CPU per request |")
    print("|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
