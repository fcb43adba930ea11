//! The [`NotificationStore`] role of [`SqliteStore`]: processed notification ids.

use super::*;

#[async_trait]
impl NotificationStore for SqliteStore {
    async fn record_notification(
        &self,
        location: &LocationId,
        id: &NotificationId,
        at: DateTime<Utc>,
    ) -> Result<bool> {
        let mut tx = self.write().await?;
        require_location(&mut tx, location).await?;
        let n = sqlx::query(
            "INSERT INTO notifications (id, location_id, at) VALUES (?, ?, ?) \
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(id.as_str())
        .bind(location.as_str())
        .bind(ts(at)?)
        .execute(&mut *tx)
        .await
        .map_err(db)?
        .rows_affected();
        tx.commit().await.map_err(db)?;
        Ok(n == 1)
    }

    async fn prune_notifications(&self, before: DateTime<Utc>) -> Result<u64> {
        Ok(sqlx::query("DELETE FROM notifications WHERE at < ?")
            .bind(ts(before)?)
            .execute(self.writer())
            .await
            .map_err(db)?
            .rows_affected())
    }
}
