"""Turn config/models.yaml + settings + live flags into the model list LiteLLM's Router runs.

For every alias this builds two LiteLLM model groups over the same providers:

    main          the migration chain: PRIMARY_PROVIDER first, then FALLBACK_PROVIDERS, then YAML order
    main~legacy   the legacy chain: the Groq deployment first, then the migration chain

Each deployment gets LiteLLM's `order` (1, 2, 3...) so the Router's order-based fallbacks walk the
chain, and an id `<group>/<provider>` that names it in responses, metrics and the ledger.
The traffic-shift plugin picks one of the two groups per request.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from gateway.settings import PROVIDERS, Settings

LEGACY_SUFFIX = "~legacy"
_PLACEHOLDER = re.compile(r"\$\{([A-Z0-9_]+)\}")
CLOUD_KEYS = {"groq": "GROQ_API_KEY", "openai": "OPENAI_API_KEY", "openrouter": "OPENROUTER_API_KEY"}


class ConfigError(Exception):
    """A config problem, with the file and line it is on."""

    def __init__(self, message: str, path: Path | None = None, line: int | None = None) -> None:
        where = f"{path}:{line}: " if path and line else f"{path}: " if path else ""
        super().__init__(where + message)


@dataclass(frozen=True)
class Flags:
    """The live migration switches (plugins/flags.py keeps them current)."""

    enable_groq: bool = True
    enable_fallback: bool = True
    enable_model_abstraction: bool = True
    primary_provider: str = ""
    fallback_providers: tuple[str, ...] = ()
    traffic: dict[str, int] = field(default_factory=dict)  # alias -> % on the migration chain

    @classmethod
    def from_settings(cls, settings: Settings) -> "Flags":
        return cls(
            enable_groq=settings.enable_groq,
            enable_fallback=settings.enable_fallback,
            enable_model_abstraction=settings.enable_model_abstraction,
            primary_provider=settings.primary_provider,
            fallback_providers=tuple(settings.fallback_order),
        )


@dataclass
class Deployment:
    alias: str
    provider: str
    litellm_params: dict[str, Any]
    model_info: dict[str, Any]
    line: int

    @property
    def legacy(self) -> bool:
        return bool(self.model_info.get("legacy"))


@dataclass
class ResolvedConfig:
    chains: dict[str, list[Deployment]]           # alias -> deployments in chain order
    legacy_chains: dict[str, list[Deployment]]    # alias -> legacy-first chain (only aliases with a legacy deployment)
    aliases: dict[str, str]                       # legacy model name -> alias
    excluded: dict[str, str]                      # provider -> why it is out of routing
    router_settings: dict[str, Any]
    litellm_settings: dict[str, Any]
    flags: Flags
    traffic: dict[str, int] = field(default_factory=dict)  # YAML default: alias -> % on the migration chain

    def model_list(self) -> list[dict[str, Any]]:
        """The Router's model_list: both groups of every alias."""
        out: list[dict[str, Any]] = []
        for groups in (self.chains, self.legacy_chains):
            for alias, chain in groups.items():
                group = alias if groups is self.chains else alias + LEGACY_SUFFIX
                for order, dep in enumerate(chain, start=1):
                    out.append({
                        "model_name": group,
                        "litellm_params": {**dep.litellm_params, "order": order},
                        "model_info": {**dep.model_info, "id": f"{group}/{dep.provider}", "alias": alias},
                    })
        return out

    def describe(self) -> str:
        lines = []
        for alias, chain in self.chains.items():
            steps = " -> ".join(f"{d.provider}({d.litellm_params['model']})" for d in chain)
            lines.append(f"{alias:14s} {steps}")
            legacy = self.legacy_chains.get(alias)
            if legacy and legacy != chain:
                lines.append(f"{'':14s} legacy: {' -> '.join(d.provider for d in legacy)}")
        for name, alias in self.aliases.items():
            lines.append(f"{name:26s} => {alias}")
        for provider, why in self.excluded.items():
            lines.append(f"excluded: {provider}: {why}")
        return "\n".join(lines)


def _read_yaml(path: Path) -> tuple[dict[str, Any], yaml.Node]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read config: {exc.strerror}", path) from exc
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise ConfigError(f"malformed YAML: {getattr(exc, 'problem', exc)}", path,
                          mark.line + 1 if mark else None) from exc
    if not isinstance(data, dict):
        raise ConfigError("the top level must be a mapping with a model_list", path, 1)
    return data, node


def _item_lines(root: yaml.Node, key: str) -> list[int]:
    """Line numbers (1-based) of each item of the top-level sequence `key`."""
    for k, v in getattr(root, "value", []):
        if getattr(k, "value", None) == key and isinstance(v, yaml.SequenceNode):
            return [item.start_mark.line + 1 for item in v.value]
    return []


def _expand(value: Any, values: dict[str, str], path: Path, line: int) -> Any:
    if isinstance(value, str):
        def sub(match: re.Match[str]) -> str:
            if match.group(1) not in values:
                raise ConfigError(f"unknown setting ${{{match.group(1)}}}", path, line)
            return values[match.group(1)]
        return _PLACEHOLDER.sub(sub, value)
    if isinstance(value, dict):
        return {k: _expand(v, values, path, line) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v, values, path, line) for v in value]
    return value


