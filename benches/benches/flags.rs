//! Reading a flag: Brownout's handle beside what a user would reach for otherwise, in the same run.
//!
//! Run: `cargo bench -p benches --bench flags`
//!
//! The peers: an `RwLock<HashMap>` looked up by name, and the official OpenFeature Rust SDK (`open-feature`
//! 0.3) evaluating a boolean flag through its client. The Rust SDK ships only a no-op provider, so the
//! in-memory provider of the OpenFeature specification (what its Go, Java and JS SDKs ship: flags with
//! variants and a default variant, resolved with reason `STATIC`) is written out here.
//!
//! The SDK's evaluation is async. `openfeature_in_memory_bool` measures one evaluation inside one running
//! current-thread tokio runtime (`iter_custom`: one `block_on` per batch, the per-evaluation cost a service
//! that is already in async code pays); `openfeature_in_memory_bool_block_on` adds a `block_on` per
//! evaluation, what synchronous code pays to ask.

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::RwLock;
use std::time::Instant;

use brownout_degrade::flags::{FlagKind, Flags};
use criterion::{Criterion, criterion_group, criterion_main};
use open_feature::provider::{FeatureProvider, ProviderMetadata, ProviderStatus, ResolutionDetails};
use open_feature::{
    EvaluationContext, EvaluationError, EvaluationErrorCode, EvaluationReason, EvaluationResult, OpenFeature,
    StructValue,
};

/// One flag of the in-memory provider: its variants and the variant it serves.
#[derive(Debug)]
struct InMemoryFlag {
    variants: HashMap<String, bool>,
    default_variant: String,
}

/// The OpenFeature specification's in-memory provider, for boolean flags.
#[derive(Debug)]
struct InMemoryProvider {
    metadata: ProviderMetadata,
    flags: HashMap<String, InMemoryFlag>,
}

impl InMemoryProvider {
    fn new(flags: impl IntoIterator<Item = (String, bool)>) -> Self {
        let flags = flags
            .into_iter()
            .map(|(name, on)| {
                let variants = HashMap::from([("on".to_owned(), true), ("off".to_owned(), false)]);
                (name, InMemoryFlag { variants, default_variant: if on { "on" } else { "off" }.to_owned() })
            })
            .collect();
        Self { metadata: ProviderMetadata::new("In-memory Provider"), flags }
    }
}

fn not_boolean<T>(flag_key: &str) -> EvaluationResult<T> {
    Err(EvaluationError::builder()
        .code(EvaluationErrorCode::TypeMismatch)
        .message(format!("{flag_key}: the in-memory provider here holds boolean flags only"))
        .build())
}

#[open_feature::async_trait]
impl FeatureProvider for InMemoryProvider {
    fn metadata(&self) -> &ProviderMetadata {
        &self.metadata
    }

    fn status(&self) -> ProviderStatus {
        ProviderStatus::Ready
    }

    async fn resolve_bool_value(
        &self,
        flag_key: &str,
        _evaluation_context: &EvaluationContext,
    ) -> EvaluationResult<ResolutionDetails<bool>> {
        let flag = self.flags.get(flag_key).ok_or_else(|| {
            EvaluationError::builder().code(EvaluationErrorCode::FlagNotFound).message(flag_key.to_owned()).build()
        })?;
        let value = flag.variants[&flag.default_variant];
        Ok(ResolutionDetails {
            value,
            variant: Some(flag.default_variant.clone()),
            reason: Some(EvaluationReason::Static),
            flag_metadata: None,
        })
    }

    async fn resolve_int_value(
        &self,
        flag_key: &str,
        _: &EvaluationContext,
    ) -> EvaluationResult<ResolutionDetails<i64>> {
        not_boolean(flag_key)
    }

    async fn resolve_float_value(
        &self,
        flag_key: &str,
        _: &EvaluationContext,
    ) -> EvaluationResult<ResolutionDetails<f64>> {
        not_boolean(flag_key)
    }

    async fn resolve_string_value(
        &self,
        flag_key: &str,
        _: &EvaluationContext,
    ) -> EvaluationResult<ResolutionDetails<String>> {
        not_boolean(flag_key)
    }

    async fn resolve_struct_value(
        &self,
        flag_key: &str,
        _: &EvaluationContext,
    ) -> EvaluationResult<ResolutionDetails<StructValue>> {
        not_boolean(flag_key)
    }
}

/// The 32 other flags every lookup table here holds, beside `quotes.cached_only`.
fn other_flags() -> impl Iterator<Item = (String, bool)> {
    (0..32).map(|i| (format!("service.flag_{i}"), i % 2 == 0))
}

fn flags(c: &mut Criterion) {
    let mut g = c.benchmark_group("flag_read");
    let flags = Flags::new();
    flags.define("quotes.cached_only", FlagKind::Bool, "false").unwrap();
    flags.define("quotes.source", FlagKind::Strategy(vec!["live".into(), "cached".into()].into()), "live").unwrap();
    let handle = flags.bool("quotes.cached_only").unwrap();
    let strategy = flags.strategy("quotes.source").unwrap();
    g.bench_function("brownout_bool_handle", |b| b.iter(|| black_box(&handle).get()));
    g.bench_function("brownout_strategy_handle", |b| b.iter(|| black_box(&strategy).get().len()));

    // The usual alternative: a map of flags behind a reader-writer lock, looked up by name.
    let map: RwLock<HashMap<String, bool>> =
        RwLock::new(other_flags().chain([("quotes.cached_only".into(), false)]).collect());
    g.bench_function("rwlock_hashmap_lookup", |b| {
        b.iter(|| *map.read().unwrap().get(black_box("quotes.cached_only")).unwrap())
    });
    // And the registry's own lookup by name, which handles avoid.
    g.bench_function("brownout_get_by_name", |b| {
        b.iter(|| flags.get(black_box("quotes.cached_only")).unwrap().0.len())
    });

    // OpenFeature: the global API with the in-memory provider, one client, a boolean flag.
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let client = rt.block_on(async {
        let mut api = OpenFeature::singleton_mut().await;
        api.set_provider(InMemoryProvider::new(other_flags().chain([("quotes.cached_only".into(), false)]))).await;
        api.create_client()
    });
    assert!(!rt.block_on(client.get_bool_value("quotes.cached_only", None, None)).unwrap());
    g.bench_function("openfeature_in_memory_bool", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    black_box(client.get_bool_value(black_box("quotes.cached_only"), None, None).await.unwrap());
                }
                start.elapsed()
            })
        })
    });
    g.bench_function("openfeature_in_memory_bool_block_on", |b| {
        b.iter(|| rt.block_on(client.get_bool_value(black_box("quotes.cached_only"), None, None)).unwrap())
    });
    g.finish();
}

criterion_group!(benches, flags);
criterion_main!(benches);
