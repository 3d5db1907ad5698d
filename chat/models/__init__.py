from .catalog import ChatModel, Endpoint, ModelPrice
from .conversations import Conversation, Message
from .usage import UsageRecord

__all__ = ["ChatModel", "Conversation", "Endpoint", "Message", "ModelPrice", "UsageRecord"]
