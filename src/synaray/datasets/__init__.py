"""Built-in tasks (shipped as package data with their licences): load them as Datasets.

Example:
    >>> from synaray import datasets
    >>> train, val, test = datasets.load_task("sports_understanding", n_train=10, n_val=10,
    ...                                       n_test=20)
    >>> len(train), len(test), train.x[0].get_json().keys() == {"statement"}
    (10, 20, True)
"""

from synaray.datasets.tasks import TASKS, TaskSpec, get_task, load_task

__all__ = ["TASKS", "TaskSpec", "get_task", "load_task"]
