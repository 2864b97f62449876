"""`python cli_driver.py ARGS` = `alignlab ARGS` with the toy experiments registered."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import toy_experiments  # noqa: F401

from alignlab.cli import main

main()
