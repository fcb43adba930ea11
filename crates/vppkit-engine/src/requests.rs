//! What the reconcile loop carries from one plan to the next, stored one
//! document each: self-service requests (a device asked for an app an
//! Available policy offers it) until their install is queued or they cannot be
//! served, and pending releases (licences out of scope, in their grace period)
//! with their deadline, dropped when the holder comes back into scope.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use vppkit_core::{AdamId, Holder, SerialNumber};
use vppkit_rules::{BlockReason, Directory, InstallRequest, PendingRelease, Plan, PlanContext};
use vppkit_store::{DocumentQuery, NewDocument};

use crate::engine::Engine;
use crate::error::{EngineError, Result};
use crate::marks::Mark;
use crate::outbox::OUTBOX;

const REQUESTS: &str = "vppkit-engine/install-request";
const PENDING: &str = "vppkit-engine/pending-release";

/// A stored self-service request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct StoredRequest {
    /// The device asking.
    pub device: SerialNumber,
    /// The app or book it asks for.
    pub adam_id: AdamId,
    /// When it asked (earlier requests get scarce licences first).
    pub asked_at: DateTime<Utc>,
}

/// What became of a self-service request after a reconcile pass.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "outcome")]
#[non_exhaustive]
pub enum RequestOutcome {
    /// The install command is queued for the device (the request is done).
    Installing {
        /// One sentence.
        explain: String,
    },
    /// Waiting for a licence to free up (kept).
    Waitlisted {
        /// One sentence (with the place in the queue).
        explain: String,
    },
    /// Waiting for the user to accept the invitation, or for a release in flight (kept).
    Waiting {
        /// One sentence.
        explain: String,
    },
    /// It cannot be served (no Available policy offers it, unknown device, ...);
    /// the request is dropped.
    Refused {
        /// One sentence.
        explain: String,
    },
}

impl RequestOutcome {
    /// Whether the request stays stored for a later pass.
    pub fn is_waiting(&self) -> bool {
        matches!(
            self,
            RequestOutcome::Waitlisted { .. } | RequestOutcome::Waiting { .. }
        )
    }
}

/// A request and what became of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct RequestStatus {
    /// The request.
    pub request: StoredRequest,
    /// What became of it.
    pub outcome: RequestOutcome,
}

fn request_key(device: &SerialNumber, adam_id: &AdamId) -> String {
    format!("{}/{}", device.as_str(), adam_id.as_str())
}

fn pending_key(p: &PendingRelease) -> String {
    format!("{}/{}/{}", p.location, p.asset, p.holder)
}

impl Engine {
    /// A device asks to install an app or book an Available policy offers it:
    /// the request is stored and the reconcile loop serves it (first come,
    /// first served among requests) as soon as a licence is free. Asking again
    /// keeps the original place in the queue.
    pub async fn request_install(&self, device: SerialNumber, adam_id: AdamId) -> Result<()> {
        let inner = &self.inner;
        let key = request_key(&device, &adam_id);
        let request = StoredRequest {
            device,
            adam_id,
            asked_at: inner.now(),
        };
        let body = serde_json::to_value(&request)
            .map_err(|e| EngineError::Corrupt(format!("cannot encode a request: {e}")))?;
        let doc = NewDocument::new(REQUESTS, key, "waiting", body, inner.now());
        inner.store.insert_documents(&[doc]).await?;
        self.want_reconcile_everywhere("self-service request").await
    }

    /// The self-service requests still waiting, oldest first.
    pub async fn install_requests(&self) -> Result<Vec<StoredRequest>> {
        let docs = self
            .inner
            .store
            .all_documents(&DocumentQuery::new(REQUESTS, 1000))
            .await?;
        let mut out: Vec<StoredRequest> = docs
            .into_iter()
            .filter_map(|d| serde_json::from_value(d.body).ok())
            .collect();
        out.sort_by(|a, b| (a.asked_at, &a.device).cmp(&(b.asked_at, &b.device)));
        Ok(out)
    }

    /// Withdraws a request; returns whether it was stored.
    pub async fn cancel_install_request(
        &self,
        device: &SerialNumber,
        adam_id: &AdamId,
    ) -> Result<bool> {
        Ok(self
            .inner
            .store
            .delete_document(REQUESTS, &request_key(device, adam_id), None)
            .await?)
    }

    /// The licences in their grace period, as the last plan listed them.
    pub async fn pending_releases(&self) -> Result<Vec<PendingRelease>> {
        let docs = self
            .inner
            .store
            .all_documents(&DocumentQuery::new(PENDING, 1000))
            .await?;
        Ok(docs
            .into_iter()
            .filter_map(|d| serde_json::from_value(d.body).ok())
            .collect())
    }

    /// The planning context of the loop: now, the waiting requests in order,
    /// and when each pending release left scope. Plan with it (see
    /// [`Engine::plan`]) to see what the next reconcile pass would do.
    pub async fn plan_context(&self) -> Result<PlanContext> {
        let requests = self.install_requests().await?;
        let pending = self.pending_releases().await?;
        Ok(PlanContext::new(self.inner.now())
            .with_requests(
                requests
                    .iter()
                    .map(|r| InstallRequest::new(r.device.clone(), r.adam_id.clone()))
                    .collect(),
            )
            .with_pending(&pending))
    }

