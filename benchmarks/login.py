"""Login cost against one scrypt derivation measured in the same run (issue: PKI and accounts).

    python benchmarks/login.py [--repeat 5]

Starts a home server in this process (SQLite, block store, HTTP on loopback), signs up one user, then
times, alternately, a full login (PKI chain → identity pointer → WriterData → scrypt 2^17 → login-key
signed time → getLogin → decrypt the login data) and a bare scrypt derivation with the same parameters.
Prints the medians and the ratio login / scrypt (goal <= 1.3).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from peergos_node.client.account import login, signup
from peergos_node.crypto.login import derive_login_keys
from tests.helpers.home import home_server


async def main(repeat: int) -> float:
    with tempfile.TemporaryDirectory() as d:
        async with home_server(Path(d) / "home") as home:
            session = await signup(home.net, "bench", "a benchmark password", home.token())
            alg = session.algorithm
            logins: list[float] = []
            scrypts: list[float] = []
            await login(home.net, "bench", "a benchmark password")  # warm up connections and caches
            for _ in range(repeat):
                t = time.perf_counter()
                await login(home.net, "bench", "a benchmark password")
                logins.append(time.perf_counter() - t)
                t = time.perf_counter()
                derive_login_keys("bench", "a benchmark password", alg)
                scrypts.append(time.perf_counter() - t)
    lg, sc = statistics.median(logins), statistics.median(scrypts)
    ratio = lg / sc
    print(f"login median {lg * 1000:.0f} ms, scrypt(2^{alg.memory_cost}, 8, 1) median {sc * 1000:.0f} ms")
    print(f"ratio login/scrypt = {ratio:.2f}x (goal <= 1.3)")
    return ratio


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=5)
    trio.run(main, ap.parse_args().repeat)
