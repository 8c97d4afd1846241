"""The gateway against the floor of its stack (issue 12), measured from outside with ``wrk`` and every target in the
same run, real processes on 127.0.0.1:

- **direct**: ``wrk`` to the upstream, nginx (Debian's nginx-light) answering a fixed 200 JSON;
- **nginx**: an nginx reverse proxy (keep-alive to the upstream) in front of it;
- **minimal**: a minimal Starlette + httpx pass-through on Hypercorn (``tools.bench.minimal_proxy``);
- **gateway**: ``tabellion gateway`` with action records on (the default), connection ``plain`` (a bearer
  credential, no policy), the agent C of the operator -> A -> B -> C flow registered over HTTP first.

    .venv/bin/python -m tools.bench.gateway_compare compare [--seconds 5 --rounds 3 --workers 1]
    .venv/bin/python -m tools.bench.gateway_compare workers [--seconds 5 --rounds 3]
    .venv/bin/python -m tools.bench.gateway_compare plumbing [--seconds 5 --rounds 3]
    .venv/bin/python -m tools.bench.gateway_compare profile [--target gateway --seconds 15 --clients 8]

Every gateway request is pre-signed (a fresh nonce each) before its ``wrk`` run; ``wrk``'s Lua script sends them in
order. ``wrk -t1`` at c=1 and c=8, each target in turn, the order reversed every round; medians over rounds. CPU is
user + system time of the target's processes (and their children) over the run, from /proc; requests per
CPU-second is requests / that. Added p50 is the target's p50 minus the direct p50 of the same round set.
``workers`` compares the gateway's throughput at c=8 with one worker process and with two. ``profile`` runs ``wrk``
against one target while ``py-spy record --gil`` samples it, and prints where its CPU goes: the functions with the
most samples, inclusive and self (py-spy's raw folded stacks are kept in ``--out``).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from tools.bench import minimal_proxy
from tools.bench.gateway import World, register_world, write_config
from tools.bench.processes import clean_env, cpu_seconds, free_port, start, stop

TARGETS = ("direct", "nginx", "minimal", "gateway")
WRK_SCRIPT = r"""
local reqs = {}
local i = 0
local file = os.getenv("WRK_REQUESTS")
init = function(args)
  if file and file ~= "" then
    for line in io.lines(file) do
      local fields = {}
      for f in string.gmatch(line, "[^\t]+") do table.insert(fields, f) end
      local headers = {}
      for j = 2, #fields do
        local k, v = string.match(fields[j], "^([^:]+): (.*)$")
        headers[k] = v
      end
      table.insert(reqs, wrk.format("GET", fields[1], headers))
    end
  end
end
request = function()
  if #reqs == 0 then return wrk.request() end
  i = i + 1
  if i > #reqs then i = 1 end
  return reqs[i]
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('RESULT {"requests": %d, "duration_us": %d, "non2xx": %d, "errors": %d, ' ..
    '"p50_us": %d, "p99_us": %d}\n', summary.requests, summary.duration, e.status,
    e.connect + e.read + e.write + e.timeout, latency:percentile(50), latency:percentile(99)))
