"""Reading one column of a Snowflake query, streamed, with errors the state machine can act on.

Connection problems (refused, DNS, TLS, login/network timeouts) become
`SnowflakeUnavailableError` (retried); SQL problems become `QueryError` (not retried);
a secret that cannot be used becomes `ConfigurationError` naming the field.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import snowflake.connector
from cryptography.hazmat.primitives import serialization
from snowflake.connector import errors as sf_errors

from enrich_shared.errors import ConfigurationError, QueryError, SnowflakeUnavailableError
from enrich_shared.settings import env_int, env_str

DEFAULT_QUERY = "SELECT ORG_ID, CREATIVEWORKID, IMDB_VALUE FROM EIDR.PUBLIC.ORGS_IMDB_FILTERED"
DEFAULT_ID_COLUMN = "IMDB_VALUE"
REQUIRED_SECRET_FIELDS = ("account", "user", "warehouse", "database", "schema", "role")
#: Snowflake's "statement reached its statement or warehouse timeout" error number.
STATEMENT_TIMEOUT_ERRNO = 630
#: Words in a login error that mean the credentials were refused (retrying will not help).
AUTH_FAILURE_MARKERS = ("authentication", "incorrect username or password", "jwt token is invalid")


@dataclass(frozen=True)
class SnowflakeSettings:
    """The query and its limits, from the function's environment."""

    secret_name: str
    query: str = DEFAULT_QUERY
    id_column: str = DEFAULT_ID_COLUMN
    login_timeout_s: int = 30
    network_timeout_s: int = 120
    statement_timeout_s: int = 600
    fetch_batch_size: int = 10_000

    @classmethod
    def from_env(cls) -> SnowflakeSettings:
        """Read SNOWFLAKE_* and FETCH_BATCH_SIZE (see CONTRACTS/README for defaults)."""
        return cls(
            secret_name=env_str("SNOWFLAKE_SECRET_NAME"),
            query=env_str("SNOWFLAKE_QUERY", DEFAULT_QUERY),
            id_column=env_str("SNOWFLAKE_ID_COLUMN", DEFAULT_ID_COLUMN),
            login_timeout_s=env_int("SNOWFLAKE_LOGIN_TIMEOUT_S", 30),
            network_timeout_s=env_int("SNOWFLAKE_NETWORK_TIMEOUT_S", 120),
            statement_timeout_s=env_int("SNOWFLAKE_STATEMENT_TIMEOUT_S", 600),
            fetch_batch_size=env_int("FETCH_BATCH_SIZE", 10_000),
        )


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


def connection_kwargs(creds: SnowflakeCredentials, settings: SnowflakeSettings) -> dict[str, Any]:
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


def limited_query(query: str, limit: int | None) -> tuple[str, tuple[int, ...]]:
    """The query to run and its bound parameters; `limit` is bound, never formatted in."""
    query = query.strip().rstrip(";").strip()
    if limit is None:
        return query, ()
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise QueryError(f"limit={limit!r} must be a positive whole number")
    # The query is the operator's own configuration (trusted); the limit is a bound value.
    return f"SELECT * FROM ({query}) LIMIT ?", (limit,)  # noqa: S608


def column_index(column_names: list[str], wanted: str) -> int:
    """Index of `wanted` among the result columns (exact match first, then case-insensitive)."""
    if wanted in column_names:
        return column_names.index(wanted)
    folded = [name.upper() for name in column_names]
    if wanted.upper() in folded:
        return folded.index(wanted.upper())
    raise QueryError(
        f"the query has no column {wanted!r}; its columns are {column_names}. "
        "Set snowflake.idColumn in cdk.json to one of them, or change snowflake.query, "
        "and deploy again"
    )


def _is_auth_failure(exc: BaseException) -> bool:
    text = str(getattr(exc, "msg", "") or exc).lower()
    return any(marker in text for marker in AUTH_FAILURE_MARKERS)


def _unavailable(exc: BaseException, what: str) -> SnowflakeUnavailableError:
    return SnowflakeUnavailableError(f"Snowflake unavailable while {what}: {_describe(exc)}")


def _describe(exc: BaseException) -> str:
    errno = getattr(exc, "errno", None)
    msg = getattr(exc, "msg", None) or str(exc)
    return f"{type(exc).__name__} {errno or ''} {msg}".replace("  ", " ")[:500]


def connect(
    creds: SnowflakeCredentials,
    settings: SnowflakeSettings,
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


def _query_error(exc: BaseException, what: str) -> Exception:
    if isinstance(exc, sf_errors.ProgrammingError) and not _is_timeout(exc):
        return QueryError(f"Snowflake rejected the query while {what}: {_describe(exc)}")
    return _unavailable(exc, what)


def _is_timeout(exc: BaseException) -> bool:
    return getattr(exc, "errno", None) == STATEMENT_TIMEOUT_ERRNO or (
        getattr(exc, "sqlstate", None) == "57014"
    )


def iter_column(
    creds: SnowflakeCredentials,
    settings: SnowflakeSettings,
    limit: int | None = None,
    connector: Callable[..., Any] = snowflake.connector.connect,
) -> Iterator[Any]:
    """Yield the values of `settings.id_column`, fetched `fetch_batch_size` rows at a time.

    Only one batch of rows is held at once. The connection is closed when the iterator is
    exhausted or closed.
    """
    sql, params = limited_query(settings.query, limit)
    conn = connect(creds, settings, connector)
    try:
        cursor = conn.cursor()
        try:
            cursor.execute(sql, params or None)
        except (sf_errors.Error, OSError) as exc:
            raise _query_error(exc, "running it") from exc
        index = column_index([col.name for col in cursor.description], settings.id_column)
        while True:
            try:
                rows = cursor.fetchmany(settings.fetch_batch_size)
            except (sf_errors.Error, OSError) as exc:
                raise _query_error(exc, "fetching rows") from exc
            if not rows:
                break
            for row in rows:
                yield row[index]
    finally:
        # The rows are read by now; a failed logout must not fail the run.
        with contextlib.suppress(sf_errors.Error, OSError):
            conn.close()
