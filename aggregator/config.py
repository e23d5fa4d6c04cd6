"""Load the effective configuration: shipped defaults, the user's file, the secrets file, the environment.

Layers, lowest first (a later layer overrides a key of an earlier one):

1. shipped defaults: ``config/chains.toml``, ``config/venues.toml``, ``config/assets.toml``,
   ``config/risk.toml``, ``config/deployments/<family>.toml``;
2. the user's file: ``--config PATH``, else ``$CROSSMARGIN_CONFIG``, else
   ``~/.config/crossmargin/config.toml`` if it exists;
3. the secrets file: ``$CROSSMARGIN_SECRETS_FILE``, else ``~/.config/crossmargin/secrets.toml`` if it
   exists (the only file allowed to hold secret keys such as ``api_key`` or ``bot_token``);
4. the environment: ``CROSSMARGIN_RPC_<CHAIN>`` (comma-separated RPC URLs),
   ``CROSSMARGIN_DATABASE_URL``, and ``CROSSMARGIN__<SECTION>__<KEY>...`` for any key, secrets included.

Every key is checked against the schema before any value is: an unknown key is a ``ConfigError``
naming the file, the key path and the closest known key.
"""

from __future__ import annotations

import difflib
import os
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Union, get_args, get_origin
from urllib.parse import parse_qsl, urlsplit

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    model_validator,
)

from adapters.specs import (
    AaveV3Deployment,
    ChainSpec,
    CompoundV3Deployment,
    GmxV2Deployment,
    MorphoBlueDeployment,
    VenueSpec,
)
from aggregator.alerts.rules import AlertsSettings, parse_duration
from aggregator.errors import ConfigError
from aggregator.service.settings import WatchSettings
from risk.model import FactorId
from risk.params import NamedScenario, RiskParams

__all__ = [
    "DEFAULTS_DIR",
    "SECRET_KEYS",
    "AssetSpec",
    "LoadedConfig",
    "Settings",
    "load_config",
    "user_config_path",
]

DEFAULTS_DIR = Path(__file__).resolve().parent.parent / "config"

SECRET_KEYS = frozenset({
    "api_key", "api_secret", "bot_token", "webhook_url", "signing_secret", "password",
    "client_id", "client_secret",  # Deribit OAuth client credentials
})
"""Keys whose values are secrets: accepted only from the secrets file or the environment."""

_ENV_PREFIX = "CROSSMARGIN__"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Deployments(_Strict):
    """``[deployments.<family>.<instance>]``: instances of each protocol family."""

    aave_v3: dict[str, AaveV3Deployment] = {}
    compound_v3: dict[str, CompoundV3Deployment] = {}
    morpho_blue: dict[str, MorphoBlueDeployment] = {}
    gmx_v2: dict[str, GmxV2Deployment] = {}


class Venues(_Strict):
    """``[venues.<name>]``: HTTP venues."""

    hyperliquid: VenueSpec | None = None
    dydx_v4: VenueSpec | None = None
    derive: VenueSpec | None = None
    aevo: VenueSpec | None = None
    deribit: VenueSpec | None = None


class AssetSpec(_Strict):
    """``[assets.<TOKEN>]``: the risk factor a token's price moves with."""

    factor: str
    basis: str | None = None  # a second, multiplicative factor: stETH/ETH, USDC/USD
    group: str | None = None


class NamedScenarioSpec(_Strict):
    name: str
    moves: dict[str, float]  # factor or group -> relative move
    vol_move: float = 0.0


