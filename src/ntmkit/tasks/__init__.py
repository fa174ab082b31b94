"""Tasks are plug-ins: each file defines one :class:`Task`; the registry maps names to them."""

from ..errors import TaskError
from .base import Batch, Task
from .copy import CopyTask

TASKS = {"copy": CopyTask}

__all__ = ["Batch", "Task", "TaskError", "CopyTask", "TASKS"]
