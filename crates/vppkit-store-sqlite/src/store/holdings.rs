//! The [`HoldingStore`] role of [`SqliteStore`]: holdings and reservations: sync pages, reservations, transitions, reads.

use super::*;

#[async_trait]
impl HoldingStore for SqliteStore {
    async fn apply_sync_page(&self, location: &LocationId, page: &SyncPage) -> Result<Option<u64>> {
        let at = ts(page.at.unwrap_or_else(Utc::now))?;
        let mut tx = self.write().await?;
        check_fence(&mut tx, page.fence.as_ref()).await?;
        require_location(&mut tx, location).await?;
        let loc = location.as_str().to_owned();
        if let Some(id) = &page.notification {
            let n = sqlx::query(
                "INSERT INTO notifications (id, location_id, at) VALUES (?, ?, ?) \
                 ON CONFLICT (id) DO NOTHING",
            )
            .bind(id.as_str())
            .bind(&loc)
            .bind(at)
            .execute(&mut *tx)
            .await
            .map_err(db)?
            .rows_affected();
            if n == 0 {
                return Err(StoreError::already_exists("notification", id));
            }
        }
        for d in &page.documents {
            put_document_in(&mut tx, d, None).await?;
        }

        for chunk in page.upsert_assets.chunks(CHUNK) {
            let mut rows = Vec::with_capacity(chunk.len());
            for a in chunk {
                rows.push((a, json_text(&a.supported_platforms)?));
            }
            let mut qb = QueryBuilder::<Sqlite>::new(
                "INSERT INTO assets (location_id, adam_id, pricing_param, product_type, \
                 device_assignable, revocable, platforms, total_count, assigned_count, \
                 available_count, retired_count, updated_at) ",
            );
            qb.push_values(rows, |mut b, (a, platforms)| {
                b.push_bind(loc.clone())
                    .push_bind(a.key.adam_id.as_str().to_owned())
                    .push_bind(a.key.pricing_param.as_str())
                    .push_bind(a.product_type.as_str())
                    .push_bind(a.device_assignable)
                    .push_bind(a.revocable)
                    .push_bind(platforms)
                    .push_bind(i64::from(a.counts.total))
                    .push_bind(i64::from(a.counts.assigned))
                    .push_bind(i64::from(a.counts.available))
                    .push_bind(i64::from(a.counts.retired))
                    .push_bind(at);
            });
            qb.push(
                " ON CONFLICT (location_id, adam_id, pricing_param) DO UPDATE SET \
                 product_type = excluded.product_type, \
                 device_assignable = excluded.device_assignable, \
                 revocable = excluded.revocable, platforms = excluded.platforms, \
                 total_count = excluded.total_count, assigned_count = excluded.assigned_count, \
                 available_count = excluded.available_count, \
                 retired_count = excluded.retired_count, updated_at = excluded.updated_at",
            );
            qb.build().execute(&mut *tx).await.map_err(db)?;
        }
        for (key, metadata) in &page.asset_metadata {
            let n = sqlx::query(
                "UPDATE assets SET metadata = ?, updated_at = ? \
                 WHERE location_id = ? AND adam_id = ? AND pricing_param = ?",
            )
            .bind(json_text(metadata)?)
            .bind(at)
            .bind(&loc)
            .bind(key.adam_id.as_str())
            .bind(key.pricing_param.as_str())
            .execute(&mut *tx)
            .await
            .map_err(db)?
            .rows_affected();
            if n == 0 {
                return Err(StoreError::not_found("asset", key));
            }
        }
        for chunk in page.upsert_users.chunks(CHUNK) {
            let mut qb = QueryBuilder::<Sqlite>::new(
                "INSERT INTO users (location_id, client_user_id, email, managed_apple_id, \
                 invite_code, id_hash, status, managed_by_us, updated_at) ",
            );
            qb.push_values(chunk, |mut b, (u, managed)| {
                b.push_bind(loc.clone())
                    .push_bind(u.client_user_id.as_str().to_owned())
                    .push_bind(u.email.clone())
                    .push_bind(u.managed_apple_id.clone())
                    .push_bind(u.invite_code.clone())
                    .push_bind(u.id_hash.clone())
                    .push_bind(u.status.as_str())
                    .push_bind(*managed)
                    .push_bind(at);
            });
            qb.push(
                " ON CONFLICT (location_id, client_user_id) DO UPDATE SET email = excluded.email, \
                 managed_apple_id = excluded.managed_apple_id, \
                 invite_code = excluded.invite_code, id_hash = excluded.id_hash, \
                 status = excluded.status, managed_by_us = excluded.managed_by_us, \
                 updated_at = excluded.updated_at",
            );
            qb.build().execute(&mut *tx).await.map_err(db)?;
        }
        for chunk in page.delete_users.chunks(CHUNK) {
            let mut qb = QueryBuilder::<Sqlite>::new("DELETE FROM users WHERE location_id = ");
            qb.push_bind(loc.clone()).push(" AND client_user_id IN (");
            let mut sep = qb.separated(", ");
            for id in chunk {
                sep.push_bind(id.as_str().to_owned());
            }
            qb.push(")");
            qb.build().execute(&mut *tx).await.map_err(db)?;
        }
        upsert_holdings_in(&mut tx, location, &page.upsert_holdings, at).await?;
        delete_holdings_in(&mut tx, location, &page.delete_holdings).await?;
        let last = append_journal_in(&mut tx, location, &page.journal).await?;
        if let Some(update) = &page.cursor {
            match &update.cursor {
                Some(c) => {
                    sqlx::query(
                        "INSERT INTO sync_cursors (location_id, endpoint, version_id, next_page, \
                         updated_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (location_id, endpoint) \
                         DO UPDATE SET version_id = excluded.version_id, \
                         next_page = excluded.next_page, updated_at = excluded.updated_at",
                    )
                    .bind(&loc)
                    .bind(update.endpoint.as_str())
                    .bind(&c.version_id)
                    .bind(c.next_page.map(i64::from))
                    .bind(ts(c.updated_at)?)
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?;
                }
                None => {
                    sqlx::query("DELETE FROM sync_cursors WHERE location_id = ? AND endpoint = ?")
                        .bind(&loc)
                        .bind(update.endpoint.as_str())
                        .execute(&mut *tx)
                        .await
                        .map_err(db)?;
                }
            }
        }
        tx.commit().await.map_err(db)?;
        Ok((!page.journal.is_empty()).then_some(last))
    }

