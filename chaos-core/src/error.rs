//! The one error type of config loading: it names the file, the field and the reason.

brownout_foundation::field_error! {
    /// A chaos config that was rejected. The rule set that was active before stays active.
    ///
    /// `Display` reads `configs/chaos/x.yaml: rules[2].sample.rate: must be within [0, 1], got 1.5`.
    pub struct ConfigError { subject: "chaos config", field_example: "rules[2].sample.rate" }
}
