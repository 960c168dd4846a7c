"""`python -m bench.load`: see bench/load/__init__.py."""

from bench.load.run import main

raise SystemExit(main())
