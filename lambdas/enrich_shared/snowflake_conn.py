"""The Snowflake connection shared by QueryIds and LoadResults: credentials from the secret,
connection settings from the environment, and connector errors mapped to the pipeline's.

Connection problems (refused, DNS, TLS, login/network timeouts) become
`SnowflakeUnavailableError` (retried); SQL problems become `QueryError` (not retried);
a secret that cannot be used becomes `ConfigurationError` naming the field.

Only the Lambdas that bundle snowflake-connector-python import this module; the others
never do, so their bundles need no connector.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import snowflake.connector
from cryptography.hazmat.primitives import serialization
from snowflake.connector import errors as sf_errors

from enrich_shared.errors import ConfigurationError, QueryError, SnowflakeUnavailableError
from enrich_shared.secret_store import get_secret_json
from enrich_shared.settings import env_int, env_str

REQUIRED_SECRET_FIELDS = ("account", "user", "warehouse", "database", "schema", "role")
#: Snowflake's "statement reached its statement or warehouse timeout" error number.
STATEMENT_TIMEOUT_ERRNO = 630
#: Snowflake's login error numbers (the connector's `errno`, the server's `code`) that mean
#: the credentials were refused, so retrying cannot help: 390100 INCORRECT_USERNAME_PASSWORD
#: (password) and 390144 JWT_TOKEN_INVALID (key pair: wrong key, public key not set on the
#: user, or a bad account identifier). Any other login failure is retried; its message text
#: is never looked at (the connector rewrites it: 390114 reads "...re-authentication
#: required" and a fresh login fixes it).
AUTH_FAILURE_ERRNOS = frozenset({390100, 390144})
#: A table/stage name formatted into SQL: `NAME`, `SCHEMA.NAME` or `DB.SCHEMA.NAME`, each part
#: an unquoted identifier (identifiers cannot be bound, so nothing else is let through).
OBJECT_NAME_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*){0,2}")


def object_name(value: str, setting: str) -> str:
    """Return `value` if it is a plain (optionally qualified) Snowflake object name.

    Raises `ConfigurationError` naming `setting` otherwise: the name goes into SQL text.
    """
    if not isinstance(value, str) or not OBJECT_NAME_PATTERN.fullmatch(value):
        raise ConfigurationError(
            f"{setting}={value!r} is not a plain Snowflake name: use letters, digits, _ and $ "
            "(not starting with a digit), optionally qualified as SCHEMA.NAME or DB.SCHEMA.NAME"
        )
    return value


@dataclass(frozen=True)
class ConnectionSettings:
    """Which secret to use and the connection's time limits, from the function's environment."""

    secret_name: str
    login_timeout_s: int = 30
    network_timeout_s: int = 120
    statement_timeout_s: int = 600


def connection_fields_from_env() -> dict[str, Any]:
    """`ConnectionSettings`' fields from SNOWFLAKE_SECRET_NAME and SNOWFLAKE_*_TIMEOUT_S.

    The steps' own settings subclass `ConnectionSettings` and start from these.
    """
    return {
        "secret_name": env_str("SNOWFLAKE_SECRET_NAME"),
        "login_timeout_s": env_int("SNOWFLAKE_LOGIN_TIMEOUT_S", 30),
        "network_timeout_s": env_int("SNOWFLAKE_NETWORK_TIMEOUT_S", 120),
        "statement_timeout_s": env_int("SNOWFLAKE_STATEMENT_TIMEOUT_S", 600),
    }


@dataclass(frozen=True, repr=False)
class SnowflakeCredentials:
    """Connection fields of the Snowflake secret. `repr` never shows the key or password."""

    account: str
    user: str
    warehouse: str
    database: str
    schema: str
    role: str
    private_key_der: bytes | None = None
    password: str | None = None
    host: str | None = None
    port: int | None = None
    protocol: str | None = None

    def __repr__(self) -> str:
        auth = "key-pair" if self.private_key_der else "password"
        return f"SnowflakeCredentials(account={self.account!r}, user={self.user!r}, auth={auth})"

    @classmethod
    def from_secret(cls, secret: dict[str, Any], secret_name: str) -> SnowflakeCredentials:
        """Validate the secret's JSON; key pair is preferred over password when both exist."""

        def text(name: str, required: bool) -> str | None:
            value = secret.get(name)
            if value is None or (isinstance(value, str) and not value.strip()):
                if required:
                    raise ConfigurationError(
                        f"Snowflake secret {secret_name!r} is missing the field {name!r}; "
                        "add it to the secret's JSON"
                    )
                return None
            if not isinstance(value, str):
                raise ConfigurationError(
                    f"Snowflake secret {secret_name!r} field {name!r} must be a string, "
                    f"got {type(value).__name__}"
                )
            return value.strip()

        fields = {name: text(name, required=True) for name in REQUIRED_SECRET_FIELDS}
        private_key = secret.get("private_key")
        password = secret.get("password")
        if not private_key and not password:
            raise ConfigurationError(
                f"Snowflake secret {secret_name!r} is missing the field 'private_key' "
                "(PEM, preferred) or 'password'; add one of them"
            )
        der = None
        if private_key:
            der = _private_key_der(secret, secret_name)
        else:
            password = text("password", required=True)
        port = secret.get("port")
        if port is not None:
            try:
                port = int(port)
            except (TypeError, ValueError):
                raise ConfigurationError(
                    f"Snowflake secret {secret_name!r} field 'port' must be a whole number"
                ) from None
        protocol = text("protocol", required=False)
        if protocol is not None and protocol not in ("http", "https"):
            raise ConfigurationError(
                f"Snowflake secret {secret_name!r} field 'protocol' must be 'http' or 'https'"
            )
        return cls(
            **fields,  # type: ignore[arg-type]
            private_key_der=der,
            password=None if der else password,
            host=text("host", required=False),
            port=port,
            protocol=protocol,
        )


