//! Which database faults pass: the classification behind
//! [`StoreError::is_transient`](super::StoreError::is_transient).
//!
//! A transient fault is the database's trouble, not the data's: the same
//! statement succeeds once the server is back, a connection is free, the
//! lock is released or the disk has room again. Everything else (a
//! constraint, a syntax or type error, a corrupt file) fails the same way
//! every time and is not retried.

use sqlx::error::DatabaseError;

use super::Backend;

/// Whether a database error `db` is transient, by the engine that raised
/// it and its code (SQLSTATE on PostgreSQL, the extended result code on
/// SQLite). An error of neither engine is not.
pub(super) fn database_error(db: &dyn DatabaseError) -> bool {
    let engine = if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
        Backend::Sqlite
    } else if db
        .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
        .is_some()
    {
        Backend::Postgres
    } else {
        return false;
    };
    db.code()
        .is_some_and(|code| code_is_transient(engine, &code))
}

/// Whether `code` from `engine` names a transient fault.
pub(super) fn code_is_transient(engine: Backend, code: &str) -> bool {
    match engine {
        Backend::Postgres => sqlstate_is_transient(code),
        Backend::Sqlite => code.parse().is_ok_and(sqlite_code_is_transient),
    }
}

/// PostgreSQL: failover, restarts and capacity, which end when the server
/// (or its replacement) takes connections again; and conflicts between
/// transactions, which end when the other one does.
fn sqlstate_is_transient(code: &str) -> bool {
    // Class 08, connection exceptions: the connection broke or could
    // not be made. Class 53, insufficient resources: disk full, out of
    // memory, too many connections.
    code.starts_with("08")
        || code.starts_with("53")
        || matches!(
            code,
            // admin_shutdown, crash_shutdown, cannot_connect_now (a
            // server starting, stopping or in recovery), and
            // idle_session_timeout: the server ended our session.
            "57P01" | "57P02" | "57P03" | "57P05"
            // read_only_sql_transaction: connected to a standby during
            // a failover, before the new primary is reached.
            | "25006"
            // serialization_failure, deadlock_detected, lock_not_available.
            | "40001" | "40P01" | "55P03"
        )
}

/// SQLite, by primary result code (the low byte of the extended code):
/// the database is locked by another connection, the disk is full, or
/// the operating system failed a read or write.
fn sqlite_code_is_transient(code: i32) -> bool {
    const BUSY: i32 = 5;
    const LOCKED: i32 = 6;
    const IOERR: i32 = 10;
    const FULL: i32 = 13;
    matches!(code & 0xff, BUSY | LOCKED | IOERR | FULL)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_sqlstates() {
        let cases = [
            ("57P01", true, "admin_shutdown"),
            ("57P02", true, "crash_shutdown"),
            ("57P03", true, "cannot_connect_now"),
            ("57P05", true, "idle_session_timeout"),
            ("08000", true, "connection_exception"),
            ("08003", true, "connection_does_not_exist"),
            ("08006", true, "connection_failure"),
            ("08001", true, "sqlclient_unable_to_establish_sqlconnection"),
            (
                "08004",
                true,
                "sqlserver_rejected_establishment_of_sqlconnection",
            ),
            ("08P01", true, "protocol_violation"),
            ("53000", true, "insufficient_resources"),
            ("53100", true, "disk_full"),
            ("53200", true, "out_of_memory"),
            ("53300", true, "too_many_connections"),
            ("53400", true, "configuration_limit_exceeded"),
            ("25006", true, "read_only_sql_transaction"),
            ("40001", true, "serialization_failure"),
            ("40P01", true, "deadlock_detected"),
            ("55P03", true, "lock_not_available"),
            ("23505", false, "unique_violation"),
            ("23503", false, "foreign_key_violation"),
            ("42601", false, "syntax_error"),
            ("42P01", false, "undefined_table"),
            ("22001", false, "string_data_right_truncation"),
            ("57014", false, "query_canceled"),
            ("57P04", false, "database_dropped"),
            ("25P02", false, "in_failed_sql_transaction"),
            ("40002", false, "transaction_integrity_constraint_violation"),
            ("XX001", false, "data_corrupted"),
        ];
        for (code, transient, name) in cases {
            assert_eq!(
                code_is_transient(Backend::Postgres, code),
                transient,
                "{code} ({name})"
            );
        }
    }

    #[test]
    fn sqlite_result_codes() {
        let cases = [
            (5, true, "SQLITE_BUSY"),
            (261, true, "SQLITE_BUSY_RECOVERY"),
            (517, true, "SQLITE_BUSY_SNAPSHOT"),
            (773, true, "SQLITE_BUSY_TIMEOUT"),
            (6, true, "SQLITE_LOCKED"),
            (262, true, "SQLITE_LOCKED_SHAREDCACHE"),
            (10, true, "SQLITE_IOERR"),
            (266, true, "SQLITE_IOERR_READ"),
            (778, true, "SQLITE_IOERR_WRITE"),
            (1034, true, "SQLITE_IOERR_FSYNC"),
            (3338, true, "SQLITE_IOERR_SHMMAP"),
            (13, true, "SQLITE_FULL"),
            (1, false, "SQLITE_ERROR"),
            (11, false, "SQLITE_CORRUPT"),
            (19, false, "SQLITE_CONSTRAINT"),
            (2067, false, "SQLITE_CONSTRAINT_UNIQUE"),
            (787, false, "SQLITE_CONSTRAINT_FOREIGNKEY"),
            (8, false, "SQLITE_READONLY"),
            (26, false, "SQLITE_NOTADB"),
        ];
        for (code, transient, name) in cases {
            assert_eq!(
                code_is_transient(Backend::Sqlite, &code.to_string()),
                transient,
                "{code} ({name})"
            );
        }
    }

    #[test]
    fn a_code_counts_only_for_its_engine() {
        // `40001` is PostgreSQL's serialization failure; read as a SQLite
        // code its low byte would be 65 (no such code): not transient.
        assert!(!code_is_transient(Backend::Sqlite, "40001"));
        // SQLite's `13` is no SQLSTATE.
        assert!(!code_is_transient(Backend::Postgres, "13"));
    }
}
