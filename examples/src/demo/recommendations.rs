//! `GET /recommendations/{user}`, a non-critical route: a cheap, CPU-bound answer — a chain of
//! [`Options::recommendation_rounds`](super::Options::recommendation_rounds) hashes seeded by the user, done on
//! the request's task — so CPU pressure shows in its latency. The answer is JSON:
//! `{"user":"u1","symbols":["SYM3","SYM0","SYM6"]}`, the same for the same user.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::Counters;

/// What the recommendations route needs.
#[derive(Debug)]
pub(crate) struct Recommendations {
    pub(crate) counters: Arc<Counters>,
    pub(crate) rounds: u32,
}

/// `GET /recommendations/{user}`.
pub(crate) fn router(recommendations: Recommendations) -> Router {
    Router::new().route("/recommendations/{user}", get(recommend)).with_state(Arc::new(recommendations))
}

async fn recommend(State(r): State<Arc<Recommendations>>, Path(user): Path<String>) -> Response {
    r.counters.recommendation_requests.fetch_add(1, Ordering::Relaxed);
    let picks = picks(&user, r.rounds);
    let symbols: Vec<String> = picks.iter().map(|p| format!("SYM{p}")).collect();
    let body = serde_json::json!({ "user": user, "symbols": symbols }).to_string();
    ([(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], body).into_response()
}

/// Three symbols (0–7) for `user`, from a chain of `rounds` SipHash rounds: the CPU work of the route.
fn picks(user: &str, rounds: u32) -> [u64; 3] {
    let mut hasher = DefaultHasher::new();
    user.hash(&mut hasher);
    let mut h = hasher.finish();
    for _ in 0..rounds {
        let mut round = DefaultHasher::new();
        round.write_u64(h);
        h = round.finish();
    }
    [h % 8, (h >> 16) % 8, (h >> 32) % 8]
}
