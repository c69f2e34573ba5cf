"""Train the YOLOv8 baseline and the FLA variants on the helmet subset (``fla train``, notebook 06).

``runs`` trains and scores one variant × seed and sweeps them into a folder (``folders`` says what
it holds); ``report`` says what the rows show — mean ± spread per variant, the paired difference to
base on the test split with a bootstrap interval over test images (``fla.experiments.stats``), the
curves; ``download`` fetches ultralytics' checkpoints to start from.
"""
from ..sweep import SettingsClash
from .folders import COLUMNS, DETECTIONS, KEY, TEST_COLUMNS, read_results, run_dir
from .download import PRETRAINED_URL, NotACheckpointName, pretrained
from .report import (PAIRED_COLUMNS, compare, comparison_lines, first_epoch_above, markdown, paired_table, plot_curves, plot_paired,
                     read_comparisons, read_epochs, run_table, variant_table, verdict, write_comparisons)
from .runs import FULL, QUICK, evaluate, score_test, start_of, sweep, train_all, train_detector

__all__ = ["COLUMNS", "TEST_COLUMNS", "KEY", "DETECTIONS", "run_dir", "read_results", "PRETRAINED_URL", "pretrained",
           "NotACheckpointName", "PAIRED_COLUMNS", "compare", "comparison_lines", "first_epoch_above", "markdown", "paired_table",
           "plot_curves", "plot_paired", "read_comparisons", "read_epochs", "run_table", "variant_table", "verdict", "write_comparisons", "FULL",
           "QUICK", "SettingsClash", "evaluate", "score_test", "start_of", "sweep", "train_all",
           "train_detector"]
