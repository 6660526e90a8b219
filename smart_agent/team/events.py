"""The typed events of a team turn: what each member does, status snapshots, then the synthesis."""

from __future__ import annotations

from dataclasses import dataclass

from smart_agent.agent.events import AgentEvent, ToolCallFinished, ToolCallStarted

MEMBER_STATES = ("waiting", "writing", "done", "failed", "stopped")


@dataclass(frozen=True)
class MemberStarted:
    """The member's request went out (with concurrency below the team's size, its turn came)."""

    member: str


@dataclass(frozen=True)
class MemberText:
    """A piece of the member's notes."""

    member: str
    text: str


@dataclass(frozen=True)
class MemberThinking:
    """A piece of the member's thinking (`text`), or `moved` characters of its notes that were thinking."""

    member: str
    text: str = ""
    moved: int = 0


@dataclass(frozen=True)
class MemberTool:
    """The member called a tool (started) or got its result (finished)."""

    member: str
    event: ToolCallStarted | ToolCallFinished


@dataclass(frozen=True)
class MemberFinished:
    """The member's notes are complete."""

    member: str
    text: str


@dataclass(frozen=True)
class MemberFailed:
    """The member ended early; `message` is written for the user; `text` is what it wrote before."""

    member: str
    message: str
    text: str


@dataclass(frozen=True)
class MemberStopped:
    """The team was stopped before the member finished; `text` is what it wrote before."""

    member: str
    text: str


@dataclass(frozen=True)
class MemberStatus:
    """One member in a status snapshot: its state (MEMBER_STATES) and the tokens it wrote."""

    member: str
    state: str
    tokens: int


@dataclass(frozen=True)
class TeamStatus:
    """Every member's state, sent at most twice a second while anything changes."""

    members: tuple[MemberStatus, ...]

    def text(self) -> str:
        """One compact line, e.g. `researcher: writing 120 · critic: done 310 · planner: waiting`."""
        return " · ".join(
            f"{m.member}: {m.state}" + (f" {m.tokens}" if m.tokens else "") for m in self.members
        )


MemberEvent = (
    MemberStarted | MemberText | MemberThinking | MemberTool | MemberFinished | MemberFailed | MemberStopped
)
TeamEvent = MemberEvent | TeamStatus | AgentEvent
"""A team turn yields member events and status snapshots, then the synthesis's agent events."""
