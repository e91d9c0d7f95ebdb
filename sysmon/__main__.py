"""``python -m sysmon`` is the ``sysmon`` command."""

import sys

from sysmon.cli import main

sys.exit(main())
