"""Listeners: the recording listener, and the KVM listener with its pure planner,
slot layout, dirty-page carry, optimistic commit window and reports.

They import the model (:mod:`flatview`) and the KVM backend (:mod:`kvm_backend`);
the listener protocol itself is the model's (:class:`flatview.MemoryListener`).
"""

import logging

from listeners.commit_window import CommitWindow
from listeners.kvm_listener import (
    MODES,
    CommitReport,
    KvmMemoryListener,
    Mode,
    Queued,
    RegistrationError,
)
from listeners.planner import Plan, PlanCaps, PlanError, Slot, SlotOp, plan
from listeners.recording import Event, RecordingListener, ResizeRecordingListener
from listeners.report import Batch, ChangeClass, Summary, summarize, summary_line, trace_line
from listeners.slot_layout import SlotMapping, desired_mappings

# a library stays silent until the application configures logging
logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = [
    "MODES",
    "Batch",
    "ChangeClass",
    "CommitReport",
    "CommitWindow",
    "Event",
    "KvmMemoryListener",
    "Mode",
    "Plan",
    "PlanCaps",
    "PlanError",
    "Queued",
    "RecordingListener",
    "RegistrationError",
    "ResizeRecordingListener",
    "Slot",
    "SlotMapping",
    "SlotOp",
    "Summary",
    "desired_mappings",
    "plan",
    "summarize",
    "summary_line",
    "trace_line",
]
