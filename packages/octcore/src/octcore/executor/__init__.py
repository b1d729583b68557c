"""Running a plan: the journal, the DAG executor, run directories and the live view.

- ``journal``   SQLite (WAL) record of every job's state and every state change
- ``executor``  the backend-agnostic loop that decides what runs when
- ``runs``      run directories: lookup by name, the coordinator lock, plan.json
- ``live``      the live terminal view and the status table
"""

from octcore.executor.executor import Executor, ExecutorOptions, Summary
from octcore.executor.journal import Journal

__all__ = ["Executor", "ExecutorOptions", "Journal", "Summary"]
