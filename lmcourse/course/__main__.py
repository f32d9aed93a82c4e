"""python -m lmcourse.course ...: see `lmcourse.course.cli`."""

import sys

from lmcourse.course.cli import main

sys.exit(main())
