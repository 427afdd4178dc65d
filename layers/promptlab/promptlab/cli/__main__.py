"""`python -m promptlab.cli.main`."""

from promptlab.cli.main import main

raise SystemExit(main())
