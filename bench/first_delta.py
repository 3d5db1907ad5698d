"""Measure how fast one reply starts, on a running site with the simulator.

Signs up a fresh user over HTTP, then sends messages one after another over
the websocket and reports percentiles of:

- send -> `message.accepted`
- send -> the simulator receiving the upstream request (from its request log;
  both clocks are this machine's)
- send -> first `reasoning.delta`
- the simulator's first byte -> first `reasoning.delta` (the site's added latency)

Usage: .venv/bin/python bench/first_delta.py --site http://127.0.0.1:8000 \
           --simulator http://127.0.0.1:8300 --replies 30
Loopback only: the script refuses other hosts.
"""

import argparse
import asyncio
import json
import re
import statistics
import time
import uuid
from urllib.parse import urlsplit

import httpx
import websockets

LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def require_loopback(url):
    host = urlsplit(url).hostname
    if host not in LOOPBACK:
        raise SystemExit(f"{url} is not a loopback address; this benchmark runs locally only.")


def sign_up(site):
    email = f"bench-{uuid.uuid4().hex[:12]}@example.com"
    password = f"bench-{uuid.uuid4().hex}"
    with httpx.Client(base_url=site, follow_redirects=False, timeout=10) as client:
        page = client.get("/accounts/sign-up/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
        response = client.post(
            "/accounts/sign-up/",
            data={
                "csrfmiddlewaretoken": token,
                "email": email,
                "password1": password,
                "password2": password,
            },
            headers={"Referer": f"{site}/accounts/sign-up/"},
        )
        if response.status_code != 302:
            raise SystemExit(f"Sign-up failed with status {response.status_code}.")
        return "; ".join(f"{name}={value}" for name, value in client.cookies.items())


async def one_reply(socket, simulator, marker):
    content = f"Benchmark question {marker}\n[sim rate=30 reasoning=20 answer=10]"
    sent = time.time()
    await socket.send(
        json.dumps(
            {
                "type": "message.send",
                "conversation": None,
                "content": content,
                "client_id": str(uuid.uuid4()),
            }
        )
    )
    accepted_at = first_delta_at = None
    while True:
        frame = json.loads(await socket.recv())
        now = time.time()
        if frame["type"] == "message.accepted":
            accepted_at = now
        elif frame["type"] == "reasoning.delta" and first_delta_at is None:
            first_delta_at = now
        elif frame["type"] == "message.done":
            break
        elif frame["type"] == "error":
            raise SystemExit(f"Send failed: {frame}")

    log = httpx.get(f"{simulator}/_sim/requests", timeout=10).json()
    entry = next(e for e in reversed(log) if marker in json.dumps(e["body"], ensure_ascii=False))
    return {
        "accepted": accepted_at - sent,
        "upstream_request": entry["started"] - sent,
        "first_delta": first_delta_at - sent,
        "added_latency": first_delta_at - entry["first_byte"],
    }


def percentile(values, fraction):
    ordered = sorted(values)
    index = min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))
    return ordered[index]


async def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--site", default="http://127.0.0.1:8000")
    parser.add_argument("--simulator", default="http://127.0.0.1:8300")
    parser.add_argument("--replies", type=int, default=30)
    arguments = parser.parse_args()
    require_loopback(arguments.site)
    require_loopback(arguments.simulator)

    cookie = sign_up(arguments.site)
    ws_url = arguments.site.replace("http", "ws", 1) + "/ws/chat/"
    samples = []
    async with websockets.connect(
        ws_url, additional_headers={"Cookie": cookie, "Origin": arguments.site}
    ) as socket:
        for _ in range(arguments.replies):
            # A new conversation each time keeps the prompt the same size.
            samples.append(await one_reply(socket, arguments.simulator, uuid.uuid4().hex))

    print(f"{len(samples)} replies, one at a time; milliseconds")
    print("| measure | p50 | p90 | max |")
    print("| --- | --- | --- | --- |")
    labels = {
        "accepted": "send -> message.accepted",
        "upstream_request": "send -> upstream request received",
        "first_delta": "send -> first reasoning.delta",
        "added_latency": "upstream first byte -> first reasoning.delta",
    }
    for name, label in labels.items():
        values = [sample[name] * 1000 for sample in samples]
        print(
            f"| {label} | {statistics.median(values):.1f} | "
            f"{percentile(values, 0.9):.1f} | {max(values):.1f} |"
        )


if __name__ == "__main__":
    asyncio.run(main())
