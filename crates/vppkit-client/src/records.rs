//! Lists of records read one by one: a record Apple sends that cannot be read is
//! reported and skipped instead of failing the whole page.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{DeserializeOwned, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

/// A record of a page (or of a notification) that could not be read and was left out of
/// [`Page::items`] (or of the notification's list).
///
/// The client logs each one at `warn` level. Build the client with
/// [`ClientBuilder::strict_records`] to fail the walk with [`Error::Record`]
/// instead.
///
/// [`Page::items`]: crate::Page::items
/// [`ClientBuilder::strict_records`]: crate::ClientBuilder::strict_records
/// [`Error::Record`]: crate::Error::Record
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SkippedRecord {
    /// The page index (0 in a notification).
    pub page: u32,
    /// The list the record was in (`assets`, `unlimitedAssets`, `assignments`, `users`).
    pub list: &'static str,
    /// Its zero-based position in that list.
    pub position: usize,
    /// Why it could not be read (the parse error; records hold ids, never tokens).
    pub reason: String,
}

impl fmt::Display for SkippedRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "page {} {}[{}]: {}",
            self.page, self.list, self.position, self.reason
        )
    }
}

/// A JSON array read record by record.
#[derive(Debug)]
pub(crate) struct Records<T> {
    pub(crate) items: Vec<T>,
    /// `(position, reason)` of the records that could not be read.
    pub(crate) failed: Vec<(usize, String)>,
}

impl<T> Default for Records<T> {
    fn default() -> Self {
        Self {
            items: Vec::new(),
            failed: Vec::new(),
        }
    }
}

impl<T> Records<T> {
    /// The failures as skipped records of a list (the page index is filled in later).
    pub(crate) fn skipped(&self, list: &'static str) -> Vec<SkippedRecord> {
        self.failed
            .iter()
            .map(|(position, reason)| SkippedRecord {
                page: 0,
                list,
                position: *position,
                reason: reason.clone(),
            })
            .collect()
    }
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for Records<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);

        impl<'de, T: DeserializeOwned> Visitor<'de> for V<T> {
            type Value = Records<T>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an array of records")
            }

            fn visit_unit<E: serde::de::Error>(self) -> Result<Records<T>, E> {
                Ok(Records::default())
            }

            fn visit_none<E: serde::de::Error>(self) -> Result<Records<T>, E> {
                Ok(Records::default())
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Records<T>, A::Error> {
                let mut out = Records {
                    items: Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096)),
                    failed: Vec::new(),
                };
                let mut position = 0;
                // Each record is first taken as raw text (the page as a whole stays
                // well-formed JSON), then read on its own, so one odd record cannot
                // spoil its neighbours.
                while let Some(raw) = seq.next_element::<Box<RawValue>>()? {
                    match serde_json::from_str::<T>(raw.get()) {
                        Ok(item) => out.items.push(item),
                        Err(e) => out.failed.push((position, e.to_string())),
                    }
                    position += 1;
                }
                Ok(out)
            }
        }

        d.deserialize_any(V(PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize, PartialEq)]
    struct R {
        n: u32,
    }

    #[test]
    fn keeps_good_records_and_reports_bad_ones() {
        let r: Records<R> = serde_json::from_str(r#"[{"n":1},{"n":"x"},{"m":2},{"n":4}]"#).unwrap();
        assert_eq!(r.items, vec![R { n: 1 }, R { n: 4 }]);
        assert_eq!(
            r.failed.iter().map(|(p, _)| *p).collect::<Vec<_>>(),
            vec![1, 2]
        );
        let s = r.skipped("users");
        assert_eq!(s[0].list, "users");
        assert!(s[1].to_string().contains("users[2]"));
        let empty: Records<R> = serde_json::from_str("null").unwrap();
        assert!(empty.items.is_empty());
        assert!(serde_json::from_str::<Records<R>>(r#"{"n":1}"#).is_err());
    }
}
