"""The one exception a staging step raises when a check fails."""


class StagingError(RuntimeError):
    """A staging check failed; the message is one sentence saying what."""
