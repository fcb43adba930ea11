//! The [`LocationStore`] role of [`SqliteStore`]: locations, sync status, assets and vpp users.

use super::*;

#[async_trait]
impl LocationStore for SqliteStore {
    async fn save_location(&self, r: &LocationRecord) -> Result<u64> {
        let token = self.cipher.seal(&r.token, &token_context(&r.id));
        let auth = r
            .notification
            .as_ref()
            .map(|n| self.cipher.seal(&n.auth_token, &auth_context(&r.id)));
        let types = r
            .notification
            .as_ref()
            .map(|n| json_text(&n.types))
            .transpose()?;
        let mdm = r.mdm_info.as_ref().map(json_text).transpose()?;
        let config = r.service_config.as_ref().map(json_text).transpose()?;
        let mut tx = self.write().await?;
        let current: Option<i64> =
            sqlx::query_scalar("SELECT revision FROM locations WHERE id = ?")
                .bind(r.id.as_str())
                .fetch_optional(&mut *tx)
                .await
                .map_err(db)?;
        let new_revision = match (current, r.revision) {
            (Some(_), 0) => return Err(StoreError::already_exists("location", &r.id)),
            (None, 0) => 1,
            (None, _) => return Err(StoreError::not_found("location", &r.id)),
            (Some(c), rev) if to_u64(c, "revision")? != rev => {
                return Err(StoreError::version_mismatch("location", &r.id, rev, c))
            }
            (Some(_), rev) => rev + 1,
        };
        sqlx::query(
            "INSERT INTO locations (id, name, token, token_expires_at, token_state, uid, country, \
             account_type, apple_account_name, mdm_info, notification_url, \
             notification_auth_token, notification_types, service_config, created_at, \
             updated_at, revision) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (id) DO UPDATE SET name = excluded.name, token = excluded.token, \
             token_expires_at = excluded.token_expires_at, token_state = excluded.token_state, \
             uid = excluded.uid, country = excluded.country, account_type = excluded.account_type, \
             apple_account_name = excluded.apple_account_name, mdm_info = excluded.mdm_info, \
             notification_url = excluded.notification_url, \
             notification_auth_token = excluded.notification_auth_token, \
             notification_types = excluded.notification_types, \
             service_config = excluded.service_config, created_at = excluded.created_at, \
             updated_at = excluded.updated_at, revision = excluded.revision",
        )
        .bind(r.id.as_str())
        .bind(&r.name)
        .bind(token)
        .bind(ts(r.token_expires_at)?)
        .bind(r.token_state.as_str())
        .bind(r.uid.as_ref().map(|u| u.as_str()))
        .bind(r.country.as_deref())
        .bind(r.account_type.map(|a| a.as_str()))
        .bind(r.apple_account_name.as_deref())
        .bind(mdm)
        .bind(r.notification.as_ref().map(|n| n.url.as_str()))
        .bind(auth)
        .bind(types)
        .bind(config)
        .bind(ts(r.created_at)?)
        .bind(ts(r.updated_at)?)
        .bind(to_i64(new_revision, "revision")?)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(new_revision)
    }

    async fn location(&self, id: &LocationId) -> Result<Option<LocationRecord>> {
        sqlx::query("SELECT * FROM locations WHERE id = ?")
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?
            .map(|row| self.location_from_row(&row))
            .transpose()
    }

    async fn locations(&self) -> Result<Vec<LocationRecord>> {
        sqlx::query("SELECT * FROM locations ORDER BY id")
            .fetch_all(&self.pool)
            .await
            .map_err(db)?
            .iter()
            .map(|row| self.location_from_row(row))
            .collect()
    }

    async fn delete_location(&self, id: &LocationId) -> Result<bool> {
        let mut tx = self.write().await?;
        // Holdings first, without the per-row count trigger work on assets that go too.
        sqlx::query("DELETE FROM holdings WHERE location_id = ?")
            .bind(id.as_str())
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        let n = sqlx::query("DELETE FROM locations WHERE id = ?")
            .bind(id.as_str())
            .execute(&mut *tx)
            .await
            .map_err(db)?
            .rows_affected();
        tx.commit().await.map_err(db)?;
        Ok(n > 0)
    }

