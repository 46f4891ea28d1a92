"""Pydantic models of the three declaration files: systems.json, entities.json, actions.json."""

from __future__ import annotations

import codecs
import datetime as dt
import json
import re
import zoneinfo
from typing import Annotated, Any, Literal, get_args

from bson import json_util
from croniter import croniter
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    StringConstraints,
    TypeAdapter,
    ValidationInfo,
    field_validator,
    model_validator,
)

from metadata.naming import path_segment_problem

# Names that end up in SQL, dbt or file names are restricted to plain ASCII (see the README's "Metadata is
# not code"): a system id, an entity / endpoint / action name, and an entity model reference.
SYSTEM_ID_PATTERN = r"^[A-Z]{3}[0-9]{2}$"
NAME_PATTERN = r"^[a-z][a-z0-9_]*$"
MODEL_REF_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*$"

Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]
SystemId = Annotated[str, StringConstraints(pattern=SYSTEM_ID_PATTERN)]


class _Strict(BaseModel):
    """Unknown keys are typos in hand-written JSON: reject them instead of ignoring them."""

    model_config = ConfigDict(extra="forbid")


class SecretRef(_Strict):
    """A value kept out of metadata: resolved at run time from the secret store."""

    type: Literal["secret"]
    key: Annotated[str, StringConstraints(min_length=1)]


Value = SecretRef | str | int | float | bool


class JsonFilesConnection(_Strict):
    """A folder of deliveries: one sub-folder per delivery (named by its ISO date or timestamp),
    each holding one JSON file (an array of records) per endpoint."""

    type: Literal["json_files"]
    path: SecretRef | str = Field(
        description="folder of deliveries; a relative path is taken from DATAPLATFORM_HOME"
    )
    endpoints: dict[Name, str] = Field(min_length=1, description="endpoint name -> file name")


def glob_problem(pattern: str) -> str | None:
    """Why `pattern` is not a glob of files relative to a folder, or None when it is one.

    The rules are those of Python's and fsspec's globs, minus what would leave the folder or match
    nothing: '/' separates folders, '**' (any depth) is a whole segment, '[' opens a class that ']' closes.
    A plain file name is a glob that matches that one file."""
    if not pattern.strip():
        return "is empty; write a pattern such as 'orders_*.csv'"
    if pattern != pattern.strip():
        return "starts or ends with a blank; remove it"
    if "\\" in pattern:
        return "holds a backslash; separate folders with '/'"
    if "://" in pattern:
        return "is a URL; the glob is relative to the system's 'path' (put the location there)"
    if pattern.startswith("/") or re.match(r"^[A-Za-z]:", pattern):
        return "is an absolute path; write it relative to the system's 'path'"
    segments = pattern.split("/")
    if any(s == "" for s in segments):
        return "has an empty folder name ('//' or a trailing '/'); a glob names files"
    if any(s in (".", "..") for s in segments):
        return "holds '.' or '..' as a folder; the glob must stay inside the system's 'path'"
    if segments[-1] == "**":
        return "ends with '**', which matches folders too; end with a file pattern, e.g. '**/*.csv'"
    for segment in segments:
        if "**" in segment and segment != "**":
            return f"segment {segment!r} holds '**' beside other characters; '**' must be a whole segment"
        depth = 0
        for char in segment:
            if char == "[":
                depth += 1
            elif char == "]" and depth:
                depth = 0
        if depth:
            return f"segment {segment!r} opens a '[' character class that no ']' closes"
    return None


class CsvOptions(_Strict):
    """How a CSV file is written. The first row is the header: it names the fields of every record."""

    delimiter: Annotated[str, StringConstraints(min_length=1, max_length=1)] = Field(
        default=",", description="the one character between fields"
    )
    quote_char: Annotated[str, StringConstraints(min_length=1, max_length=1)] = Field(
        default='"', description="the one character around a field holding the delimiter, a quote or a line break"
    )
    encoding: str = Field(
        default="utf-8", description="the files' text encoding, a Python codec name (utf-8, latin-1, cp1252, ...); "
        "a UTF-8 byte-order mark is dropped"
    )

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value: str) -> str:
        try:
            info = codecs.lookup(value)
        except LookupError:
            raise ValueError(f"unknown encoding {value!r}; give a Python codec name such as utf-8, latin-1 or "
                             "cp1252") from None
        if not isinstance(info.incrementaldecoder, type) or info.name in _NOT_TEXT_CODECS:
            raise ValueError(f"{value!r} is not a text encoding; give one such as utf-8, latin-1 or cp1252")
        try:
            line_based = _ASCII_PUNCTUATION.encode("ascii").decode(value) == _ASCII_PUNCTUATION
        except UnicodeDecodeError:
            line_based = False
        if not line_based:
            raise ValueError(f"{value!r} does not write a line break as the byte 0x0a (UTF-16 / UTF-32 do not); "
                             "files in it are not supported: convert them to UTF-8")
        return value

    @model_validator(mode="after")
    def _distinct(self) -> CsvOptions:
        if self.delimiter == self.quote_char:
            raise ValueError(f"'delimiter' and 'quote_char' are both {self.delimiter!r}; they must differ")
        if self.delimiter in "\r\n" or self.quote_char in "\r\n":
            raise ValueError("'delimiter' and 'quote_char' cannot be a line break")
        return self


_ASCII_PUNCTUATION = '\n\r\t ,;|"\'0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ'
# Codecs Python knows that turn bytes into bytes, not into text.
_NOT_TEXT_CODECS = {"base64", "bz2", "hex", "quopri", "uu", "zlib", "rot-13"}


