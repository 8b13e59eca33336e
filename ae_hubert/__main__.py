"""``python -m ae_hubert ...`` = ``ae-hubert ...``."""
import sys

from .cli import main

sys.exit(main())