    async fn sync_status(&self, location: &LocationId) -> Result<SyncStatus> {
        let row = sqlx::query(
            "SELECT last_sync_at, last_sync_success, last_sync_message \
             FROM locations WHERE id = ?",
        )
        .bind(location.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?
        .ok_or_else(|| StoreError::not_found("location", location))?;
        let at: Option<i64> = row.try_get("last_sync_at").map_err(db)?;
        let last_summary = match at {
            None => None,
            Some(at) => {
                let success: bool = row.try_get("last_sync_success").map_err(db)?;
                let message: Option<String> = row.try_get("last_sync_message").map_err(db)?;
                Some(if success {
                    let mut o = SyncSummary::success(from_ts(at));
                    o.message = message;
                    o
                } else {
                    let mut o = SyncSummary::failure(from_ts(at), "");
                    o.message = message;
                    o
                })
            }
        };
        let rows = sqlx::query(
            "SELECT endpoint, version_id, next_page, updated_at FROM sync_cursors \
             WHERE location_id = ?",
        )
        .bind(location.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        let mut cursors = Vec::with_capacity(rows.len());
        for row in &rows {
            let ep: String = row.try_get("endpoint").map_err(db)?;
            let next: Option<i64> = row.try_get("next_page").map_err(db)?;
            cursors.push((
                parse::<SyncEndpoint>(&ep, "sync endpoint")?,
                SyncCursor::new(
                    row.try_get::<String, _>("version_id").map_err(db)?,
                    next.map(|n| to_u32(n, "next page")).transpose()?,
                    from_ts(row.try_get("updated_at").map_err(db)?),
                ),
            ));
        }
        cursors.sort_by_key(|(e, _)| *e);
        Ok(SyncStatus::new(cursors, last_summary))
    }

    async fn record_sync_summary(
        &self,
        location: &LocationId,
        summary: &SyncSummary,
    ) -> Result<()> {
        let n = sqlx::query(
            "UPDATE locations SET last_sync_at = ?, last_sync_success = ?, last_sync_message = ? \
             WHERE id = ?",
        )
        .bind(ts(summary.at)?)
        .bind(summary.success)
        .bind(summary.message.as_deref())
        .bind(location.as_str())
        .execute(self.writer())
        .await
        .map_err(db)?
        .rows_affected();
        if n == 0 {
            return Err(StoreError::not_found("location", location));
        }
        Ok(())
    }

    async fn asset(&self, location: &LocationId, key: &AssetKey) -> Result<Option<AssetRecord>> {
        sqlx::query(
            "SELECT * FROM assets WHERE location_id = ? AND adam_id = ? AND pricing_param = ?",
        )
        .bind(location.as_str())
        .bind(key.adam_id.as_str())
        .bind(key.pricing_param.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?
        .as_ref()
        .map(asset_from_row)
        .transpose()
    }

    async fn assets(&self, location: &LocationId) -> Result<Vec<AssetRecord>> {
        sqlx::query("SELECT * FROM assets WHERE location_id = ? ORDER BY adam_id, pricing_param")
            .bind(location.as_str())
            .fetch_all(&self.pool)
            .await
            .map_err(db)?
            .iter()
            .map(asset_from_row)
            .collect()
    }

    async fn user(&self, location: &LocationId, id: &ClientUserId) -> Result<Option<UserRecord>> {
        sqlx::query("SELECT * FROM users WHERE location_id = ? AND client_user_id = ?")
            .bind(location.as_str())
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?
            .as_ref()
            .map(user_from_row)
            .transpose()
    }

    async fn users_page(
        &self,
        location: &LocationId,
        after: Option<&ClientUserId>,
        limit: u32,
    ) -> Result<Vec<UserRecord>> {
        let limit = check_limit(limit)?;
        sqlx::query(
            "SELECT * FROM users WHERE location_id = ? AND client_user_id > ? \
             ORDER BY client_user_id LIMIT ?",
        )
        .bind(location.as_str())
        .bind(after.map(|a| a.as_str()).unwrap_or(""))
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?
        .iter()
        .map(user_from_row)
        .collect()
    }
}
