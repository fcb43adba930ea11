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
        let limit = check_limit(q.limit)?;
        let mut qb = QueryBuilder::<Sqlite>::new("SELECT * FROM journal WHERE location_id = ");
        qb.push_bind(q.location.as_str().to_owned());
        if let Some(a) = &q.asset {
            qb.push(" AND adam_id = ")
                .push_bind(a.adam_id.as_str().to_owned())
                .push(" AND pricing_param = ")
                .push_bind(a.pricing_param.as_str());
        }
        if let Some(h) = &q.holder {
            qb.push(" AND holder = ").push_bind(h.to_string());
        }
        if let Some(since) = q.since {
            qb.push(" AND at >= ").push_bind(ts(since)?);
        }
        if let Some(until) = q.until {
            qb.push(" AND at < ").push_bind(ts(until)?);
        }
        if let Some(after) = q.after_seq {
            qb.push(" AND seq > ")
                .push_bind(to_i64(after, "journal seq")?);
        }
        qb.push(" ORDER BY seq LIMIT ").push_bind(limit);
        qb.build()
            .fetch_all(&self.pool)
            .await
            .map_err(db)?
            .iter()
            .map(|row| journal_from_row(&q.location, row))
            .collect()
    }
}