def _private_key_der(secret: dict[str, Any], secret_name: str) -> bytes:
    """Load the PEM key (decrypting it with the passphrase) into unencrypted DER bytes.

    Loading it here gives an error naming the field; the connector's own error would not.
    """
    pem = secret["private_key"]
    passphrase = secret.get("private_key_passphrase")
    if not isinstance(pem, str):
        raise ConfigurationError(
            f"Snowflake secret {secret_name!r} field 'private_key' must be a PEM string"
        )
    if passphrase is not None and not isinstance(passphrase, str):
        raise ConfigurationError(
            f"Snowflake secret {secret_name!r} field 'private_key_passphrase' must be a string"
        )
    try:
        key = serialization.load_pem_private_key(
            pem.encode(), password=passphrase.encode() if passphrase else None
        )
    except TypeError:
        # Raised for a passphrase given to an unencrypted key, or none for an encrypted one.
        raise ConfigurationError(
            f"Snowflake secret {secret_name!r} field 'private_key_passphrase' does not match "
            "the key: set it for an encrypted key, remove it for an unencrypted one"
        ) from None
    except ValueError:
        # Also raised for a wrong passphrase; the message must not echo any of the key.
        field_name = "private_key_passphrase" if passphrase else "private_key"
        raise ConfigurationError(
            f"Snowflake secret {secret_name!r} field {field_name!r} is malformed: "
            "'private_key' must be a PEM private key (PKCS#8) and the passphrase must match"
        ) from None
    return key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def connection_kwargs(creds: SnowflakeCredentials, settings: ConnectionSettings) -> dict[str, Any]:
    """Keyword arguments for `snowflake.connector.connect` (they hold the secret: never log)."""
    kwargs: dict[str, Any] = {
        "account": creds.account,
        "user": creds.user,
        "warehouse": creds.warehouse,
        "database": creds.database,
        "schema": creds.schema,
        "role": creds.role,
        # qmark sends values as server-side bindings; pyformat would interpolate client-side.
        "paramstyle": "qmark",
        "login_timeout": settings.login_timeout_s,
        "connect_timeout": min(settings.login_timeout_s, settings.network_timeout_s),
        # Per HTTP attempt and for the other requests: a stalled socket cannot hang us.
        "retry_timeout": settings.network_timeout_s,
        "request_timeout": settings.network_timeout_s,
        "query_timeout": settings.statement_timeout_s,
        # The server cancels the statement too, so a timed-out query stops costing credits.
        "session_parameters": {"STATEMENT_TIMEOUT_IN_SECONDS": settings.statement_timeout_s},
        "client_session_keep_alive": False,
        "enable_server_session_keep_alive_auto_detection": False,
    }
    if creds.private_key_der:
        kwargs["authenticator"] = "SNOWFLAKE_JWT"
        kwargs["private_key"] = creds.private_key_der
    else:
        kwargs["password"] = creds.password
    for name in ("host", "port", "protocol"):
        value = getattr(creds, name)
        if value is not None:
            kwargs[name] = value
    return kwargs


