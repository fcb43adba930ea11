//! Ids that only the rules use: policies and directory groups.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use vppkit_core::ValueError;

const MAX_LEN: usize = 128;

fn check(kind: &'static str, value: &str) -> Result<(), ValueError> {
    if value.is_empty() {
        return Err(ValueError::Empty { kind });
    }
    let len = value.chars().count();
    if len > MAX_LEN {
        return Err(ValueError::TooLong {
            kind,
            len,
            max: MAX_LEN,
        });
    }
    if value.chars().any(|c| c.is_control()) {
        return Err(ValueError::BadCharacter {
            kind,
            value: value.chars().take(80).collect(),
            rule: "no control characters",
        });
    }
    Ok(())
}

macro_rules! rules_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(Arc<str>);

        impl $name {
            /// Validates and wraps an id: 1 to 128 characters, no control characters.
            pub fn new(value: impl Into<String>) -> Result<Self, ValueError> {
                let value = value.into();
                check($kind, &value)?;
                Ok(Self(value.into()))
            }

            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = ValueError;
            fn try_from(value: String) -> Result<Self, ValueError> {
                Self::new(value)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0.as_ref().to_owned()
            }
        }

        impl FromStr for $name {
            type Err = ValueError;
            fn from_str(s: &str) -> Result<Self, ValueError> {
                Self::new(s)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0)
            }
        }
    };
}

rules_id!(
    /// The id of an assignment policy, chosen by whoever writes the policy file.
    PolicyId,
    "policy id"
);

rules_id!(
    /// The id of a group in the MDM's directory.
    GroupId,
    "group id"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_validate() {
        assert_eq!(PolicyId::new("math-apps").unwrap().as_str(), "math-apps");
        assert!(matches!(PolicyId::new(""), Err(ValueError::Empty { .. })));
        assert!(matches!(
            GroupId::new("a\nb"),
            Err(ValueError::BadCharacter { .. })
        ));
        assert!(matches!(
            GroupId::new("x".repeat(129)),
            Err(ValueError::TooLong { .. })
        ));
        let g: GroupId = serde_json::from_str("\"Year 7 pupils\"").unwrap();
        assert_eq!(g.to_string(), "Year 7 pupils");
        assert!(serde_json::from_str::<GroupId>("\"\"").is_err());
    }
}