class FileEndpoint(_Strict):
    """One endpoint of a `files` system: the files its glob matches, all in one format."""

    glob: str = Field(description="files of this endpoint, relative to the system's 'path' ('orders/*.csv.gz')")
    format: Literal["csv", "jsonl", "json", "parquet"] = Field(
        description="csv (header row), jsonl (one JSON object a line), json (one array of objects), parquet"
    )
    csv: CsvOptions | None = Field(default=None, description="CSV options (format 'csv' only)")
    compression: Literal["infer", "none", "gzip"] = Field(
        default="infer", description="gzip or none; 'infer': gzip for a name ending in '.gz'"
    )
    load: Literal["new_files", "full"] = Field(
        default="new_files",
        description="new_files: each run lands the files that arrived since the last batch (by modification time "
        "and name); full: each run lands every matching file",
    )

    @field_validator("glob")
    @classmethod
    def _is_glob(cls, value: str) -> str:
        why = glob_problem(value)
        if why:
            raise ValueError(f"not a glob of files: {why}")
        return value

    @model_validator(mode="after")
    def _csv_only(self) -> FileEndpoint:
        if self.csv is not None and self.format != "csv":
            raise ValueError(f"'csv' options are given but the format is {self.format!r}; remove them")
        return self

    def csv_options(self) -> CsvOptions:
        return self.csv or CsvOptions()


class FilesConnection(_Strict):
    """A folder other systems drop files into; per endpoint a glob and a format. The folder is a local path
    today; the connector lists and opens it through fsspec, so other fsspec locations can follow."""

    type: Literal["files"]
    path: SecretRef | str = Field(description="folder of the files; a relative path is taken from DATAPLATFORM_HOME")
    endpoints: dict[Name, FileEndpoint] = Field(min_length=1, description="endpoint name -> its files")
    settle_seconds: Annotated[float, Field(ge=0, le=86_400)] = Field(
        default=2.0, description="a file is landed once its modification time is this many seconds before the "
        "run: a file still being written waits for the next run"
    )

    @field_validator("path")
    @classmethod
    def _local(cls, value: SecretRef | str) -> SecretRef | str:
        if isinstance(value, str) and "://" in value:
            raise ValueError("only a local folder is supported yet; give a path, not a URL")
        if isinstance(value, str) and not value.strip():
            raise ValueError("is empty; give the folder's path")
        return value


def _only_a_secret_reference(value: SecretRef | str, info: ValidationInfo) -> SecretRef | str:
    """A credential is written as a secret reference; its value (a plain string) is accepted only once the
    secrets have been resolved at run time (`parse_connection(..., resolved=True)`)."""
    if isinstance(value, str) and not (info.context or {}).get("resolved"):
        raise ValueError('a credential must be a secret reference {"type": "secret", "key": "..."}, never the value '
                         "itself; put the value in the secret store (e.g. the environment or .env)")
    return value


# A credential field: a secret reference in metadata; its value once resolved (checked wherever it is declared).
Credential = Annotated[SecretRef | str, AfterValidator(_only_a_secret_reference)]


class _Auth(_Strict):
    pass


class BearerAuth(_Auth):
    """`Authorization: Bearer <token>`."""

    type: Literal["bearer"]
    token: Credential


class ApiKeyAuth(_Auth):
    """An API key in a request header or a query parameter called `name`."""

    type: Literal["api_key"]
    name: Annotated[str, StringConstraints(min_length=1)] = Field(description="header or query parameter name")
    location: Literal["header", "query"] = "header"
    api_key: Credential


class BasicAuth(_Auth):
    """HTTP basic authentication."""

    type: Literal["http_basic"]
    username: Credential
    password: Credential


class OAuth2ClientCredentialsAuth(_Auth):
    """OAuth2 client credentials: a token from `token_url` for the client id and secret, sent as a bearer token."""

    type: Literal["oauth2_client_credentials"]
    token_url: Annotated[str, StringConstraints(pattern=r"^https?://")] = Field(description="absolute http(s) URL")
    client_id: Credential
    client_secret: Credential
    scopes: list[str] = Field(default_factory=list, description="sent as the space-separated 'scope' form field")


RestAuth = Annotated[BearerAuth | ApiKeyAuth | BasicAuth | OAuth2ClientCredentialsAuth, Field(discriminator="type")]


class SinglePage(_Strict):
    """The response is the only page."""

    type: Literal["single_page"]


class JsonLinkPaging(_Strict):
    """The URL of the next page is in the response body at `next_url_path` (a JSON path); none or null: the end."""

    type: Literal["json_link"]
    next_url_path: Annotated[str, StringConstraints(min_length=1)] = "next"


class HeaderLinkPaging(_Strict):
    """The URL of the next page is in the HTTP `Link` header (rel="next")."""

    type: Literal["header_link"]


class OffsetPaging(_Strict):
    """`offset` / `limit` query parameters; the end: a page with no records, or `total_path`'s total reached."""

    type: Literal["offset"]
    limit: Annotated[int, Field(gt=0)]
    offset_param: Annotated[str, StringConstraints(min_length=1)] = "offset"
    limit_param: Annotated[str, StringConstraints(min_length=1)] = "limit"
    total_path: str | None = None


class PageNumberPaging(_Strict):
    """A page number query parameter; the end: a page with no records, or `total_path`'s number of pages reached."""

    type: Literal["page_number"]
    page_param: Annotated[str, StringConstraints(min_length=1)] = "page"
    base_page: Annotated[int, Field(ge=0)] = 1
    total_path: str | None = None


