"""``python3 -m psds_stream``: see :mod:`psds_stream.cli`."""

import sys

from .cli import main

sys.exit(main())
