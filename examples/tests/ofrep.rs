//! A real OFREP client against the demo service: the OpenFeature Python SDK's OFREP provider
//! (`openfeature-sdk`, `openfeature-provider-ofrep` from PyPI) reads the degrade flags of `http_service`
//! through its admin API (`/admin/ofrep/v1/evaluate/flags/{key}`, the admin token as a bearer token).
//!
//! The test serves the `http_service` router on `127.0.0.1:0` with a token file, sets one flag through the
//! admin API and one through a trigger, then runs `tests/ofrep_client.py` (with the Python of
//! `BROWNOUT_OFREP_PYTHON`, default `python3`) and checks each evaluation's value, reason, variant, metadata
//! and error code as the Python SDK reports them.
//!
//! Ignored in plain `cargo test` (it needs the two PyPI packages); `.ci/run` installs them in a virtual
//! environment outside the source tree and runs
//! `BROWNOUT_OFREP_PYTHON=<venv>/bin/python cargo test -p examples --test ofrep -- --ignored`.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use brownout_degrade::flags::FlagValue;
use serde_json::{Value, json};

#[path = "support/servers.rs"]
mod support;
use support::Served;

const TOKEN: &str = "ofrep-client-token-0123456789abcdef";

fn python() -> String {
    std::env::var("BROWNOUT_OFREP_PYTHON").unwrap_or_else(|_| "python3".to_owned())
}

/// Runs the Python OFREP client on `asks` (one `{"key", "type", "default"}` each) against `base` with `token`;
/// one evaluation's details per ask.
fn evaluate(base: &str, token: &str, asks: &[Value]) -> Vec<Value> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ofrep_client.py");
    let mut child = Command::new(python())
        .arg(&script)
        .arg(base)
        .env("BROWNOUT_OFREP_TOKEN", token)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", python()));
    let mut stdin = child.stdin.take().unwrap();
    for ask in asks {
        writeln!(stdin, "{ask}").unwrap();
    }
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the OFREP client failed:\n{stderr}");
    let lines: Vec<Value> =
        String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), asks.len(), "one evaluation per ask; stderr:\n{stderr}");
    lines
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs openfeature-sdk and openfeature-provider-ofrep from PyPI; run by .ci/run"]
async fn the_python_ofrep_provider_reads_the_degrade_flags() {
    let probe = Command::new(python()).args(["-c", "import openfeature.contrib.provider.ofrep"]).output();
    assert!(
        probe.as_ref().is_ok_and(|o| o.status.success()),
        "{} cannot import the OFREP provider: pip install openfeature-sdk openfeature-provider-ofrep \
         (or point BROWNOUT_OFREP_PYTHON at a Python that has them): {probe:?}",
        python()
    );
    let tmp = tempfile::tempdir().unwrap();
    let served = Served::start(tmp.path(), "experiment: calm\nrules: []\n", Some(TOKEN), |o| o.degrade = false).await;
    let service = &served.service;
    let admin = format!("{}/admin", served.base());

    // A person sets reports.delivery through the admin API; a trigger isolates the quote provider.
    let client = support::client();
    let url = format!("{admin}/flags/reports.delivery");
    let (status, body) =
        support::send(&client, http::Method::PUT, &url, Some(TOKEN), r#"{"value": "streaming"}"#).await.unwrap();
    assert_eq!(status, 200, "{body}");
    service.flags.set_trigger("quotes.source", Some(FlagValue::Strategy(2)), "provider-isolated").unwrap();
    service.flags.set("api.shed_percent", "12.5").unwrap();

    let asks = [
        json!({"key": "execution.partial_fill_mode", "type": "boolean", "default": true}),
        json!({"key": "reports.delivery", "type": "string", "default": "x"}),
        json!({"key": "quotes.source", "type": "string", "default": "x"}),
        json!({"key": "api.shed_percent", "type": "float", "default": 1.0}),
        json!({"key": "api.shed_percent", "type": "integer", "default": 7}),
        json!({"key": "quotes.source", "type": "boolean", "default": true}),
        json!({"key": "no.such.flag", "type": "boolean", "default": true}),
    ];
    let base = admin.clone();
    let got = tokio::task::spawn_blocking(move || evaluate(&base, TOKEN, &asks)).await.unwrap();
    let brief: Vec<Value> =
        got.iter().map(|d| json!([d["key"], d["value"], d["reason"], d["variant"], d["error_code"]])).collect();
    assert_eq!(
        brief,
        [
            json!(["execution.partial_fill_mode", false, "DEFAULT", "false", null]),
            json!(["reports.delivery", "streaming", "STATIC", "streaming", null]),
            json!(["quotes.source", "stale_ok", "TARGETING_MATCH", "stale_ok", null]),
            json!(["api.shed_percent", 12.5, "STATIC", "12.5", null]),
            // A number flag is a float: Python's strict integer evaluation refuses it, with the default.
            json!(["api.shed_percent", 7, "ERROR", null, "TYPE_MISMATCH"]),
            json!(["quotes.source", true, "ERROR", null, "TYPE_MISMATCH"]),
            json!(["no.such.flag", true, "ERROR", null, "FLAG_NOT_FOUND"]),
        ],
        "{got:#?}"
    );
    assert_eq!(got[1]["metadata"], json!({"source": "override"}));
    assert_eq!(got[2]["metadata"], json!({"source": "trigger", "trigger": "provider-isolated"}));
    assert_eq!(got[6]["error_message"], "no flag `no.such.flag`");

    // A wrong token: the admin API's 401, which the provider reports as a general error (and the default).
    let base = admin.clone();
    let refused = tokio::task::spawn_blocking(move || {
        evaluate(
            &base,
            "not-the-token-0123456789abcdef",
            &[json!({"key": "quotes.source", "type": "string", "default": "d"})],
        )
    })
    .await
    .unwrap();
    assert_eq!(refused[0]["value"], "d");
    assert_eq!(refused[0]["error_code"], "GENERAL");
    assert_eq!(refused[0]["error_message"], "unauthorized");

    drop(served);
}