class CursorPaging(_Strict):
    """A token for the next page in the response body at `cursor_path`, sent back as the query parameter
    `cursor_param`; none or null: the end."""

    type: Literal["cursor"]
    cursor_path: Annotated[str, StringConstraints(min_length=1)]
    cursor_param: Annotated[str, StringConstraints(min_length=1)]


Paginator = Annotated[SinglePage | JsonLinkPaging | HeaderLinkPaging | OffsetPaging | PageNumberPaging | CursorPaging,
                      Field(discriminator="type")]
ParamValue = str | int | float | bool


class RestEndpoint(_Strict):
    """One endpoint of a REST API: what is requested, where its records are, how it pages, and (delta) where
    it stands: `audit.cursor` holds the largest `cursor_field` value landed, sent as `cursor_param`."""

    path: Annotated[str, StringConstraints(min_length=1)] = Field(description="path under base_url")
    params: dict[str, ParamValue] = Field(default_factory=dict, description="query parameters sent every request")
    records_path: str | None = Field(
        default=None, description="JSON path of the records in the response body; none: the body is the list")
    paginator: Paginator = Field(default_factory=lambda: SinglePage(type="single_page"))
    cursor_param: str | None = Field(default=None, description="query parameter that receives the cursor (delta)")
    cursor_field: str | None = Field(default=None, validate_default=True,
                                     description="dot path of the record field whose largest value is the cursor")
    initial_cursor: str | None = Field(default=None, validate_default=True,
                                       description="sent as cursor_param while the endpoint has no cursor yet")
    max_pages: Annotated[int, Field(gt=0)] = Field(
        default=10_000, description="more pages than this in one run is an error (a pagination that never ends)")

    @field_validator("cursor_field")
    @classmethod
    def _field_with_param(cls, value: str | None, info: ValidationInfo) -> str | None:
        if info.data.get("cursor_param") and not value:
            raise ValueError(f"cursor_param {info.data['cursor_param']!r} is given without the record field that "
                             "advances it; add 'cursor_field' (e.g. \"updated_at\") or remove 'cursor_param'")
        if value and "cursor_param" in info.data and not info.data["cursor_param"]:
            raise ValueError("cursor_field is given without 'cursor_param', the query parameter that receives the "
                             "cursor; add it or remove 'cursor_field'")
        return value

    @field_validator("initial_cursor")
    @classmethod
    def _initial_with_field(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and not info.data.get("cursor_param"):
            raise ValueError("initial_cursor is given without 'cursor_param' and 'cursor_field'; add them or remove it")
        return value

    @field_validator("records_path", "cursor_field")
    @classmethod
    def _path(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("an empty path; leave the field out instead")
        return value


class RetryLimits(_Strict):
    """How transient errors (HTTP 429 and 5xx, timeouts, connection resets) are retried: exponential backoff
    (`backoff_factor` * 2^attempt seconds, at most `max_delay`) plus up to `jitter` random seconds, or what the
    server's `Retry-After` says (plus the jitter), until `max_attempts` attempts were made."""

    max_attempts: Annotated[int, Field(ge=1, le=100)] = 5
    backoff_factor: Annotated[float, Field(ge=0)] = 1.0
    max_delay: Annotated[float, Field(ge=0)] = 60.0
    jitter: Annotated[float, Field(ge=0)] = 1.0
    timeout: Annotated[float, Field(gt=0)] = Field(default=60.0, description="seconds per request")


class RestApiConnection(_Strict):
    """A REST API (JSON over HTTP), read through dlt's REST client, paginators and auth classes."""

    type: Literal["rest_api"]
    base_url: Annotated[str, StringConstraints(pattern=r"^https?://")] = Field(description="absolute http(s) URL")
    auth: RestAuth | None = None
    headers: dict[str, str] = Field(default_factory=dict, description="sent with every request (no credentials)")
    retry: RetryLimits = Field(default_factory=RetryLimits)
    endpoints: dict[Name, RestEndpoint] = Field(min_length=1, description="endpoint name -> its request")


# How BSON values are written as text (landed documents, cursors) and read back: relaxed Extended JSON, dates
# in UTC.
MONGO_JSON = json_util.RELAXED_JSON_OPTIONS.with_options(tz_aware=True, tzinfo=dt.UTC)
# MongoDB query operators that run JavaScript on the server: never sent from metadata.
SERVER_SIDE_JAVASCRIPT = ("$where", "$function", "$accumulator")


def extended_json_value(value: Any) -> Any:
    """`value` (JSON from metadata) read as MongoDB Extended JSON: `{"$date": "..."}` becomes a date,
    `{"$oid": "..."}` an ObjectId, and so on (raises ValueError naming what is wrong)."""
    try:
        return json_util.loads(json.dumps(value), json_options=MONGO_JSON)
    except (ValueError, TypeError) as err:
        raise ValueError(f"is not valid MongoDB Extended JSON: {err}") from None


def mongo_cursor_text(value: Any) -> str:
    """The cursor text of a BSON value: its relaxed Extended JSON, which reads back as the same BSON value
    (a date as a date, an ObjectId as an ObjectId)."""
    return json_util.dumps(value, json_options=MONGO_JSON, ensure_ascii=False)


def _javascript_in(value: Any, where: str) -> str | None:
    """Where `value` uses an operator that runs JavaScript on the server, or None."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key in SERVER_SIDE_JAVASCRIPT:
                return f"{where}{key}"
            found = _javascript_in(item, f"{where}{key}.")
            if found:
                return found
    elif isinstance(value, list):
        for number, item in enumerate(value):
            found = _javascript_in(item, f"{where}{number}.")
            if found:
                return found
    return None


def _field_path_problem(path: str) -> str | None:
    if not path.strip() or path != path.strip():
        return "is empty or starts or ends with a blank"
    if any(not part or part.startswith("$") for part in path.split(".")):
        return "is not a field path: write names joined by '.', none empty or starting with '$' (e.g. 'meta.updated')"
    return None


class MongoEndpoint(_Strict):
    """One endpoint of a `mongodb` system: a collection, optionally narrowed by a filter and a projection,
    read whole (`full`) or from where the last batch got to on `cursor_field` (`delta`)."""

    collection: Annotated[str, StringConstraints(min_length=1, max_length=255)] = Field(
        description="the collection's name in the system's database")
    filter: dict[str, Any] = Field(
        default_factory=dict, description="a MongoDB query document (Extended JSON: {\"$date\": ...} is a date)")
    projection: dict[str, Any] | None = Field(
        default=None, description="a MongoDB projection document ({\"field\": 1} keeps, {\"field\": 0} drops)")
    load: Literal["full", "delta"] = Field(
        default="full", description="full: every matching document each run; delta: from the stored cursor on")
    cursor_field: str | None = Field(
        default=None, description="delta: the field (dot path) whose largest value is the cursor, compared as its "
        "BSON type (dates as dates, ObjectIds as ObjectIds)")
    initial_cursor: Any = Field(
        default=None, description="delta: where the first batch starts, as Extended JSON "
        "({\"$date\": \"2026-01-01T00:00:00Z\"}, {\"$oid\": \"...\"}, a number or a string); none: the beginning")
    batch_size: Annotated[int, Field(ge=1, le=100_000)] = Field(
        default=1000, description="documents per round trip to the server (memory holds one batch at a time)")

    @field_validator("collection")
    @classmethod
    def _collection_name(cls, value: str) -> str:
        if value != value.strip() or "$" in value or "\x00" in value or value.startswith("system."):
            raise ValueError(f"{value!r} is not a collection name MongoDB allows to read (no '$', no NUL, no blank "
                             "at either end, not a 'system.' collection)")
        return value

    @field_validator("filter", "projection", mode="before")
    @classmethod
    def _json_object(cls, value: Any, info: ValidationInfo) -> Any:
        if value is not None and not isinstance(value, dict):
            raise ValueError(f"must be a JSON object (a MongoDB {info.field_name} document), not a "
                             f"{type(value).__name__}")
        return value

    @field_validator("filter", "projection")
    @classmethod
    def _no_javascript(cls, value: dict[str, Any] | None, info: ValidationInfo) -> dict[str, Any] | None:
        if value is None:
            return value
        found = _javascript_in(value, "")
        if found:
            raise ValueError(f"uses {found.rsplit('.', 1)[-1]!r} (at {found!r}), which runs JavaScript on the "
                             "server; it is never sent from metadata: write the condition with query operators "
                             "($expr, $regex, ...) instead")
        extended_json_value(value)
        return value

    @field_validator("cursor_field")
    @classmethod
    def _cursor_path(cls, value: str | None) -> str | None:
        if value is not None and (why := _field_path_problem(value)):
            raise ValueError(f"{value!r} {why}")
        return value

    @model_validator(mode="after")
    def _delta_needs_field(self) -> MongoEndpoint:
        if self.load == "delta" and self.cursor_field is None:
            raise ValueError("load 'delta' needs 'cursor_field': the field whose largest value is the cursor "
                             "(e.g. \"updated_at\", or \"_id\" for ObjectIds that only grow)")
        if self.load == "full" and (self.cursor_field is not None or self.initial_cursor is not None):
            raise ValueError("'cursor_field' / 'initial_cursor' are given but load is 'full'; set \"load\": "
                             "\"delta\" or remove them")
        if self.initial_cursor is not None:
            try:
                extended_json_value(self.initial_cursor)
            except ValueError as err:
                raise ValueError(f"initial_cursor {err}") from None
        if self.cursor_field is not None and self.projection:
            why = _projection_drops(self.projection, self.cursor_field)
            if why:
                raise ValueError(f"the projection {why} the cursor field {self.cursor_field!r}, which delta reads; "
                                 "keep it in the projection")
        return self

    def initial_cursor_text(self) -> str | None:
        """The initial cursor as cursor text (relaxed Extended JSON), or None."""
        if self.initial_cursor is None:
            return None
        return mongo_cursor_text(extended_json_value(self.initial_cursor))


def _projection_drops(projection: dict[str, Any], field: str) -> str | None:
    """'drops' / 'leaves out' when `projection` would not return `field`, else None."""
    parts = field.split(".")
    prefixes = {".".join(parts[:n]) for n in range(1, len(parts) + 1)}
    kept = {k for k, v in projection.items() if k != "_id" and v not in (0, False)}
    if any(k in prefixes and projection[k] in (0, False) for k in projection):
        return "drops"
    if field == "_id" or parts[0] == "_id":
        return None
    if kept and not any(k in prefixes or k.startswith(field + ".") for k in kept):
        return "leaves out"
    return None


class MongoDbConnection(_Strict):
    """A MongoDB database, read with pymongo; documents land as relaxed Extended JSON."""

    type: Literal["mongodb"]
    url: Credential = Field(description="mongodb:// or mongodb+srv:// URL (user and password in it): a secret")
    database: Annotated[str, StringConstraints(min_length=1, max_length=63)] = Field(
        description="the database the collections are in")
    retry: RetryLimits = Field(default_factory=RetryLimits)
    endpoints: dict[Name, MongoEndpoint] = Field(min_length=1, description="endpoint name -> its collection")

    @field_validator("database")
    @classmethod
    def _database_name(cls, value: str) -> str:
        if value != value.strip() or any(c in value for c in '/\\. "$\x00'):
            raise ValueError(f"{value!r} is not a MongoDB database name (none of / \\ . \" $, blanks or NUL)")
        return value


_SQL_IDENTIFIER = r"[A-Za-z_][A-Za-z0-9_$]*"
SQL_TABLE_PATTERN = rf"^{_SQL_IDENTIFIER}(\.{_SQL_IDENTIFIER})?$"
SQL_COLUMN_PATTERN = rf"^{_SQL_IDENTIFIER}$"
# A read-only query starts with SELECT or WITH (after comments); the database enforces the rest: the connector
# runs every query in a read-only transaction, where an INSERT, UPDATE, DELETE or DDL (a data-modifying CTE too)
# is refused by the server itself.
_SQL_COMMENTS = re.compile(r"--[^\n]*|/\*.*?\*/", re.DOTALL)


def query_problem(query: str) -> str | None:
    """Why `query` is not a single read-only SELECT the connector can wrap as a subquery, or None."""
    text = _SQL_COMMENTS.sub(" ", query).strip().rstrip(";").strip()
    if not text:
        return "is empty; give a SELECT statement"
    if not re.match(r"(?i)(select|with)\b", text):
        return f"starts with {text.split()[0]!r}; only a SELECT (or WITH ... SELECT) is read"
    if ";" in text:
        return "holds more than one statement (a ';' inside); give a single SELECT"
    return None


class SqlEndpoint(_Strict):
    """One endpoint of a SQL database: a table or a read-only query, loaded whole every run (`full`) or from
    its cursor (`delta`): `audit.cursor` holds the largest `cursor_column` value landed."""

    table: Annotated[str, StringConstraints(pattern=SQL_TABLE_PATTERN)] | None = Field(
        default=None, description="table (or view), optionally schema-qualified: 'public.orders'")
    query: str | None = Field(default=None, description="a read-only SELECT, run as a subquery")
    load: Literal["full", "delta", "cdc"] = Field(
        default="full", description="full: every row every run; delta: the rows whose cursor_column is at or "
        "after the stored cursor; cdc (PostgreSQL tables): a snapshot, then the inserts, updates and deletes read "
        "from a logical replication slot")
    cursor_column: Annotated[str, StringConstraints(pattern=SQL_COLUMN_PATTERN)] | None = Field(
        default=None, description="delta: an updated-at timestamp or an increasing id")
    initial_cursor: str | None = Field(default=None, description="delta: where the first batch starts")
    chunk_size: Annotated[int, Field(gt=0, le=1_000_000)] = Field(
        default=10_000, description="rows fetched from the server-side cursor at a time")

    @field_validator("query")
    @classmethod
    def _read_only(cls, value: str | None) -> str | None:
        if value is not None and (why := query_problem(value)):
            raise ValueError(f"not a read-only query: {why}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> SqlEndpoint:
        if (self.table is None) == (self.query is None):
            raise ValueError("declare exactly one of 'table' (e.g. \"public.orders\") and 'query' (a SELECT)")
        if self.load == "delta" and self.cursor_column is None:
            raise ValueError("load 'delta' needs 'cursor_column' (an updated-at timestamp or an increasing id)")
        if self.load == "full" and (self.cursor_column is not None or self.initial_cursor is not None):
            raise ValueError("'cursor_column' and 'initial_cursor' go with load 'delta'; set it or remove them")
        if self.load == "cdc" and (self.cursor_column is not None or self.initial_cursor is not None):
            raise ValueError("'cursor_column' and 'initial_cursor' go with load 'delta', not 'cdc' (cdc reads its "
                             "position from the replication slot); remove them")
        if self.load == "cdc" and self.table is None:
            raise ValueError("load 'cdc' reads a table's changes: give 'table', not 'query'")
        return self


class SqlDatabaseConnection(_Strict):
    """A PostgreSQL or MySQL/MariaDB database, read through SQLAlchemy and dlt's `sql_database` table loader:
    either `url` (a secret reference: the URL carries the password) or `driver`, `host`, `port`, `user`,
    `password` (a secret reference) and `database`."""

    type: Literal["sql_database"]
    url: Credential | None = Field(
        default=None, description="postgresql://user:password@host:5432/db or mysql://... (a secret reference)")
    driver: Literal["postgresql", "mysql", "mariadb"] | None = Field(
        default=None, description="with host: postgresql (psycopg 3), mysql or mariadb (PyMySQL)")
    host: Annotated[str, StringConstraints(min_length=1)] | None = None
    port: Annotated[int, Field(gt=0, lt=65536)] | None = Field(default=None, description="default: the driver's")
    user: SecretRef | Annotated[str, StringConstraints(min_length=1)] | None = None
    password: Credential | None = None
    database: Annotated[str, StringConstraints(min_length=1)] | None = None
    retry: RetryLimits = Field(
        default_factory=lambda: RetryLimits(max_attempts=3, backoff_factor=1.0, max_delay=30.0, jitter=1.0,
                                            timeout=30.0),
        description="transient errors (lost connection, deadlock, serialization failure); timeout: connecting")
    endpoints: dict[Name, SqlEndpoint] = Field(min_length=1, description="endpoint name -> its table or query")

    @model_validator(mode="after")
    def _one_way_to_connect(self) -> SqlDatabaseConnection:
        parts = {"driver": self.driver, "host": self.host, "port": self.port, "user": self.user,
                 "password": self.password, "database": self.database}
        given = [name for name, value in parts.items() if value is not None]
        if self.url is not None and given:
            raise ValueError(f"give either 'url' or the parts ({', '.join(given)}), not both")
        if self.url is None:
            missing = [name for name in ("driver", "host", "user", "database") if parts[name] is None]
            if missing:
                raise ValueError(f"missing {', '.join(map(repr, missing))}: give 'url' (a secret reference) or "
                                 "driver, host, user, database (and port, password)")
        cdc = [name for name, spec in self.endpoints.items() if spec.load == "cdc"]
        if cdc and self.driver not in (None, "postgresql"):
            raise ValueError(f"endpoints.{cdc[0]}: load 'cdc' reads PostgreSQL's logical replication, and driver is "
                             f"{self.driver!r}; use load 'delta' (a cursor column) for MySQL/MariaDB")
        return self


# A system's connection, by the system's `type` (the discriminator); the connector of each type is
# registered in ingestion/connectors. A new system type adds its model here and its connector there.
Connection = Annotated[JsonFilesConnection | FilesConnection | RestApiConnection | MongoDbConnection
                       | SqlDatabaseConnection,
                       Field(discriminator="type")]
CONNECTION_MODELS: dict[str, type[BaseModel]] = {
    get_args(model.model_fields["type"].annotation)[0]: model for model in get_args(get_args(Connection)[0]) or
    (get_args(Connection)[0],)  # a union of one type is that type
}
_CONNECTION = TypeAdapter(Connection)


def parse_connection(system_type: str, connection: dict[str, Any], *, resolved: bool = False) -> Connection:
    """The typed connection of a system (raises pydantic's ValidationError, located under the type tag).
    `resolved`: its secret references were replaced by their values (at run time), so credentials are strings."""
    return _CONNECTION.validate_python({**connection, "type": system_type}, context={"resolved": resolved})


def cron_problem(expression: str) -> str | None:
    """Why Dagster would refuse `expression` as a schedule's cron string (its rule: five fields that croniter reads,
    and no 30th or 31st of February), or None."""
    if not croniter.is_valid(expression):
        return "is not a cron expression croniter reads"
    fields = croniter.expand(expression)[0]
    if len(fields) != 5:
        return f"has {len(fields)} fields; give five: minute hour day-of-month month day-of-week"
    if fields[3] == [2] and len(fields[2]) == 1 and fields[2][0] in (30, 31):
        return "names a day February never has"
    return None


class Schedule(_Strict):
    """When a system loads by itself: a Dagster schedule of the system's job (stopped until turned on, unless
    `enabled`). The README's "Runs that start themselves" says how to turn one on and off."""

    cron: str = Field(description="five-field cron expression, e.g. '0 6 * * *' (06:00 every day) or '@hourly'")
    timezone: str = Field(description="IANA time zone the cron expression is read in, e.g. 'Europe/Amsterdam', 'UTC'")
    enabled: bool = Field(
        default=False,
        description="running from the start; otherwise stopped until turned on in the UI (the UI's choice then wins)",
    )

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        why = cron_problem(value)
        if why:
            raise ValueError(f"{value!r} {why}, e.g. '0 6 * * *' for 06:00 every day")
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not an IANA time zone; write e.g. 'Europe/Amsterdam' or 'UTC'") from None
        return value


HEADER_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9-]*$"
Header = Annotated[str, StringConstraints(pattern=HEADER_PATTERN, max_length=64)]


