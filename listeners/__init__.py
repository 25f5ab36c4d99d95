"""Memory listeners: the callback protocol and generic listeners."""

from flatview.listener import MemoryListener, supports_resize
from listeners.recording import RecordingListener, ResizeRecordingListener

__all__ = ["MemoryListener", "RecordingListener", "ResizeRecordingListener", "supports_resize"]
