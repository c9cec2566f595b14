//! [`DegradeProvider`]: the degrade flags behind the OpenFeature Rust SDK (`open-feature`).

use open_feature::provider::{FeatureProvider, ProviderMetadata, ProviderStatus, ResolutionDetails};
use open_feature::{
    EvaluationContext, EvaluationError, EvaluationErrorCode, EvaluationReason, EvaluationResult, FlagMetadata,
    StructValue,
};

use super::{ErrorCode, Reason, Resolution, ResolveError, resolve};
use crate::flags::Flags;

/// An OpenFeature provider that evaluates a process's degrade [`Flags`]: every evaluation reads the value in
/// force now (a file reload, a trigger or the admin API is seen at the next one).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use brownout_degrade::Flags;
/// use brownout_degrade::flags::FlagKind;
/// use brownout_degrade::openfeature::DegradeProvider;
/// use open_feature::OpenFeature;
///
/// let flags = Flags::new();
/// flags.define("quotes.cache", FlagKind::Bool, "false").unwrap();
/// let mut api = OpenFeature::singleton_mut().await;
/// api.set_named_provider("degrade", DegradeProvider::new(flags.clone())).await;
/// let client = api.create_named_client("degrade");
/// assert_eq!(client.get_bool_value("quotes.cache", None, None).await, Ok(false));
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct DegradeProvider {
    flags: Flags,
    metadata: ProviderMetadata,
}

impl DegradeProvider {
    /// The provider's name in OpenFeature's metadata.
    pub const NAME: &'static str = "brownout-degrade-flags";

    /// A provider over `flags` (a clone shares the same flags).
    pub fn new(flags: Flags) -> Self {
        Self { flags, metadata: ProviderMetadata::new(Self::NAME) }
    }

    fn details<T>(
        &self,
        key: &str,
        typed: impl FnOnce(&Resolution) -> Result<T, ResolveError>,
    ) -> EvaluationResult<ResolutionDetails<T>> {
        let resolution = resolve(&self.flags, key).map_err(error)?;
        let value = typed(&resolution).map_err(error)?;
        let mut metadata = FlagMetadata::default();
        for (name, value) in resolution.metadata() {
            metadata.add_value(name, value);
        }
        let reason = match resolution.reason {
            Reason::Static => EvaluationReason::Static,
            Reason::Default => EvaluationReason::Default,
            Reason::TargetingMatch => EvaluationReason::TargetingMatch,
        };
        Ok(ResolutionDetails::builder()
            .value(value)
            .variant(resolution.variant)
            .reason(reason)
            .flag_metadata(metadata)
            .build())
    }
}

fn error(e: ResolveError) -> EvaluationError {
    let code = match e.code {
        ErrorCode::FlagNotFound => EvaluationErrorCode::FlagNotFound,
        ErrorCode::TypeMismatch => EvaluationErrorCode::TypeMismatch,
    };
    EvaluationError::builder().code(code).message(e.details).build()
}

#[open_feature::async_trait]
impl FeatureProvider for DegradeProvider {
    fn metadata(&self) -> &ProviderMetadata {
        &self.metadata
    }

    fn status(&self) -> ProviderStatus {
        ProviderStatus::Ready
    }

    async fn resolve_bool_value(&self, key: &str, _: &EvaluationContext) -> EvaluationResult<ResolutionDetails<bool>> {
        self.details(key, Resolution::as_bool)
    }

    async fn resolve_int_value(&self, key: &str, _: &EvaluationContext) -> EvaluationResult<ResolutionDetails<i64>> {
        self.details(key, Resolution::as_int)
    }

    async fn resolve_float_value(&self, key: &str, _: &EvaluationContext) -> EvaluationResult<ResolutionDetails<f64>> {
        self.details(key, Resolution::as_float)
    }

    async fn resolve_string_value(
        &self,
        key: &str,
        _: &EvaluationContext,
    ) -> EvaluationResult<ResolutionDetails<String>> {
        self.details(key, Resolution::as_string)
    }

    async fn resolve_struct_value(
        &self,
        key: &str,
        _: &EvaluationContext,
    ) -> EvaluationResult<ResolutionDetails<StructValue>> {
        self.details(key, |r| {
            Err(ResolveError {
                code: ErrorCode::TypeMismatch,
                details: format!("flag `{}` is not a structure: degrade flags are bool, strategy or number", r.key),
            })
        })
    }
}
