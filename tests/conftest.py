"""Settings for every test: no test reads or writes the learner's exercise progress file."""

import os

os.environ["LMCOURSE_EXERCISE_RECORD"] = "off"  # tests/test_exercise_record.py points it at a temporary file