class RiskSettings(_Strict):
    horizon_hours: Annotated[float, Field(gt=0)] = 24.0
    mc_paths: Annotated[int, Field(gt=0)] = 10_000
    mc_steps: Annotated[int, Field(gt=0)] = 24
    mc_seed: int = 7
    mc_distribution: typing.Literal["student_t", "normal"] = "student_t"
    student_t_df: Annotated[float, Field(gt=2)] = 4.0
    scan_sigmas: Annotated[float, Field(gt=0)] = 3.0
    scan_range_floor: Annotated[float, Field(gt=0, lt=1)] = 0.10
    vol_scan_up: Annotated[float, Field(ge=0)] = 0.5
    vol_scan_down: Annotated[float, Field(ge=0, lt=1)] = 0.25
    extreme_multiple: Annotated[float, Field(ge=1)] = 2.0
    extreme_weight: Annotated[float, Field(ge=0, le=1)] = 0.35
    ewma_lambda: Annotated[float, Field(gt=0, lt=1)] = 0.94
    min_history_days: Annotated[int, Field(ge=2)] = 30
    vol_floor: Annotated[float, Field(ge=0)] = 0.20
    default_vols: dict[str, Annotated[float, Field(gt=0)]] = {}
    default_correlation: Annotated[float, Field(ge=-1, le=1)] = 0.8
    factor_groups: dict[str, tuple[str, ...]] = {}
    named_scenarios: tuple[NamedScenarioSpec, ...] = ()
    hedge_net_to_gross: Annotated[float, Field(gt=0, lt=1)] = 0.25
    drift_tolerance: Annotated[float, Field(ge=0)] = 0.001
    driver: str = "ETH"
    # `crossmargin scan` exits 4 when CHF < this; unset: the `critical` of the chf alert rule, else 1.0
    critical_chf: Annotated[float, Field(gt=0)] | None = None

    def to_params(self) -> RiskParams:
        """``config/risk.toml`` (validated ``RiskSettings``) as the risk layer's ``RiskParams``."""
        return RiskParams(
            horizon_hours=self.horizon_hours,
            mc_paths=self.mc_paths,
            mc_steps=self.mc_steps,
            mc_seed=self.mc_seed,
            mc_distribution=self.mc_distribution,
            student_t_df=self.student_t_df,
            scan_sigmas=self.scan_sigmas,
            scan_range_floor=self.scan_range_floor,
            vol_scan_up=self.vol_scan_up,
            vol_scan_down=self.vol_scan_down,
            extreme_multiple=self.extreme_multiple,
            extreme_weight=self.extreme_weight,
            ewma_lambda=self.ewma_lambda,
            min_history_days=self.min_history_days,
            vol_floor=self.vol_floor,
            default_vols=dict(self.default_vols),
            default_correlation=self.default_correlation,
            factor_groups={g: tuple(FactorId(f) for f in fs) for g, fs in self.factor_groups.items()},
            named_scenarios=tuple(
                NamedScenario(name=s.name, factor_moves=dict(s.moves), vol_move=s.vol_move)
                for s in self.named_scenarios
            ),
            hedge_net_to_gross=self.hedge_net_to_gross,
            drift_tolerance=self.drift_tolerance,
            driver=FactorId(self.driver),
        )


def _retention_age(value: Any) -> Any:
    """A retention age: ``"7d"`` / ``"36h"`` / ``"90m"`` (``parse_duration``), a number of days, or
    ``"forever"`` (None: never deleted; meaningful for ``keep_daily`` only)."""
    if isinstance(value, str):
        text = value.strip().lower()
        if text == "forever":
            return None
        if text.startswith("-"):
            raise ValueError(f"{value!r}: a retention age cannot be negative")
        return parse_duration(text)
    if isinstance(value, int | float) and not isinstance(value, bool):
        if value < 0:
            raise ValueError(f"{value!r} days: a retention age cannot be negative")
        return timedelta(days=value)
    return value


RetentionAge = Annotated[timedelta, BeforeValidator(_retention_age)]
RetentionAgeOrForever = Annotated[timedelta | None, BeforeValidator(_retention_age)]


def _days(age: timedelta) -> str:
    return f"{age.total_seconds() / 86400:g} days"


class RetentionSettings(_Strict):
    """``[database.retention]``: how long snapshots (and factor prices) are kept at each resolution
    (``aggregator.db.retention``): every one younger than ``keep_all``, one per hour up to
    ``keep_hourly``, one per day up to ``keep_daily`` (``"forever"``: daily ones are never deleted)."""

    keep_all: RetentionAge = timedelta(days=7)
    keep_hourly: RetentionAge = timedelta(days=90)
    keep_daily: RetentionAgeOrForever = None

    @model_validator(mode="after")
    def _ordered(self) -> RetentionSettings:
        if self.keep_hourly < self.keep_all:
            raise ValueError(
                f"keep_hourly ({_days(self.keep_hourly)}) is shorter than keep_all ({_days(self.keep_all)}): "
                "snapshots are thinned from all, to hourly, to daily, so the ages must not decrease"
            )
        if self.keep_daily is not None and self.keep_daily < self.keep_hourly:
            raise ValueError(
                f"keep_daily ({_days(self.keep_daily)}) is shorter than keep_hourly "
                f"({_days(self.keep_hourly)}): the ages must not decrease (or use keep_daily = \"forever\")"
            )
        return self