CREDENTIAL_FIELDS = ("token", "hmac_secret")  # a webhook's: their values are never echoed in a problem


def _secret_only(value: Any) -> Any:
    """A credential is never written in metadata: refuse a plain value with what to write instead."""
    if value is not None and not isinstance(value, dict | SecretRef):
        raise ValueError('must be a secret reference, {"type": "secret", "key": "..."}, not the value itself')
    return value


class Webhook(_Strict):
    """How a source calls the platform when it has new data (`POST /hooks/{system_id}` of `dataplatform serve`):
    with a bearer token, or with an HMAC-SHA256 signature of the body; each call (one per delivery id) starts one
    run of the system's job."""

    token: SecretRef | None = Field(default=None, description="the bearer token the source sends")
    hmac_secret: SecretRef | None = Field(
        default=None, description="the key of the HMAC-SHA256 signature of the body the source sends"
    )
    signature_header: Header = Field(
        default="X-Signature-256", description="header holding the signature, hex, optionally prefixed 'sha256='"
    )
    delivery_id_header: Header = Field(
        default="X-Delivery-Id", description="header naming the delivery: a repeated one starts no second run"
    )
    min_interval_seconds: Annotated[int, Field(ge=0)] = Field(
        default=0, description="calls of this system closer together than this are refused (429); 0: no limit"
    )

    _secrets = field_validator("token", "hmac_secret", mode="before")(_secret_only)

    @model_validator(mode="after")
    def _one_credential(self) -> Webhook:
        if (self.token is None) == (self.hmac_secret is None):
            raise ValueError("declare exactly one of 'token' (bearer) and 'hmac_secret' (signature of the body)")
        if self.token is not None and "signature_header" in self.model_fields_set:
            raise ValueError("'signature_header' goes with 'hmac_secret', not with 'token'")
        return self


