"""`python -m ptychopinn.app` runs the `ptychopinn` command."""

import sys

from .cli import main

sys.exit(main())
