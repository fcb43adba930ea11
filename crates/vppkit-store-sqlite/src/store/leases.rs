//! The [`LeaseStore`] role of [`SqliteStore`]: leases.

use super::*;

#[async_trait]
impl LeaseStore for SqliteStore {
    async fn acquire_lease(
        &self,
        name: &str,
        owner: &str,
        ttl: Duration,
        now: DateTime<Utc>,
    ) -> Result<Lease> {
        Lease::check_args(name, owner, ttl)?;
        let mut tx = self.write().await?;
        let existing = lease_in(&mut tx, name).await?;
        let lease = Lease::acquire(existing.as_ref(), name, owner, ttl, now)?;
        put_lease_in(&mut tx, &lease).await?;
        tx.commit().await.map_err(db)?;
        Ok(lease)
    }

    async fn renew_lease(
        &self,
        name: &str,
        owner: &str,
        token: u64,
        ttl: Duration,
        now: DateTime<Utc>,
    ) -> Result<Lease> {
        Lease::check_args(name, owner, ttl)?;
        let mut tx = self.write().await?;
        let existing = lease_in(&mut tx, name).await?;
        let lease = Lease::renew(existing.as_ref(), name, owner, token, ttl, now)?;
        put_lease_in(&mut tx, &lease).await?;
        tx.commit().await.map_err(db)?;
        Ok(lease)
    }

    async fn release_lease(&self, name: &str, owner: &str, token: u64) -> Result<bool> {
        // Keep the row, expired, so the next token is higher.
        let n = sqlx::query(
            "UPDATE leases SET expires_at = 0 WHERE name = ? AND owner = ? AND token = ?",
        )
        .bind(name)
        .bind(owner)
        .bind(to_i64(token, "lease token")?)
        .execute(self.writer())
        .await
        .map_err(db)?
        .rows_affected();
        Ok(n > 0)
    }

    async fn lease(&self, name: &str) -> Result<Option<Lease>> {
        let mut conn = self.pool.acquire().await.map_err(db)?;
        lease_in(&mut conn, name).await
    }
}