class System(_Strict):
    id: SystemId
    name: Annotated[str, StringConstraints(min_length=1)]
    description: str
    type: str
    connection: dict[str, Any]
    schedule: Schedule | None = Field(default=None, description="when the system loads by itself")
    webhook: Webhook | None = Field(default=None, description="how the source tells the platform it has new data")

    def endpoints(self) -> dict[str, Any]:
        """Endpoint name -> what the connector reads for it."""
        return dict(self.connection.get("endpoints", {}))


class CopyPattern(_Strict):
    """Top-level attributes as they are; a nested object stays one JSONB column."""

    type: Literal["copy"]


class FlattenPattern(_Strict):
    """Nested objects become columns named by their path joined with underscores."""

    type: Literal["flatten"]


class ExplodePattern(_Strict):
    """A nested list becomes a child entity: one row per item, keyed by the parent's key plus the
    item's own key (if its model declares one) or its position in the list."""

    type: Literal["explode"]
    list_path: Annotated[str, StringConstraints(min_length=1)] = Field(
        description="dot-separated path of the list in the parent record"
    )
    parent_entity: Name

    @field_validator("list_path")
    @classmethod
    def _segments(cls, value: str) -> str:
        for segment in value.split("."):
            why = path_segment_problem(segment)
            if why:
                raise ValueError(f"path segment {why}; separate segments with '.'")
        return value