def _chain_order(deps: list[Deployment], flags: Flags) -> list[Deployment]:
    """PRIMARY_PROVIDER first, then FALLBACK_PROVIDERS, then the rest in YAML order."""
    preferred = ([flags.primary_provider] if flags.primary_provider else []) + list(flags.fallback_providers)
    rank = {p: i for i, p in enumerate(dict.fromkeys(preferred))}
    return sorted(deps, key=lambda d: (rank.get(d.provider, len(rank)), deps.index(d)))


def parse(path: Path, settings: Settings) -> tuple[list[Deployment], dict[str, Any]]:
    """Read and validate the YAML; returns deployments (placeholders expanded) and the raw document."""
    data, root = _read_yaml(path)
    items = data.get("model_list")
    if not isinstance(items, list) or not items:
        raise ConfigError("model_list must be a non-empty list", path, 1)
    lines = _item_lines(root, "model_list")
    values = settings.template_values()
    deployments = []
    for index, item in enumerate(items):
        line = lines[index] if index < len(lines) else None
        if not isinstance(item, dict) or not isinstance(item.get("litellm_params"), dict):
            raise ConfigError("each model_list item needs model_name and litellm_params", path, line)
        alias = item.get("model_name")
        params = item["litellm_params"]
        info = item.get("model_info") or {}
        if not isinstance(alias, str) or not alias or LEGACY_SUFFIX in alias:
            raise ConfigError(f"bad model_name {alias!r}", path, line)
        if not isinstance(params.get("model"), str):
            raise ConfigError(f"{alias}: litellm_params.model is required", path, line)
        provider = info.get("provider")
        if provider not in PROVIDERS:
            raise ConfigError(f"{alias}: unknown provider {provider!r} (model_info.provider must be one of "
                              f"{', '.join(PROVIDERS)})", path, line)
        deployments.append(Deployment(alias, provider, _expand(params, values, path, line or 0), dict(info), line or 0))
    aliases = data.get("aliases") or {}
    known = {d.alias for d in deployments}
    for name, target in aliases.items():
        if target not in known:
            raise ConfigError(f"alias {name!r} points to unknown model_name {target!r}", path)
    for alias, pct in (data.get("traffic") or {}).items():
        if alias not in known:
            raise ConfigError(f"traffic: unknown alias {alias!r}", path)
        if isinstance(pct, bool) or not isinstance(pct, int) or not 0 <= pct <= 100:
            raise ConfigError(f"traffic.{alias} must be a percentage from 0 to 100, got {pct!r}", path)
    return deployments, data


def resolve(settings: Settings, flags: Flags | None = None, path: Path | None = None) -> ResolvedConfig:
    flags = flags or Flags.from_settings(settings)
    path = path or settings.config_path
    deployments, data = parse(path, settings)

    excluded: dict[str, str] = {}
    for provider, key_name in CLOUD_KEYS.items():
        if not settings.api_key(provider):
            excluded[provider] = f"no {key_name} set"
    if not flags.enable_groq:
        excluded["groq"] = "ENABLE_GROQ=false"
    if not settings.enable_local:
        excluded["local"] = "ENABLE_LOCAL=false"

    by_alias: dict[str, list[Deployment]] = {}
    for dep in deployments:
        by_alias.setdefault(dep.alias, [])
        if dep.provider not in excluded:
            by_alias[dep.alias].append(dep)

    chains: dict[str, list[Deployment]] = {}
    legacy_chains: dict[str, list[Deployment]] = {}
    for alias, deps in by_alias.items():
        first = deployments[[d.alias for d in deployments].index(alias)]
        if not deps:
            raise ConfigError(f"alias {alias!r} has no usable provider ({', '.join(sorted(excluded)) or 'none'} "
                              "excluded)", path, first.line)
        chain = _chain_order(deps, flags)
        legacy = [d for d in deps if d.legacy] + [d for d in chain if not d.legacy]
        # Rollback (ENABLE_MODEL_ABSTRACTION=false) puts every alias on its legacy model.
        chains[alias] = chain if flags.enable_model_abstraction else legacy
        if any(d.legacy for d in deps):
            legacy_chains[alias] = legacy

    router_settings = copy.deepcopy(data.get("router_settings") or {})
    if settings.redis_url and not {"redis_url", "redis_host"} & set(router_settings):
        router_settings["redis_url"] = settings.redis_url  # replicas share cooldowns and rpm/tpm usage
    litellm_settings = copy.deepcopy(data.get("litellm_settings") or {})
    return ResolvedConfig(chains, legacy_chains, dict(data.get("aliases") or {}), excluded,
                          router_settings, litellm_settings, flags, dict(data.get("traffic") or {}))


def plugin_section(settings: Settings, name: str, path: Path | None = None) -> Any:
    """A top-level YAML section the core ignores (`budgets`, `groq_reference_prices`...), placeholders
    expanded; None when absent. The plugin that owns it validates it (raising ConfigError)."""
    path = path or settings.config_path
    data, _ = _read_yaml(path)
    return _expand(data.get(name), settings.template_values(), path, 0)
