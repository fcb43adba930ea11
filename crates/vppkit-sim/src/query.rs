//! Query-string reading with Apple's error numbers.

use std::borrow::Cow;

use crate::codes::{ApiError, Code};

/// A parsed query string.
#[derive(Debug, Default)]
pub(crate) struct Query<'a>(Vec<(Cow<'a, str>, Cow<'a, str>)>);

impl<'a> Query<'a> {
    /// Parses `a=1&b=2` (no leading `?`).
    pub(crate) fn parse(raw: Option<&'a str>) -> Self {
        Self(
            raw.map(|r| url::form_urlencoded::parse(r.as_bytes()).collect())
                .unwrap_or_default(),
        )
    }

    /// The first value of `key`, empty values treated as absent.
    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, v)| k == key && !v.is_empty())
            .map(|(_, v)| v.as_ref())
    }

    /// A boolean parameter (`true`/`false`/`1`/`0`); anything else is 9602.
    pub(crate) fn bool(&self, key: &str) -> Result<Option<bool>, ApiError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) if v.eq_ignore_ascii_case("true") || v == "1" => Ok(Some(true)),
            Some(v) if v.eq_ignore_ascii_case("false") || v == "0" => Ok(Some(false)),
            Some(_) => Err(ApiError::new(Code::InvalidArgument)),
        }
    }

    /// A non-negative integer parameter; anything else is 9602.
    pub(crate) fn u32(&self, key: &str) -> Result<Option<u32>, ApiError> {
        self.get(key)
            .map(|v| {
                v.trim()
                    .parse::<u32>()
                    .map_err(|_| ApiError::new(Code::InvalidArgument))
            })
            .transpose()
    }

    /// `pageIndex`: absent is 0; not an integer is 9602; negative is 9650.
    pub(crate) fn page_index(&self) -> Result<usize, ApiError> {
        match self.get("pageIndex") {
            None => Ok(0),
            Some(v) => {
                let n: i64 = v
                    .trim()
                    .parse()
                    .map_err(|_| ApiError::new(Code::InvalidArgument))?;
                usize::try_from(n).map_err(|_| ApiError::new(Code::PageIndexOutOfRange))
            }
        }
    }
}

/// Where one page starts and ends in a list of `total` items.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PageBounds {
    pub(crate) start: usize,
    pub(crate) end: usize,
    pub(crate) index: usize,
    pub(crate) total_pages: usize,
}

impl PageBounds {
    /// Page `index` of `total` items at `size` per page. An empty list has zero
    /// pages and answers page 0 with no items; any other index past the last
    /// page is 9650.
    pub(crate) fn new(total: usize, size: usize, index: usize) -> Result<Self, ApiError> {
        let size = size.max(1);
        let total_pages = total.div_ceil(size);
        if index >= total_pages && !(index == 0 && total == 0) {
            return Err(ApiError::new(Code::PageIndexOutOfRange));
        }
        let start = index * size;
        Ok(Self {
            start,
            end: (start + size).min(total),
            index,
            total_pages,
        })
    }

    /// `nextPageIndex`, present only when another page exists.
    pub(crate) fn next(&self) -> Option<usize> {
        (self.index + 1 < self.total_pages).then_some(self.index + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds() {
        let b = PageBounds::new(2500, 1000, 2).unwrap();
        assert_eq!(
            (b.start, b.end, b.total_pages, b.next()),
            (2000, 2500, 3, None)
        );
        assert_eq!(PageBounds::new(2500, 1000, 0).unwrap().next(), Some(1));
        assert!(PageBounds::new(2500, 1000, 3).is_err());
        let empty = PageBounds::new(0, 1000, 0).unwrap();
        assert_eq!((empty.start, empty.end, empty.total_pages), (0, 0, 0));
        assert!(PageBounds::new(0, 1000, 1).is_err());
    }

    #[test]
    fn params() {
        let q = Query::parse(Some("pageIndex=-1&a=true&b=x&c=&n=12"));
        assert_eq!(q.page_index().unwrap_err().code, Code::PageIndexOutOfRange);
        assert_eq!(q.bool("a").unwrap(), Some(true));
        assert!(q.bool("b").is_err());
        assert_eq!(q.get("c"), None);
        assert_eq!(q.u32("n").unwrap(), Some(12));
        let bad = Query::parse(Some("pageIndex=x"));
        assert_eq!(bad.page_index().unwrap_err().code, Code::InvalidArgument);
    }
}