def _is_auth_failure(exc: BaseException) -> bool:
    return getattr(exc, "errno", None) in AUTH_FAILURE_ERRNOS


def _unavailable(exc: BaseException, what: str) -> SnowflakeUnavailableError:
    return SnowflakeUnavailableError(f"Snowflake unavailable while {what}: {_describe(exc)}")


def _describe(exc: BaseException) -> str:
    errno = getattr(exc, "errno", None)
    msg = getattr(exc, "msg", None) or str(exc)
    return f"{type(exc).__name__} {errno or ''} {msg}".replace("  ", " ")[:500]


def connect(
    creds: SnowflakeCredentials,
    settings: ConnectionSettings,
    connector: Callable[..., Any] = snowflake.connector.connect,
) -> Any:
    """Open a connection, mapping failures to the pipeline's error types."""
    try:
        return connector(**connection_kwargs(creds, settings))
    except sf_errors.OperationalError as exc:
        raise _unavailable(exc, "connecting") from exc
    except sf_errors.ProgrammingError as exc:
        # Raised before any request for parameters the connector refuses.
        raise ConfigurationError(
            f"the Snowflake connection settings were refused: {_describe(exc)}; "
            f"check the secret {settings.secret_name!r}"
        ) from exc
    except sf_errors.DatabaseError as exc:
        if _is_auth_failure(exc):
            raise ConfigurationError(
                f"Snowflake refused the credentials of secret {settings.secret_name!r} "
                f"for user {creds.user!r}: {_describe(exc)}; fix the key/password or the user"
            ) from exc
        raise _unavailable(exc, "connecting") from exc
    except OSError as exc:  # includes socket timeouts and refused connections
        raise _unavailable(exc, "connecting") from exc


def query_error(exc: BaseException, what: str) -> Exception:
    """The pipeline error for a failed statement: SQL problems are `QueryError`, timeouts
    and dropped connections `SnowflakeUnavailableError` (retried)."""
    if isinstance(exc, sf_errors.ProgrammingError) and not _is_timeout(exc):
        return QueryError(f"Snowflake rejected the query while {what}: {_describe(exc)}")
    return _unavailable(exc, what)


def _is_timeout(exc: BaseException) -> bool:
    return getattr(exc, "errno", None) == STATEMENT_TIMEOUT_ERRNO or (
        getattr(exc, "sqlstate", None) == "57014"
    )


def load_credentials(settings: ConnectionSettings) -> SnowflakeCredentials:
    """Read and validate the Snowflake secret named by `settings` (Secrets Manager, cached)."""
    return SnowflakeCredentials.from_secret(
        get_secret_json(settings.secret_name), settings.secret_name
    )


def execute(cursor: Any, sql: str, params: Sequence[Any] | None, what: str) -> Any:
    """Run one statement, mapping connector errors to the pipeline's (see `query_error`)."""
    try:
        cursor.execute(sql, params or None)
    except (sf_errors.Error, OSError) as exc:
        raise query_error(exc, what) from exc
    return cursor


def close_quietly(conn: Any) -> None:
    """Close `conn`; the work is done by now, so a failed logout must not fail the step."""
    with contextlib.suppress(sf_errors.Error, OSError):
        conn.close()
