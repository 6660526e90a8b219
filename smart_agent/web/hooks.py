"""The features' answers at the points where Chainlit 2.12 has no hook: the set web/app.py installs."""

from __future__ import annotations

from smart_agent.web import event_loop, follow, lifetime, resync
from smart_agent.web.chainlit_patches import Hooks


def app_hooks() -> Hooks:
    """Reconnect re-send, a reloaded page's follow, session resources and the timer purge."""
    return Hooks(
        restored=resync.session_restored,
        reconnected=resync.resend_turn,
        handshake_over=follow.start_pending,  # a no-op unless on_chat_resume found a reply to follow
        session_deleted=lifetime.session_ended,
        loop_step=event_loop.drop_cancelled_timers,
    )
