"""``make sandbox``: run the sandbox in the foreground and print how to aim a shell at it.

    python -m sandbox [--workdir DIR] [--no-kubernetes] [--no-aws]

Ctrl-C stops it. Everything listens on 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from sandbox import REPO_ROOT, Sandbox


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make sandbox", description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", default=str(REPO_ROOT / ".sandbox" / "foreground"))
    parser.add_argument("--no-aws", action="store_true")
    parser.add_argument("--no-kubernetes", action="store_true")
    args = parser.parse_args(argv)

    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    with Sandbox(workdir=args.workdir, aws=not args.no_aws, kubernetes=not args.no_kubernetes) as box:
        env_file = box.workdir / "env.sh"
        env_file.write_text("".join(f"export {key}={value}\n" for key, value in sorted(box.env().items())))
        print(box.describe())
        print(f"\n# or: source {env_file}\n# back to the seed data: stop and start `make sandbox` again")
        print("sandbox running; Ctrl-C to stop", flush=True)
        stop.wait()
    print("sandbox stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
