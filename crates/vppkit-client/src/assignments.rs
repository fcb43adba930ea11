//! `GET assignments`: filters and the wire assignment.

use serde::{Deserialize, Serialize};
use vppkit_core::{
    AdamId, AssetKey, ClientUserId, Holder, PricingParam, SerialNumber, VppUserStatus,
};

use crate::envelope::enveloped;
use crate::pagination::{PageFields, RawPage};
use crate::records::Records;

/// Query filters of `GET assignments`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct AssignmentFilter {
    /// `adamId`.
    pub adam_id: Option<AdamId>,
    /// `pricingParam`.
    pub pricing_param: Option<PricingParam>,
    /// `clientUserId`.
    pub client_user_id: Option<ClientUserId>,
    /// `serialNumber`.
    pub serial_number: Option<SerialNumber>,
    /// `sinceVersionId`: only what changed since that version (incremental read).
    pub since_version_id: Option<String>,
    /// `excludeInactiveUsers`: leave out retired or inactive users.
    pub exclude_inactive_users: Option<bool>,
    /// `includeUserState`: add `userStatus` and `idHash` to user assignments.
    pub include_user_state: Option<bool>,
}

impl AssignmentFilter {
    /// No filter: every assignment.
    pub fn new() -> Self {
        Self::default()
    }

    /// Only one product.
    pub fn adam_id(mut self, v: AdamId) -> Self {
        self.adam_id = Some(v);
        self
    }

    /// Only one pricing param.
    pub fn pricing_param(mut self, v: PricingParam) -> Self {
        self.pricing_param = Some(v);
        self
    }

    /// Only one user.
    pub fn client_user_id(mut self, v: ClientUserId) -> Self {
        self.client_user_id = Some(v);
        self
    }

    /// Only one device.
    pub fn serial_number(mut self, v: SerialNumber) -> Self {
        self.serial_number = Some(v);
        self
    }

    /// Only changes since a version (the first page's `versionId` of an earlier walk).
    pub fn since_version_id(mut self, v: impl Into<String>) -> Self {
        self.since_version_id = Some(v.into());
        self
    }

    /// Leave out retired or inactive users.
    pub fn exclude_inactive_users(mut self, v: bool) -> Self {
        self.exclude_inactive_users = Some(v);
        self
    }

    /// Add `userStatus` and `idHash` to user assignments.
    pub fn include_user_state(mut self, v: bool) -> Self {
        self.include_user_state = Some(v);
        self
    }

    /// The query pairs, in a stable order.
    pub fn query(&self) -> Vec<(&'static str, String)> {
        let mut q = Vec::new();
        if let Some(v) = &self.adam_id {
            q.push(("adamId", v.as_str().to_owned()));
        }
        if let Some(v) = self.pricing_param {
            q.push(("pricingParam", v.as_str().to_owned()));
        }
        if let Some(v) = &self.client_user_id {
            q.push(("clientUserId", v.as_str().to_owned()));
        }
        if let Some(v) = &self.serial_number {
            q.push(("serialNumber", v.as_str().to_owned()));
        }
        if let Some(v) = &self.since_version_id {
            q.push(("sinceVersionId", v.clone()));
        }
        if let Some(v) = self.exclude_inactive_users {
            q.push(("excludeInactiveUsers", v.to_string()));
        }
        if let Some(v) = self.include_user_state {
            q.push(("includeUserState", v.to_string()));
        }
        q
    }
}

/// One assignment: an asset held by a device or a user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Assignment {
    /// Product id.
    pub adam_id: AdamId,
    /// Store quality (Apple always sends it; STDQ if absent).
    #[serde(default)]
    pub pricing_param: PricingParam,
    /// The device, for a device licence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial_number: Option<SerialNumber>,
    /// The user, for a user licence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_user_id: Option<ClientUserId>,
    /// With `includeUserState=true`: the user's status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_status: Option<VppUserStatus>,
    /// With `includeUserState=true`: the user's `idHash`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_hash: Option<String>,
}

impl Assignment {
    /// A device assignment.
    pub fn device(key: AssetKey, serial: SerialNumber) -> Self {
        Self {
            adam_id: key.adam_id,
            pricing_param: key.pricing_param,
            serial_number: Some(serial),
            client_user_id: None,
            user_status: None,
            id_hash: None,
        }
    }

    /// A user assignment.
    pub fn user(key: AssetKey, user: ClientUserId) -> Self {
        Self {
            adam_id: key.adam_id,
            pricing_param: key.pricing_param,
            serial_number: None,
            client_user_id: Some(user),
            user_status: None,
            id_hash: None,
        }
    }

    /// `(adamId, pricingParam)`.
    pub fn asset_key(&self) -> AssetKey {
        AssetKey::new(self.adam_id.clone(), self.pricing_param)
    }

    /// The holder: the serial number if present, else the user. `None` only for a
    /// malformed answer naming neither.
    pub fn holder(&self) -> Option<Holder> {
        match (&self.serial_number, &self.client_user_id) {
            (Some(s), _) => Some(Holder::Device(s.clone())),
            (None, Some(u)) => Some(Holder::User(u.clone())),
            (None, None) => None,
        }
    }
}

enveloped! {
    pub(crate) struct RawAssignmentsPage {
        #[serde(default)]
        assignments: Records<Assignment>,
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

impl RawPage for RawAssignmentsPage {
    type Item = Assignment;
    fn into_fields(mut self) -> PageFields<Assignment> {
        let envelope = self.take_envelope();
        PageFields {
            skipped: self.assignments.skipped("assignments"),
            items: self.assignments.items,
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
    fn holders() {
        let page: RawAssignmentsPage = serde_json::from_str(
            r#"{"assignments":[{"adamId":"1200000001","pricingParam":"STDQ","serialNumber":"C02XK0AAJGH5"},
            {"adamId":"1200000001","pricingParam":"STDQ","clientUserId":"u-7f3a","userStatus":"Associated","idHash":"x"}],
            "currentPageIndex":0,"size":2,"totalPages":1,"versionId":"9a44","tokenExpirationDate":"2031-03-01T18:00:00+0000","uId":"7300112233445566"}"#,
        )
        .unwrap();
        let f = page.into_fields();
        assert!(f.items[0].holder().unwrap().is_device());
        assert_eq!(f.items[1].holder().unwrap().id(), "u-7f3a");
        assert_eq!(f.items[1].user_status, Some(VppUserStatus::Associated));
        assert_eq!(f.version_id.as_deref(), Some("9a44"));
        assert!(f.envelope.token_expiration_date.is_some());
    }

    #[test]
    fn filter_query() {
        let q = AssignmentFilter::new()
            .adam_id(AdamId::new("1").unwrap())
            .pricing_param(PricingParam::Stdq)
            .client_user_id(ClientUserId::new("u").unwrap())
            .serial_number(SerialNumber::new("S").unwrap())
            .since_version_id("v9")
            .exclude_inactive_users(true)
            .include_user_state(true)
            .query();
        assert_eq!(q.len(), 7);
        assert!(q.contains(&("sinceVersionId", "v9".into())));
    }
}