end
"""
NGINX_CONF = """
daemon off;
master_process on;
worker_processes 1;
pid {folder}/nginx.pid;
error_log {folder}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {folder}/nginx-body;
    proxy_temp_path {folder}/nginx-proxy;
    fastcgi_temp_path {folder}/nginx-fastcgi;
    uwsgi_temp_path {folder}/nginx-uwsgi;
    scgi_temp_path {folder}/nginx-scgi;
    keepalive_requests 1000000;
    upstream origin {{ server 127.0.0.1:{upstream}; keepalive 32; }}
    server {{
        listen 127.0.0.1:{upstream};
        location / {{ default_type application/json; return 200 '{{"upstream":true}}'; }}
    }}
    server {{
        listen 127.0.0.1:{proxy};
        location / {{
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}
}}
"""


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system) of ``pid`` and every process below it."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rpartition(")")[2].split()
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        with contextlib.suppress(OSError, ValueError, IndexError):
            total += cpu_seconds(current)
        todo.extend(children.get(current, []))
    return total


@dataclasses.dataclass
class Run:
    target: str
    clients: int
    requests: int
    seconds: float
    non2xx: int
    errors: int
    p50_ms: float
    p99_ms: float
    cpu: float

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    @property
    def per_cpu(self) -> float:
        return self.requests / self.cpu if self.cpu > 0 else float("nan")


def run_wrk(url: str, clients: int, seconds: float, script: Path, requests_file: Path | None, pid: int | None,
            target: str) -> Run:
    env = clean_env(WRK_REQUESTS=str(requests_file or ""))
    cpu0 = tree_cpu_seconds(pid) if pid else 0.0
    done = subprocess.run(["wrk", "-t1", f"-c{clients}", f"-d{seconds:g}s", "--timeout", "10s", "-s", str(script),
                           url], capture_output=True, text=True, env=env, check=False, timeout=seconds + 60)
    cpu = tree_cpu_seconds(pid) - cpu0 if pid else 0.0
    line = next((x for x in done.stdout.splitlines() if x.startswith("RESULT ")), None)
    if done.returncode != 0 or line is None:
        raise SystemExit(f"wrk failed on {target}: {done.stdout[-2000:]} {done.stderr[-2000:]}")
    r = json.loads(line[len("RESULT "):])
    return Run(target, clients, r["requests"], r["duration_us"] / 1e6, r["non2xx"], r["errors"], r["p50_us"] / 1000,
               r["p99_us"] / 1000, cpu)


def presigned(world: World, url: str, count: int, out: Path) -> Path:
    """``count`` requests signed now, one line each: path TAB header lines (the Lua script reads them)."""
    path = "/" + url.split("://", 1)[1].partition("/")[2]
    with out.open("w") as fh:
        for _ in range(count):
            fh.write(path + "".join(f"\t{k}: {v}" for k, v in world.signed(url).headers) + "\n")
    return out


@contextlib.contextmanager
def targets(folder: Path, workers: int) -> Iterator[tuple[dict[str, str], dict[str, int], World]]:
    """nginx (the upstream and a pass-through), the log, the minimal proxy and the gateway (action records on)."""
    folder.mkdir(parents=True, exist_ok=True)
    upstream_port, nginx_port, log_port, minimal_port, gateway_port = (free_port() for _ in range(5))
    (folder / "nginx.conf").write_text(NGINX_CONF.format(folder=folder, upstream=upstream_port, proxy=nginx_port))
    upstream, log_url = f"http://127.0.0.1:{upstream_port}", f"http://127.0.0.1:{log_port}"
    processes = []
    try:
        nginx = start(["nginx", "-c", str(folder / "nginx.conf"), "-p", str(folder)], folder / "nginx.out",
                      f"{upstream}/")
        processes.append(nginx)
        processes.append(start([sys.executable, "-m", "cli.main", "serve", "--data", str(folder / "log"), "--port",
                                str(log_port)], folder / "log.out", f"{log_url}/checkpoint"))
        world = register_world(log_url)
        minimal = start([sys.executable, "-m", "tools.bench.minimal_proxy", "--port", str(minimal_port),
                         "--upstream", upstream], folder / "minimal.out", f"http://127.0.0.1:{minimal_port}/x")
        processes.append(minimal)
        config, env = write_config(folder, log_url, upstream, gateway_port, True, workers=workers)
        gateway = start([sys.executable, "-m", "cli.main", "gateway", "--config", str(config)],
                        folder / "gateway.out", f"http://127.0.0.1:{gateway_port}/healthz", env)
        processes.append(gateway)
        urls = {"direct": f"{upstream}/api/inbox/1", "nginx": f"http://127.0.0.1:{nginx_port}/api/inbox/1",
                "minimal": f"http://127.0.0.1:{minimal_port}/api/inbox/1",
                "gateway": f"http://127.0.0.1:{gateway_port}/proxy/plain/inbox/1"}
        pids = {"direct": 0, "nginx": nginx.pid, "minimal": minimal.pid, "gateway": gateway.pid}
        yield urls, pids, world
    finally:
        for process in reversed(processes):
            stop(process)


def compare(folder: Path, seconds: float, rounds: int, workers: int) -> dict[tuple[str, int], list[Run]]:
    script = folder / "presigned.lua"
    results: dict[tuple[str, int], list[Run]] = {}
    with targets(folder, workers) as (urls, pids, world):
        script.write_text(WRK_SCRIPT)
        for r in range(rounds):
            for clients in (1, 8):
                for target in TARGETS if r % 2 == 0 else tuple(reversed(TARGETS)):
                    requests = None
                    if target == "gateway":  # enough for the run at a rate well above the gateway's
                        requests = presigned(world, urls[target], int(seconds * (800 if clients == 1 else 3000)),
                                             folder / "requests.txt")
                    result = run_wrk(urls[target], clients, seconds, script, requests, pids[target] or None, target)
                    results.setdefault((target, clients), []).append(result)
                    print(f"  round {r + 1} c={clients} {target:8s} {result.rate:8.0f} req/s  p50 "
                          f"{result.p50_ms:7.3f} ms  p99 {result.p99_ms:7.3f} ms  CPU {result.cpu:6.2f} s  "
                          f"{result.per_cpu:8.0f} req/CPU-s  non-2xx {result.non2xx}", file=sys.stderr, flush=True)
    return results


def report(results: dict[tuple[str, int], list[Run]], workers: int) -> None:
    def med(target: str, clients: int, what: str) -> float:
        return float(statistics.median(getattr(x, what) for x in results[(target, clients)]))

    print(f"wrk -t1, pre-signed requests, gateway with {workers} worker(s) and action records on; medians of "
          f"{len(results[('direct', 1)])} rounds")
    print("| target | c | req/s | p50 | p99 | added p50 | req per CPU-second | non-2xx or errors |")
    print("|---|---|---|---|---|---|---|---|")
    for clients in (1, 8):
        base = med("direct", clients, "p50_ms")
        for target in TARGETS:
            added = "" if target == "direct" else f"+{med(target, clients, 'p50_ms') - base:.3f} ms"
            per_cpu = "" if target == "direct" else f"{med(target, clients, 'per_cpu'):.0f}"
            bad = sum(x.non2xx + x.errors for x in results[(target, clients)])
            print(f"| {target} | {clients} | {med(target, clients, 'rate'):.0f} | "
                  f"{med(target, clients, 'p50_ms'):.3f} ms | {med(target, clients, 'p99_ms'):.3f} ms | {added} | "
                  f"{per_cpu} | {bad} |")
    for clients in (1, 8):
        base = med("direct", clients, "p50_ms")
        added_gw, added_min = med("gateway", clients, "p50_ms") - base, med("minimal", clients, "p50_ms") - base
        latency = added_gw / added_min if added_min > 0 else float("nan")
        cpu_ratio = med("gateway", clients, "per_cpu") / med("minimal", clients, "per_cpu")
        print(f"c={clients}: gateway added p50 / minimal's = {latency:.2f} (aim <= 1.5); "
              f"gateway req per CPU-second / minimal's = {cpu_ratio:.2f} (aim >= 0.7)")


def workers_scaling(folder: Path, seconds: float, rounds: int) -> None:
    """Throughput (c=8, pre-signed) of the gateway with one worker and with two, alternating, in one run."""
    rates: dict[int, list[float]] = {1: [], 2: []}
    for r in range(rounds):
        for workers in (1, 2) if r % 2 == 0 else (2, 1):
            with targets(folder / f"w{workers}-{r}", workers) as (urls, pids, world):
                script = folder / f"w{workers}-{r}" / "presigned.lua"
                script.write_text(WRK_SCRIPT)
                requests = presigned(world, urls["gateway"], int(seconds * 3000), script.parent / "requests.txt")
                result = run_wrk(urls["gateway"], 8, seconds, script, requests, pids["gateway"], "gateway")
                rates[workers].append(result.rate)
                print(f"  round {r + 1} workers {workers}: {result.rate:.0f} req/s, {result.per_cpu:.0f} req/CPU-s, "
                      f"non-2xx {result.non2xx}", file=sys.stderr, flush=True)
    one, two = statistics.median(rates[1]), statistics.median(rates[2])
    print(f"gateway at c=8: one worker {one:.0f} req/s, two workers {two:.0f} req/s: {two / one:.2f}x (aim >= 1.7)")


def plumbing(folder: Path, seconds: float, rounds: int) -> None:
    """The minimal pass-through with each upstream client on each event loop, side by side (c=1 and c=8, the order
    reversed every round): what each part of the stack would cost or save the gateway."""
    folder.mkdir(parents=True, exist_ok=True)
    upstream_port, nginx_port = free_port(), free_port()
    (folder / "nginx.conf").write_text(NGINX_CONF.format(folder=folder, upstream=upstream_port, proxy=nginx_port))
    upstream = f"http://127.0.0.1:{upstream_port}"
    variants = [(client, loop) for loop in minimal_proxy.LOOPS for client in minimal_proxy.CLIENTS]
    processes = []
    results: dict[tuple[str, str, int], list[Run]] = {}
    try:
        processes.append(start(["nginx", "-c", str(folder / "nginx.conf"), "-p", str(folder)], folder / "nginx.out",
                               f"{upstream}/"))
        running = {}
        for client, loop in variants:
            port = free_port()
            process = start([sys.executable, "-m", "tools.bench.minimal_proxy", "--port", str(port), "--upstream",
                             upstream, "--client", client, "--loop", loop], folder / f"minimal-{client}-{loop}.out",
                            f"http://127.0.0.1:{port}/x")
            processes.append(process)
            running[(client, loop)] = (f"http://127.0.0.1:{port}/api/inbox/1", process.pid)
        script = folder / "plain.lua"
        script.write_text(WRK_SCRIPT)
        for r in range(rounds):
            for clients in (1, 8):
                for client, loop in variants if r % 2 == 0 else list(reversed(variants)):
                    url, pid = running[(client, loop)]
                    result = run_wrk(url, clients, seconds, script, None, pid, f"{client}/{loop}")
                    results.setdefault((client, loop, clients), []).append(result)
                    print(f"  round {r + 1} c={clients} {client:8s} {loop:7s} {result.rate:6.0f} req/s  p50 "
                          f"{result.p50_ms:7.3f} ms  {result.per_cpu:6.0f} req/CPU-s  non-2xx {result.non2xx}",
                          file=sys.stderr, flush=True)
    finally:
        for process in reversed(processes):
            stop(process)
    print(f"minimal pass-through variants, wrk -t1, medians of {rounds} rounds; ratios to httpx on asyncio (the "
          "reference floor)")
    print("| client | loop | c | req/s | p50 | req per CPU-second | CPU ratio | p50 ratio |")
    print("|---|---|---|---|---|---|---|---|")
    for clients in (1, 8):
        ref = results[("httpx", "asyncio", clients)]
        ref_cpu = statistics.median(x.per_cpu for x in ref)
        ref_p50 = statistics.median(x.p50_ms for x in ref)
        for client, loop in variants:
            runs = results[(client, loop, clients)]
            per_cpu = statistics.median(x.per_cpu for x in runs)
            p50 = statistics.median(x.p50_ms for x in runs)
            print(f"| {client} | {loop} | {clients} | {statistics.median(x.rate for x in runs):.0f} | {p50:.3f} ms | "
                  f"{per_cpu:.0f} | {per_cpu / ref_cpu:.2f} | {p50 / ref_p50:.2f} |")


def profile(folder: Path, target: str, seconds: float, clients: int, out: Path | None, top: int) -> None:
    """``wrk`` at ``clients`` against ``target`` while py-spy samples its process (``--gil``: where the GIL is held,
    i.e. where the one core a worker can use goes)."""
    spy = Path(sys.executable).with_name("py-spy")
    folded = out or folder / "profile.txt"
    with targets(folder, 1) as (urls, pids, world):
        script = folder / "presigned.lua"
        script.write_text(WRK_SCRIPT)
        requests = None
        if target == "gateway":
            requests = presigned(world, urls[target], int((seconds + 5) * 1500), folder / "requests.txt")
        sampler = subprocess.Popen([str(spy), "record", "--gil", "--nonblocking", "--format", "raw", "--rate", "250",
                                    "--duration", f"{seconds + 2:g}", "--output", str(folded), "--pid",
                                    str(pids[target])], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        result = run_wrk(urls[target], clients, seconds, script, requests, pids[target], target)
        _, err = sampler.communicate(timeout=seconds + 60)
        if sampler.returncode != 0:
            raise SystemExit(f"py-spy failed: {err.decode()[-2000:]}")
    print(f"{target} at c={clients}: {result.rate:.0f} req/s, {result.per_cpu:.0f} req per CPU-second, "
          f"non-2xx {result.non2xx}")
    summarise(folded, top)


def summarise(folded: Path, top: int) -> None:
    """Inclusive and self shares of py-spy's raw folded stacks (``frame;frame;... count`` a line)."""
    inclusive: dict[str, int] = {}
    own: dict[str, int] = {}
    total = 0
    for line in folded.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [f.split(" (")[0] + " (" + f.split(" (")[1].split(":")[0] + ")" if " (" in f else f
                  for f in stack.split(";")]
        total += count
        for frame in set(frames):
            inclusive[frame] = inclusive.get(frame, 0) + count
        own[frames[-1]] = own.get(frames[-1], 0) + count
    print(f"{total} samples holding the GIL")
    for title, table in (("inclusive", inclusive), ("self", own)):
        print(f"-- {title}")
        for frame, count in sorted(table.items(), key=lambda kv: -kv[1])[:top]:
            print(f"{100 * count / total:6.1f}%  {frame}")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("section", choices=["compare", "workers", "profile", "plumbing"])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--target", choices=TARGETS[1:], default="gateway", help="profile: the process sampled")
    parser.add_argument("--clients", type=int, default=8, help="profile: wrk's connections")
    parser.add_argument("--out", type=Path, help="profile: keep py-spy's folded stacks here")
    parser.add_argument("--top", type=int, default=60, help="profile: lines of each table")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="tabellion-gw-compare-") as tmp:
        if args.section == "compare":
            report(compare(Path(tmp), args.seconds, args.rounds, args.workers), args.workers)
        elif args.section == "plumbing":
            plumbing(Path(tmp), args.seconds, args.rounds)
        elif args.section == "profile":
            profile(Path(tmp), args.target, args.seconds, args.clients, args.out, args.top)
        else:
            workers_scaling(Path(tmp), args.seconds, args.rounds)


if __name__ == "__main__":
    main()