    /// Stores the plan's pending releases, each with its deadline as due time,
    /// and drops those the plan no longer lists (back in scope, or released).
    pub(crate) async fn store_pending_releases(&self, plan: &Plan) -> Result<()> {
        let store = &self.inner.store;
        let now = self.inner.now();
        let wanted: std::collections::BTreeMap<String, &PendingRelease> = plan
            .pending_releases
            .iter()
            .map(|p| (pending_key(p), p))
            .collect();
        let stored = store
            .all_documents(&DocumentQuery::new(PENDING, 1000))
            .await?;
        for d in &stored {
            if !wanted.contains_key(&d.key) {
                store.delete_document(PENDING, &d.key, None).await?;
            }
        }
        let docs: Vec<NewDocument> = wanted
            .iter()
            .filter(|(k, _)| !stored.iter().any(|d| &d.key == *k))
            .map(|(k, p)| {
                NewDocument::new(
                    PENDING,
                    k.as_str(),
                    "waiting",
                    serde_json::to_value(p).unwrap_or_default(),
                    now,
                )
                .with_location(p.location.clone())
                .with_due_at(Some(p.release_at))
            })
            .collect();
        store.insert_documents(&docs).await?;
        Ok(())
    }

    /// Settles the stored requests after a plan was applied: a request whose
    /// install is queued, or that the plan cannot serve, is done; one that
    /// waits for a licence or an invitation stays.
    pub(crate) async fn settle_requests(
        &self,
        plan: &Plan,
        directory: &Directory,
    ) -> Result<Vec<RequestStatus>> {
        let mut out = Vec::new();
        for request in self.install_requests().await? {
            let outcome = self.request_outcome(&request, plan, directory).await?;
            if !outcome.is_waiting() {
                self.inner
                    .store
                    .delete_document(
                        REQUESTS,
                        &request_key(&request.device, &request.adam_id),
                        None,
                    )
                    .await?;
            }
            out.push(RequestStatus { request, outcome });
        }
        Ok(out)
    }

    async fn request_outcome(
        &self,
        r: &StoredRequest,
        plan: &Plan,
        directory: &Directory,
    ) -> Result<RequestOutcome> {
        let holders = request_holders(r, directory);
        if self.install_queued_since(r).await? {
            return Ok(RequestOutcome::Installing {
                explain: format!(
                    "{} gets {}: Apple confirmed the licence and the install command is queued for the MDM.",
                    r.device, r.adam_id
                ),
            });
        }
        if let Some(w) = plan
            .waitlisted
            .iter()
            .find(|w| w.adam_id == r.adam_id && holders.contains(&w.holder))
        {
            return Ok(RequestOutcome::Waitlisted {
                explain: w.explain(),
            });
        }
        if let Some(b) = plan
            .blocked
            .iter()
            .find(|b| b.adam_id == r.adam_id && holders.contains(&b.holder))
        {
            let waiting = matches!(
                b.reason,
                BlockReason::AwaitingInvitation { .. } | BlockReason::ReleaseInFlight { .. }
            );
            return Ok(if waiting {
                RequestOutcome::Waiting {
                    explain: b.explain(),
                }
            } else {
                RequestOutcome::Refused {
                    explain: b.explain(),
                }
            });
        }
        // A licence being reserved right now: the install follows its confirmation.
        let in_flight = plan.commands.iter().any(|c| {
            c.device == r.device
                && c.command.adam_id() == Some(&r.adam_id)
                && c.command.request_type().starts_with("Install")
        });
        if in_flight {
            return Ok(RequestOutcome::Waiting {
                explain: format!(
                    "{} gets {} once Apple confirms its licence.",
                    r.device, r.adam_id
                ),
            });
        }
        Ok(RequestOutcome::Refused {
            explain: format!(
                "nothing to do: {} already has {} or no Available policy offers it",
                r.device, r.adam_id
            ),
        })
    }

    /// Whether the MDM has (or is about to get) an install of the request's app
    /// for its device: one in the outbox, queued, handed out or answered. An
    /// install handed out before the request (the app was already assigned)
    /// serves it too: the same command is not sent twice within the cooldown.
    async fn install_queued_since(&self, r: &StoredRequest) -> Result<bool> {
        let q = DocumentQuery::new(OUTBOX, 100).key_prefix(format!("{}/", r.device.as_str()));
        for entry in self.inner.store.documents(&q).await? {
            let install = entry.key.contains("/Install");
            let this_app = entry.key.ends_with(&format!("/{}", r.adam_id.as_str()));
            let failed = matches!(entry.status.as_str(), "failed" | "cancelled");
            if install && this_app && !failed {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Marks a reconcile pass when a pending release reaches its deadline.
    pub(crate) async fn want_reconcile_for_deadlines(&self) -> Result<()> {
        let now = self.inner.now();
        let due = self
            .inner
            .store
            .documents(&DocumentQuery::new(PENDING, 100).due_by(now))
            .await?;
        for d in due {
            if let Some(l) = &d.location {
                self.inner
                    .set_mark(Mark::Reconcile, l, "grace period over")
                    .await?;
            }
            // Marked once: the next plan releases it (or lists it again).
            let done = d.to_new(now).with_due_at(None);
            if let Err(e) = self.inner.store.put_document(&done, Some(d.revision)).await {
                tracing::debug!(error = %e, "a pending release changed while it was marked");
            }
        }
        Ok(())
    }
}

/// The holders that stand for a device's request: the device, and its user.
fn request_holders(r: &StoredRequest, directory: &Directory) -> Vec<Holder> {
    let mut holders = vec![Holder::Device(r.device.clone())];
    if let Some(u) = directory
        .device(&r.device)
        .and_then(|d| d.licence_user().cloned())
    {
        holders.push(Holder::User(u));
    }
    holders
}
