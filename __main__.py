"""python -m macrobatch: the macrobatch command."""
import sys

from .cli import main

sys.exit(main())
