"""Help for an agent inside a live conversation: suggestions read from the chat, article flags."""
