//! Filtered, keyset-paginated reads: the one way `find` and
//! `find_deliveries` build their SQL. Clauses are constants with a `{}`
//! for their value, which becomes a bound `$n` parameter.

use sqlx::any::AnyRow;
use sqlx::{AnyPool, AssertSqlSafe};

use super::{Backend, Page, StoreError};

/// `$first, …`: `n` numbered parameters, for `IN (…)` lists.
pub(super) fn params(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `($1, …, $cols), ($cols+1, …), …`: `rows` rows of `cols` numbered
/// parameters, for multi-row `VALUES`.
pub(super) fn value_rows(rows: usize, cols: usize) -> String {
    (0..rows)
        .map(|r| format!("({})", params(r * cols + 1, cols)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The position a page cursor names, `(at, id)`, when `cursor` has the
/// shape every `next` has: `{at}/{id}` with `at` not empty. The API checks
/// a caller's cursor with this before it reaches a query, so a malformed
/// one is the caller's mistake (422), never a database error.
pub fn cursor_position(cursor: &str) -> Option<(&str, &str)> {
    cursor.split_once('/').filter(|(at, _)| !at.is_empty())
}

pub(super) struct Filtered {
    sql: String,
    args: Vec<String>,
    /// A value holds a NUL, which no stored text does (validation refuses
    /// it, and PostgreSQL text cannot hold it): nothing matches, and the
    /// query is not sent — PostgreSQL would refuse the parameter.
    matches_nothing: bool,
}

impl Filtered {
    pub(super) fn new(select: String) -> Self {
        Filtered {
            sql: format!("{select} WHERE 1 = 1"),
            args: Vec::new(),
            matches_nothing: false,
        }
    }

    /// Appends `constant`, which binds nothing.
    pub(super) fn sql(&mut self, constant: &'static str) {
        self.sql.push_str(constant);
    }

    /// Appends `clause`, its `{}` bound to `value`.
    pub(super) fn and(&mut self, clause: &str, value: String) {
        self.matches_nothing |= value.contains('\0');
        self.args.push(value);
        let placeholder = format!("${}", self.args.len());
        self.sql.push_str(&clause.replace("{}", &placeholder));
    }

    /// Fetches one page, newest first on (`at`, `id`), after `cursor` (a
    /// previous page's `next`, `"{at}/{id}"`); `key` makes an item's cursor.
    pub(super) async fn page<T>(
        mut self,
        pool: &AnyPool,
        (at, id): (&str, &str),
        cursor: Option<&str>,
        limit: u32,
        row: impl Fn(&AnyRow) -> Result<T, StoreError>,
        key: impl Fn(&T) -> String,
    ) -> Result<Page<T>, StoreError> {
        if let Some(cursor) = cursor {
            let (c_at, c_id) = cursor_position(cursor).ok_or_else(|| StoreError::Corrupt {
                column: "cursor",
                reason: format!("`{cursor}` is not a cursor this host issued"),
            })?;
            self.and(&format!(" AND ({at} < {{}}"), c_at.to_owned());
            self.and(&format!(" OR ({at} = {{}}"), c_at.to_owned());
            self.and(&format!(" AND {id} < {{}}))"), c_id.to_owned());
        }
        if self.matches_nothing {
            return Ok(Page {
                items: Vec::new(),
                next: None,
            });
        }
        let limit = limit.clamp(1, 500);
        self.sql.push_str(&format!(
            " ORDER BY {at} DESC, {id} DESC LIMIT {}",
            limit + 1
        ));
        // Audited: `sql` is constants and `$n` placeholders; every value is bound.
        let mut query = sqlx::query(AssertSqlSafe(self.sql));
        for a in &self.args {
            query = query.bind(a);
        }
        let rows = query.fetch_all(pool).await?;
        let mut items = rows.iter().map(row).collect::<Result<Vec<_>, _>>()?;
        let next = if items.len() > limit as usize {
            items.truncate(limit as usize);
            items.last().map(key)
        } else {
            None
        };
        Ok(Page { items, next })
    }
}

impl Filtered {
    /// Fetches one page, newest first on the integer `id`, after `cursor`
    /// (a previous page's `next`: the last id seen).
    pub(super) async fn page_by_id<T>(
        mut self,
        pool: &AnyPool,
        cursor: Option<&str>,
        limit: u32,
        row: impl Fn(&AnyRow) -> Result<T, StoreError>,
        id: impl Fn(&T) -> i64,
    ) -> Result<Page<T>, StoreError> {
        if let Some(cursor) = cursor {
            let c: i64 = cursor.parse().map_err(|_| StoreError::Corrupt {
                column: "cursor",
                reason: format!("`{cursor}` is not a cursor this host issued"),
            })?;
            self.and(" AND id < CAST({} AS BIGINT)", c.to_string());
        }
        if self.matches_nothing {
            return Ok(Page {
                items: Vec::new(),
                next: None,
            });
        }
        let limit = limit.clamp(1, 500);
        self.sql
            .push_str(&format!(" ORDER BY id DESC LIMIT {}", limit + 1));
        // Audited: `sql` is constants and `$n` placeholders; every value is bound.
        let mut query = sqlx::query(AssertSqlSafe(self.sql));
        for a in &self.args {
            query = query.bind(a);
        }
        let rows = query.fetch_all(pool).await?;
        let mut items = rows.iter().map(row).collect::<Result<Vec<_>, _>>()?;
        let next = if items.len() > limit as usize {
            items.truncate(limit as usize);
            items.last().map(|t| id(t).to_string())
        } else {
            None
        };
        Ok(Page { items, next })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn placeholders_number_rows_then_columns() {
        assert_eq!(super::params(4, 3), "$4, $5, $6");
        assert_eq!(super::value_rows(2, 3), "($1, $2, $3), ($4, $5, $6)");
    }

    #[test]
    fn a_cursor_is_a_time_a_slash_and_an_id() {
        let cases = [
            (
                "2026-11-30T10:58:09.174071Z/abc",
                Some(("2026-11-30T10:58:09.174071Z", "abc")),
            ),
            ("t/a/b", Some(("t", "a/b"))),
            ("t/", Some(("t", ""))),
            ("", None),
            ("no-slash", None),
            ("/id", None),
        ];
        for (cursor, want) in cases {
            assert_eq!(super::cursor_position(cursor), want, "{cursor:?}");
        }
    }
}

/// One statement's share of a multi-row write: `rows`, written into a
/// statement made for `shape` rows, the next power of two (at most the
/// chunk limit). A statement's text depends on its row count, and the
/// connection's prepared-statement cache then holds a few shapes instead of
/// one per batch size, so batches of any size reuse prepared statements
/// rather than parse hundreds of placeholders anew (measured on the inbox's
/// and the inline path's statements: ack p99 at 2,000/s from 69–143 ms to
/// 31–37 ms). On SQLite the rows past `rows.len()` are NULL padding
/// ([`pad`]) that the statement skips ([`padded_values`]), so a batch of
/// any size up to the limit is one statement per table: there each
/// statement is a round trip to the connection's thread, and splitting a
/// batch into power-of-two chunks cost one per set bit of its size (a
/// batch of 27 took 16 + 8 + 2 + 1). PostgreSQL keeps that split
/// ([`padded_chunks`]).
pub(super) struct Chunk<'a, T> {
    pub rows: &'a [T],
    pub shape: usize,
}

impl<T> Chunk<'_, T> {
    /// Padding rows the statement holds after the chunk's own.
    pub fn padding(&self) -> usize {
        self.shape - self.rows.len()
    }
}

/// Splits `rows` into chunks of at most `max` (a power of two), each with
/// its statement's shape ([`Chunk`]). On PostgreSQL, where a statement is no
/// round trip to another thread and padding measured slower (one ticket's
/// comments at 600/s offered: 494–518/s acknowledged padded, 568–600/s
/// not), the chunks are powers of two themselves and need no padding: a
/// batch of 27 is four statements, 16 + 8 + 2 + 1.
pub(super) fn padded_chunks<T>(
    backend: Backend,
    mut rows: &[T],
    max: usize,
) -> impl Iterator<Item = Chunk<'_, T>> {
    debug_assert!(max.is_power_of_two());
    std::iter::from_fn(move || {
        if rows.is_empty() {
            return None;
        }
        let (size, shape) = match backend {
            Backend::Sqlite => {
                let size = rows.len().min(max);
                (size, size.next_power_of_two())
            }
            Backend::Postgres => {
                let size = (1 << rows.len().ilog2()).min(max);
                (size, size)
            }
        };
        let (chunk, rest) = rows.split_at(size);
        rows = rest;
        Some(Chunk { rows: chunk, shape })
    })
}

/// `n` parameters for an `IN (…)` list in a statement that has no other
/// parameters, written as `backend` binds them fastest: PostgreSQL's
/// numbered `$1…` ([`params`]), SQLite's anonymous `?`. sqlx looks up the
/// name of every numbered SQLite parameter before binding it, and SQLite
/// finds a name by scanning the statement's list of names from the start,
/// so binding a statement's numbered parameters costs the square of their
/// number: 1.5% of the host's samples under load (4.3% with padded
/// statements), for statements of a few hundred parameters. Anonymous ones
/// have no name to look up.
pub(super) fn list_for(backend: Backend, n: usize) -> String {
    match backend {
        Backend::Postgres => params(1, n),
        Backend::Sqlite => vec!["?"; n].join(", "),
    }
}

/// `rows` rows of `cols` parameters for multi-row `VALUES` in a statement
/// that has no other parameters, numbered or anonymous as in [`list_for`].
pub(super) fn rows_for(backend: Backend, rows: usize, cols: usize) -> String {
    match backend {
        Backend::Postgres => value_rows(rows, cols),
        Backend::Sqlite => vec![format!("({})", list_for(backend, cols)); rows].join(", "),
    }
}

/// The rows of an `INSERT`, [`rows_for`]: on SQLite `SELECT * FROM (VALUES
/// …) AS v WHERE v.column1 IS NOT NULL`, which leaves the padding rows
/// (whose first column is NULL) out — SQLite names a `VALUES` list's
/// columns `column1`…, and the `WHERE` keeps it from reading a following
/// `ON CONFLICT` as part of a join; on PostgreSQL, whose chunks are never
/// padded, a plain `VALUES` list.
pub(super) fn padded_values(backend: Backend, rows: usize, cols: usize) -> String {
    match backend {
        Backend::Sqlite => format!(
            "SELECT * FROM (VALUES {}) AS v WHERE v.column1 IS NOT NULL",
            rows_for(backend, rows, cols)
        ),
        Backend::Postgres => format!("VALUES {}", rows_for(backend, rows, cols)),
    }
}

/// The SQL type of a padding NULL: PostgreSQL types each `VALUES` column
/// from its rows, so a padding row's NULLs must have the real rows' types.
#[derive(Debug, Clone, Copy)]
pub(super) enum Null {
    Text,
    Int,
    Blob,
}

type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>;

/// Binds `rows` padding rows of NULLs typed as `cols`.
pub(super) fn pad<'q>(mut q: AnyQuery<'q>, rows: usize, cols: &[Null]) -> AnyQuery<'q> {
    for _ in 0..rows {
        for c in cols {
            q = match c {
                Null::Text => q.bind(None::<String>),
                Null::Int => q.bind(None::<i64>),
                Null::Blob => q.bind(None::<Vec<u8>>),
            };
        }
    }
    q
}

