"""Loopback fake cloud providers (Groq, OpenRouter, OpenAI) that replay each provider's wire format.

Run one as a process: ``python -m tests.fakes --provider groq --port 8101``.
Steer it through its control API (``/_control``, ``/_reset``, ``/_requests``), most easily with
:class:`tests.fakes.client.FakeProvider`.
"""

PROVIDERS = ("groq", "openrouter", "openai")
