//! HTTPS for the lobby (browsers give a page the camera only in a secure context): rustls in front of
//! the same HTTP service. The certificate chain and key are PEM files read at start and again on SIGHUP;
//! rustls asks for the certificate at every handshake, so a reload changes what new connections get and
//! leaves open ones (WebSockets included) alone. A reload that fails keeps the old certificate.
//!
//! Handshakes run on tasks of their own, bounded in number and time, so a slow or silent client never
//! holds up the others; only finished handshakes reach the HTTP server.

use crate::admission::Admission;
use crate::Error;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, Semaphore};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

/// Handshakes in progress at most; further connections wait in the kernel's backlog.
const HANDSHAKES: usize = 256;
/// A handshake that takes longer is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the certificate chain and its private key are (PEM).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate chain, leaf first (e.g. Let's Encrypt's `fullchain.pem`).
    pub cert: PathBuf,
    /// The private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// The certificate in use; swapped by [`Certificate::reload`].
#[derive(Debug)]
pub struct Certificate {
    files: TlsFiles,
    provider: Arc<CryptoProvider>,
    current: RwLock<Arc<CertifiedKey>>,
}

impl Certificate {
    /// Reads and checks the files (the key must be the certificate's).
    pub fn load(files: TlsFiles) -> Result<Arc<Certificate>, Error> {
        // ring, as the rest of the binary (ureq) already builds it: no AWS-LC C build. Its key exchange
        // is X25519/P-256/P-384, without the post-quantum hybrid that rustls 0.23.48 deprecates it for.
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let key = read(&files, &provider)?;
        Ok(Arc::new(Certificate { files, provider, current: RwLock::new(Arc::new(key)) }))
    }

    /// Reads the files again; on success new handshakes use them, on failure the old ones stay.
    pub fn reload(&self) -> Result<(), Error> {
        let key = read(&self.files, &self.provider)?;
        *self.current.write().map_err(|_| Error::Tls("the certificate lock is poisoned".into()))? = Arc::new(key);
        Ok(())
    }

    fn server_config(self: &Arc<Self>) -> Result<rustls::ServerConfig, Error> {
        let mut config = rustls::ServerConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::Tls(e.to_string()))?
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(config)
    }
}

impl ResolvesServerCert for Certificate {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current.read().ok().map(|key| key.clone())
    }
}

fn read(files: &TlsFiles, provider: &CryptoProvider) -> Result<CertifiedKey, Error> {
    let cert_error = |e: &dyn std::fmt::Display| Error::Tls(format!("--tls-cert {}: {e}", files.cert.display()));
    let chain = CertificateDer::pem_file_iter(&files.cert)
        .map_err(|e| cert_error(&e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| cert_error(&e))?;
    if chain.is_empty() {
        return Err(cert_error(&"no PEM certificate in the file"));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .map_err(|e| Error::Tls(format!("--tls-key {}: {e}", files.key.display())))?;
    CertifiedKey::from_der(chain, key, provider).map_err(|e| {
        Error::Tls(format!("--tls-cert {} with --tls-key {}: {e}", files.cert.display(), files.key.display()))
    })
}

/// Reloads `certificate` at every SIGHUP until the task is aborted.
pub fn reload_on_hangup(certificate: Arc<Certificate>) -> Result<tokio::task::JoinHandle<()>, Error> {
    let mut hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .map_err(|e| Error::Tls(format!("cannot handle SIGHUP: {e}")))?;
    Ok(tokio::spawn(async move {
        while hangups.recv().await.is_some() {
            match certificate.reload() {
                Ok(()) => tracing::info!("lobby: TLS certificate reloaded"),
                Err(e) => tracing::warn!("lobby: TLS certificate not reloaded, the old one stays: {e}"),
            }
        }
    }))
}

/// Accepted connections after their TLS handshake, for `axum::serve`.
pub struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
    acceptor: tokio::task::JoinHandle<()>,
}

impl TlsListener {
    /// Accepts on `listener` and runs handshakes with `certificate` (`nodelay`: no Nagle delay).
    pub(crate) fn new(
        mut listener: Admission,
        certificate: &Arc<Certificate>,
        nodelay: bool,
    ) -> Result<TlsListener, Error> {
        let local = listener.local_addr().map_err(Error::Serve)?;
        let acceptor = TlsAcceptor::from(Arc::new(certificate.server_config()?));
        let (done, ready) = mpsc::channel(HANDSHAKES);
        let permits = Arc::new(Semaphore::new(HANDSHAKES));
        let acceptor = tokio::spawn(async move {
            loop {
                let Ok(permit) = permits.clone().acquire_owned().await else { return };
                // at the open-files limit, connections are refused there (see Admission)
                let (tcp, peer) = listener.accept().await;
                if done.is_closed() {
                    return;
                }
                let _ = tcp.set_nodelay(nodelay);
                let (acceptor, done) = (acceptor.clone(), done.clone());
                tokio::spawn(async move {
                    if let Ok(Ok(tls)) = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                        let _ = done.send((tls, peer)).await;
                    }
                    drop(permit);
                });
            }
        });
        Ok(TlsListener { ready, local, acceptor })
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.acceptor.abort();
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(accepted) => accepted,
            // the acceptor only stops when this listener is dropped
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        Ok(self.local)
    }
}
