import sys

from nanosim.cli import main

sys.exit(main())
