"""python -m macrobatch.cli: the macrobatch command."""
import sys

from . import main

sys.exit(main())
