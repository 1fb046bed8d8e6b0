"""The names of a study's own user attributes: what a search writes when it creates the study, and what
``export``, ``report``, ``robust`` and ``studies`` read back (a trial's attributes are in ``recording``)."""

from __future__ import annotations

SPACE = "space"  # the space's name; written last, so that once it is there the attributes are complete
SPACE_SOURCE = "space_source"  # where a user's space came from (its file or module:function)
OBJECTIVES = "objectives"  # as --objectives named them: accuracy, params, latency
MODEL = "model"
DATASET = "dataset"
EPOCHS = "epochs"
METRIC = "metric"  # the validation metric the first objective scores (val_accuracy)
SEED = "seed"  # the study seed its trial seeds derive from
SETTINGS = "settings"  # the settings of the run that created it
VERSION = "aaf_search_version"
UID = "study_uid"  # a uuid written at creation: tells a study from one made again under its name
RUN_DIR = "run_dir"  # the absolute path of the run directory its latest search wrote trials into
RUN_DIRS = "run_dirs"  # every run directory its searches wrote trials into, absolute, oldest first
SOURCE_STUDY = "source_study"  # a robustness companion's: the study whose configurations it re-trains
