"""Model engines behind small protocols, so a stage can run a real model or a named fake.

Importing this package is cheap: torch, faster_whisper and pyannote are imported only
inside the engine modules, when a model is actually built.
"""

from stages.engines.base import Diarizer, SpeakerEncoder, Transcriber

__all__ = ["Diarizer", "SpeakerEncoder", "Transcriber"]
