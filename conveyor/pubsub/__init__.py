"""Redis pub/sub: live job changes published after commit and fanned out in-process by one
`Hub` per process, worker commands, and the bounded buffers subscribers read from.

`wire` says what travels, `buffers` what a subscriber holds, `hub` how one connection serves
every subscriber of the process (see its docstring and ADR-0015).
"""

from conveyor.pubsub.bells import Bell, RunBells
from conveyor.pubsub.buffers import RESYNC, Buffer, Inbox, Subscription
from conveyor.pubsub.hub import (
    IDLE_UNSUBSCRIBE_SECONDS,
    LISTEN_WAIT_SECONDS,
    YIELD_EVERY,
    Hub,
    client_name,
)
from conveyor.pubsub.wire import (
    channel,
    control_channel,
    decode,
    encode,
    publish,
    ring,
    runs_channel,
    send_commands,
)

__all__ = [
    "IDLE_UNSUBSCRIBE_SECONDS",
    "LISTEN_WAIT_SECONDS",
    "RESYNC",
    "YIELD_EVERY",
    "Bell",
    "Buffer",
    "Hub",
    "Inbox",
    "RunBells",
    "Subscription",
    "channel",
    "client_name",
    "control_channel",
    "decode",
    "encode",
    "publish",
    "ring",
    "runs_channel",
    "send_commands",
]
