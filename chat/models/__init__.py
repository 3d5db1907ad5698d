from .catalog import ChatModel, Endpoint, ModelPrice
from .conversations import Conversation, Message
from .preferences import Preferences, SiteSettings
from .sharing import ShareLink
from .usage import UsageRecord

__all__ = [
    "ChatModel",
    "Conversation",
    "Endpoint",
    "Message",
    "ModelPrice",
    "Preferences",
    "ShareLink",
    "SiteSettings",
    "UsageRecord",
]
