"""A local stand-in for DeepSeek's chat-completions API with scriptable faults.

Run it with `python -m chat.simulator --port 8300` or `python manage.py runsimulator`.
Nothing in this package imports Django.
"""

from .cli import add_server_arguments, defaults_from_arguments, run
from .script import DIRECTIVE_KEYS, FAULTS, FLAVORS, Options, ServerDefaults
from .server import SimulatorServer

__all__ = [
    "DIRECTIVE_KEYS",
    "FAULTS",
    "FLAVORS",
    "Options",
    "ServerDefaults",
    "SimulatorServer",
    "add_server_arguments",
    "defaults_from_arguments",
    "run",
]
