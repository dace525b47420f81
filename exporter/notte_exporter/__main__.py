"""``python -m notte_exporter``: the same as the ``notte-exporter`` command."""

import sys

from .cli import main

sys.exit(main())
