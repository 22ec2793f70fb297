"""``python -m behavioral``: the same as the ``behavioral`` command."""

from behavioral.cli import main

raise SystemExit(main())
