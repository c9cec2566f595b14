//! Degrade flags through the OpenFeature Rust SDK's client (`open-feature`), served by
//! `brownout_degrade::openfeature::DegradeProvider`: types, reasons, variants, metadata and error codes as the
//! OpenFeature specification defines them.

use brownout_degrade::Flags;
use brownout_degrade::flags::{FlagKind, FlagValue};
use brownout_degrade::openfeature::DegradeProvider;
use open_feature::{Client, EvaluationErrorCode, EvaluationReason, FlagMetadataValue, OpenFeature};
use proptest::prelude::*;

/// A flag file like the shipped one: defaults, and `reports.delivery` set by a person in the file.
const FLAGS: &str = "\
flags:
  execution.partial_fill_mode: { type: bool, default: false }
  quotes.source: { type: strategy, options: [live, cached, stale_ok], default: live }
  reports.delivery: { type: strategy, options: [cached, streaming], default: cached, value: streaming }
  api.shed_percent: { type: number, min: 0, max: 100, default: 0 }
";

fn flags() -> (Flags, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("flags.yaml");
    std::fs::write(&path, FLAGS).unwrap();
    (Flags::from_file(&path).unwrap(), dir)
}

/// An SDK client bound to a provider of its own (named after the test: tests run in parallel and the SDK's
/// registry is process-wide).
async fn client(name: &str, flags: &Flags) -> Client {
    let mut api = OpenFeature::singleton_mut().await;
    api.set_named_provider(name, DegradeProvider::new(flags.clone())).await;
    api.create_named_client(name)
}

fn meta(details: &open_feature::FlagMetadata, key: &str) -> Option<String> {
    match details.values.get(key)? {
        FlagMetadataValue::String(s) => Some(s.clone()),
        other => Some(format!("{other:?}")),
    }
}

#[tokio::test]
async fn a_flag_nothing_set_is_its_default_with_reason_default() {
    let (flags, _dir) = flags();
    let client = client("default", &flags).await;
    let details = client.get_bool_details("execution.partial_fill_mode", None, None).await.unwrap();
    assert!(!details.value);
    assert_eq!(details.reason, Some(EvaluationReason::Default));
    assert_eq!(details.variant.as_deref(), Some("false"));
    assert_eq!(meta(&details.flag_metadata, "source").as_deref(), Some("default"));
    let strategy = client.get_string_details("quotes.source", None, None).await.unwrap();
    assert_eq!((strategy.value.as_str(), strategy.reason), ("live", Some(EvaluationReason::Default)));
}

#[tokio::test]
async fn a_persons_setting_is_static() {
    let (flags, _dir) = flags();
    let client = client("static", &flags).await;
    let file = client.get_string_details("reports.delivery", None, None).await.unwrap();
    assert_eq!((file.value.as_str(), file.reason.clone()), ("streaming", Some(EvaluationReason::Static)));
    assert_eq!(meta(&file.flag_metadata, "source").as_deref(), Some("file"));

    flags.set("quotes.source", "cached").unwrap();
    let set = client.get_string_details("quotes.source", None, None).await.unwrap();
    assert_eq!((set.value.as_str(), set.reason.clone()), ("cached", Some(EvaluationReason::Static)));
    assert_eq!(set.variant.as_deref(), Some("cached"));
    assert_eq!(meta(&set.flag_metadata, "source").as_deref(), Some("override"));
}

