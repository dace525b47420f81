"""Entry point of ``python -m bench``."""

from .runner import main

raise SystemExit(main())
