"""Typed SQLAlchemy models of Xiangban; nothing here commits."""
from models.account import ACCOUNT_ROLES, AuditEvent, Caseworker, caseworker_township
from models.base import Base, UTCDateTime
from models.conversation import Answer, ConversationState
from models.flag import ACTIVE_FLAG_STATUSES, CATEGORY_SEVERITY, FLAG_STATUSES, Flag, FlagEvent
from models.message import FINAL_STATUSES, STATUS_RANK, Message
from models.people import Arrangement, Child, ChildContact, Contact
from models.place import Township, Village
from models.reminder import Reminder

__all__ = [
    "ACCOUNT_ROLES", "ACTIVE_FLAG_STATUSES", "Answer", "Arrangement", "AuditEvent", "Base",
    "CATEGORY_SEVERITY", "Caseworker", "Child", "ChildContact", "Contact", "ConversationState",
    "FINAL_STATUSES", "FLAG_STATUSES", "Flag", "FlagEvent", "Message", "Reminder", "STATUS_RANK",
    "Township", "UTCDateTime", "Village", "caseworker_township",
]
