"""A channel's "send test" (the API's and the dashboard's): a ``test`` delivery, sent
once now by the process that was asked, then left to the sender's retries if it failed.

The delivery is made already leased (``store.deliveries.create_test``): made pending and
due at once, a sender chore polling every second would claim it while this first
attempt waits for a slow receiver, and the receiver would get the same test twice
(SPEC §7: one process at a time sends a delivery)."""

from __future__ import annotations

from upwatch.clock import Clock
from upwatch.delivery import transports
from upwatch.domain import TargetPolicy
from upwatch.notifications import Channel, Delivery
from upwatch.store import Store

# Longer than any attempt (at most 25 s): only a process that dies mid-attempt leaves
# the test to a sender, after this.
LEASE_MS = 60_000


async def send_test(
    store: Store,
    channel: Channel,
    *,
    clock: Clock,
    policy: TargetPolicy,
    public_url: str,
    smtp: transports.Smtp | None,
) -> Delivery:
    """The test delivery after its first attempt. Raises ChannelNotFound."""
    now = clock.now_ms()
    pending = await store.deliveries.create_test(channel, at=now, lease_ms=LEASE_MS)
    async with transports.new_client() as client:
        outcome = await transports.attempt(
            client, policy, pending, channel, now=now, public_url=public_url, smtp=smtp
        )
    return await store.deliveries.record(pending, outcome, at=clock.now_ms())
