"""Exceptions: one root, `PidsError`, and a subclass per kind of failure."""


class PidsError(Exception):
    """Root of every error PIDS raises on purpose."""


class ConfigError(PidsError):
    """Invalid configuration or option value."""


class TaskNotFound(PidsError):
    """No task with this id exists in the cluster."""


class TaskFunctionError(PidsError):
    """The task's function is malformed, unknown or not in an allowed module."""


class TaskArgumentsError(PidsError):
    """The task's args/kwargs are not JSON-serialisable or malformed."""


class TaskFailed(PidsError):
    """The task ended failed or dead-lettered; carries its last error."""

    def __init__(self, task_id: str, state: str, error: str) -> None:
        super().__init__(f"task {task_id} {state}: {error}")
        self.task_id = task_id
        self.state = state
        self.error = error


class TaskTimeout(PidsError):
    """Waiting for a task's result took longer than the caller allowed."""


class RedisUnavailable(PidsError):
    """Redis could not be reached (after retries where they apply)."""