#[cfg(test)]
mod padded_tests {
    use super::{Backend, list_for, padded_chunks, rows_for};

    #[test]
    fn parameters_are_numbered_on_postgres_and_anonymous_on_sqlite() {
        assert_eq!(rows_for(Backend::Postgres, 2, 2), "($1, $2), ($3, $4)");
        assert_eq!(rows_for(Backend::Sqlite, 2, 2), "(?, ?), (?, ?)");
        assert_eq!(list_for(Backend::Postgres, 3), "$1, $2, $3");
        assert_eq!(list_for(Backend::Sqlite, 3), "?, ?, ?");
    }

    #[test]
    fn a_batch_up_to_the_limit_is_one_statement_of_a_power_of_two_shape() {
        let rows: Vec<u32> = (0..600).collect();
        for n in [0, 1, 2, 3, 27, 47, 255, 256, 257, 600] {
            let chunks: Vec<_> = padded_chunks(Backend::Sqlite, &rows[..n], 256).collect();
            assert_eq!(
                chunks.len(),
                n.div_ceil(256),
                "{n}: one statement per 256 rows"
            );
            for c in &chunks {
                assert!(
                    c.shape.is_power_of_two() && c.shape <= 256,
                    "{n}: {}",
                    c.shape
                );
                assert!(
                    c.shape >= c.rows.len() && c.shape < 2 * c.rows.len().max(1),
                    "{n}"
                );
            }
            let joined: Vec<u32> = chunks.iter().flat_map(|c| c.rows.to_vec()).collect();
            assert_eq!(joined, rows[..n], "{n}");
        }
        let shapes: Vec<(usize, usize)> = padded_chunks(Backend::Sqlite, &rows[..27], 256)
            .map(|c| (c.rows.len(), c.padding()))
            .collect();
        assert_eq!(shapes, [(27, 5)]);
    }

    #[test]
    fn postgres_chunks_are_powers_of_two_without_padding() {
        let rows: Vec<u32> = (0..600).collect();
        for n in [0, 1, 2, 3, 47, 255, 256, 257, 600] {
            let chunks: Vec<_> = padded_chunks(Backend::Postgres, &rows[..n], 256).collect();
            for c in &chunks {
                assert!(c.rows.len().is_power_of_two() && c.rows.len() <= 256, "{n}");
                assert_eq!(c.padding(), 0, "{n}");
            }
            let joined: Vec<u32> = chunks.iter().flat_map(|c| c.rows.to_vec()).collect();
            assert_eq!(joined, rows[..n], "{n}");
        }
        let sizes: Vec<usize> = padded_chunks(Backend::Postgres, &rows[..47], 256)
            .map(|c| c.rows.len())
            .collect();
        assert_eq!(sizes, [32, 8, 4, 2, 1]);
    }
}