class DatabaseUrl(SecretStr):
    """``[database] url``: a secret when it holds a password; shown with only the password masked."""

    def password(self) -> str | None:
        """The password in the URL's user info or a ``password=`` query parameter, else None."""
        parts = urlsplit(self.get_secret_value().strip())
        userinfo, at, _ = parts.netloc.rpartition("@")
        if at and ":" in userinfo and userinfo.split(":", 1)[1]:
            return userinfo.split(":", 1)[1]
        for key, value in parse_qsl(parts.query, keep_blank_values=True):
            if key.lower() == "password" and value:
                return value
        return None

    def masked(self) -> str:
        """The URL with its password (user info and ``password=`` parameter) replaced by ``***``."""
        raw = self.get_secret_value().strip()
        if self.password() is None:
            return raw
        parts = urlsplit(raw)
        userinfo, at, hostport = parts.netloc.rpartition("@")
        netloc = parts.netloc
        if at and ":" in userinfo:
            netloc = f"{userinfo.split(':', 1)[0]}:***@{hostport}"
        query = "&".join(
            f"{k}=***" if k.lower() == "password" else (f"{k}={v}" if v else k)
            for k, v in parse_qsl(parts.query, keep_blank_values=True)
        )
        return f"{parts.scheme}://{netloc}{parts.path}" + (f"?{query}" if query else "")


class DatabaseSettings(_Strict):
    url: DatabaseUrl | None = None  # default: SQLite under the user's data directory
    retention: RetentionSettings = RetentionSettings()


class Settings(_Strict):
    """The effective configuration. Its shape is a public contract: extend it, never break it."""

    chains: dict[str, ChainSpec] = {}
    deployments: Deployments = Deployments()
    venues: Venues = Venues()
    assets: dict[str, AssetSpec] = {}
    risk: RiskSettings = RiskSettings()
    database: DatabaseSettings = DatabaseSettings()
    alerts: AlertsSettings = AlertsSettings()
    watch: WatchSettings = WatchSettings()  # `crossmargin watch` (aggregator/service/settings.py)

    def dangling_chain_references(self) -> list[tuple[str, str]]:
        """(key path, message) for every deployment whose chain is not configured."""
        problems = []
        for family in Deployments.model_fields:
            for instance, spec in getattr(self.deployments, family).items():
                if spec.chain not in self.chains:
                    hint = _did_you_mean(spec.chain, self.chains)
                    problems.append(
                        (f"deployments.{family}.{instance}.chain", f"unknown chain {spec.chain!r}{hint}")
                    )
        return problems


@dataclass(frozen=True)
class LoadedConfig:
    settings: Settings
    sources: Mapping[str, str]  # dotted key path -> where its value came from
    files: tuple[Path, ...]  # the files that were read, lowest layer first


def user_config_path(explicit: Path | None = None, environ: Mapping[str, str] | None = None) -> Path | None:
    env = os.environ if environ is None else environ
    if explicit is not None:
        return explicit
    if env.get("CROSSMARGIN_CONFIG"):
        return Path(env["CROSSMARGIN_CONFIG"])
    default = _xdg_config_home(env) / "crossmargin" / "config.toml"
    return default if default.exists() else None


def load_config(
    path: Path | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    defaults_dir: Path = DEFAULTS_DIR,
) -> LoadedConfig:
    """Read every layer, check keys against the schema, validate, and return the effective config."""
    env = os.environ if environ is None else environ
    merged: dict[str, Any] = {}
    sources: dict[str, str] = {}
    files: list[Path] = []

    for file, wrap in _default_files(defaults_dir):
        data = _read_toml(file)
        layer = data if wrap is None else _nest(wrap, data)
        _check_keys(layer, Settings, (), str(file))
        _merge(merged, layer, sources, f"default ({file.name})")
        files.append(file)

    user_path = user_config_path(path, env)
    if user_path is not None:
        if not user_path.exists():
            raise ConfigError("config file not found", source=str(user_path))
        data = _read_toml(user_path)
        _check_keys(data, Settings, (), str(user_path))
        _refuse_secrets(data, (), str(user_path))
        _refuse_database_password(data, str(user_path))
        _merge(merged, data, sources, str(user_path))
        files.append(user_path)

    secrets_path = _secrets_path(env)
    if secrets_path is not None:
        data = _read_toml(secrets_path)
        _check_keys(data, Settings, (), str(secrets_path))
        _merge(merged, data, sources, str(secrets_path))
        files.append(secrets_path)

    env_layer = _environment_layer(env)
    for source, layer in env_layer:
        _check_keys(layer, Settings, (), source)
        _merge(merged, layer, sources, source)

    try:
        settings = Settings.model_validate(merged)
    except ValidationError as exc:
        raise _config_error_from(exc, sources) from None
    for key, message in settings.dangling_chain_references():
        raise ConfigError(message, source=sources.get(key), key=key)
    return LoadedConfig(settings=settings, sources=sources, files=tuple(files))


