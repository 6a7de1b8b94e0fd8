from __future__ import annotations

import sys

from edge_onboard.cli import main

sys.exit(main())
