//! Errors that name the file, the field and the reason, for config files and values.
//!
//! [`field_error!`](crate::field_error) defines one such type per crate (`brownout_chaos::ConfigError`,
//! `brownout_degrade::FlagError`, `brownout_cost::budget::BudgetError`), so each crate keeps its own type, with its
//! own name in messages, and the code is written once.

/// Defines a public error type that names a file (when there is one), a field path (empty for the whole
/// document) and a reason, with `Display` reading `FILE: FIELD: REASON` (the `subject` instead of the file
/// when there is none; no `FIELD: ` for the whole document).
///
/// The type gets `pub(crate)` constructors `new(field, reason)` and `in_file(Option<&Path>)` (which keeps a
/// file already set), the getters `file()`, `field()` and `reason()`, and `Debug`, `Clone`, `PartialEq`,
/// `Eq`, `Display` and `std::error::Error`.
///
/// ```
/// brownout_foundation::field_error! {
///     /// A widget file that was refused.
///     pub struct WidgetError { subject: "widgets", field_example: "widgets[0].size" }
/// }
///
/// let e = WidgetError::new("widgets[0].size", "must be positive");
/// assert_eq!(e.to_string(), "widgets: widgets[0].size: must be positive");
/// let e = e.in_file(Some(std::path::Path::new("w.yaml")));
/// assert_eq!(e.to_string(), "w.yaml: widgets[0].size: must be positive");
/// assert_eq!((e.field(), e.reason()), ("widgets[0].size", "must be positive"));
/// assert_eq!(WidgetError::new("", "the file is empty").to_string(), "widgets: the file is empty");
/// ```
#[macro_export]
macro_rules! field_error {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident { subject: $subject:literal, field_example: $example:literal $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        $vis struct $name {
            file: ::std::option::Option<::std::path::PathBuf>,
            field: ::std::string::String,
            reason: ::std::string::String,
        }

        #[allow(dead_code)]
        impl $name {
            pub(crate) fn new(
                field: impl ::std::convert::Into<::std::string::String>,
                reason: impl ::std::convert::Into<::std::string::String>,
            ) -> Self {
                Self { file: ::std::option::Option::None, field: field.into(), reason: reason.into() }
            }

            pub(crate) fn in_file(mut self, file: ::std::option::Option<&::std::path::Path>) -> Self {
                if self.file.is_none() {
                    self.file = file.map(::std::path::Path::to_path_buf);
                }
                self
            }

            /// The file, when the error came from one.
            pub fn file(&self) -> ::std::option::Option<&::std::path::Path> {
                self.file.as_deref()
            }

            #[doc = concat!("The path of the offending field, such as `", $example, "`; empty for the whole document.")]
            pub fn field(&self) -> &str {
                &self.field
            }

            /// Why it was refused.
            pub fn reason(&self) -> &str {
                &self.reason
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                match &self.file {
                    ::std::option::Option::Some(file) => ::std::write!(f, "{}: ", file.display())?,
                    ::std::option::Option::None => f.write_str(concat!($subject, ": "))?,
                }
                if self.field.is_empty() {
                    f.write_str(&self.reason)
                } else {
                    ::std::write!(f, "{}: {}", self.field, self.reason)
                }
            }
        }

        impl ::std::error::Error for $name {}
    };
}

#[cfg(test)]
#[allow(unreachable_pub)]
mod tests {
    use std::path::Path;

    crate::field_error! {
        /// A test error.
        pub(crate) struct TestError { subject: "test config", field_example: "a.b" }
    }

    #[test]
    fn display_names_the_file_or_the_subject_then_the_field() {
        let e = TestError::new("rules[2].sample.rate", "must be within [0, 1], got 1.5");
        assert_eq!(e.to_string(), "test config: rules[2].sample.rate: must be within [0, 1], got 1.5");
        assert_eq!(e.file(), None);
        let e = e.in_file(Some(Path::new("configs/x.yaml")));
        assert_eq!(e.to_string(), "configs/x.yaml: rules[2].sample.rate: must be within [0, 1], got 1.5");
        assert_eq!(e.file(), Some(Path::new("configs/x.yaml")));
        assert_eq!(e.field(), "rules[2].sample.rate");
        assert_eq!(e.reason(), "must be within [0, 1], got 1.5");
    }

    #[test]
    fn the_first_file_stays_and_a_whole_document_error_has_no_field() {
        let e = TestError::new("", "empty").in_file(Some(Path::new("a.yaml"))).in_file(Some(Path::new("b.yaml")));
        assert_eq!(e.to_string(), "a.yaml: empty");
        assert_eq!(TestError::new("", "empty").in_file(None).to_string(), "test config: empty");
        let boxed: Box<dyn std::error::Error> = Box::new(TestError::new("x", "y"));
        assert_eq!(boxed.to_string(), "test config: x: y");
    }
}