# ---------------------------------------------------------------------------------------------
# layers


def _default_files(defaults_dir: Path) -> list[tuple[Path, tuple[str, ...] | None]]:
    if not defaults_dir.is_dir():
        raise ConfigError("shipped defaults not found", source=str(defaults_dir))
    out: list[tuple[Path, tuple[str, ...] | None]] = []
    for name in ("chains", "venues", "assets", "risk"):
        file = defaults_dir / f"{name}.toml"
        if file.exists():
            out.append((file, None))
    for file in sorted((defaults_dir / "deployments").glob("*.toml")):
        out.append((file, ("deployments", file.stem)))
    return out


def _nest(path: tuple[str, ...], data: dict[str, Any]) -> dict[str, Any]:
    for key in reversed(path):
        data = {key: data}
    return data


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError("file not found", source=str(path)) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}", source=str(path)) from None
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", source=str(path)) from None


def _secrets_path(env: Mapping[str, str]) -> Path | None:
    if env.get("CROSSMARGIN_SECRETS_FILE"):
        path = Path(env["CROSSMARGIN_SECRETS_FILE"])
        if not path.exists():
            raise ConfigError("secrets file not found", source=str(path))
        return path
    default = _xdg_config_home(env) / "crossmargin" / "secrets.toml"
    return default if default.exists() else None


def _xdg_config_home(env: Mapping[str, str]) -> Path:
    base = env.get("XDG_CONFIG_HOME")
    return Path(base) if base else Path(env.get("HOME", str(Path.home()))) / ".config"


def _environment_layer(env: Mapping[str, str]) -> list[tuple[str, dict[str, Any]]]:
    layers: list[tuple[str, dict[str, Any]]] = []
    for name in sorted(env):
        value = env[name]
        if name.startswith("CROSSMARGIN_RPC_"):
            chain = name.removeprefix("CROSSMARGIN_RPC_").lower()
            urls = [u.strip() for u in value.split(",") if u.strip()]
            layers.append((f"env {name}", {"chains": {chain: {"rpc_urls": urls}}}))
        elif name == "CROSSMARGIN_DATABASE_URL":
            layers.append((f"env {name}", {"database": {"url": value}}))
        elif name.startswith(_ENV_PREFIX):
            path = [p.lower() for p in name.removeprefix(_ENV_PREFIX).split("__") if p]
            if path:
                layers.append((f"env {name}", _nest(tuple(path), value)))  # type: ignore[arg-type]
    return layers


def _merge(into: dict[str, Any], layer: Mapping[str, Any], sources: dict[str, str], source: str,
           prefix: tuple[str, ...] = ()) -> None:
    for key, value in layer.items():
        path = (*prefix, key)
        if isinstance(value, Mapping) and isinstance(into.get(key), dict):
            _merge(into[key], value, sources, source, path)
        else:
            into[key] = _plain(value)
            for existing in [k for k in sources if k.startswith(".".join(path) + ".")]:
                del sources[existing]
            _record_sources(value, path, sources, source)


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _record_sources(value: Any, path: tuple[str, ...], sources: dict[str, str], source: str) -> None:
    if isinstance(value, Mapping):
        for key, sub in value.items():
            _record_sources(sub, (*path, key), sources, source)
    else:
        sources[".".join(path)] = source


# ---------------------------------------------------------------------------------------------
# checks


