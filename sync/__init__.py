"""The kiosk side of syncing with the central service: the wire protocol and the agent."""