BronzePattern = Annotated[CopyPattern | FlattenPattern | ExplodePattern, Field(discriminator="type")]


class RowCountCheck(_Strict):
    """The batch must hold between `min` and `max` rows of the entity (bounds inclusive; either may be
    left out). For an exploded child entity the rows are the list items, not the parent records."""

    min: Annotated[int, Field(ge=0)] | None = None
    max: Annotated[int, Field(ge=0)] | None = None

    @model_validator(mode="after")
    def _bounds(self) -> RowCountCheck:
        if self.min is None and self.max is None:
            raise ValueError("give at least one of 'min' and 'max'")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"'min' ({self.min}) is greater than 'max' ({self.max})")
        return self


class RowCountVsPreviousBatchCheck(_Strict):
    """The batch's row count as a percentage of the previous successful batch of the same entity:
    the latest batch with an older batch timestamp whose quality gate passed for this entity (its
    count is the one the gate recorded then). Skipped for an entity's first batch, and when the
    previous batch had no rows (no percentage of nothing)."""

    min_percent: Annotated[float, Field(ge=0)] | None = None
    max_percent: Annotated[float, Field(gt=0)] | None = None

    @model_validator(mode="after")
    def _bounds(self) -> RowCountVsPreviousBatchCheck:
        if self.min_percent is None and self.max_percent is None:
            raise ValueError("give at least one of 'min_percent' and 'max_percent'")
        if self.min_percent is not None and self.max_percent is not None and self.min_percent > self.max_percent:
            raise ValueError(f"'min_percent' ({self.min_percent}) is greater than 'max_percent' ({self.max_percent})")
        return self


