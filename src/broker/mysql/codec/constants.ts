/**
 * Flag and code values of the MySQL client/server protocol (include/mysql_com.h, MariaDB's
 * mariadb_com.h, include/field_types.h).
 */

/** Capability flags: the lower 32 bits both sides exchange in the handshake. */
export enum Capability {
  LongPassword = 1 << 0, // CLIENT_LONG_PASSWORD; MariaDB reads it as CLIENT_MYSQL (unset by MariaDB servers)
  FoundRows = 1 << 1, // CLIENT_FOUND_ROWS
  LongFlag = 1 << 2, // CLIENT_LONG_FLAG
  ConnectWithDb = 1 << 3, // CLIENT_CONNECT_WITH_DB
  NoSchema = 1 << 4, // CLIENT_NO_SCHEMA
  Compress = 1 << 5, // CLIENT_COMPRESS
  Odbc = 1 << 6, // CLIENT_ODBC
  LocalFiles = 1 << 7, // CLIENT_LOCAL_FILES
  IgnoreSpace = 1 << 8, // CLIENT_IGNORE_SPACE
  Protocol41 = 1 << 9, // CLIENT_PROTOCOL_41
  Interactive = 1 << 10, // CLIENT_INTERACTIVE
  Ssl = 1 << 11, // CLIENT_SSL
  IgnoreSigpipe = 1 << 12, // CLIENT_IGNORE_SIGPIPE
  Transactions = 1 << 13, // CLIENT_TRANSACTIONS
  Reserved = 1 << 14, // CLIENT_RESERVED
  SecureConnection = 1 << 15, // CLIENT_SECURE_CONNECTION (CLIENT_RESERVED2)
  MultiStatements = 1 << 16, // CLIENT_MULTI_STATEMENTS
  MultiResults = 1 << 17, // CLIENT_MULTI_RESULTS
  PsMultiResults = 1 << 18, // CLIENT_PS_MULTI_RESULTS
  PluginAuth = 1 << 19, // CLIENT_PLUGIN_AUTH
  ConnectAttrs = 1 << 20, // CLIENT_CONNECT_ATTRS
  PluginAuthLenencClientData = 1 << 21, // CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA
  CanHandleExpiredPasswords = 1 << 22, // CLIENT_CAN_HANDLE_EXPIRED_PASSWORDS
  SessionTrack = 1 << 23, // CLIENT_SESSION_TRACK
  DeprecateEof = 1 << 24, // CLIENT_DEPRECATE_EOF
  OptionalResultsetMetadata = 1 << 25, // CLIENT_OPTIONAL_RESULTSET_METADATA (MySQL 8)
  ZstdCompressionAlgorithm = 1 << 26, // CLIENT_ZSTD_COMPRESSION_ALGORITHM (MySQL 8)
  QueryAttributes = 1 << 27, // CLIENT_QUERY_ATTRIBUTES (MySQL 8.0.23+)
  MultiFactorAuthentication = 1 << 28, // MULTI_FACTOR_AUTHENTICATION (MySQL 8.0.27+)
  CapabilityExtension = 1 << 29, // CLIENT_CAPABILITY_EXTENSION; MariaDB: CLIENT_PROGRESS_OBSOLETE
  SslVerifyServerCert = 1 << 30, // CLIENT_SSL_VERIFY_SERVER_CERT
  RememberOptions = 2 ** 31, // CLIENT_REMEMBER_OPTIONS
}

/** True when every bit of `flag` is set in `capabilities` (safe for bit 31). */
export function hasCapability(capabilities: number, flag: Capability): boolean {
  return ((capabilities & flag) >>> 0) === flag >>> 0;
}

/** MariaDB's extended capabilities: the upper 32 bits, in the handshake's reserved bytes (mariadb_com.h). */
export enum MariaDbCapability {
  Progress = 1 << 0, // MARIADB_CLIENT_PROGRESS: progress reports as ERR packets with code 0xffff
  ComMulti = 1 << 1, // MARIADB_CLIENT_COM_MULTI: several commands in one packet (deprecated)
  StmtBulkOperations = 1 << 2, // MARIADB_CLIENT_STMT_BULK_OPERATIONS: COM_STMT_BULK_EXECUTE
  ExtendedMetadata = 1 << 3, // MARIADB_CLIENT_EXTENDED_METADATA: type names (json, uuid…) and formats in column definitions
  CacheMetadata = 1 << 4, // MARIADB_CLIENT_CACHE_METADATA: COM_STMT_EXECUTE may skip unchanged column definitions
  BulkUnitResults = 1 << 5, // MARIADB_CLIENT_BULK_UNIT_RESULTS: one result per row of a bulk execute
}

/** Server status flags, in OK and EOF packets and the handshake. */
export enum ServerStatus {
  InTrans = 0x0001, // SERVER_STATUS_IN_TRANS
  Autocommit = 0x0002, // SERVER_STATUS_AUTOCOMMIT
  MoreResultsExist = 0x0008, // SERVER_MORE_RESULTS_EXISTS
  NoGoodIndexUsed = 0x0010, // SERVER_QUERY_NO_GOOD_INDEX_USED
  NoIndexUsed = 0x0020, // SERVER_QUERY_NO_INDEX_USED
  CursorExists = 0x0040, // SERVER_STATUS_CURSOR_EXISTS
  LastRowSent = 0x0080, // SERVER_STATUS_LAST_ROW_SENT
  DbDropped = 0x0100, // SERVER_STATUS_DB_DROPPED
  NoBackslashEscapes = 0x0200, // SERVER_STATUS_NO_BACKSLASH_ESCAPES
  MetadataChanged = 0x0400, // SERVER_STATUS_METADATA_CHANGED
  QueryWasSlow = 0x0800, // SERVER_QUERY_WAS_SLOW
  PsOutParams = 0x1000, // SERVER_PS_OUT_PARAMS
  InTransReadonly = 0x2000, // SERVER_STATUS_IN_TRANS_READONLY
  SessionStateChanged = 0x4000, // SERVER_SESSION_STATE_CHANGED
}

/** Collation ids a handshake may name. */
export enum CharacterSet {
  Utf8GeneralCi = 33, // utf8mb3_general_ci
  Utf8mb4GeneralCi = 45, // utf8mb4_general_ci, MariaDB's default
  Binary = 63,
  Utf8mb4_0900AiCi = 255, // utf8mb4_0900_ai_ci, MySQL 8's default
}

/** Column and parameter types (enum_field_types). */
export enum FieldType {
  Decimal = 0,
  Tiny = 1,
  Short = 2,
  Long = 3,
  Float = 4,
  Double = 5,
  Null = 6,
  Timestamp = 7,
  LongLong = 8,
  Int24 = 9,
  Date = 10,
  Time = 11,
  DateTime = 12,
  Year = 13,
  NewDate = 14,
  VarChar = 15,
  Bit = 16,
  Json = 245,
  NewDecimal = 246,
  Enum = 247,
  Set = 248,
  TinyBlob = 249,
  MediumBlob = 250,
  LongBlob = 251,
  Blob = 252,
  VarString = 253,
  String = 254,
  Geometry = 255,
}
