"""Entry point of `python -m mixin` (what `make generate` runs)."""

import sys

from mixin.generate import main

sys.exit(main())
