#!/usr/bin/env python3
"""Prints the units live workers of a capfilt job hold, one `UNIT PID HOST WORKER` line each.

    python3 Scripts/held-unit.py OUT [WORKER]      (with WORKER: the first unit that worker holds, if any)

Reads the lease files (OUT/units/NNNNN/lease.ATTEMPT, JSON with worker, pid, host) of the units that are not
done and takes the newest attempt of each; the holder must be a live process of this machine (its pid
answers kill -0; the host name in the lease may differ, as in the Kubernetes test's per-pod host names).
Used by the scheduler tests to pick a task to cancel or kill while it works on a unit. Standard library only.
"""
import json
import os
import sys


def main() -> int:
    root = os.path.join(sys.argv[1], "units")
    worker = int(sys.argv[2]) if len(sys.argv) > 2 else None
    for unit in sorted(os.listdir(root)) if os.path.isdir(root) else []:
        d = os.path.join(root, unit)
        names = os.listdir(d)
        attempts = [int(n[6:]) for n in names if n.startswith("lease.") and n[6:].isdigit()]
        if "done.json" in names or not attempts:
            continue
        try:
            with open(os.path.join(d, f"lease.{max(attempts)}")) as f:
                holder = json.load(f)
            os.kill(holder["pid"], 0)
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if worker is None or holder.get("worker") == worker:
            print(unit, holder["pid"], holder.get("host", "?"), holder.get("worker"))
            if worker is not None:
                return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
