"""The 15 length-generalisation tasks of Delétang et al., "Neural Networks and the Chomsky
Hierarchy" (ICLR 2023), written from the paper's definitions, grouped by the level of the
hierarchy whose machine solves them: regular (R), deterministic context-free (DCF) and
context-sensitive (CS). See :mod:`.base` for the shared layout and scores."""

from .base import TokenTask
from .context_free import (
    ModularArithmeticBracketsTask,
    ReverseStringTask,
    SolveEquationTask,
    StackManipulationTask,
)
from .context_sensitive import (
    BinaryAdditionTask,
    BinaryMultiplicationTask,
    BucketSortTask,
    ComputeSqrtTask,
    DuplicateStringTask,
    MissingDuplicateTask,
    OddsFirstTask,
)
from .regular import CycleNavigationTask, EvenPairsTask, ModularArithmeticTask, ParityCheckTask

# In the order of the paper's table: regular, deterministic context-free, context-sensitive.
CHOMSKY_TASKS: dict[str, type[TokenTask]] = {
    t.name: t
    for t in (
        EvenPairsTask,
        ModularArithmeticTask,
        ParityCheckTask,
        CycleNavigationTask,
        StackManipulationTask,
        ReverseStringTask,
        ModularArithmeticBracketsTask,
        SolveEquationTask,
        DuplicateStringTask,
        MissingDuplicateTask,
        OddsFirstTask,
        BinaryAdditionTask,
        BinaryMultiplicationTask,
        ComputeSqrtTask,
        BucketSortTask,
    )
}

__all__ = ["CHOMSKY_TASKS", "TokenTask"]
