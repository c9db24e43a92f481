"""Framework adapters: imprint's memory and personalised model behind LangGraph's and LangChain's interfaces.

Why: an application already built on LangGraph can use the observation store as its `BaseStore` and the
personalised model as its chat model, without going through imprint's own agent or HTTP API.
"""

from agent.adapters.langchain_model import ImprintChatModel
from agent.adapters.langgraph_store import BadNamespace, ImprintStore

__all__ = ["BadNamespace", "ImprintChatModel", "ImprintStore"]
