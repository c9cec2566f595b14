//! The quotes server on loopback, behind the fault layer, and a channel to it.

use std::net::SocketAddr;

use brownout_tower::{ChaosHandle, HttpChaosLayer};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Channel, Endpoint, Server};

use crate::BoxError;
use crate::server::QuotesServer;

/// A running server: its address; dropping it stops the server.
#[derive(Debug)]
pub struct Served {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Served {
    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A tonic channel to it (HTTP/2 over plain TCP).
    pub async fn channel(&self) -> Result<Channel, BoxError> {
        Ok(Endpoint::from_shared(format!("http://{}", self.addr))?.connect().await?)
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves [`QuotesServer`] on `127.0.0.1` (a free port) with `chaos`'s rules in front of its routes:
/// `Server::builder().layer(HttpChaosLayer::new(chaos))`.
pub async fn serve(chaos: ChaosHandle) -> std::io::Result<Served> {
    let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
    let addr = listener.local_addr()?;
    let incoming = TcpIncoming::from(listener);
    let task = tokio::spawn(async move {
        let server = Server::builder().layer(HttpChaosLayer::new(chaos)).add_service(QuotesServer);
        if let Err(e) = server.serve_with_incoming(incoming).await {
            eprintln!("quotes server stopped: {e}");
        }
    });
    Ok(Served { addr, task })
}
