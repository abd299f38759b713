"""The errors that mean the user's input is wrong: the CLI prints these as one line, exit status 2."""

from training.data.base import DatasetError
from training.data.download import DownloadError
from training.export import ExportError
from training.models.weights import WeightsError
from training.run_dir import RunDirectoryError

# ValueError covers bad task, preset and option values (raised by `training.tasks`).
USER_ERRORS = (DatasetError, DownloadError, ExportError, WeightsError, RunDirectoryError, ValueError)
