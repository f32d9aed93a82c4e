"""The course's own tools: headline numbers and runtime tables for notebooks, the runner, the checks.

    lmcourse.course.key_result("gpt_nats_per_char", 1.52, "nats/char")   # in a notebook
    python -m lmcourse.course run | check | table                         # see lmcourse.course.cli

One module per job: `results` (what notebooks call: `key_result`, `runtime_table`, and their files),
`runner` (executing notebooks and recording what they measured), `checks` (of the stored outputs),
`folder` (where a checkout's files are), `cli` (the command line). Their public names are all here.
"""

from lmcourse.course.checks import (
    ALLOWED_PROSE_NUMBERS,
    check_notebook,
    duplicate_figure_problems,
    html_progress_bar_problems,
    key_result_problems,
    notebook_problems,
    progress_bar_problems,
    prose_number_problems,
    prose_numbers,
    recorded_key_result_problems,
    runtime_table_problems,
    widget_fallback_problems,
)
from lmcourse.course.cli import main
from lmcourse.course.folder import PACKAGE_CHECKOUT, CourseFolder, course_folder
from lmcourse.course.results import (
    KEY_RESULT,
    KeyResult,
    _visible_text,
    key_result,
    key_results,
    load_key_results,
    load_runtimes,
    notebook_paths,
    parse_key_result,
    readme_with_table,
    runtime_table,
    runtime_table_cell,
    set_runtime_table,
)
from lmcourse.course.runner import (
    Run,
    coalesce_streams,
    execute,
    finish_interrupted_save,
    reproducibility_problems,
    run_course,
    run_notebook,
    save_run,
)

ROOT = PACKAGE_CHECKOUT  # this clone, for the repository's own tools and tests; the runner uses course_folder()
NOTEBOOKS = ROOT / "notebooks"

__all__ = [
    "ALLOWED_PROSE_NUMBERS", "check_notebook", "coalesce_streams", "course_folder", "CourseFolder",
    "duplicate_figure_problems", "execute", "finish_interrupted_save", "html_progress_bar_problems", "KEY_RESULT",
    "key_result", "key_result_problems", "key_results", "KeyResult", "load_key_results", "load_runtimes", "main",
    "notebook_paths", "notebook_problems", "NOTEBOOKS", "PACKAGE_CHECKOUT", "parse_key_result",
    "progress_bar_problems", "prose_number_problems", "prose_numbers", "readme_with_table",
    "recorded_key_result_problems", "reproducibility_problems", "ROOT", "Run", "run_course", "run_notebook",
    "runtime_table", "runtime_table_cell", "runtime_table_problems", "save_run", "set_runtime_table",
    "widget_fallback_problems", "_visible_text",
]
