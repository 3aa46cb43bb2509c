"""`make fuzz`: mutate the seed files for a bounded time; save every crashing input.

    python tests/fuzz_run.py --seconds 120 [--seed N]

A crash (an exception other than LossCliError) is written to tests/fuzz_corpus/FMT/ and the
run exits 1 after the time is up; the suite replays that folder on every run.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import signal
import sys
import tempfile
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fuzzing import CORPUS, FORMATS, mutate, run_target, seeds

PER_INPUT_SECONDS = 10.0


class Hang(Exception):
    """An input that took longer than PER_INPUT_SECONDS: stored like a crash."""


def _alarm(signum: int, frame: object) -> None:
    raise Hang(f"no answer within {PER_INPUT_SECONDS} s")


def main() -> int:
    signal.signal(signal.SIGALRM, _alarm)
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--seed", type=int, default=None)
    args = ap.parse_args()
    seed = args.seed if args.seed is not None else int(time.time())
    rng = random.Random(seed)
    base = seeds()
    deadline = time.monotonic() + args.seconds
    runs = crashes = 0
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        while time.monotonic() < deadline:
            fmt = rng.choice(FORMATS)
            data = mutate(rng, base[fmt]) if rng.random() < 0.9 else rng.randbytes(rng.randint(0, 64))
            runs += 1
            signal.setitimer(signal.ITIMER_REAL, PER_INPUT_SECONDS)  # a hang is a crash too
            try:
                run_target(fmt, data, directory)
            except Exception:
                crashes += 1
                name = hashlib.sha1(data).hexdigest()[:16]
                folder = CORPUS / fmt
                folder.mkdir(parents=True, exist_ok=True)
                (folder / name).write_bytes(data)
                print(f"CRASH {fmt} {folder / name}:\n{traceback.format_exc(limit=3)}", file=sys.stderr)
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
    print(f"fuzz: seed {seed}, {runs} inputs in {args.seconds:.0f} s, {crashes} crashes")
    return 1 if crashes else 0


if __name__ == "__main__":
    sys.exit(main())
