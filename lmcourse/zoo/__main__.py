"""python -m lmcourse.zoo ...: see `lmcourse.zoo.cli`."""

import sys

from lmcourse.zoo.cli import main

sys.exit(main())