def _refuse_secrets(data: Mapping[str, Any], path: tuple[str, ...], source: str) -> None:
    for key, value in data.items():
        here = (*path, key)
        if key in SECRET_KEYS:
            raise ConfigError(
                "secrets are not read from the config file; put it in the secrets file "
                "($CROSSMARGIN_SECRETS_FILE or ~/.config/crossmargin/secrets.toml) or set "
                f"{_ENV_PREFIX}{'__'.join(p.upper() for p in here)}",
                source=source,
                key=".".join(here),
            )
        if isinstance(value, Mapping):
            _refuse_secrets(value, here, source)


def _refuse_database_password(data: Mapping[str, Any], source: str) -> None:
    """A database URL holding a password is a secret; a password-less one (a SQLite path, a server
    using peer or certificate auth) may stay in the config file. The URL is never repeated."""
    database = data.get("database")
    url = database.get("url") if isinstance(database, Mapping) else None
    if isinstance(url, str) and DatabaseUrl(url).password() is not None:
        raise ConfigError(
            "this database URL holds a password, which is a secret: put [database] url in the secrets "
            "file ($CROSSMARGIN_SECRETS_FILE or ~/.config/crossmargin/secrets.toml) or set "
            "CROSSMARGIN_DATABASE_URL; a URL without a password may stay here",
            source=source,
            key="database.url",
        )


def _did_you_mean(word: str, candidates: typing.Iterable[str]) -> str:
    match = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean {match[0]!r}?)" if match else ""


def _model_of(annotation: Any) -> tuple[str, Any]:
    """Classify a field annotation: ('model', cls), ('dict', value_annotation) or ('leaf', None)."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _model_of(get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        for arg in get_args(annotation):
            kind, inner = _model_of(arg)
            if kind != "leaf":
                return kind, inner
        return "leaf", None
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "model", annotation
    if origin is dict:
        _, value = get_args(annotation)
        return "dict", value
    if origin in (tuple, list):
        args = [a for a in get_args(annotation) if a is not Ellipsis]
        if args and _model_of(args[0])[0] == "model":
            return "list", _model_of(args[0])[1]
    return "leaf", None


def _check_keys(data: Any, model: type[BaseModel], path: tuple[str, ...], source: str) -> None:
    if not isinstance(data, Mapping):
        return
    fields = model.model_fields
    for key, value in data.items():
        here = (*path, str(key))
        if key not in fields:
            raise ConfigError(
                f"unknown key {key!r}{_did_you_mean(str(key), fields)}",
                source=source,
                key=".".join(here),
            )
        kind, inner = _model_of(fields[key].annotation)
        if kind == "model":
            if not isinstance(value, Mapping):
                raise ConfigError("expected a table", source=source, key=".".join(here))
            _check_keys(value, inner, here, source)
        elif kind == "list" and isinstance(value, list):
            for index, item in enumerate(value):
                if isinstance(item, Mapping):
                    _check_keys(item, inner, (*here, str(index)), source)
        elif kind == "dict" and isinstance(value, Mapping):
            sub_kind, sub_model = _model_of(inner)
            for name, item in value.items():
                if sub_kind == "model":
                    if not isinstance(item, Mapping):
                        raise ConfigError("expected a table", source=source, key=".".join((*here, str(name))))
                    _check_keys(item, sub_model, (*here, str(name)), source)


def _config_error_from(exc: ValidationError, sources: Mapping[str, str]) -> ConfigError:
    first = exc.errors()[0]
    loc = ".".join(str(p) for p in first["loc"])
    source = sources.get(loc)
    if source is None:
        matches = [s for k, s in sources.items() if k.startswith(loc + ".") or loc.startswith(k + ".")]
        source = matches[0] if matches else None
    message = first["msg"]
    if first["type"] not in ("value_error",) and "input" in first and not _is_secret_path(loc):
        message = f"{message} (got {first['input']!r})"
    more = len(exc.errors()) - 1
    if more:
        message += f" (and {more} more error{'s' if more > 1 else ''})"
    return ConfigError(message.removeprefix("Value error, "), source=source, key=loc or None)


def _is_secret_path(loc: str) -> bool:
    return any(part in SECRET_KEYS or part == "url" for part in loc.split("."))


def redacted(value: Any) -> Any:
    """Show a secret as its last 4 characters only (a database URL: all but its password)."""
    if isinstance(value, DatabaseUrl):
        return value.masked()
    if isinstance(value, SecretStr):
        raw = value.get_secret_value()
        return "****" + raw[-4:] if len(raw) > 8 else "****"
    return value
