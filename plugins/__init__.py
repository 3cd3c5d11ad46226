"""LiteLLM custom callbacks around the Router, listed under litellm_settings.callbacks in the YAML."""
