//! The [`JournalStore`] role of [`SqliteStore`]: the journal.

use super::*;

#[async_trait]
impl JournalStore for SqliteStore {
    async fn append_journal(
        &self,
        location: &LocationId,
        records: &[NewJournalRecord],
    ) -> Result<u64> {
        let mut tx = self.write().await?;
        let last = append_journal_in(&mut tx, location, records).await?;
        tx.commit().await.map_err(db)?;
        Ok(last)
    }

    async fn read_journal(&self, q: &JournalQuery) -> Result<Vec<JournalRecord>> {
        check_limit(q.limit)?;
        PackedJournal::read(q, |after_first| self.journal_appends(q, after_first)).await
    }
}

impl SqliteStore {
    /// The next appends that may hold records `q` matches, after the one starting at
    /// `after_first` (see [`PackedJournal::read`]).
    async fn journal_appends(
        &self,
        q: &JournalQuery,
        after_first: Option<u64>,
    ) -> Result<Vec<(u64, String)>> {
        let mut qb = QueryBuilder::<Sqlite>::new(
            "SELECT first_seq, records FROM journal_appends WHERE location_id = ",
        );
        qb.push_bind(q.location.as_str().to_owned());
        if let Some(a) = &q.asset {
            qb.push(
                " AND first_seq IN (SELECT first_seq FROM journal_assets \
                 WHERE location_id = journal_appends.location_id AND adam_id = ",
            )
            .push_bind(a.adam_id.as_str().to_owned())
            .push(" AND pricing_param = ")
            .push_bind(a.pricing_param.as_str())
            .push(")");
        }
        if let Some(h) = &q.holder {
            qb.push(
                " AND first_seq IN (SELECT first_seq FROM journal_holders \
                 WHERE location_id = journal_appends.location_id AND holder = ",
            )
            .push_bind(h.to_string())
            .push(")");
        }
        if let Some(since) = q.since {
            qb.push(" AND max_at >= ").push_bind(ts(since)?);
        }
        if let Some(until) = q.until {
            qb.push(" AND min_at < ").push_bind(ts(until)?);
        }
        if let Some(after) = q.after_seq {
            // The append holding `after` (or the first after it) starts the range: a
            // seek on the primary key, not a scan of every append for `last_seq`.
            let after = to_i64(after, "journal seq")?;
            qb.push(" AND last_seq > ")
                .push_bind(after)
                .push(
                    " AND first_seq >= (SELECT COALESCE(MAX(first_seq), 0) \
                     FROM journal_appends WHERE location_id = ",
                )
                .push_bind(q.location.as_str().to_owned())
                .push(" AND first_seq <= ")
                .push_bind(after)
                .push(")");
        }
        if let Some(first) = after_first {
            qb.push(" AND first_seq > ")
                .push_bind(to_i64(first, "journal seq")?);
        }
        qb.push(" ORDER BY first_seq LIMIT ")
            .push_bind(i64::from(APPENDS_PER_READ));
        qb.build()
            .fetch_all(&self.pool)
            .await
            .map_err(db)?
            .iter()
            .map(|row| {
                let first: i64 = row.try_get("first_seq").map_err(db)?;
                Ok((
                    to_u64(first, "journal seq")?,
                    row.try_get("records").map_err(db)?,
                ))
            })
            .collect()
    }
}