    async fn reserve(&self, r: &Reservation) -> Result<u32> {
        let mut seen = HashSet::new();
        for h in &r.holders {
            if !seen.insert(h) {
                return Err(StoreError::invalid(
                    "holders",
                    format!("{h} appears more than once"),
                ));
            }
        }
        let at = ts(r.at)?;
        let mut tx = self.write().await?;
        check_fence(&mut tx, r.fence.as_ref()).await?;
        require_location(&mut tx, &r.location).await?;
        let loc = r.location.as_str();
        let row = sqlx::query(
            "SELECT total_count, retired_count, held_count FROM assets \
             WHERE location_id = ? AND adam_id = ? AND pricing_param = ?",
        )
        .bind(loc)
        .bind(r.asset.adam_id.as_str())
        .bind(r.asset.pricing_param.as_str())
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?
        .ok_or_else(|| StoreError::not_found("asset", &r.asset))?;
        let total: i64 = row.try_get("total_count").map_err(db)?;
        let retired: i64 = row.try_get("retired_count").map_err(db)?;
        let held: i64 = row.try_get("held_count").map_err(db)?;

        let mut texts: Vec<String> = r.holders.iter().map(ToString::to_string).collect();
        texts.sort();
        for chunk in texts.chunks(CHUNK) {
            let mut qb =
                QueryBuilder::<Sqlite>::new("SELECT holder FROM holdings WHERE location_id = ");
            qb.push_bind(loc.to_owned())
                .push(" AND adam_id = ")
                .push_bind(r.asset.adam_id.as_str().to_owned())
                .push(" AND pricing_param = ")
                .push_bind(r.asset.pricing_param.as_str())
                .push(" AND holder IN (");
            let mut sep = qb.separated(", ");
            for t in chunk {
                sep.push_bind(t.clone());
            }
            qb.push(") ORDER BY holder LIMIT 1");
            let existing: Option<String> = qb
                .build_query_scalar()
                .fetch_optional(&mut *tx)
                .await
                .map_err(db)?;
            if let Some(text) = existing {
                return Err(StoreError::AlreadyHeld {
                    asset: r.asset.clone(),
                    holder: holder(&text)?,
                });
            }
        }

        let holdable = (total - retired).max(0);
        let available = (holdable - held).max(0);
        let requested = i64::try_from(r.holders.len()).unwrap_or(i64::MAX);
        if requested > available {
            return Err(StoreError::InsufficientLicences {
                asset: r.asset.clone(),
                requested: u32::try_from(requested).unwrap_or(u32::MAX),
                available: u32::try_from(available).unwrap_or(u32::MAX),
            });
        }
        let ups: Vec<HoldingUpsert> = r
            .holders
            .iter()
            .map(|h| {
                HoldingUpsert::new(r.asset.clone(), h.clone(), HoldingStatus::Reserved)
                    .with_operation(r.operation_id.clone())
            })
            .collect();
        upsert_holdings_in(&mut tx, &r.location, &ups, at).await?;
        append_journal_in(&mut tx, &r.location, &r.journal).await?;
        tx.commit().await.map_err(db)?;
        Ok(u32::try_from(available - requested).unwrap_or(u32::MAX))
    }

