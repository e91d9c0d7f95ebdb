"""``python -m app`` is the ``sysmon`` command."""

import sys

from app.cli import main

sys.exit(main())
