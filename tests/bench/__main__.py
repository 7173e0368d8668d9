"""`python -m tests.bench`: the foundation benchmarks (see tests/bench/foundation.py)."""

from tests.bench.foundation import main

raise SystemExit(main())
