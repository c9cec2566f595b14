//! The error of flag files and flag values: it names the file, the field and the reason.

brownout_foundation::field_error! {
    /// A flag file, flag name or value that was refused. The flags in force before stay in force.
    pub struct FlagError { subject: "flags", field_example: "flags.quotes.source.default" }
}
