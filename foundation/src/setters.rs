//! Chainable setters for `#[non_exhaustive]` config structs.
//!
//! A config struct with public fields is `#[non_exhaustive]` so that a new field is not a breaking change,
//! which forbids struct literals outside its crate. [`setters!`](crate::setters) gives it the other way to
//! build one in an expression: start from `Default` (or the type's constructor) and chain one call per field,
//! each named after its field.

/// Defines chainable setters on a struct, one per listed field, named after it: `value.field(x)` sets the
/// field and returns the value. `field: Some(T)` makes a setter for an `Option<T>` field that takes a `T`.
///
/// Each setter's doc says which field it sets; the field's own doc says what it means.
///
/// ```
/// #[derive(Debug, Default)]
/// #[non_exhaustive]
/// pub struct Widget {
///     /// How big.
///     pub size: u32,
///     /// Its label, if any.
///     pub label: Option<String>,
/// }
///
/// brownout_foundation::setters! {
///     impl Widget {
///         size: u32,
///         label: Some(String),
///     }
/// }
///
/// let widget = Widget::default().size(3).label("big".to_owned());
/// assert_eq!((widget.size, widget.label.as_deref()), (3, Some("big")));
/// ```
#[macro_export]
macro_rules! setters {
    (impl $ty:ty { $($fields:tt)* }) => {
        impl $ty {
            $crate::setters!(@fields $($fields)*);
        }
    };
    (@fields) => {};
    (@fields $field:ident : Some($inner:ty) $(, $($rest:tt)*)?) => {
        #[doc = concat!("Sets `", stringify!($field), "` to `Some(value)` and returns `self`.")]
        #[must_use]
        pub fn $field(mut self, value: $inner) -> Self {
            self.$field = ::std::option::Option::Some(value);
            self
        }
        $crate::setters!(@fields $($($rest)*)?);
    };
    (@fields $field:ident : $t:ty $(, $($rest:tt)*)?) => {
        #[doc = concat!("Sets `", stringify!($field), "` and returns `self`.")]
        #[must_use]
        pub fn $field(mut self, value: $t) -> Self {
            self.$field = value;
            self
        }
        $crate::setters!(@fields $($($rest)*)?);
    };
}