class QualityChecks(_Strict):
    """Checks an entity declares on top of the generic ones every entity gets (primary key present and
    unique in the batch, declared attributes present with their declared types). An unknown check
    name is a validation error, never silently ignored."""

    row_count: RowCountCheck | None = None
    row_count_vs_previous_batch: RowCountVsPreviousBatchCheck | None = None
    attributes_present: Literal["error", "warning", "off"] = Field(
        default="warning",
        description="what a batch in which no record carries an Optional attribute's key gets: 'error' fails the "
        "entity, 'warning' lets it go on and says so in its audit row and check, 'off' does not look. (A required "
        "attribute is always checked in every record: a record without it fails the entity.)",
    )


# The options of the generic checks; every other field of QualityChecks is a check an entity declares.
QUALITY_OPTIONS: tuple[str, ...] = ("attributes_present",)
QUALITY_CHECK_NAMES: tuple[str, ...] = tuple(n for n in QualityChecks.model_fields if n not in QUALITY_OPTIONS)


def _json_scalar(value: Any) -> Any:
    """A delete marker's value is a JSON string, number or boolean: one message for anything else."""
    if isinstance(value, str | bool | int | float):
        return value
    kind = ("an object" if isinstance(value, dict) else "a list" if isinstance(value, list)
            else "null" if value is None else type(value).__name__)
    raise ValueError(f"must be a JSON string, number or boolean, not {kind}")


# A JSON scalar, kept as its JSON type (strict: "1" stays a string, true a boolean).
MarkerValue = Annotated[StrictStr | StrictBool | StrictInt | StrictFloat, BeforeValidator(_json_scalar)]


class DeleteMarker(_Strict):
    """How a record says its key was deleted: the record's `field` (a dot path) holds `equals`, or one of
    `one_of`. Values compare as JSON values (metadata/deletes.py): a string matches the same string, a
    number the same number (1 = 1.0), a boolean the boolean; `"true"` (text, as a CSV delivers it) is not
    `true`. Examples: `{"field": "op", "equals": "d"}` (CDC), `{"field": "is_deleted", "equals": true}`."""

    field: Annotated[str, StringConstraints(min_length=1)] = Field(
        description="dot-separated path of the record field that marks a delete (e.g. 'op', 'meta.deleted')"
    )
    equals: MarkerValue | None = Field(default=None, description="the value that marks a delete")
    one_of: list[MarkerValue] | None = Field(
        default=None, min_length=1, description="the values that mark a delete (any of them)"
    )

    @field_validator("field")
    @classmethod
    def _segments(cls, value: str) -> str:
        for segment in value.split("."):
            why = path_segment_problem(segment)
            if why:
                raise ValueError(f"path segment {why}; separate segments with '.'")
        return value

    @model_validator(mode="after")
    def _one_rule(self) -> DeleteMarker:
        if (self.equals is None) == (self.one_of is None):
            raise ValueError("give exactly one of 'equals' (one value) and 'one_of' (a list of values)")
        return self

    def values(self) -> list[str | bool | int | float]:
        """The values that mark a delete."""
        return [self.equals] if self.equals is not None else list(self.one_of or [])


