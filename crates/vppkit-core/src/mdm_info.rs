//! `mdmInfo`: which MDM claims a token.

use serde::{Deserialize, Serialize};

/// Apple's limit on `mdmInfo.id` (`maxMdmIdLength`).
pub const MAX_ID_LEN: usize = 100;
/// Apple's limit on `mdmInfo.name` (`maxMdmNameLength`).
pub const MAX_NAME_LEN: usize = 100;
/// Apple's limit on `mdmInfo.metadata` (`maxMdmMetadataLength`).
pub const MAX_METADATA_LEN: usize = 255;

/// An `mdmInfo` that breaks Apple's rules (9723, 9724, 9725, 9713).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MdmInfoError {
    /// A field is empty (Apple: 9723).
    #[error("mdmInfo.{0} must not be empty")]
    Missing(&'static str),
    /// A field is too long (Apple: 9724 id, 9725 name, 9713 metadata).
    #[error("mdmInfo.{field} is {len} characters long, at most {max} allowed")]
    TooLong {
        /// The field.
        field: &'static str,
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
}

/// The MDM that claims a token: `{id, name, metadata}`. Apple echoes it on every
/// answer once set, which is how another MDM's claim is noticed.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub struct MdmInfo {
    /// A stable id of the MDM instance (zentral uses a UUID per location).
    pub id: String,
    /// A display name.
    pub name: String,
    /// Free text (a host name, say).
    pub metadata: String,
}

impl MdmInfo {
    /// Builds an `mdmInfo`, checking Apple's default limits.
    pub fn new(
        id: impl Into<String>,
        name: impl Into<String>,
        metadata: impl Into<String>,
    ) -> Result<Self, MdmInfoError> {
        let info = Self::new_unchecked(id, name, metadata);
        info.validate(MAX_ID_LEN, MAX_NAME_LEN, MAX_METADATA_LEN)?;
        Ok(info)
    }

    /// Builds an `mdmInfo` as received from Apple, without checks.
    pub fn new_unchecked(
        id: impl Into<String>,
        name: impl Into<String>,
        metadata: impl Into<String>,
    ) -> Self {
        Self {
            id: id.into(),
            name: name.into(),
            metadata: metadata.into(),
        }
    }

    /// Checks the fields against the given limits (from `service/config`).
    pub fn validate(
        &self,
        max_id: usize,
        max_name: usize,
        max_metadata: usize,
    ) -> Result<(), MdmInfoError> {
        for (field, value, max) in [
            ("id", &self.id, max_id),
            ("name", &self.name, max_name),
            ("metadata", &self.metadata, max_metadata),
        ] {
            if value.is_empty() {
                return Err(MdmInfoError::Missing(field));
            }
            let len = value.chars().count();
            if len > max {
                return Err(MdmInfoError::TooLong { field, len, max });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits() {
        assert!(MdmInfo::new("id", "name", "meta").is_ok());
        assert_eq!(MdmInfo::new("", "n", "m"), Err(MdmInfoError::Missing("id")));
        assert!(matches!(
            MdmInfo::new("i", "n", "m".repeat(256)),
            Err(MdmInfoError::TooLong {
                field: "metadata",
                ..
            })
        ));
    }
}
