"""Agent for the recording workstations: health check, sessions, upload, certificates."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("ocap-agent")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = ["__version__"]
