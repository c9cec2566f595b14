//! [`JobId`]: a job's id, written out only when something reads it.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::Label;

/// A job's id: a name the caller gives (`"bt-42"`), or a prefix and a running number (`quote-api-17`) that
/// is written out only when something reads it. `CostLayer` numbers its requests this way: most per-request
/// records go to counters and budgets that never read the id, so numbering a request allocates nothing.
///
/// It reads as the text it stands for: [`Display`](fmt::Display), comparisons with strings, and serde (a JSON
/// string either way).
///
/// ```
/// use brownout_cost::JobId;
///
/// let numbered = JobId::numbered("quote-api", 17);
/// assert_eq!(numbered, "quote-api-17");
/// assert_eq!(numbered, JobId::from("quote-api-17"));
/// assert_eq!(numbered.to_string(), "quote-api-17");
/// assert_eq!(serde_json::to_string(&numbered).unwrap(), r#""quote-api-17""#);
/// ```
#[derive(Clone)]
pub struct JobId(Repr);

#[derive(Clone)]
enum Repr {
    Named(String),
    Numbered { prefix: Label, number: u64 },
}

impl JobId {
    /// `{prefix}-{number}`, written out when read.
    pub fn numbered(prefix: impl Into<Label>, number: u64) -> JobId {
        JobId(Repr::Numbered { prefix: prefix.into(), number })
    }

    /// The id as text: borrowed when it was given as text.
    pub fn as_text(&self) -> std::borrow::Cow<'_, str> {
        match &self.0 {
            Repr::Named(name) => std::borrow::Cow::Borrowed(name),
            Repr::Numbered { .. } => std::borrow::Cow::Owned(self.to_string()),
        }
    }

    /// Whether the id reads as `text`, without writing it out.
    fn reads_as(&self, text: &str) -> bool {
        match &self.0 {
            Repr::Named(name) => name == text,
            Repr::Numbered { prefix, number } => text
                .strip_prefix(prefix.as_str())
                .and_then(|rest| rest.strip_prefix('-'))
                .is_some_and(|digits| digits == itoa::Buffer::new().format(*number)),
        }
    }
}

impl Default for JobId {
    /// The empty name.
    fn default() -> Self {
        JobId(Repr::Named(String::new()))
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Repr::Named(name) => f.write_str(name),
            Repr::Numbered { prefix, number } => {
                f.write_str(prefix)?;
                f.write_str("-")?;
                f.write_str(itoa::Buffer::new().format(*number))
            }
        }
    }
}

impl fmt::Debug for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.as_text(), f)
    }
}

impl From<String> for JobId {
    fn from(name: String) -> Self {
        JobId(Repr::Named(name))
    }
}

impl From<&str> for JobId {
    fn from(name: &str) -> Self {
        JobId(Repr::Named(name.to_owned()))
    }
}

impl From<&String> for JobId {
    fn from(name: &String) -> Self {
        JobId(Repr::Named(name.clone()))
    }
}

impl From<JobId> for String {
    fn from(id: JobId) -> String {
        match id.0 {
            Repr::Named(name) => name,
            Repr::Numbered { .. } => id.to_string(),
        }
    }
}

impl PartialEq for JobId {
    fn eq(&self, other: &JobId) -> bool {
        match (&self.0, &other.0) {
            // Both end in `-` and their number's digits: the same text only with the same number and prefix.
            (Repr::Numbered { prefix: a, number: m }, Repr::Numbered { prefix: b, number: n }) => m == n && a == b,
            (_, Repr::Named(name)) => self.reads_as(name),
            (Repr::Named(name), _) => other.reads_as(name),
        }
    }
}

impl Eq for JobId {}

impl PartialEq<str> for JobId {
    fn eq(&self, other: &str) -> bool {
        self.reads_as(other)
    }
}

impl PartialEq<&str> for JobId {
    fn eq(&self, other: &&str) -> bool {
        self.reads_as(other)
    }
}

impl PartialEq<String> for JobId {
    fn eq(&self, other: &String) -> bool {
        self.reads_as(other)
    }
}

impl Serialize for JobId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match &self.0 {
            Repr::Named(name) => serializer.serialize_str(name),
            Repr::Numbered { .. } => serializer.collect_str(self),
        }
    }
}

impl<'de> Deserialize<'de> for JobId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(JobId::from)
    }
}

#[cfg(test)]
#[allow(clippy::cmp_owned, reason = "the tests compare ids with ids built for the purpose, and texts with texts")]
mod tests {
    use proptest::prelude::*;

    use super::JobId;

    proptest! {
        /// A numbered id is, in every comparison and every writing, the text `{prefix}-{number}`.
        #[test]
        fn a_numbered_id_reads_as_its_text(prefix in "[a-z0-9-]{0,12}", number: u64, other in "[a-z0-9-]{0,16}") {
            let id = JobId::numbered(prefix.as_str(), number);
            let text = format!("{prefix}-{number}");
            prop_assert_eq!(id.to_string(), text.clone());
            prop_assert_eq!(format!("{id:?}"), format!("{text:?}"));
            prop_assert_eq!(String::from(id.clone()), text.clone());
            prop_assert_eq!(serde_json::to_string(&id).unwrap(), serde_json::to_string(&text).unwrap());
            prop_assert!(id == text.as_str());
            prop_assert_eq!(id == other.as_str(), text == other);
            prop_assert_eq!(id == JobId::from(other.as_str()), text == other);
            prop_assert_eq!(JobId::from(other.as_str()) == id, text == other);
        }

        /// Text one edit away from a numbered id's (a character left out, a leading zero) is not the id.
        #[test]
        fn a_numbered_id_is_not_a_near_miss(prefix in "[a-z-]{0,8}", number: u64, at in any::<prop::sample::Index>()) {
            let id = JobId::numbered(prefix.as_str(), number);
            let text = id.to_string();
            let mut shorter = text.clone();
            shorter.remove(at.index(text.len()));
            prop_assert!(id != shorter.as_str(), "{:?} equals {:?}", id, shorter);
            prop_assert!(id != JobId::from(shorter));
            let leading_zero = format!("{prefix}-0{number}");
            prop_assert!(id != leading_zero);
        }

        /// Two numbered ids are equal exactly when their texts are, however prefix and number split them.
        #[test]
        fn numbered_ids_compare_by_text(a in "[a-z1-]{0,4}", m in 0u64..30, b in "[a-z1-]{0,4}", n in 0u64..30) {
            let (x, y) = (JobId::numbered(a.as_str(), m), JobId::numbered(b.as_str(), n));
            prop_assert_eq!(x == y, x.to_string() == y.to_string());
        }

        /// An id read back from JSON is the id written.
        #[test]
        fn an_id_round_trips_through_json(prefix in "[a-z]{0,8}", number: u64) {
            let id = JobId::numbered(prefix.as_str(), number);
            let back: JobId = serde_json::from_str(&serde_json::to_string(&id).unwrap()).unwrap();
            prop_assert_eq!(back, id);
        }
    }
}
