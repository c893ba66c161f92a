"""``python -m par``: the ``par`` command."""

from .cli import main

raise SystemExit(main())
