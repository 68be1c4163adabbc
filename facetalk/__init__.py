"""FaceTalk: an open-source conversational avatar for LiveKit rooms."""

from .errors import FaceTalkError

__all__ = ["FaceTalkError", "__version__"]
__version__ = "0.1.0"
