"""`python cli_driver.py ARGS` = `alignlab ARGS` with the toy experiments registered."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import toy_experiments  # noqa: E402,F401

from alignlab.cli import main  # noqa: E402

main()
