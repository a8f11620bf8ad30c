"""The status benchmark of issue 11: `imgbatch status` of a 100,009-record ledger, <= 2 s.
It is `bench/ledger_bench.py --only status` (the code lives there); the same options,
e.g. `--rounds 3 --before /tmp/old-tree`."""

import sys

from ledger_bench import main

if __name__ == "__main__":
    sys.exit(main(["--only", "status", *sys.argv[1:]]))
