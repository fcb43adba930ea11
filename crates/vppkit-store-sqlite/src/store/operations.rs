//! The [`OperationStore`] role of [`SqliteStore`]: operations and install statuses.

use super::*;

#[async_trait]
impl OperationStore for SqliteStore {
    async fn insert_operation(&self, op: &Operation) -> Result<()> {
        if op.id.is_empty() {
            return Err(StoreError::invalid("operation id", "must not be empty"));
        }
        let mut tx = self.write().await?;
        require_location(&mut tx, &op.location).await?;
        let r = sqlx::query(
            "INSERT INTO operations (id, location_id, kind, request, event_id, status, result, \
             created_at, deadline, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&op.id)
        .bind(op.location.as_str())
        .bind(op.kind.as_str())
        .bind(json_text(&op.request)?)
        .bind(op.event_id.as_ref().map(|e| e.as_str()))
        .bind(op.status.as_str())
        .bind(op.result.as_ref().map(json_text).transpose()?)
        .bind(ts(op.created_at)?)
        .bind(opt_ts(op.deadline)?)
        .bind(ts(op.updated_at)?)
        .execute(&mut *tx)
        .await;
        match r {
            Ok(_) => {}
            Err(e) => {
                let e = db(e);
                if e.kind() == vppkit_store::ErrorKind::Conflict {
                    return Err(StoreError::already_exists("operation", &op.id));
                }
                return Err(e);
            }
        }
        tx.commit().await.map_err(db)?;
        Ok(())
    }

    async fn update_operation(&self, id: &str, u: &OperationUpdate) -> Result<Operation> {
        let mut tx = self.write().await?;
        check_fence(&mut tx, u.fence.as_ref()).await?;
        let mut op = sqlx::query("SELECT * FROM operations WHERE id = ?")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db)?
            .as_ref()
            .map(operation_from_row)
            .transpose()?
            .ok_or_else(|| StoreError::not_found("operation", id))?;
        if let Some(expected) = u.expected_status {
            if op.status != expected {
                return Err(StoreError::version_mismatch(
                    "operation",
                    id,
                    expected,
                    op.status,
                ));
            }
        }
        u.apply_to(&mut op);
        sqlx::query(
            "UPDATE operations SET status = ?, event_id = ?, result = ?, deadline = ?, \
             updated_at = ? WHERE id = ?",
        )
        .bind(op.status.as_str())
        .bind(op.event_id.as_ref().map(|e| e.as_str()))
        .bind(op.result.as_ref().map(json_text).transpose()?)
        .bind(opt_ts(op.deadline)?)
        .bind(ts(op.updated_at)?)
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(op)
    }

    async fn operation(&self, id: &str) -> Result<Option<Operation>> {
        sqlx::query("SELECT * FROM operations WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?
            .as_ref()
            .map(operation_from_row)
            .transpose()
    }

    async fn operation_by_event(
        &self,
        location: &LocationId,
        event_id: &EventId,
    ) -> Result<Option<Operation>> {
        sqlx::query(
            "SELECT * FROM operations WHERE location_id = ? AND event_id = ? \
             ORDER BY created_at, id LIMIT 1",
        )
        .bind(location.as_str())
        .bind(event_id.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?
        .as_ref()
        .map(operation_from_row)
        .transpose()
    }

    async fn unfinished_operations(&self, location: Option<&LocationId>) -> Result<Vec<Operation>> {
        let mut qb = QueryBuilder::<Sqlite>::new(
            "SELECT * FROM operations WHERE status NOT IN ('complete', 'failed', 'rolled_back')",
        );
        if let Some(l) = location {
            qb.push(" AND location_id = ")
                .push_bind(l.as_str().to_owned());
        }
        qb.push(" ORDER BY created_at, id");
        qb.build()
            .fetch_all(&self.pool)
            .await
            .map_err(db)?
            .iter()
            .map(operation_from_row)
            .collect()
    }

    async fn prune_operations(&self, before: DateTime<Utc>) -> Result<u64> {
        Ok(sqlx::query(
            "DELETE FROM operations WHERE status IN ('complete', 'failed', 'rolled_back') \
             AND updated_at < ?",
        )
        .bind(ts(before)?)
        .execute(self.writer())
        .await
        .map_err(db)?
        .rows_affected())
    }

    async fn put_install_status(&self, r: &InstallRecord) -> Result<()> {
        let mut tx = self.write().await?;
        require_location(&mut tx, &r.location).await?;
        sqlx::query(
            "INSERT INTO installs (location_id, holder, adam_id, pricing_param, state, \
             command_uuid, detail, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (location_id, holder, adam_id, pricing_param) DO UPDATE SET \
             state = excluded.state, command_uuid = excluded.command_uuid, \
             detail = excluded.detail, updated_at = excluded.updated_at",
        )
        .bind(r.location.as_str())
        .bind(r.holder.to_string())
        .bind(r.asset.adam_id.as_str())
        .bind(r.asset.pricing_param.as_str())
        .bind(r.state.as_str())
        .bind(r.command_uuid.as_deref())
        .bind(r.detail.as_ref().map(json_text).transpose()?)
        .bind(ts(r.updated_at)?)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(())
    }

    async fn install_status(
        &self,
        location: &LocationId,
        holder: &Holder,
        asset: &AssetKey,
    ) -> Result<Option<InstallRecord>> {
        sqlx::query(
            "SELECT * FROM installs WHERE location_id = ? AND holder = ? AND adam_id = ? \
             AND pricing_param = ?",
        )
        .bind(location.as_str())
        .bind(holder.to_string())
        .bind(asset.adam_id.as_str())
        .bind(asset.pricing_param.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?
        .map(|row| install_from_row(location, &row))
        .transpose()
    }

    async fn install_statuses(
        &self,
        location: &LocationId,
        holder: &Holder,
    ) -> Result<Vec<InstallRecord>> {
        sqlx::query(
            "SELECT * FROM installs WHERE location_id = ? AND holder = ? \
             ORDER BY adam_id, pricing_param",
        )
        .bind(location.as_str())
        .bind(holder.to_string())
        .fetch_all(&self.pool)
        .await
        .map_err(db)?
        .iter()
        .map(|row| install_from_row(location, row))
        .collect()
    }
}
