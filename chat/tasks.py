from celery import shared_task

from . import replies, runner


@shared_task(name="chat.generate_reply")
def generate_reply(*, message_id):
    """Stream one assistant reply from the upstream model to the conversation."""
    runner.run(replies.run_reply(message_id))
