from .catalog import ChatModel, Endpoint, ModelPrice
from .conversations import Conversation, Message

__all__ = ["ChatModel", "Conversation", "Endpoint", "Message", "ModelPrice"]
