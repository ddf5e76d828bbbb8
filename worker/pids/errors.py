"""Exceptions: one root, `PidsError`, and a subclass per kind of failure."""


class PidsError(Exception):
    """Root of every error PIDS raises on purpose."""


class ConfigError(PidsError):
    """Invalid configuration or option value."""


class TaskNotFound(PidsError):
    """No task with this id exists in the cluster."""


class TaskLost(TaskNotFound):
    """A task this client knew of is gone: Redis lost its data (a new epoch, or a restart that
    dropped its last writes). Submitting it again under the same id is safe."""


class EnqueueNotAcknowledged(PidsError):
    """Fewer replicas than asked for confirmed an enqueue: it may not survive a failover."""


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
    """Redis could not be reached, or kept refusing, for longer than the caller allows."""
