"""``python -m notte_exporter``: the same as the ``notte-exporter`` command."""

import sys

from notte_exporter.cli import main

sys.exit(main())
