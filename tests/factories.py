"""Small factories for test data."""

from accounts.models import User
from chat.models import Conversation, Message

PASSWORD = "correct horse battery staple"


def make_user(email, **fields):
    return User.objects.create_user(email=email, password=PASSWORD, **fields)


def make_conversation(owner, title="Test conversation"):
    return Conversation.objects.create(owner=owner, title=title)


def make_message(conversation, role, content="", status=Message.Status.COMPLETE, **fields):
    return Message.objects.create(
        conversation=conversation, role=role, content=content, status=status, **fields
    )
