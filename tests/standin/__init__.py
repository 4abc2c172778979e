"""Twilio stand-in: a local fake of Twilio's recording APIs for tests and benchmarks."""

from .app import create_app
from .records import (
    Account,
    ApiKey,
    LegacyRecording,
    MediaRecording,
    Recording,
    VideoRecording,
    VoiceRecording,
)
from .server import StandinServer
from .state import StandinState

__all__ = [
    "Account", "ApiKey", "LegacyRecording", "MediaRecording", "Recording", "StandinServer",
    "StandinState", "VideoRecording", "VoiceRecording", "create_app",
]
