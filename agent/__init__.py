"""The conversational agent and the language model it talks through."""