    async fn transition_holdings(
        &self,
        location: &LocationId,
        transitions: &[HoldingTransition],
        journal: &[NewJournalRecord],
        at: DateTime<Utc>,
    ) -> Result<()> {
        let at = ts(at)?;
        let mut keys = HashSet::new();
        for t in transitions {
            if !keys.insert(t.key.sort_key()) {
                return Err(StoreError::invalid(
                    "transitions",
                    format!("{} {} appears more than once", t.key.asset, t.key.holder),
                ));
            }
        }
        let mut tx = self.write().await?;
        require_location(&mut tx, location).await?;
        let loc = location.as_str();
        let mut deletes = Vec::new();
        for t in transitions {
            let what = || format!("{} {}", t.key.asset, t.key.holder);
            let status: Option<String> = sqlx::query_scalar(
                "SELECT status FROM holdings WHERE location_id = ? AND adam_id = ? \
                 AND pricing_param = ? AND holder = ?",
            )
            .bind(loc)
            .bind(t.key.asset.adam_id.as_str())
            .bind(t.key.asset.pricing_param.as_str())
            .bind(t.key.holder.to_string())
            .fetch_optional(&mut *tx)
            .await
            .map_err(db)?;
            let Some(status) = status else {
                return Err(StoreError::not_found("holding", what()));
            };
            let status = parse::<HoldingStatus>(&status, "holding status")?;
            if let Some(expected) = t.expected {
                if status != expected {
                    return Err(StoreError::version_mismatch(
                        "holding",
                        what(),
                        expected,
                        status,
                    ));
                }
            }
            match t.new_status {
                None => {
                    deletes.push(t.key.clone());
                }
                Some(new) => {
                    sqlx::query(
                        "UPDATE holdings SET status = ?, \
                         operation_id = COALESCE(?, operation_id), updated_at = ? \
                         WHERE location_id = ? AND adam_id = ? AND pricing_param = ? AND holder = ?",
                    )
                    .bind(new.as_str())
                    .bind(t.operation_id.as_deref())
                    .bind(at)
                    .bind(loc)
                    .bind(t.key.asset.adam_id.as_str())
                    .bind(t.key.asset.pricing_param.as_str())
                    .bind(t.key.holder.to_string())
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?;
                }
            }
        }
        delete_holdings_in(&mut tx, location, &deletes).await?;
        append_journal_in(&mut tx, location, journal).await?;
        tx.commit().await.map_err(db)?;
        Ok(())
    }

