//! `GET users` and `POST users/create|update|retire`.

use serde::{Deserialize, Serialize};
use vppkit_core::{ClientUserId, VppUser, VppUserStatus};

use crate::envelope::enveloped;
use crate::pagination::{PageFields, RawPage};
use crate::records::Records;

/// Query filters of `GET users`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct UserFilter {
    /// `clientUserId`: one user (may list a retired and a re-created entry).
    pub client_user_id: Option<ClientUserId>,
    /// `activeOnly`.
    pub active_only: Option<bool>,
    /// `retiredOnly`.
    pub retired_only: Option<bool>,
    /// `includeRetired` (older name in Apple's "Getting started").
    pub include_retired: Option<bool>,
    /// `sinceVersionId`: only users changed since that version.
    pub since_version_id: Option<String>,
}

impl UserFilter {
    /// No filter: every user.
    pub fn new() -> Self {
        Self::default()
    }

    /// Only one user id.
    pub fn client_user_id(mut self, v: ClientUserId) -> Self {
        self.client_user_id = Some(v);
        self
    }

    /// Only active users.
    pub fn active_only(mut self, v: bool) -> Self {
        self.active_only = Some(v);
        self
    }

    /// Only retired users.
    pub fn retired_only(mut self, v: bool) -> Self {
        self.retired_only = Some(v);
        self
    }

    /// The older `includeRetired` switch.
    pub fn include_retired(mut self, v: bool) -> Self {
        self.include_retired = Some(v);
        self
    }

    /// Only changes since a version.
    pub fn since_version_id(mut self, v: impl Into<String>) -> Self {
        self.since_version_id = Some(v.into());
        self
    }

    /// The query pairs, in a stable order.
    pub fn query(&self) -> Vec<(&'static str, String)> {
        let mut q = Vec::new();
        if let Some(v) = &self.client_user_id {
            q.push(("clientUserId", v.as_str().to_owned()));
        }
        if let Some(v) = self.active_only {
            q.push(("activeOnly", v.to_string()));
        }
        if let Some(v) = self.retired_only {
            q.push(("retiredOnly", v.to_string()));
        }
        if let Some(v) = self.include_retired {
            q.push(("includeRetired", if v { "1" } else { "0" }.to_owned()));
        }
        if let Some(v) = &self.since_version_id {
            q.push(("sinceVersionId", v.clone()));
        }
        q
    }
}

/// A user as Apple sends it (`ResponseUser`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ResponseUser {
    /// The MDM's id of the user.
    pub client_user_id: ClientUserId,
    /// Invitation email.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Managed Apple Account, if Apple echoes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub managed_apple_id: Option<String>,
    /// Invitation code (32 hex chars; Registered users).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invite_code: Option<String>,
    /// Hash of the linked Apple Account (Associated users).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_hash: Option<String>,
    /// Status at Apple.
    pub status: VppUserStatus,
}

impl From<ResponseUser> for VppUser {
    fn from(u: ResponseUser) -> Self {
        let mut user = VppUser::new(u.client_user_id, u.status);
        user.email = u.email;
        user.managed_apple_id = u.managed_apple_id;
        user.invite_code = u.invite_code;
        user.id_hash = u.id_hash;
        user
    }
}

impl From<VppUser> for ResponseUser {
    /// The wire form of a core user (for fakes and tests).
    fn from(u: VppUser) -> Self {
        Self {
            client_user_id: u.client_user_id,
            email: u.email,
            managed_apple_id: u.managed_apple_id,
            invite_code: u.invite_code,
            id_hash: u.id_hash,
            status: u.status,
        }
    }
}

/// A user in a create/update/retire request (`RequestUser`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct RequestUser {
    /// The MDM's stable id of the user (Apple advises a GUID).
    pub client_user_id: ClientUserId,
    /// Email for the invitation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Managed Apple Account: the user is associated at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub managed_apple_id: Option<String>,
}

impl RequestUser {
    /// A user with only an id (enough to retire).
    pub fn new(client_user_id: ClientUserId) -> Self {
        Self {
            client_user_id,
            email: None,
            managed_apple_id: None,
        }
    }

    /// Adds an invitation email.
    pub fn with_email(mut self, email: impl Into<String>) -> Self {
        self.email = Some(email.into());
        self
    }

    /// Adds a Managed Apple Account.
    pub fn with_managed_apple_id(mut self, id: impl Into<String>) -> Self {
        self.managed_apple_id = Some(id.into());
        self
    }
}

/// The body of `POST users/create|update|retire` (`ManageUsersRequest`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ManageUsersRequest {
    /// The users (at most `maxUsers`, no duplicates).
    pub users: Vec<RequestUser>,
}

impl ManageUsersRequest {
    /// Builds a request.
    pub fn new(users: Vec<RequestUser>) -> Self {
        Self { users }
    }
}

enveloped! {
    pub(crate) struct RawUsersPage {
        #[serde(default)]
        users: Records<ResponseUser>,
        #[serde(default)]
        current_page_index: Option<u32>,
        #[serde(default)]
        next_page_index: Option<u32>,
        #[serde(default)]
        size: Option<u32>,
        #[serde(default)]
        total_pages: Option<u32>,
        #[serde(default)]
        version_id: Option<String>,
    }
}

impl RawPage for RawUsersPage {
    type Item = ResponseUser;
    fn into_fields(mut self) -> PageFields<ResponseUser> {
        let envelope = self.take_envelope();
        PageFields {
            skipped: self.users.skipped("users"),
            items: self.users.items,
            current_page_index: self.current_page_index,
            next_page_index: self.next_page_index,
            size: self.size,
            total_pages: self.total_pages,
            version_id: self.version_id,
            envelope,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_users() {
        let u: ResponseUser = serde_json::from_str(
            r#"{"clientUserId":"u-7f3a","email":"ana@example.org","idHash":"Qm9n","inviteCode":"0f1e","status":"Associated","extra":true}"#,
        )
        .unwrap();
        let v = VppUser::from(u.clone());
        assert_eq!(ResponseUser::from(v.clone()), u);
        assert_eq!(v.status, VppUserStatus::Associated);
        assert_eq!(v.email.as_deref(), Some("ana@example.org"));
        assert_eq!(v.invite_code.as_deref(), Some("0f1e"));
    }

    #[test]
    fn request_shape() {
        let r = ManageUsersRequest::new(vec![
            RequestUser::new(ClientUserId::new("u1").unwrap()).with_email("a@example.org")
        ]);
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"users":[{"clientUserId":"u1","email":"a@example.org"}]}"#
        );
        let q = UserFilter::new()
            .active_only(true)
            .retired_only(false)
            .include_retired(false)
            .since_version_id("v")
            .client_user_id(ClientUserId::new("u1").unwrap())
            .query();
        assert_eq!(q.len(), 5);
    }
}
