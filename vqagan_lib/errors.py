"""One exception type for every user-facing problem.

The CLI prints it as a single line (`vqagan: error: <message>`) and exits non-zero,
so a message must name the file and say what is wrong with it.
"""


class VQAGanError(Exception):
    """A problem with the user's input or files, reported as one clear line."""
