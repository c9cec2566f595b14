//! The `tests` package holds no library code; see its `[[example]]`/`[[bench]]`/`[[test]]` targets.
//!
//! It also runs the workspace README's Rust examples as doctests: they use every crate (the GameDay runner
//! beside the layers), and a published crate cannot include a file outside its package.

/// The README's Rust examples, compiled and run as doctests.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

macro_rules! doc_examples {
    ($($name:ident => $file:literal),* $(,)?) => {$(
        #[doc = include_str!(concat!("../../docs/", $file))]
        #[cfg(doctest)]
        pub struct $name;
    )*};
}

// The Rust examples of every reference document, compiled and run as doctests too.
doc_examples! {
    FaultsDoctests => "faults.md",
    PressureDoctests => "pressure.md",
    DegradeDoctests => "degrade.md",
    CostDoctests => "cost.md",
    GamedayDoctests => "gameday.md",
    LoadDoctests => "load.md",
    HttpServiceDoctests => "http_service.md",
    AdminApiDoctests => "admin-api.md",
    ObservabilityDoctests => "observability.md",
    HardeningDoctests => "hardening.md",
    GrpcDoctests => "grpc.md",
    TracingDoctests => "tracing.md",
    ArchitectureDoctests => "architecture.md",
}