#[tokio::test]
async fn a_value_set_by_a_trigger_is_a_targeting_match_naming_the_trigger() {
    let (flags, _dir) = flags();
    let client = client("trigger", &flags).await;
    flags.set_trigger("quotes.source", Some(FlagValue::Strategy(2)), "provider-isolated").unwrap();
    let details = client.get_string_details("quotes.source", None, None).await.unwrap();
    assert_eq!(details.value, "stale_ok");
    assert_eq!(details.reason, Some(EvaluationReason::TargetingMatch));
    assert_eq!(meta(&details.flag_metadata, "source").as_deref(), Some("trigger"));
    assert_eq!(meta(&details.flag_metadata, "trigger").as_deref(), Some("provider-isolated"));

    // The trigger turns off: back to the default, at the next evaluation.
    flags.set_trigger("quotes.source", None, "provider-isolated").unwrap();
    let details = client.get_string_details("quotes.source", None, None).await.unwrap();
    assert_eq!((details.value.as_str(), details.reason), ("live", Some(EvaluationReason::Default)));
}

#[tokio::test]
async fn a_number_flag_is_a_float_and_an_integer_when_whole() {
    let (flags, _dir) = flags();
    let client = client("number", &flags).await;
    flags.set("api.shed_percent", "50").unwrap();
    assert_eq!(client.get_int_value("api.shed_percent", None, None).await, Ok(50));
    assert_eq!(client.get_float_value("api.shed_percent", None, None).await, Ok(50.0));
    flags.set("api.shed_percent", "12.5").unwrap();
    assert_eq!(client.get_float_value("api.shed_percent", None, None).await, Ok(12.5));
    let err = client.get_int_value("api.shed_percent", None, None).await.unwrap_err();
    assert_eq!(err.code, EvaluationErrorCode::TypeMismatch);
    assert!(err.message.unwrap().contains("12.5"));
}

#[tokio::test]
async fn asking_for_another_type_is_a_type_mismatch() {
    let (flags, _dir) = flags();
    let client = client("mismatch", &flags).await;
    let cases = [
        client.get_bool_value("quotes.source", None, None).await.map(|_| ()),
        client.get_string_value("execution.partial_fill_mode", None, None).await.map(|_| ()),
        client.get_int_value("quotes.source", None, None).await.map(|_| ()),
        client.get_float_value("execution.partial_fill_mode", None, None).await.map(|_| ()),
        client.get_bool_value("api.shed_percent", None, None).await.map(|_| ()),
    ];
    for case in cases {
        let err = case.unwrap_err();
        assert_eq!(err.code, EvaluationErrorCode::TypeMismatch, "{err:?}");
        assert!(err.message.unwrap().starts_with("flag `"));
    }
}

#[tokio::test]
async fn an_unknown_flag_is_flag_not_found() {
    let (flags, _dir) = flags();
    let client = client("not-found", &flags).await;
    let err = client.get_bool_value("no.such.flag", None, None).await.unwrap_err();
    assert_eq!(err.code, EvaluationErrorCode::FlagNotFound);
    assert_eq!(err.message.as_deref(), Some("no flag `no.such.flag`"));
}

#[tokio::test]
async fn the_provider_names_itself() {
    let (flags, _dir) = flags();
    let client = client("metadata", &flags).await;
    let _ = client;
    let api = OpenFeature::singleton().await;
    assert_eq!(api.named_provider_metadata("metadata").await.unwrap().name, DegradeProvider::NAME);
}

proptest! {
    /// Any number a flag accepts comes back exactly as a float, and as an integer exactly when it is whole.
    #[test]
    fn numbers_come_back_exactly(n in prop_oneof![0.0f64..=100.0, (0u8..=100).prop_map(f64::from)]) {
        let flags = Flags::new();
        flags.define("n", FlagKind::Number { min: 0.0, max: 100.0 }, "0").unwrap();
        flags.set("n", &n.to_string()).unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let (float, int) = runtime.block_on(async {
            let client = client("prop", &flags).await;
            (client.get_float_value("n", None, None).await, client.get_int_value("n", None, None).await)
        });
        prop_assert_eq!(float, Ok(n));
        if n.fract() == 0.0 {
            prop_assert_eq!(int, Ok(n as i64));
        } else {
            prop_assert_eq!(int.unwrap_err().code, EvaluationErrorCode::TypeMismatch);
        }
    }
}
