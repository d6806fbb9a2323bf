"""Webhook bench: the app under gunicorn on 127.0.0.1, signed inbound SMS from many distinct senders at
50 and 200 concurrent connections for a fixed time, next to the same server's bare route (the ceiling
of Flask + gunicorn here). Afterwards every 200 must be a stored inbound message.

    .venv/bin/python bench/webhook.py                       # SQLite (the demo default), 10 s per run
    .venv/bin/python bench/webhook.py --db postgresql       # PostgreSQL on 127.0.0.1:5432 (production)
    options: --duration S  --connections 50,200  --workers N  --threads N  --senders N

The load generator is Debian's wrk (apt-get install wrk) with a generated Lua script of pre-signed,
distinct posts (each wrk thread takes its own slice, so no MessageSid repeats); without wrk a Python
client with keep-alive connections is used (slower: it shares the CPUs with the server).
"""
from __future__ import annotations

import argparse
import http.client
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, bulk_households, create_schema, database_url, git_revision, machine, show  # noqa: E402

TOKEN = "bench-auth-token"
BODIES = ["1", "都好", "孩子挺好的", "2", "已经给孩子打过电话了", "收到，谢谢", "孩子发烧了", "好的"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def signed_posts(base: str, path: str, phones: list[str], n: int, run: str) -> list[tuple[str, str]]:
    """n distinct signed inbound posts: (signature, urlencoded body)."""
    from twilio.request_validator import RequestValidator

    validator, rng = RequestValidator(TOKEN), random.Random(run)
    posts = []
    for i in range(n):
        form = {"MessageSid": f"SM{run}{i:022d}", "AccountSid": "AC" + "0" * 32, "From": rng.choice(phones),
                "To": "+8610690000000", "Body": rng.choice(BODIES), "NumMedia": "0", "NumSegments": "1"}
        posts.append((validator.compute_signature(base + path, form), urllib.parse.urlencode(form)))
    return posts


def wrk_script(path: str, posts: list[tuple[str, str]], out: Path) -> None:
    """A Lua script: thread k of T sends posts k, k+T, k+2T ... once each (then repeats, counted apart)."""
    with out.open("w") as f:
        f.write("local reqs = {}\n")
        for i, (signature, body) in enumerate(posts):
            f.write(f'reqs[{i + 1}] = wrk.format("POST", "{path}", {{["Content-Type"]='
                    f'"application/x-www-form-urlencoded", ["X-Twilio-Signature"]="{signature}"}}, "{body}")\n')
        f.write("""local counter = 0
local threads = {}
function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
  table.insert(threads, thread)
end
function init(args)
  nthreads = tonumber(args[1])
  i = 0
end
function request()
  local k = tid + i * nthreads
  i = i + 1
  return reqs[(k % #reqs) + 1]
end
""")


def run_wrk(url: str, script: Path, connections: int, duration: int, threads: int) -> dict[str, float]:
    out = subprocess.run(["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{duration}s", "--latency",
                          "--timeout", "10s", "-s", str(script), url, "--", str(threads)],
                         capture_output=True, text=True, timeout=duration + 120).stdout

    def unit(value: str) -> float:
        number, suffix = float(re.match(r"[\d.]+", value).group()), re.sub(r"[\d.]+", "", value)
        return number * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[suffix]

    lat = {p: unit(v) for p, v in re.findall(r"^\s+(50|99)%\s+(\S+)", out, re.M)}
    total = int(re.search(r"(\d+) requests in", out).group(1))
    non2xx = int(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", out)) else 0
    sock = sum(int(x) for x in m.groups()) if (m := re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)) else 0
    return {"requests": total, "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
            "p50": lat.get("50", 0.0), "p99": lat.get("99", 0.0), "errors": non2xx + sock, "ok": total - non2xx}


def run_python(host: str, port: int, path: str, posts: list[tuple[str, str]], connections: int,
               duration: int) -> dict[str, float]:
    """A bounded keep-alive client: `connections` threads, each with its own slice of the posts."""
    latencies: list[float] = []
    counts = {"ok": 0, "errors": 0}
    lock = threading.Lock()
    stop = time.monotonic() + duration

    def client(k: int) -> None:
        conn = http.client.HTTPConnection(host, port, timeout=10)
        own, mine = posts[k::connections], []
        ok = err = 0
        for signature, body in own:
            if time.monotonic() >= stop:
                break
            started = time.perf_counter()
            try:
                conn.request("POST", path, body, {"Content-Type": "application/x-www-form-urlencoded",
                                                  "X-Twilio-Signature": signature})
                response = conn.getresponse()
                response.read()
                ok, err = (ok + 1, err) if response.status == 200 else (ok, err + 1)
            except (OSError, http.client.HTTPException):
                err += 1
                conn.close()
                conn = http.client.HTTPConnection(host, port, timeout=10)
            mine.append((time.perf_counter() - started) * 1000)
        with lock:
            latencies.extend(mine)
            counts["ok"] += ok
            counts["errors"] += err

    started = time.monotonic()
    workers = [threading.Thread(target=client, args=(k,)) for k in range(connections)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed = time.monotonic() - started
    latencies.sort()
    pick = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] if latencies else 0.0  # noqa: E731
    return {"requests": len(latencies), "rps": len(latencies) / elapsed, "p50": pick(0.50), "p99": pick(0.99),
            "errors": counts["errors"], "ok": counts["ok"]}


def count_inbound(url: str) -> int:
    from sqlalchemy import create_engine, func, select

    from models import Message

    engine = create_engine(url)
    with engine.connect() as connection:
        count = connection.execute(select(func.count()).select_from(Message)
                                   .where(Message.direction == "inbound")).scalar_one()
    engine.dispose()
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", default="50,200")
    parser.add_argument("--workers", type=int, default=max(2, (os.cpu_count() or 1) * 2))
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--senders", type=int, default=5000)
    parser.add_argument("--client", choices=["auto", "wrk", "python"], default="auto")
    args = parser.parse_args()
    use_wrk = args.client == "wrk" or (args.client == "auto" and shutil.which("wrk"))
    scratch = Path(tempfile.mkdtemp(prefix="xiangban-bench-"))
    url = database_url(args.db, scratch, "xiangban_bench_webhook")
    create_schema(url)
    phones = bulk_households(url, args.senders)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "DATABASE_URL": url, "TWILIO_AUTH_TOKEN": TOKEN, "TWILIO_ACCOUNT_SID": "",
           "PUBLIC_URL": base, "SECRET_KEY": "bench"}
    log = (scratch / "gunicorn.log").open("w")
    server = subprocess.Popen([str(Path(sys.executable).parent / "gunicorn"), "--pythonpath", str(ROOT / "bench"),
                               "-b", f"127.0.0.1:{port}", "-w", str(args.workers), "-k", "gthread",
                               "--threads", str(args.threads), "--backlog", "2048", "--log-level", "warning",
                               "bench_app:app"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        for _ in range(200):
            try:
                http.client.HTTPConnection("127.0.0.1", port, timeout=1).request("GET", "/healthz")
                break
            except OSError:
                time.sleep(0.1)
        print(f"webhook bench — {machine()}; commit {git_revision()}")
        print(f"gunicorn gthread: {args.workers} workers x {args.threads} threads on {base}; database {args.db}; "
              f"{args.senders} distinct senders (known guardians); {args.duration} s per run; "
              f"client {'wrk' if use_wrk else 'python'}")
        rows = []
        expected_per_run = int(args.duration * 3000)
        for connections in [int(c) for c in args.connections.split(",")]:
            results = {}
            for route in ("/bench/bare", "/twilio/sms"):
                run = f"{connections:03d}{'b' if route.endswith('bare') else 's'}{random.randrange(10**6):06d}"
                posts = signed_posts(base, route, phones, expected_per_run, run)
                before = count_inbound(url)
                if use_wrk:
                    script = scratch / f"{run}.lua"
                    wrk_script(route, posts, script)
                    threads = min(connections, max(2, (os.cpu_count() or 2)))
                    result = run_wrk(base + route, script, connections, args.duration, threads)
                else:
                    result = run_python("127.0.0.1", port, route, posts, connections, args.duration)
                time.sleep(0.5)
                stored = count_inbound(url) - before
                wrapped = result["requests"] > len(posts)
                results[route] = result
                rows.append({"route": route, "conns": connections, "req/s": f"{result['rps']:.0f}",
                             "p50 ms": f"{result['p50']:.1f}", "p99 ms": f"{result['p99']:.1f}",
                             "errors": int(result["errors"]), "200s": int(result["ok"]),
                             "stored": stored if route == "/twilio/sms" else "-",
                             "lost": (max(0, int(result["ok"]) - stored) if route == "/twilio/sms" and not wrapped
                                      else "-")})
            ratio = results["/twilio/sms"]["rps"] / results["/bench/bare"]["rps"]
            rows.append({"route": "ratio sms/bare", "conns": connections, "req/s": f"{ratio:.2f}", "p50 ms": "",
                         "p99 ms": "", "errors": "", "200s": "", "stored": "", "lost": ""})
        show("results (lost = 200s answered but not stored; must be 0)", rows)
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
    print(f"\nscratch: {scratch} (gunicorn.log)")


if __name__ == "__main__":
    main()
