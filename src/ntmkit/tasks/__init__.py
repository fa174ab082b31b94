"""Tasks are plug-ins: each file defines one :class:`Task`; the registry maps names to them."""

from ..errors import TaskError
from .associative_recall import AssociativeRecallTask
from .base import Batch, Task
from .chomsky import CHOMSKY_TASKS
from .copy import CopyTask
from .ngrams import NGramsTask
from .priority_sort import PrioritySortTask
from .repeat_copy import RepeatCopyTask

TASKS: dict[str, type[Task]] = {
    "copy": CopyTask,
    "repeat_copy": RepeatCopyTask,
    "associative_recall": AssociativeRecallTask,
    "ngrams": NGramsTask,
    "priority_sort": PrioritySortTask,
    **CHOMSKY_TASKS,  # the 15 length-generalisation tasks of Delétang et al. (2023)
}

__all__ = [
    "CHOMSKY_TASKS",
    "TASKS",
    "AssociativeRecallTask",
    "Batch",
    "CopyTask",
    "NGramsTask",
    "PrioritySortTask",
    "RepeatCopyTask",
    "Task",
    "TaskError",
]
