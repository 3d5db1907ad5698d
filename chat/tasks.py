from celery import shared_task

from . import replies, runner


@shared_task(name="chat.generate_reply")
def generate_reply(*, message_id):
    """Stream one assistant reply from the upstream model to the conversation."""
    runner.run(replies.run_reply(message_id))


@shared_task(name="chat.sweep_replies")
def sweep_replies():
    """End replies whose worker was lost and enqueue again those nobody picked up.

    Celery beat runs this every `CHAT_SWEEP_SECONDS`; see `chat.sweeper`.
    """
    from . import sweeper  # sweeper enqueues generate_reply, defined above

    result = sweeper.sweep()
    if result.events:
        runner.run(sweeper.announce(result.events))
    return {"interrupted": len(result.interrupted), "requeued": len(result.requeued)}


@shared_task(name="chat.purge_deleted_conversations")
def purge_deleted_conversations():
    """Delete for good the conversations deleted longer ago than `CONVERSATION_PURGE_DAYS`."""
    from . import purge

    return purge.purge_deleted()
