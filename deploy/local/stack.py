#!/usr/bin/env python3
"""The local demo stack on loopback: ``up``, ``status`` or ``down``.

    .venv/bin/python deploy/local/stack.py up|status|down

``make demo`` brings it up and ``make demo-stop`` takes it down. What runs where, and where its
state lives, is described in ``standins.local_stack``, which this script runs.
"""

import sys

from standins.local_stack import main

if __name__ == "__main__":
    sys.exit(main())
