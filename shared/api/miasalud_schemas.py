"""The MiaSalud wing's request and response models, as the OpenAPI document names them.

ManyChat's two bodies are the core's own readers (`sync_core.miasalud.events`), named here for the document."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from sync_core.miasalud.events import ManychatCampaignIn, ManychatContactIn

__all__ = ["ManychatAck", "ManychatCampaignIn", "ManychatContactIn"]


class ManychatAck(BaseModel):
    """What ManyChat's response mapping can read: `$.status`, `$.event_id`, `$.manychat_id`."""

    status: Literal["accepted", "held"] = Field(
        description="accepted: queued; held: storage was down, SQL keeps it and it is applied when storage is back"
    )
    event_id: str = Field(description="The event's key: the same body always has the same")
    manychat_id: str