class Entity(_Strict):
    name: Name
    description: str
    system_id: SystemId
    load_type: Literal["full", "delta"]
    landing_entity: Name = Field(description="the system endpoint this entity is extracted from")
    bronze_pattern: BronzePattern
    model: Annotated[str, StringConstraints(pattern=MODEL_REF_PATTERN)] = Field(
        description="'module:Class' of the entity's Pydantic model (ASCII: letters, digits, '_', dots between modules)"
    )
    quality: QualityChecks = Field(
        default_factory=QualityChecks,
        description="checks the quality gate runs on each batch, besides the generic ones",
    )
    deleted_when: DeleteMarker | None = Field(
        default=None,
        description="how a record says its key was deleted; silver closes the key's current version at the "
        "batch's timestamp (a delta load has no other way to close a key; in a full load it closes a key the "
        "snapshot still lists, e.g. with a soft-delete flag)",
    )


LAYERS: tuple[str, ...] = ("landing", "quality", "bronze", "silver", "gold")
Layer = Literal["landing", "quality", "bronze", "silver", "gold"]


class Trigger(_Strict):
    """An event an action follows: a system's layer finished (no `entity`), or an entity finished a layer
    (for `landing`, the entity is the system's endpoint)."""

    system: SystemId
    entity: Name | None = None
    layer: Layer = "gold"


class SmtpSettings(_Strict):
    """The one mail server that email actions and email notifications send through."""

    host: SecretRef | str
    port: Annotated[int, Field(gt=0, lt=65536)] = 587
    tls: Literal["starttls", "ssl", "none"] = Field(
        default="starttls", description="'starttls' (port 587), 'ssl' (implicit TLS, port 465) or 'none'")
    username: SecretRef | str | None = None
    password: SecretRef | None = Field(default=None, description="a secret reference, never the password itself")
    sender: Annotated[str, StringConstraints(min_length=3)] = Field(description="the From: address")


class SlackChannel(_Strict):
    """A Slack-compatible incoming webhook: the URL is itself the credential, so it must be a secret."""

    type: Literal["slack"]
    webhook_url: SecretRef


class EmailChannel(_Strict):
    """Email to the operator, through the file's `smtp` settings."""

    type: Literal["email"]
    to: list[Annotated[str, StringConstraints(min_length=3)]] = Field(min_length=1)


Channel = Annotated[SlackChannel | EmailChannel, Field(discriminator="type")]


class _ActionBase(_Strict):
    name: Name
    description: str
    after: list[Trigger] = Field(default_factory=list, description="the events this action follows")
    after_systems: list[SystemId] = Field(
        default_factory=list, description="shorthand: after each of these systems' gold layer")
    on: Literal["success", "failure"] = Field(
        default="success", description="'success': when a followed event succeeded; 'failure': when it failed (with"
        " no `after`, any failure)")

    def triggers(self) -> list[Trigger]:
        return [*self.after, *(Trigger(system=s, layer="gold") for s in self.after_systems)]

    @model_validator(mode="after")
    def _follows_something(self) -> _ActionBase:
        if self.on == "success" and not self.triggers():
            raise ValueError("give `after` (or `after_systems`): which events this action follows")
        return self


class DbtBuildAction(_ActionBase):
    """`dbt build --select <select>` on the platform's project, as the platform runs dbt."""

    type: Literal["dbt_build"]
    select: Annotated[str, StringConstraints(min_length=1)] = Field(description="dbt selector")


# The names an email template may use: an event's fields (audit/events.py Event), its batch's summary
# (audit.events.batch_summary) and the action's name. tests/unit/test_actions_metadata.py keeps them in step.
TEMPLATE_FIELDS: tuple[str, ...] = (
    "event_id", "kind", "status", "system_id", "entity", "layer", "batch_id", "system_run_id", "dagster_run_id",
    "records_in", "inserted", "updated", "deleted", "entities_succeeded", "entities_failed", "entities_skipped",
    "message", "created_at", "source_ref", "batch_timestamp", "batch_status", "batch_message", "batch_summary",
    "action",
)


class EmailAction(_ActionBase):
    """A mail through the file's `smtp` settings; subject and body are string.Template texts over the
    event's fields and its batch's summary (`$system_id`, `$batch_id`, `$batch_summary`, ...)."""

    type: Literal["email"]
    to: list[Annotated[str, StringConstraints(min_length=3)]] = Field(min_length=1)
    subject: Annotated[str, StringConstraints(min_length=1)]
    body: Annotated[str, StringConstraints(min_length=1)]


class PythonAction(_ActionBase):
    """Custom work: a class `module:Class` whose `run(context)` is called (see actions/python.py)."""

    type: Literal["python"]
    class_ref: Annotated[str, StringConstraints(pattern=MODEL_REF_PATTERN)] = Field(
        alias="class", description="'module:Class' of a class with a `run(context)` method")
    settings: dict[str, Any] = Field(default_factory=dict, description="handed to the class as context.settings")


# An action's settings, by its `type` (the discriminator); the runner of each type is registered in actions/.
Action = Annotated[DbtBuildAction | EmailAction | PythonAction, Field(discriminator="type")]
ACTION_MODELS: dict[str, type[BaseModel]] = {
    get_args(model.model_fields["type"].annotation)[0]: model for model in get_args(get_args(Action)[0])
}


class SystemsFile(_Strict):
    systems: list[System]


class EntitiesFile(_Strict):
    entities: list[Entity]


class ActionsFile(_Strict):
    smtp: SmtpSettings | None = Field(default=None, description="mail server of email actions and notifications")
    notifications: list[Channel] = Field(default_factory=list, description="where failures are notified")
    actions: list[Action] = Field(default_factory=list)