    async fn holding(
        &self,
        location: &LocationId,
        asset: &AssetKey,
        holder: &Holder,
    ) -> Result<Option<HoldingRecord>> {
        sqlx::query(&format!(
            "SELECT {HOLDING_COLS} FROM holdings WHERE location_id = ? AND adam_id = ? \
             AND pricing_param = ? AND holder = ?"
        ))
        .bind(location.as_str())
        .bind(asset.adam_id.as_str())
        .bind(asset.pricing_param.as_str())
        .bind(holder.to_string())
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?
        .map(|row| holding_from_row(location, &row))
        .transpose()
    }

    async fn holdings_by_asset(
        &self,
        location: &LocationId,
        asset: &AssetKey,
        after: Option<&Holder>,
        limit: u32,
    ) -> Result<Vec<HoldingRecord>> {
        let limit = check_limit(limit)?;
        sqlx::query(&format!(
            "SELECT {HOLDING_COLS} FROM holdings WHERE location_id = ? AND adam_id = ? \
             AND pricing_param = ? AND holder > ? ORDER BY holder LIMIT ?"
        ))
        .bind(location.as_str())
        .bind(asset.adam_id.as_str())
        .bind(asset.pricing_param.as_str())
        .bind(after.map(ToString::to_string).unwrap_or_default())
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(db)
        .and_then(|rows| holdings_from_rows(location, &rows))
    }

    async fn holdings_by_holder(
        &self,
        location: &LocationId,
        holder: &Holder,
    ) -> Result<Vec<HoldingRecord>> {
        sqlx::query(&format!(
            "SELECT {HOLDING_COLS} FROM holdings WHERE location_id = ? AND holder = ? \
             ORDER BY adam_id, pricing_param"
        ))
        .bind(location.as_str())
        .bind(holder.to_string())
        .fetch_all(&self.pool)
        .await
        .map_err(db)
        .and_then(|rows| holdings_from_rows(location, &rows))
    }

    async fn holdings_by_operation(
        &self,
        location: &LocationId,
        operation_id: &str,
    ) -> Result<Vec<HoldingRecord>> {
        sqlx::query(&format!(
            "SELECT {HOLDING_COLS} FROM holdings WHERE location_id = ? AND operation_id = ? \
             ORDER BY adam_id, pricing_param, holder"
        ))
        .bind(location.as_str())
        .bind(operation_id)
        .fetch_all(&self.pool)
        .await
        .map_err(db)
        .and_then(|rows| holdings_from_rows(location, &rows))
    }

    async fn holdings_page(
        &self,
        location: &LocationId,
        after: Option<&HoldingKey>,
        limit: u32,
    ) -> Result<Vec<HoldingRecord>> {
        let limit = check_limit(limit)?;
        let mut qb = QueryBuilder::<Sqlite>::new(format!(
            "SELECT {HOLDING_COLS} FROM holdings WHERE location_id = "
        ));
        qb.push_bind(location.as_str().to_owned());
        self.holdings_after(qb, location, after, limit).await
    }

    async fn holding_counts(
        &self,
        location: &LocationId,
        asset: &AssetKey,
    ) -> Result<HoldingCounts> {
        let rows = sqlx::query(
            "SELECT status, COUNT(*) AS n FROM holdings WHERE location_id = ? AND adam_id = ? \
             AND pricing_param = ? GROUP BY status",
        )
        .bind(location.as_str())
        .bind(asset.adam_id.as_str())
        .bind(asset.pricing_param.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        let mut counts = HoldingCounts::default();
        for row in rows {
            let status: String = row.try_get("status").map_err(db)?;
            let n: i64 = row.try_get("n").map_err(db)?;
            counts.add(
                parse::<HoldingStatus>(&status, "holding status")?,
                to_u64(n, "count")?,
            );
        }
        Ok(counts)
    }
}
