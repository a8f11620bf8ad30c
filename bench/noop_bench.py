"""The no-op rerun benchmark of issue 11: `imgbatch run` of a finished 10,000-task manifest,
0 requests and <= 1 s. It is `bench/ledger_bench.py --only noop` (the code lives there);
the same options, e.g. `--rounds 3 --before /tmp/old-tree`, `--noop-tasks 1000 --image-mb 4`."""

import sys

from ledger_bench import main

if __name__ == "__main__":
    sys.exit(main(["--only", "noop", *sys.argv[1:]]))
